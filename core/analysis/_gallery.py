"""The rare-class error gallery: which test samples to show, and what to show with them.

Pure selection logic over a run's stored arrays (`EvalArtifacts`), plus the two places
that need the model itself: rebuilding it from the run folder, and computing the
attribution maps of the chosen cases through the per-sample disk cache. The Error
gallery page and `tailscope explain` both call these, so they always agree on which
errors come first and what a report holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.analysis._attribution_cache import attribute_cached
from core.analysis._metrics import confusion, softmax
from core.artifacts import EvalArtifacts
from core.data import head_to_tail_order

__all__ = [
    "CASE_COLUMNS",
    "build_report_cases",
    "case_attributions",
    "display_image",
    "unit_image",
    "error_cases",
    "importance_sample",
    "importance_sides",
    "load_run_model",
    "most_confused_pairs",
    "resolve_classes",
]

Correctness = Literal["wrong", "right", "all"]

CASE_COLUMNS = ["row", "sample_id", "case", "true", "pred", "confidence", "true_prob", "correct", "true_group",
                "pred_group"]
_RARE_GROUP = "tail"


def error_cases(
    artifacts: EvalArtifacts,
    groups: Sequence[str],
    *,
    true_classes: Iterable[int] | None = None,
    pred_classes: Iterable[int] | None = None,
    correctness: Correctness = "wrong",
    confidence_range: tuple[float, float] = (0.0, 1.0),
) -> pd.DataFrame:
    """Test samples matching the filters, most confidently wrong first.

    One row per sample with `CASE_COLUMNS`: `row` (position in the artifact arrays),
    `sample_id` (row in the prepared test split, the cache key), `case` (the case named as a
    person finds it, "patient_id P-00412": `EvalArtifacts.case_name`), true and predicted class,
    `confidence` (probability of the predicted class), `true_prob`, `correct`, and the
    group of both classes. `None` class filters mean any class; an empty one matches
    nothing. Rows are sorted by confidence, highest first (ties by row), so the errors the
    model was surest of, the most misleading ones, lead.
    """
    if correctness not in ("wrong", "right", "all"):
        raise ValueError(f"correctness must be 'wrong', 'right' or 'all', got {correctness!r}")
    low, high = (float(v) for v in confidence_range)
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"confidence_range must satisfy 0 <= low <= high <= 1, got {confidence_range}")
    k = artifacts.num_classes
    if len(groups) != k:
        raise ValueError(f"{len(groups)} groups for {k} classes")
    probs = softmax(artifacts.logits) if len(artifacts.labels) else np.zeros((0, k))
    labels = np.asarray(artifacts.labels, dtype=np.int64)
    pred = probs.argmax(axis=1)
    rows = np.arange(len(labels))
    confidence = probs[rows, pred]
    group_of = np.asarray(list(groups), dtype=object)
    frame = pd.DataFrame({
        "row": rows,
        "sample_id": np.asarray(artifacts.test_index, dtype=np.int64),
        "case": [f"{artifacts.id_name} {v}" for v in artifacts.ids],
        "true": labels,
        "pred": pred.astype(np.int64),
        "confidence": confidence,
        "true_prob": probs[rows, labels] if len(labels) else np.zeros(0),
        "correct": pred == labels,
        "true_group": group_of[labels].astype(str) if len(labels) else np.zeros(0, dtype=str),
        "pred_group": group_of[pred].astype(str) if len(labels) else np.zeros(0, dtype=str),
    })
    keep = (frame["confidence"] >= low) & (frame["confidence"] <= high)
    if correctness != "all":
        keep &= frame["correct"] == (correctness == "right")
    if true_classes is not None:
        keep &= frame["true"].isin([int(c) for c in true_classes])
    if pred_classes is not None:
        keep &= frame["pred"].isin([int(c) for c in pred_classes])
    frame = frame[keep]
    return frame.sort_values(["confidence", "row"], ascending=[False, True], kind="stable").reset_index(drop=True)


def most_confused_pairs(
    artifacts: EvalArtifacts,
    top: int = 5,
    rare_only: bool = True,
    *,
    groups: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The (true, predicted) class pairs with the most test errors.

    From the confusion matrix's off-diagonal cells; with `rare_only`, only pairs that involve
    a tail class (a rare class mistaken for another, or another class mistaken for a rare
    one), so two medium classes confused with each other do not crowd out the rare ones.
    `groups` defaults to the run's head/medium/tail split by training count. Columns: true,
    pred, count, share (of the true class's test samples), true_group, pred_group; most
    errors first, ties broken towards the rarer true class.
    """
    from core.data import class_groups

    k = artifacts.num_classes
    group_of = list(groups) if groups is not None else class_groups(artifacts.class_counts)
    if len(group_of) != k:
        raise ValueError(f"{len(group_of)} groups for {k} classes")
    counts = confusion(artifacts.logits, artifacts.labels, k)
    support = counts.sum(axis=1)
    rows = []
    for t in range(k):
        for p in range(k):
            if rare_only and _RARE_GROUP not in (group_of[t], group_of[p]):
                continue
            if p != t and counts[t, p] > 0:
                rows.append({"true": t, "pred": p, "count": int(counts[t, p]),
                             "share": float(counts[t, p] / support[t]), "true_group": group_of[t],
                             "pred_group": group_of[p], "_train": int(artifacts.class_counts[t])})
    frame = pd.DataFrame(rows, columns=["true", "pred", "count", "share", "true_group", "pred_group", "_train"])
    frame = frame.sort_values(["count", "_train", "true", "pred"], ascending=[False, True, True, True], kind="stable")
    return frame.drop(columns="_train").head(max(int(top), 0)).reset_index(drop=True)


def resolve_classes(spec: str, class_names: Sequence[str], groups: Sequence[str]) -> list[int] | None:
    """Class indices from a command-line choice: `all` (None: any class), a group name
    (`head`, `medium`, `tail`), or comma-separated class names. Unknown names raise a
    ValueError that lists the valid ones."""
    text = spec.strip()
    if text.lower() == "all":
        return None
    if text.lower() in ("head", "medium", "tail"):
        return [i for i, g in enumerate(groups) if g == text.lower()]
    names = [str(c) for c in class_names]
    chosen, unknown = [], []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part in names:
            chosen.append(names.index(part))
        else:
            unknown.append(part)
    if unknown or not chosen:
        raise ValueError(f"unknown class {', '.join(map(repr, unknown)) or repr(spec)}; "
                         f"use all, head, medium, tail or class names: {', '.join(names)}")
    return sorted(set(chosen))


def load_run_model(store: Any, run_id: str, device: str = "cpu"):
    """The trained model of a finished run, rebuilt from its config and the dataset
    information in `metrics.json`, weights loaded from `model.safetensors`, in eval mode.
    Stage-2 fixes (cRT, tau-norm, LWS) live in the saved head, so the rebuilt model gives
    the stored test logits."""
    from core.config import RunConfig
    from core.models import create_model

    record = store.get(run_id)
    dataset = store.metrics(run_id).get("dataset")
    weights = store.run_dir(run_id) / "model.safetensors"
    if record.status != "done" or not dataset or not weights.exists():
        raise FileNotFoundError(f"run {run_id} has no trained model to explain (status {record.status})")
    config = RunConfig.model_validate(record.config)
    model = create_model(config.model.name, config.model.params, input_shape=tuple(dataset["input_shape"]),
                         num_classes=len(dataset["class_names"]))
    store.load_weights(run_id, model)
    return model.to(device).eval()


def case_attributions(
    run_dir: Path,
    model: Any,
    inputs: np.ndarray,
    sample_ids: Sequence[int],
    *,
    method: str,
    targets: Mapping[str, Sequence[int] | np.ndarray],
    params: dict | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """One attribution array per named target list (e.g. {"true": y, "pred": p}), each
    through `attribute_cached` under `runs/<id>/attributions/`, so a map seen before (by
    the page, the CLI or another target list) is read from disk. `progress(done, total)`
    counts maps over all target lists; cached maps count as done at once."""
    n = len(sample_ids)
    total = n * len(targets)
    out: dict[str, np.ndarray] = {}
    for i, (name, target) in enumerate(targets.items()):
        before = i * n
        step = (lambda done, _total, before=before: progress(before + done, total)) if progress else None
        # attribute_cached files maps under <cache_dir>/<key>/; the run folder as cache_dir
        # and "attributions" as key give runs/<id>/attributions/<method>/...
        out[name] = attribute_cached(Path(run_dir), "attributions", model, inputs, [int(s) for s in sample_ids],
                                     method=method, targets=np.array(target, dtype=np.int64), params=params,
                                     batch_size=batch_size, device=device, progress=step)
        if progress:
            progress(before + n, total)
    return out


def importance_sample(labels: np.ndarray, per_class: int = 100) -> np.ndarray:
    """Rows for per-class mean attributions: the first `per_class` test samples of every
    class (all of them on small tables), sorted, so the cost stays bounded on big tables."""
    y = np.asarray(labels)
    picks = [np.flatnonzero(y == k)[:per_class] for k in np.unique(y)]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


def importance_sides(class_counts: Sequence[int] | np.ndarray, groups: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Classes head to tail split into (title, indices) for common (head and medium) and
    rare (tail) classes, so the two can be shown side by side; an empty side is left out."""
    order = [int(k) for k in head_to_tail_order(class_counts)]
    sides = [("Common classes (head and medium)", [k for k in order if groups[k] != "tail"]),
             ("Rare classes (tail)", [k for k in order if groups[k] == "tail"])]
    return [(title, ks) for title, ks in sides if ks]


def unit_image(image: np.ndarray) -> np.ndarray:
    """A (C,H,W) input (C = 1 or 3) as floats in [0,1], still (C,H,W): min-max scaled when
    it lies outside [0,1] (standardised inputs), NaN shown as 0."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C,H,W) with C=1 or 3; got shape {img.shape}")
    lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
    if lo < 0 or hi > 1:
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return np.clip(np.nan_to_num(img), 0, 1)


def display_image(image: np.ndarray, size: int = 160) -> np.ndarray:
    """(H,W) or (H,W,3) floats in [0,1] from a (C,H,W) input (`unit_image`), enlarged by
    pixel repetition to about `size` pixels so small images (8x8 digits) stay sharp
    instead of blurred by the browser."""
    img = unit_image(image).transpose(1, 2, 0)
    scale = max(1, size // max(img.shape[:2]))
    img = img.repeat(scale, axis=0).repeat(scale, axis=1)
    return img[:, :, 0] if img.shape[2] == 1 else img


def build_report_cases(
    cases: pd.DataFrame,
    artifacts: EvalArtifacts,
    inputs: np.ndarray,
    attr_true: np.ndarray | None,
    attr_pred: np.ndarray | None,
    *,
    modality: str,
    feature_names: Sequence[str] | None = None,
    value_tables: Sequence[pd.DataFrame] | None = None,
) -> list[dict]:
    """Case dicts for `error_report_html`, one per row of `cases` (an `error_cases`
    frame); `inputs` and the attribution arrays are aligned with those rows. For tables,
    `value_tables` (core.data.feature_table per case) puts each row's values in the file's
    units into the report, with the standardised ones beside them."""
    n = len(cases)
    for name, values in (("inputs", inputs), ("attr_true", attr_true), ("attr_pred", attr_pred)):
        if values is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} rows for {n} cases")
    probs = softmax(artifacts.logits[cases["row"].to_numpy(dtype=np.int64)]) if n else np.zeros((0, artifacts.num_classes))
    names = list(feature_names) if feature_names is not None else None
    return [
        {
            "sample_id": int(case.sample_id),
            "case": str(case.case) if hasattr(case, "case") else artifacts.case_name(int(case.row)),
            "true": int(case.true),
            "pred": int(case.pred),
            "probs": probs[i],
            "input": np.asarray(inputs[i]),
            "attr_true": None if attr_true is None else np.asarray(attr_true[i]),
            "attr_pred": None if attr_pred is None else np.asarray(attr_pred[i]),
            "modality": modality,
            "feature_names": names,
            "values": None if value_tables is None else value_tables[i],
        }
        for i, case in enumerate(cases.itertuples(index=False))
    ]
