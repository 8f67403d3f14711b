"""New cases through a finished run: predictions, calibrated probabilities, and the class
prior of the batch.

A clinic's cases rarely come in the training mix. The batch goes through exactly what the
run's own data went through (a table's column roles, gap filling from the training split,
categories and scaling; pictures resized and coloured as the training images), then the
model; probabilities are temperature-scaled on the run's validation split, and the batch's
class prior is estimated by EM (Saerens et al. 2002) with a bootstrap interval, which also
gives every case's probabilities re-adjusted to that prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from core.safe_csv import csv_bytes

__all__ = ["NewCases", "predict_new_cases"]



@dataclass(frozen=True)
class NewCases:
    """A batch of new cases scored by one run.

    `frame`: "case" (the row number in the file, the picture's path, or the sample index of
    an `.npz`), "predicted" (a class name; a saved operating point applied), then one
    "p(<class>)" column of calibrated probabilities per class. `adjusted_frame`: the same
    columns with probabilities re-adjusted to the batch's estimated prior and "predicted"
    their most probable class. `prior`: the EM estimate with its interval ("prior",
    "low", "high", per class in class-index order).
    """

    frame: pd.DataFrame
    probs: np.ndarray  # (n, K) calibrated probabilities
    prior: dict[str, Any]
    adjusted_frame: pd.DataFrame
    warnings: list[str]
    class_names: tuple[str, ...] = ()
    adjusted_probs: np.ndarray | None = None  # (n, K) re-adjusted to the estimated prior
    train_prior: np.ndarray | None = None  # (K,) the prior the model's scores encode
    temperature: float = 1.0  # fitted on the run's validation split
    operating_point: dict[str, Any] = field(default_factory=dict)  # the one applied, {} if none

    def prior_table(self) -> pd.DataFrame:
        """One row per class: the training prior, the batch's estimated prior with its
        interval, and how many cases are predicted in it before and after re-adjustment."""
        k = len(self.class_names)
        before = self.frame["predicted"].value_counts()
        after = self.adjusted_frame["predicted"].value_counts()
        return pd.DataFrame({
            "class": list(self.class_names),
            "training prior": np.asarray(self.train_prior, dtype=float) if self.train_prior is not None
            else np.full(k, np.nan),
            "estimated prior": np.asarray(self.prior["prior"], dtype=float),
            "low": np.asarray(self.prior["low"], dtype=float),
            "high": np.asarray(self.prior["high"], dtype=float),
            "predicted": [int(before.get(c, 0)) for c in self.class_names],
            "predicted at estimated prior": [int(after.get(c, 0)) for c in self.class_names],
        })

    def table(self) -> pd.DataFrame:
        """Both views side by side, one row per case: what the CSV download holds."""
        adjusted = self.adjusted_frame.drop(columns="case")
        adjusted.columns = [f"{c} at estimated prior" for c in adjusted.columns]
        return pd.concat([self.frame.reset_index(drop=True), adjusted.reset_index(drop=True)], axis=1)

    def to_csv(self) -> bytes:
        """`table` as the CSV the page offers and `tailscope predict --out` writes."""
        return csv_bytes(self.table())

    def prior_csv(self) -> bytes:
        """`prior_table` as CSV."""
        return csv_bytes(self.prior_table())


# --- the model ------------------------------------------------------------------------------

def _baseline_logits(config, dataset, x: np.ndarray) -> np.ndarray:
    """A table baseline refitted on the run's training split (its fitted object is never
    stored), with the run's post-hoc steps, scoring `x` in place of the test split."""
    from dataclasses import replace

    from core.analysis import derived_artifacts
    from core.data import split_data
    from core.train import train_run

    splits = split_data(dataset, config.data)
    splits = replace(splits, x_test=x, y_test=np.zeros(len(x), dtype=np.int64))
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


def _frame(cases: list, predicted: np.ndarray, probs: np.ndarray, names: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame({"case": cases, "predicted": [names[i] for i in predicted]})
    for j, name in enumerate(names):
        frame[f"p({name})"] = probs[:, j]
    return frame


def predict_new_cases(store, run_id: str, filename: str, data: bytes) -> NewCases:
    """Score an unlabelled batch with a finished run.

    Tables (CSV / TSV / Parquet) need the run's feature columns by name (the label column
    and other columns are ignored, and named in `warnings`), and go through the run's own
    column roles, gap policy, training-split fills and scaling; an `.npz` holds an `x`
    array; image runs also take a ZIP of pictures (any folders) or one picture. Raises
    DataError with a message naming the file, row and column for a batch it cannot use,
    ValueError for a run that has not finished.
    """
    from core.analysis import estimate_prior_em, estimate_prior_interval
    from core.config import RunConfig
    from core.data import (
        UPLOAD_PREFIX, DataError, load_data, profile_table, read_image_batch, read_stored_table, read_table_batch,
        table_dataset,
    )
    from core.methods import fit_temperature
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
    warnings: list[str] = []
    baseline = is_baseline(config.model.name)
    dataset = None
    if modality == "tabular":
        profile = None
        if config.data.source.startswith(UPLOAD_PREFIX) and PurePosixPath(filename).suffix.lower() != ".npz":
            raw = read_stored_table(config.data.source)
            profile = profile_table(raw.frame, raw.filename, config.data.label_column, config.data.column_roles,
                                    first_row=raw.first_row, notes=raw.notes)
            dataset = table_dataset(raw, config.data.label_column, config.data.column_roles, config.data.missing,
                                    profile=profile)
        else:
            dataset = load_data(config.data)
        x, cases, notes = read_table_batch(config.data, dataset, profile, filename, data)
        warnings += notes
    elif modality == "image":
        x, cases = read_image_batch(input_shape, filename, data)
    else:
        raise ValueError(f"run {run_id} has {modality!r} data, which cannot score new cases")
    if len(x) == 0:
        raise DataError(f"{filename}: no cases to score.")

    if baseline:
        logits = _baseline_logits(config, dataset, x)
        warnings.append(f"{config.model.name} keeps no fitted model, so it was fitted again on the run's training "
                        "split (same data and seed, so the same model).")
    else:
        logits = _network_logits(store, run_id, x)

    temperature = 1.0
    if artifacts.val_logits is not None and len(artifacts.val_labels):
        temperature = float(fit_temperature(np.asarray(artifacts.val_logits), np.asarray(artifacts.val_labels)))
    probs = _softmax(logits / temperature)
    raw_probs = _softmax(logits)
    predicted = raw_probs.argmax(axis=1)
    point, notes = _operating_point(store, run_id, names)
    warnings += notes
    if point:
        predicted = np.where(raw_probs[:, point["class"]] >= point["threshold"], point["class"], predicted)

    train_prior = np.asarray(artifacts.trained_prior, dtype=np.float64)
    prior = estimate_prior_interval(probs, train_prior)
    em = estimate_prior_em(probs, train_prior)
    if not prior.get("converged", True):
        warnings.append("the prior estimate did not settle within its iteration limit; read it with care.")
    if len(x) < 30:
        warnings.append(f"only {len(x)} cases: the estimated prior is rough (see its interval).")
    adjusted = np.asarray(em["probs"], dtype=np.float64)
    return NewCases(
        frame=_frame(cases, predicted, probs, names),
        probs=probs,
        prior={key: (np.asarray(v, dtype=np.float64) if key in ("prior", "low", "high") else v)
               for key, v in prior.items()},
        adjusted_frame=_frame(cases, adjusted.argmax(axis=1), adjusted, names),
        warnings=warnings,
        class_names=names,
        adjusted_probs=adjusted,
        train_prior=train_prior / train_prior.sum(),
        temperature=temperature,
        operating_point=point,
    )
