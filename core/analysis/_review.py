"""Case review: the rare-class errors one by one, the training cases each resembles, and
a reviewer's verdict on each, kept with the run.

A reviewer (often a clinician) asks of a mistake: is the label wrong, is the case genuinely
ambiguous, or did the model simply err? Two things help answer it: the training cases the
model finds most similar (in its penultimate feature space) of the true class and of the
predicted class, and a place to write the verdict down. Verdicts live in the run's
"reviews" annotation, so the page, the HTML report and the CSV export read the same record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.analysis._gallery import error_cases
from core.artifacts import EvalArtifacts
from core.safe_csv import csv_bytes
from core.store import REVIEW_MARKS, TRAIN_REVIEW_MARKS  # the reviews file's vocabulary, checked on read

__all__ = [
    "NEIGHBOUR_COLUMNS",
    "REVIEW_COLUMNS",
    "REVIEW_MARKS",
    "clear_review",
    "nearest_training_cases",
    "neighbours_unavailable",
    "neighbour_values",
    "rare_class_errors",
    "read_reviews",
    "reviews_csv",
    "report_annotations",
    "reviews_table",
    "set_review",
    "TRAIN_REVIEW_MARKS",
    "read_train_reviews",
    "set_train_review",
    "clear_train_review",
]

REVIEW_COLUMNS = ["test_row", "case", "true", "predicted", "confidence", "mark", "note", "updated"]
NEIGHBOUR_COLUMNS = ["row", "side", "class", "rank", "train_row", "distance"]
NOTE_MAX_CHARS = 5000
_GROUP_RANK = {"tail": 0, "medium": 1, "head": 2}


# --- the cases to review --------------------------------------------------------------------

def rare_class_errors(artifacts: EvalArtifacts, groups: Sequence[str], *, include_medium: bool = True) -> pd.DataFrame:
    """The test errors whose true class is rare, tail classes first.

    An `error_cases` frame restricted to errors on tail classes (and medium ones with
    `include_medium`), ordered by the true class's group (tail before medium), then the
    model's confidence in its wrong answer (surest first), then row."""
    keep = {"tail", "medium"} if include_medium else {"tail"}
    rare = [k for k, g in enumerate(groups) if g in keep]
    cases = error_cases(artifacts, groups, true_classes=rare)
    rank = cases["true_group"].map(_GROUP_RANK).fillna(len(_GROUP_RANK))
    order = np.lexsort((cases["row"].to_numpy(), -cases["confidence"].to_numpy(), rank.to_numpy()))
    return cases.iloc[order].reset_index(drop=True)


# --- nearest training cases in feature space ------------------------------------------------

def neighbours_unavailable(artifacts: EvalArtifacts) -> str | None:
    """Why a run has no nearest training cases to show, in plain words; None when it has."""
    if not artifacts.has_features:
        return ("This run is a table baseline (a forest or a scikit-learn model): it learns no feature space, "
                "so there are no nearest training cases to show.")
    if artifacts.train_features.ndim != 2 or len(artifacts.train_features) == 0:
        return "This run stored no training cases to compare with."
    return None


def nearest_training_cases(
    artifacts: EvalArtifacts,
    rows: Iterable[int],
    *,
    k: int = 3,
    metric: Literal["cosine", "euclidean"] = "cosine",
) -> pd.DataFrame:
    """For each test row (position in the artifact arrays), its `k` nearest stored training
    cases of its true class (side "true") and of its predicted class (side "pred").

    Neighbours come from the stored, class-stratified training subset (`train_features`),
    compared on penultimate features with sklearn's exact (brute-force) search. Columns
    `NEIGHBOUR_COLUMNS`: `train_row` is the position in that subset, `rank` 0 is the
    nearest, `distance` is cosine distance (1 - cosine similarity) or euclidean. A class
    with fewer than `k` stored cases gives what it has. Empty when the run has no features
    (see `neighbours_unavailable`)."""
    from sklearn.neighbors import NearestNeighbors

    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if int(k) < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    rows = np.asarray(list(rows), dtype=np.int64)
    n = len(artifacts.labels)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"test rows must lie in 0..{n - 1}")
    empty = pd.DataFrame({c: pd.Series(dtype="int64") for c in NEIGHBOUR_COLUMNS}
                         | {"side": pd.Series(dtype=object), "distance": pd.Series(dtype="float64")})
    if neighbours_unavailable(artifacts) or rows.size == 0:
        return empty[NEIGHBOUR_COLUMNS]
    pred = np.asarray(artifacts.logits).argmax(axis=1)
    train_x = np.asarray(artifacts.train_features, dtype=np.float64)
    train_y = np.asarray(artifacts.train_labels, dtype=np.int64)
    queries = np.asarray(artifacts.features, dtype=np.float64)
    frames = []
    for side, classes in (("true", np.asarray(artifacts.labels, dtype=np.int64)[rows]), ("pred", pred[rows])):
        for c in np.unique(classes):
            members = np.flatnonzero(train_y == c)
            if members.size == 0:
                continue
            ask = rows[classes == c]
            search = NearestNeighbors(n_neighbors=min(int(k), members.size), metric=metric, algorithm="brute")
            distance, position = search.fit(train_x[members]).kneighbors(queries[ask])
            m = position.shape[1]
            frames.append(pd.DataFrame({
                "row": np.repeat(ask, m), "side": side, "class": int(c), "rank": np.tile(np.arange(m), len(ask)),
                "train_row": members[position].reshape(-1), "distance": distance.reshape(-1),
            }))
    if not frames:
        return empty[NEIGHBOUR_COLUMNS]
    out = pd.concat(frames, ignore_index=True)
    side_order = out["side"].map({"true": 0, "pred": 1})
    out = out.assign(_side=side_order).sort_values(["row", "_side", "rank"], kind="stable").drop(columns="_side")
    return out[NEIGHBOUR_COLUMNS].reset_index(drop=True)


def neighbour_values(splits: Any, case_x: np.ndarray, neighbour_x: np.ndarray, titles: Sequence[str]) -> pd.DataFrame:
    """A table case beside its neighbours, all in the data file's units: one row per
    feature, a "this case" column, then one column per neighbour named by `titles`."""
    from core.data import feature_table

    base = feature_table(splits, case_x)
    frame = pd.DataFrame({"feature": base["feature"], "this case": base["value"]})
    for title, x in zip(titles, np.asarray(neighbour_x)):
        frame[str(title)] = feature_table(splits, x)["value"].to_numpy()
    return frame


# --- review marks -----------------------------------------------------------------------------

def _read_marks(store: Any, run_id: str, section: str, marks: Sequence[str], keep: Sequence[str] = ()
                ) -> dict[int, dict[str, Any]]:
    """One section of the run's "reviews" file as {row: entry}; entries that are not a valid
    review (a hand-edited file) are left out rather than failing the page."""
    entries = store.annotation(run_id, "reviews").get(section, {})
    out: dict[int, dict[str, Any]] = {}
    if not isinstance(entries, dict):
        return out
    for key, value in entries.items():
        try:
            row = int(key)
        except (TypeError, ValueError):
            continue
        if isinstance(value, dict) and value.get("mark") in marks:
            out[row] = {"mark": value["mark"], **{k: value.get(k) for k in keep},
                        "note": str(value.get("note", "")), "updated": str(value.get("updated", ""))}
    return out


def _save_mark(store: Any, run_id: str, section: str, current: dict[int, dict[str, Any]], row: int,
               entry: dict[str, Any] | None) -> None:
    """Write `current` with `row` set to `entry` (None: removed), the file's other sections kept."""
    rows = {str(r): v for r, v in current.items() if r != row}
    if entry is not None:
        rows[str(row)] = entry
    store.write_annotation(run_id, "reviews", {**store.annotation(run_id, "reviews"), section: rows})


def _entry(mark: str, marks: Sequence[str], note: str, now: datetime | None, **fields: Any) -> dict[str, Any]:
    if mark not in marks:
        raise ValueError(f"unknown review mark {mark!r}; one of: {', '.join(marks)}")
    if not isinstance(note, str):
        raise ValueError(f"the note must be text, got {type(note).__name__}")
    text = note.strip()
    if len(text) > NOTE_MAX_CHARS:
        raise ValueError(f"the note has {len(text)} characters; at most {NOTE_MAX_CHARS} are kept")
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
    return {"mark": mark, **fields, "note": text, "updated": when}


def read_reviews(store: Any, run_id: str) -> dict[int, dict[str, str]]:
    """The run's saved reviews as {test row: {"mark", "note", "updated"}}."""
    return _read_marks(store, run_id, "cases", REVIEW_MARKS)


def set_review(store: Any, run_id: str, case: int, mark: str, note: str = "", *,
               now: datetime | None = None) -> dict[str, str]:
    """Save one reviewer's verdict on a test case (its row in the prepared test split, as the
    gallery shows it): `mark` one of `REVIEW_MARKS`, `note` free text kept as written
    (trimmed, at most NOTE_MAX_CHARS). Replaces an earlier verdict on the same case; returns
    the saved entry."""
    entry = _entry(mark, REVIEW_MARKS, note, now)
    _save_mark(store, run_id, "cases", read_reviews(store, run_id), _case_row(case), entry)
    return entry


def clear_review(store: Any, run_id: str, case: int) -> bool:
    """Remove the verdict on a case; False when it had none."""
    row, reviews = _case_row(case), read_reviews(store, run_id)
    if row in reviews:
        _save_mark(store, run_id, "cases", reviews, row, None)
    return row in reviews


# --- review marks on training rows (suspected label issues) -------------------------------------



def read_train_reviews(store: Any, run_id: str) -> dict[int, dict[str, Any]]:
    """Verdicts on training rows as {train row: {"mark", "given", "suggested", "note", "updated"}};
    kept in the same "reviews" file as the test cases, under "training"."""
    return _read_marks(store, run_id, "training", TRAIN_REVIEW_MARKS, keep=("given", "suggested"))


def set_train_review(store: Any, run_id: str, row: int, mark: str, *, given: int, suggested: int, note: str = "",
                     now: datetime | None = None) -> dict[str, Any]:
    """Save a verdict on a training row (its position in the prepared training split): `mark`
    one of TRAIN_REVIEW_MARKS, with the label it was given and the class suggested for it."""
    entry = _entry(mark, TRAIN_REVIEW_MARKS, note, now, given=int(given), suggested=int(suggested))
    _save_mark(store, run_id, "training", read_train_reviews(store, run_id), _case_row(row), entry)
    return entry


def clear_train_review(store: Any, run_id: str, row: int) -> bool:
    """Remove the verdict on a training row; False when it had none."""
    row, training = _case_row(row), read_train_reviews(store, run_id)
    if row in training:
        _save_mark(store, run_id, "training", training, row, None)
    return row in training


def reviews_table(reviews: dict[int, dict[str, str]], artifacts: EvalArtifacts,
                  class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per reviewed case with `REVIEW_COLUMNS`: the test row (the key reviews are
    saved under), the case as a person finds it ("patient_id P-00412"), true and predicted
    class (names when given), the model's confidence in its answer, the mark, the note and
    when it was saved; in test-row order. Reviews of rows this run does not have are left
    out."""
    from core.analysis._metrics import softmax

    position = {int(s): i for i, s in enumerate(np.asarray(artifacts.test_index, dtype=np.int64))}
    records = []
    for row in sorted(reviews):
        i = position.get(int(row))
        if i is None:
            continue
        probs = softmax(artifacts.logits[i:i + 1])[0]
        true, pred = int(artifacts.labels[i]), int(probs.argmax())
        name = (lambda c: str(class_names[c])) if class_names is not None else int
        r = reviews[row]
        records.append({"test_row": int(row), "case": artifacts.case_name(i), "true": name(true),
                        "predicted": name(pred),
                        "confidence": float(probs[pred]), "mark": r["mark"], "note": r["note"],
                        "updated": r["updated"]})
    return pd.DataFrame(records, columns=REVIEW_COLUMNS)


def report_annotations(store: Any, run_id: str) -> dict[str, Any]:
    """What a report holds of the run's annotations: its case reviews and operating point,
    and one line per damaged one left out (named, with its path), so a damaged annotation
    never stops a report."""
    from core.store import AnnotationDamaged

    out: dict[str, Any] = {"reviews": {}, "operating_point": {}, "damaged": []}
    for name, read in (("reviews", lambda: read_reviews(store, run_id)),
                       ("operating_point", lambda: store.annotation(run_id, "operating_point"))):
        try:
            out[name] = read()
        except AnnotationDamaged as exc:
            out["damaged"].append(f"The saved {exc.what}: {exc.file} cannot be used ({exc.reason}); it is at "
                                  f"{exc.path}. To go on, {exc.todo}.")
    return out


def reviews_csv(table: pd.DataFrame) -> bytes:
    """`reviews_table` as UTF-8 CSV through the one CSV writer (`core.safe_csv`): a note
    or class name a spreadsheet would run as a formula opens as the words it is."""
    return csv_bytes(table, float_format="%.6g")


def _case_row(case: Any) -> int:
    if isinstance(case, bool) or not isinstance(case, (int, np.integer)) or int(case) < 0:
        raise ValueError(f"a case is its test row, a whole number from 0; got {case!r}")
    return int(case)
