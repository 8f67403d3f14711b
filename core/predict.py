"""New cases through a finished run: predictions, calibrated probabilities, and the class
prior of the batch.

A clinic's cases rarely come in the training mix. The batch goes through exactly what the
run's own data went through (a table's column roles, gap filling from the training split,
categories and scaling; pictures resized and coloured as the training images), then the
model. The run's labelled held-out cases (validation and test splits, both mixed like the
source data) calibrate its scores by bias-corrected temperature scaling, which also undoes
whatever prior a loss, sampler or two-stage fix built into them; the batch's class prior is
then estimated by EM (Saerens et al. 2002), with BBSE (Lipton et al. 2018) beside it as a
check, both with a bootstrap interval over the batch and the calibration cases
(`core.analysis.estimate_label_shift`). EM's estimate also gives every case's
probabilities re-adjusted to that prior.

Why the test split calibrates too: it is labelled, held out from training and mixed like the
source, and the calibration's noise is a large part of the estimate's error when a rare
class has a dozen validation cases (`bench/prior_shift.py`); the run's own reported test
metrics are untouched. Where the validation labels were corrupted on purpose (label noise),
only the clean test split calibrates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from core.safe_csv import csv_bytes

__all__ = ["NewCases", "class_notes", "predict_new_cases", "MultiLabelPredictions", "predict_multilabel_cases"]



@dataclass(frozen=True)
class NewCases:
    """A batch of new cases scored by one run.

    `frame`: the case's identifier in a column named for what it is (`id_name`: the run's
    ID column, e.g. "patient_id", when the file has it; else "row", the row number in the
    file or the 1-based row of an `.npz`; "file" for pictures, the picture's path),
    "predicted" (a class name; a saved operating point applied), then one
    "p(<class>)" column of calibrated probabilities per class. `adjusted_frame`: the same
    columns with probabilities re-adjusted to the batch's estimated prior and "predicted"
    their most probable class. `prior`: `core.analysis.estimate_label_shift`'s result
    without the per-case arrays: "method" (the estimator shown), its "prior", "low", "high"
    (per class in class-index order), both estimators under "estimates", "absent" and
    "unseen" classes, and the bootstrap's settings.
    """

    frame: pd.DataFrame
    probs: np.ndarray  # (n, K) calibrated probabilities (under `reference_prior`)
    prior: dict[str, Any]
    adjusted_frame: pd.DataFrame
    warnings: list[str]
    class_names: tuple[str, ...] = ()
    adjusted_probs: np.ndarray | None = None  # (n, K) re-adjusted to the estimated prior
    train_prior: np.ndarray | None = None  # (K,) the class frequencies training showed the model
    temperature: float = 1.0  # bias-corrected temperature scaling, fitted on the reference cases
    bias: np.ndarray | None = None  # (K,) its per-class biases
    reference_prior: np.ndarray | None = None  # (K,) the class mix of the cases the calibration was fitted on
    reference_cases: int = 0  # how many: validation (and test) cases
    reference_splits: str = ""  # which: "validation and test" or "test"
    operating_point: dict[str, Any] = field(default_factory=dict)  # the one applied, {} if none
    id_name: str = "row"  # what names each case: the first column of `frame`

    @property
    def estimator(self) -> str:
        """The short name ("em" or "bbse") of the estimator whose numbers are `prior`."""
        return str(self.prior.get("method", ""))

    @property
    def second_estimator(self) -> str:
        return next((name for name in self.prior.get("estimates", {}) if name != self.estimator), "")

    def prior_table(self) -> pd.DataFrame:
        """One row per class: the training prior, the mix of the calibration cases, the
        batch's estimated prior with its interval and the estimator that gave it, the second
        estimator's, how many cases are predicted in it before and after re-adjustment, and a
        note where a class seems absent from the batch or cannot be estimated at all."""
        from core.analysis import ESTIMATOR_LABELS

        k = len(self.class_names)
        before = self.frame["predicted"].value_counts()
        after = self.adjusted_frame["predicted"].value_counts()
        nan = np.full(k, np.nan)
        second = self.prior.get("estimates", {}).get(self.second_estimator, {})
        return pd.DataFrame({
            "class": list(self.class_names),
            "training prior": nan if self.train_prior is None else np.asarray(self.train_prior, dtype=float),
            "reference mix": nan if self.reference_prior is None else np.asarray(self.reference_prior, dtype=float),
            "estimated prior": np.asarray(self.prior["prior"], dtype=float),
            "low": np.asarray(self.prior["low"], dtype=float),
            "high": np.asarray(self.prior["high"], dtype=float),
            "estimator": ESTIMATOR_LABELS.get(self.estimator, self.estimator),
            "second estimator": ESTIMATOR_LABELS.get(self.second_estimator, self.second_estimator),
            "second estimate": np.asarray(second.get("prior", nan), dtype=float),
            "second low": np.asarray(second.get("low", nan), dtype=float),
            "second high": np.asarray(second.get("high", nan), dtype=float),
            "predicted": [int(before.get(c, 0)) for c in self.class_names],
            "predicted at estimated prior": [int(after.get(c, 0)) for c in self.class_names],
            "note": class_notes(self.prior, len(self.frame)),
        })

    def table(self) -> pd.DataFrame:
        """Both views side by side, one row per case, and the estimator that gave the prior:
        what the CSV download holds."""
        from core.analysis import ESTIMATOR_LABELS

        adjusted = self.adjusted_frame.drop(columns=self.adjusted_frame.columns[0])
        adjusted.columns = [f"{c} at estimated prior" for c in adjusted.columns]
        adjusted["estimated prior by"] = ESTIMATOR_LABELS.get(self.estimator, self.estimator)
        return pd.concat([self.frame.reset_index(drop=True), adjusted.reset_index(drop=True)], axis=1)

    def to_csv(self) -> bytes:
        """`table` as the CSV the page offers and `tailscope predict --out` writes."""
        return csv_bytes(self.table())

    def prior_csv(self) -> bytes:
        """`prior_table` as CSV."""
        return csv_bytes(self.prior_table())


def class_notes(prior: dict[str, Any], n_cases: int) -> list[str]:
    """Per class, what a bare number would hide: no calibration case (its share cannot be
    estimated), or an estimate below half a case in the batch (no sign of it), else ""."""
    notes = []
    for c in range(len(prior["prior"])):
        if bool(np.asarray(prior.get("unseen", ()), dtype=bool)[c:c + 1].any()):
            notes.append("no labelled case of this class to calibrate on: its share cannot be estimated")
        elif bool(np.asarray(prior.get("absent", ()), dtype=bool)[c:c + 1].any()):
            notes.append(f"no sign of it in this batch (estimate below one case in {n_cases:,}; "
                         f"interval up to {float(prior['high'][c]):.1%})")
        else:
            notes.append("")
    return notes


# --- the model ------------------------------------------------------------------------------

def _baseline_logits(config, dataset, x: np.ndarray) -> np.ndarray:
    """A table baseline refitted on the run's training split (its fitted object is never
    stored), with the run's post-hoc steps, scoring `x` in place of the test split."""
    from dataclasses import replace

    from core.analysis import derived_artifacts
    from core.data import split_data
    from core.train import train_run

    splits = split_data(dataset, config.data)
    splits = replace(splits, x_test=x, y_test=np.zeros(len(x), dtype=np.int64), ids_test=None)
    artifacts = train_run(config, splits=splits).artifacts
    for step in config.posthoc:
        artifacts = derived_artifacts(artifacts, **step.model_dump())
    return np.asarray(artifacts.logits, dtype=np.float64)


def _network_logits(store, run_id: str, x: np.ndarray) -> np.ndarray:
    """The stored model (config + safetensors weights, post-hoc heads included) on CPU."""
    import torch

    from core.analysis import load_run_model
    from core.train import predict

    model = load_run_model(store, run_id, "cpu")
    with torch.inference_mode():
        logits, _ = predict(model, torch.from_numpy(np.ascontiguousarray(x)), batch_size=512)
    return logits.double().numpy()


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _reference_cases(artifacts, label_noise: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """The run's labelled held-out cases the calibration is fitted on: validation and test
    logits and labels (test only where the validation labels were corrupted on purpose)."""
    parts = [] if label_noise else [("validation", artifacts.val_logits, artifacts.val_labels)]
    parts.append(("test", artifacts.logits, artifacts.labels))
    parts = [(name, np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.int64)) for name, z, y in parts
             if z is not None and y is not None and len(y)]
    if not parts:
        return np.zeros((0, artifacts.num_classes)), np.zeros(0, dtype=np.int64), ""
    return (np.concatenate([z for _, z, _ in parts]), np.concatenate([y for _, _, y in parts]),
            " and ".join(name for name, _, _ in parts))


def _shift_warnings(shift: dict[str, Any], names: tuple[str, ...], n_cases: int) -> list[str]:
    from core.analysis import ESTIMATOR_LABELS

    out = []
    if not shift.get("converged", True):
        out.append("the prior estimate did not settle within its iteration limit; read it with care.")
    if n_cases < 30:
        out.append(f"only {n_cases} cases: the estimated prior is rough (see its interval).")
    unseen = [names[c] for c in np.flatnonzero(shift["unseen"])]
    if unseen:
        out.append(f"{', '.join(repr(n) for n in unseen)} {'has' if len(unseen) == 1 else 'have'} no labelled case "
                   "in the run's validation or test split, so how common it is among the new cases cannot be "
                   "estimated; it is counted as absent.")
    first, second = shift["method"], next(m for m in shift["estimates"] if m != shift["method"])
    a, b = shift["estimates"][first], shift["estimates"][second]
    apart = [c for c in range(len(names)) if (a["high"][c] < b["low"][c] or b["high"][c] < a["low"][c])
             and not shift["unseen"][c]]
    if apart:
        words = "; ".join(f"{names[c]!r} {a['prior'][c]:.1%} against {b['prior'][c]:.1%}" for c in apart)
        out.append(f"the two estimators disagree beyond their intervals ({ESTIMATOR_LABELS[first]} against "
                   f"{ESTIMATOR_LABELS[second]}: {words}). The cases of a class may look different from the run's "
                   "own (more than the mix has changed), so read the estimate with care.")
    return out


def _operating_point(store, run_id: str, names: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    from core.store import AnnotationDamaged

    try:
        point = store.annotation(run_id, "operating_point")  # checked: a class of this run, a threshold in [0, 1]
    except AnnotationDamaged as exc:
        return {}, [f"the operating point saved with the run was not applied: its file {exc.path} cannot be used "
                    f"({exc.reason}); save it again on the Rare-class triage page."]
    if not point:
        return {}, []
    cls, threshold = point["class"], point["threshold"]
    return {"class": cls, "threshold": float(threshold)}, [
        f"the run's saved operating point is applied: {names[cls]!r} is predicted wherever its probability (the "
        f"model's own, before calibration, as the threshold was chosen) is at least {float(threshold):.3g}; the "
        "predictions at the estimated prior are the most probable class."]


def _frame(cases: list, id_name: str, predicted: np.ndarray, probs: np.ndarray, names: tuple[str, ...]
           ) -> pd.DataFrame:
    frame = pd.DataFrame({id_name: [str(c) for c in cases], "predicted": [names[i] for i in predicted]})
    for j, name in enumerate(names):
        frame[f"p({name})"] = probs[:, j]
    return frame


def _read_batch(config, run_id: str, modality, input_shape: tuple[int, ...], filename: str, data: bytes):
    """(x, case names, what names them, notes, the run's dataset or None): the batch as the
    model's input, through the run's own table transform (an uploaded table's column roles
    and gap policy); each case named by the run's ID column, its file or its row."""
    from core.data import (
        UPLOAD_PREFIX, load_data, profile_table, read_image_batch, read_stored_table, read_table_batch, table_dataset,
    )

    if modality == "image":
        x, cases = read_image_batch(input_shape, filename, data)
        return x, cases, "row" if PurePosixPath(filename).suffix.lower() == ".npz" else "file", [], None
    if modality != "tabular":
        raise ValueError(f"run {run_id} has {modality!r} data, which cannot score new cases")
    profile = None
    if config.data.source.startswith(UPLOAD_PREFIX) and PurePosixPath(filename).suffix.lower() != ".npz":
        raw = read_stored_table(config.data.source)
        profile = profile_table(raw.frame, raw.filename, config.data.label_column, config.data.column_roles,
                                first_row=raw.first_row, notes=raw.notes)
        dataset = table_dataset(raw, config.data.label_column, config.data.column_roles, config.data.missing,
                                profile=profile, merge_labels=config.data.merge_labels)
    else:
        dataset = load_data(config.data)
    x, cases, notes, id_name = read_table_batch(config.data, dataset, profile, filename, data)
    return x, cases, id_name, list(notes), dataset


def predict_new_cases(store, run_id: str, filename: str, data: bytes) -> NewCases:
    """Score an unlabelled batch with a finished run.

    Tables (CSV / TSV / Parquet) need the run's feature columns by name (the label column
    and other columns are ignored, and named in `warnings`), and go through the run's own
    column roles, gap policy, training-split fills and scaling; an `.npz` holds an `x`
    array; image runs also take a ZIP of pictures (any folders) or one picture. Raises
    DataError with a message naming the file, row and column for a batch it cannot use,
    ValueError for a run that has not finished.
    """
    from core.analysis import estimate_label_shift, fit_shift_reference
    from core.config import RunConfig
    from core.data import DataError
    from core.models import is_baseline

    record = store.get(run_id)
    if record.status != "done":
        raise ValueError(f"run {run_id} is {record.status}; only a finished run can score new cases")
    config = RunConfig.model_validate(record.config)
    info = store.metrics(run_id).get("dataset") or {}
    names = tuple(str(n) for n in info.get("class_names", ()))
    modality = info.get("modality")
    input_shape = tuple(int(v) for v in info.get("input_shape", ()))
    artifacts = store.artifacts(run_id)
    k = artifacts.num_classes
    if len(names) != k or not input_shape:
        raise ValueError(f"run {run_id} does not record its classes and input shape; train it again")
    baseline = is_baseline(config.model.name)
    x, cases, id_name, warnings, dataset = _read_batch(config, run_id, modality, input_shape, filename, data)
    if len(x) == 0:
        raise DataError(f"{filename}: no cases to score.")

    if baseline:
        logits = _baseline_logits(config, dataset, x)
        warnings.append(f"{config.model.name} keeps no fitted model, so it was fitted again on the run's training "
                        "split (same data and seed, so the same model).")
    else:
        logits = _network_logits(store, run_id, x)

    ref_z, ref_y, splits_used = _reference_cases(artifacts, config.data.label_noise is not None)
    if len(ref_y) == 0:
        raise ValueError(f"run {run_id} keeps no labelled validation or test cases, so its probabilities cannot be "
                         "calibrated nor the class mix of new cases estimated; train it again")
    shift = estimate_label_shift(fit_shift_reference(ref_z, ref_y), logits)
    probs = shift["probs"]
    raw_probs = _softmax(logits)
    predicted = raw_probs.argmax(axis=1)
    point, notes = _operating_point(store, run_id, names)
    warnings += notes
    if point:
        predicted = np.where(raw_probs[:, point["class"]] >= point["threshold"], point["class"], predicted)
    warnings += _shift_warnings(shift, names, len(x))
    train_prior = np.asarray(artifacts.trained_prior, dtype=np.float64)
    adjusted = np.asarray(shift["adjusted"], dtype=np.float64)
    return NewCases(
        frame=_frame(cases, id_name, predicted, probs, names),
        probs=probs,
        prior={key: v for key, v in shift.items() if key not in ("probs", "adjusted")},
        adjusted_frame=_frame(cases, id_name, adjusted.argmax(axis=1), adjusted, names),
        warnings=warnings,
        class_names=names,
        adjusted_probs=adjusted,
        train_prior=train_prior / train_prior.sum(),
        temperature=float(shift["temperature"]),
        bias=np.asarray(shift["bias"], dtype=np.float64),
        reference_prior=np.asarray(shift["source_prior"], dtype=np.float64),
        reference_cases=len(ref_y),
        reference_splits=splits_used,
        operating_point=point,
        id_name=id_name,
    )


@dataclass(frozen=True)
class MultiLabelPredictions:
    """New cases through a multi-label run: each finding's probability (the sigmoid of its
    output) and decision at the run's own threshold for it, tuned on its validation cases."""

    frame: pd.DataFrame  # one row per case: its name, then p(finding) and finding (0/1) per finding
    label_names: tuple[str, ...]
    thresholds: np.ndarray
    probs: np.ndarray
    decisions: np.ndarray
    id_name: str
    warnings: list[str] = field(default_factory=list)

    def to_csv(self) -> bytes:
        return csv_bytes(self.frame)


def _multilabel_batch(config, run_data, input_shape: tuple[int, ...], filename: str, data: bytes):
    """(x, case names, what names them, notes): the batch as the model's input, table cells
    read as the training file's were and put through the run's training-split transform."""
    from core.data import DataError, FeatureBlock, load_npz_inputs, load_multilabel_data, read_image_batch, read_table
    from core.data._batch import _encode_table, _gap_text

    if run_data.modality == "image":
        x, cases = read_image_batch(input_shape, filename, data)
        return x, cases, "row" if PurePosixPath(filename).suffix.lower() == ".npz" else "file", []
    width = input_shape[0]
    if PurePosixPath(filename).suffix.lower() == ".npz":
        x, cases, notes = load_npz_inputs(data, filename), None, []
        if x.ndim != 2 or x.shape[1] != width:
            raise DataError(f"{filename}: array 'x' has shape {x.shape}; the model takes (N, {width}) table rows.")
    else:
        dataset = load_multilabel_data(config.data)
        blocks = dataset.columns or tuple(FeatureBlock(n, "numeric", j, j + 1, ()) for j, n in
                                          enumerate(dataset.feature_names or ()))
        raw = read_table(data, filename)
        x, gaps, notes = _encode_table(raw, [(b, None) for b in blocks], config.data.label_column, width, filename)
        if gaps and (run_data.transform is None or config.data.missing != "fill"):
            raise DataError(f"{filename}: {_gap_text(gaps, raw.first_row)}; fill them in or remove those rows.")
        cases = [str(i + raw.first_row) for i in range(len(x))]
    if run_data.transform is not None:
        x = run_data.transform.apply(x)
    return np.asarray(x, dtype=np.float32), cases or [str(i + 1) for i in range(len(x))], "row", list(notes)


def predict_multilabel_cases(store, run_id: str, filename: str, data: bytes) -> MultiLabelPredictions:
    """Score an unlabelled batch with a finished multi-label run: per finding, the probability
    and the decision at the run's threshold (tuned on validation, stored in `metrics.json`).
    Tables need the run's feature columns by name; an `.npz` holds an `x` array; picture runs
    take a ZIP of pictures or one picture."""
    from core.config import RunConfig
    from core.data import DataError, prepare_multilabel_run_data

    record = store.get(run_id)
    if record.status != "done":
        raise ValueError(f"run {run_id} is {record.status}; only a finished run can score new cases")
    config = RunConfig.model_validate(record.config)
    metrics = store.metrics(run_id)
    rows = sorted(metrics.get("per_label") or [], key=lambda r: r["label_index"])
    names = tuple(str(r["label"]) for r in rows)
    thresholds = np.asarray([float(r["threshold"]) for r in rows])
    input_shape = tuple(int(v) for v in (metrics.get("dataset") or {}).get("input_shape", ()))
    if not names or not input_shape:
        raise ValueError(f"run {run_id} does not record its findings and input shape; train it again")
    run_data = prepare_multilabel_run_data(config.data)
    x, cases, id_name, warnings = _multilabel_batch(config, run_data, input_shape, filename, data)
    if len(x) == 0:
        raise DataError(f"{filename}: no cases to score.")
    probs = 1.0 / (1.0 + np.exp(-_multilabel_logits(store, run_id, config, run_data, x)))
    decisions = (probs >= thresholds).astype(np.int64)
    frame = pd.DataFrame({id_name: [str(c) for c in cases]})
    for j, name in enumerate(names):
        frame[f"p({name})"] = probs[:, j]
        frame[name] = decisions[:, j]
    return MultiLabelPredictions(frame, names, thresholds, probs, decisions, id_name, warnings)


def _multilabel_logits(store, run_id: str, config, run_data, x: np.ndarray) -> np.ndarray:
    """The run's network on `x`, or its multi-label baseline refitted on the run's training
    split (the fitted object is never stored) scoring `x` in place of the test split."""
    from dataclasses import replace

    from core.models import is_baseline
    from core.train import train_run

    if not is_baseline(config.model.name):
        return _network_logits(store, run_id, x)
    unknown = np.full((len(x), run_data.num_labels), np.nan)
    return np.asarray(train_run(config, splits=replace(run_data, x_test=x, y_test=unknown)).artifacts.logits,
                      dtype=np.float64)
