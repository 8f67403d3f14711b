"""Semi-supervised training on unlabelled rows: pseudo-labels, two ways.

- `pseudo_label_all` follows Yang & Xu (NeurIPS 2020, "Rethinking the Value of Labels for
  Improving Class-Imbalanced Learning"; their code, YyzHarry/imbalanced-semi-self): a model of
  the labelled rows gives *every* unlabelled row its most likely class (no threshold), the
  rows are added to the labelled ones and a fresh model learns from both with the same loss
  (the class counts a loss uses include the pseudo-labels). Their code adds the rows with
  weight 1; `weight` scales the pseudo-labelled rows' loss (the paper's weight on the
  unlabelled term).
- `pseudo_label` keeps only the rows the first model is sure about (Lee 2013's confidence
  threshold, optionally capped per class). A model trained on imbalanced labels is sure mostly
  about the common classes, so this variant skews the pseudo-labels toward them.

Pseudo-labels help the tail only as far as they are right and not themselves skewed to
the head, so every run records, class by class, how many pseudo-labels it made, how many
were right (against the hidden true labels, where known) and how imbalanced they are.
The first model never holds the test split: it trains on a copy of the splits whose
test rows are removed, and it only ever predicts the unlabelled rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from pydantic import Field

from core.config import RunConfig
from core.data import Splits
from core.registry import Params, Registry
from core.train._common import RunHooks, Stage, TrainResult
from core.train._device import predict

__all__ = ["SEMI", "SEMI_SUPERVISED", "run_semi", "select_pseudo_labels", "pseudo_label_every_row",
           "pseudo_label_report", "unlabeled_rows", "without_test"]

SEMI: Registry[Any] = Registry("semi-supervised method")
TrainFn = Callable[..., Any]  # (config, splits, progress, should_stop, on_epoch, snapshot_metrics) -> TrainResult


def unlabeled_rows(splits: Splits) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(inputs, hidden true labels or None) of the split's unlabelled rows; (None, None) when it has none."""
    x = getattr(splits, "x_unlabeled", None)
    if x is None or len(x) == 0:
        return None, None
    return x, getattr(splits, "y_unlabeled_true", None)


def _replace(splits: Splits, **changes: Any) -> Splits:
    """`dataclasses.replace` limited to the fields this `Splits` has (the unlabelled fields are optional)."""
    fields = {f.name for f in dataclasses.fields(splits)}
    return dataclasses.replace(splits, **{k: v for k, v in changes.items() if k in fields})


def without_test(splits: Splits) -> Splits:
    """The same splits with zero test rows: what a model that labels data may be given."""
    return _replace(splits, x_test=np.empty((0, *splits.x_test.shape[1:]), dtype=splits.x_test.dtype),
                    y_test=np.empty(0, dtype=splits.y_test.dtype))


def select_pseudo_labels(probs: np.ndarray, *, threshold: float, max_ratio: float | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row indices, pseudo-labels, confidences) of the rows whose highest class probability
    is at least `threshold`, sorted by row.

    With `max_ratio`, no class keeps more than `max_ratio` times the pseudo-labels of the
    class that got the fewest (of those that got any): each class keeps its most confident
    rows, so a head class cannot swamp the tail with pseudo-labels."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be (rows, classes), got shape {probs.shape}")
    confidence, label = probs.max(1), probs.argmax(1)
    keep = np.flatnonzero(confidence >= threshold)
    if max_ratio is not None and len(keep):
        counts = np.bincount(label[keep], minlength=probs.shape[1])
        cap = int(np.floor(max_ratio * counts[counts > 0].min()))
        capped = []
        for j in np.flatnonzero(counts):
            rows = keep[label[keep] == j]
            capped.append(rows[np.argsort(-confidence[rows], kind="stable")[:cap]])
        keep = np.sort(np.concatenate(capped))
    return keep, label[keep], confidence[keep]


def _ratio(counts: np.ndarray) -> float | None:
    """max / min of the counts, or None when a class has none (the ratio is unbounded)."""
    return float(counts.max() / counts.min()) if len(counts) and counts.min() > 0 else None


def pseudo_label_report(rows: np.ndarray, labels: np.ndarray, y_true: np.ndarray | None, *, num_classes: int,
                        labelled_counts: np.ndarray, n_unlabeled: int) -> dict[str, Any]:
    """Per class: labelled rows, unlabelled rows of that true class, pseudo-labels given,
    how many were right (precision) and the share of the class's unlabelled rows labelled
    right (recall); overall: totals and how imbalanced the pseudo-labels are.

    `y_true` holds the hidden true class of every unlabelled row, -1 where it is unknown
    (uploaded rows); precision and recall count only the rows whose class is known."""
    labels = np.asarray(labels, dtype=np.int64)
    given = np.bincount(labels, minlength=num_classes)
    y_true = None if y_true is None else np.asarray(y_true, dtype=np.int64)
    known = y_true is not None and bool((y_true >= 0).any())
    if known:
        truth = y_true[rows]
        checked = truth >= 0
        given_checked = np.bincount(labels[checked], minlength=num_classes)
        correct = np.bincount(labels[checked & (labels == truth)], minlength=num_classes)
        pool = np.bincount(y_true[y_true >= 0], minlength=num_classes)
    per_class = []
    for j in range(num_classes):
        per_class.append({
            "class_index": j,
            "labelled": int(labelled_counts[j]),
            "unlabelled": int(pool[j]) if known else None,
            "pseudo_labels": int(given[j]),
            "checked": int(given_checked[j]) if known else None,  # those whose true class is known
            "correct": int(correct[j]) if known else None,
            "precision": float(correct[j] / given_checked[j]) if known and given_checked[j] else None,
            "recall": float(correct[j] / pool[j]) if known and pool[j] else None,
        })
    n = int(len(labels))
    return {
        "n_unlabeled": int(n_unlabeled),
        "n_pseudo": n,
        "share_pseudo": n / n_unlabeled if n_unlabeled else 0.0,
        "precision": float(correct.sum() / given_checked.sum()) if known and given_checked.sum() else None,
        "imbalance_ratio": _ratio(given),  # max/min pseudo-labels per class (None: a class got none)
        "classes_without": int((given == 0).sum()),
        "labelled_imbalance_ratio": _ratio(np.asarray(labelled_counts)),
        "unlabelled_imbalance_ratio": _ratio(pool) if known else None,
        "per_class": per_class,
    }


def _phase_progress(progress: Callable[[dict[str, Any]], None], *, start: float, share: float, phase: str,
                    rounds_left: int) -> Callable[[dict[str, Any]], None]:
    """The trainer's progress, scaled to this round's share of the whole and named by `phase`;
    the first round's "evaluate" is not the test evaluation (it has no test rows), so it is
    reported as this round's last training step."""

    def report(info: dict[str, Any]) -> None:
        info = dict(info)
        fraction = float(info.get("fraction") or 0.0)
        info["fraction"] = start + share * fraction
        info["phase"] = phase
        if rounds_left and info.get("stage") == "evaluate":
            info["stage"] = "train"
        eta, elapsed = info.get("eta_s"), info.get("elapsed_s")
        if rounds_left and eta is not None and elapsed is not None:
            info["eta_s"] = eta + rounds_left * (elapsed + eta)  # the next round takes about as long
        progress(info)

    return report


def _clean_labels(splits: Splits, rows: np.ndarray, labels: np.ndarray, y_true: np.ndarray | None
                  ) -> np.ndarray | None:
    """True labels of the combined training rows when the run keeps them (label-noise runs):
    the pseudo-labelled rows' hidden class, or their pseudo-label where it is unknown."""
    clean = getattr(splits, "y_train_clean", None)
    if clean is None:
        return None
    truth = labels if y_true is None else np.where(y_true[rows] >= 0, y_true[rows], labels)
    return np.concatenate([clean, truth.astype(clean.dtype)])


class PseudoLabelParams(Params):
    threshold: float = Field(0.95, gt=0, le=1, title="Confidence threshold",
                             description="keep a pseudo-label only where the first model's confidence (its highest "
                                         "class probability) is at least this")
    max_ratio: float | None = Field(None, ge=1, le=1000, title="Class-balance cap",
                                    description="no class keeps more than this many times the pseudo-labels of the "
                                                "class with the fewest (each keeps its most confident); unset: no cap")


class EveryRowParams(Params):
    weight: float = Field(1.0, gt=0, le=10, title="Weight of a pseudo-labelled row",
                          description="how much each pseudo-labelled row counts in the second model's loss, against "
                                      "1 for a labelled row (the authors' code: 1, the rows simply join the data)")


def pseudo_label_every_row(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row indices, pseudo-labels, confidences) for every row: its most likely class, however
    unsure (Yang & Xu 2020 keep no threshold)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be (rows, classes), got shape {probs.shape}")
    return np.arange(len(probs)), probs.argmax(1), probs.max(1)


class _PseudoLabelling:
    """Two trainings: a first model of the labelled rows labels unlabelled rows (`choose`),
    a fresh second model learns from the labelled and the pseudo-labelled rows together, the
    latter weighing `weight` each in its loss."""

    name, weight = "", 1.0

    def choose(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def run(self, config: RunConfig, splits: Splits, *, train: TrainFn, progress, should_stop, on_epoch,
            snapshot_metrics):
        x_unl, y_unl = unlabeled_rows(splits)
        if x_unl is None:
            raise ValueError("pseudo-labels need unlabelled rows, and this data gave none: set "
                             "data.unlabeled.fraction (e.g. 0.9) or data.unlabeled.source")

        # --- round 1: a model of the labelled rows; it never holds the test split -------------
        first_rows: list[dict[str, Any]] = []
        first = train(config, without_test(splits), _phase_progress(
            progress, start=0.0, share=0.5, phase="first model: labelled rows only", rounds_left=1),
            should_stop, first_rows.append, None)
        x = torch.from_numpy(np.ascontiguousarray(x_unl)).to(next(first.model.parameters()).device)
        probs = torch.softmax(predict(first.model, x)[0], 1).cpu().numpy()
        rows, labels, confidence = self.choose(probs)
        report = pseudo_label_report(rows, labels, y_unl, num_classes=splits.num_classes,
                                     labelled_counts=splits.class_counts, n_unlabeled=len(x_unl))

        # --- round 2: a fresh model on labelled + pseudo-labelled rows -------------------------
        rest = np.setdiff1d(np.arange(len(x_unl)), rows)
        combined = _replace(
            splits, x_train=np.concatenate([splits.x_train, x_unl[rows]]),
            y_train=np.concatenate([splits.y_train, labels.astype(splits.y_train.dtype)]),
            y_train_clean=_clean_labels(splits, rows, labels, y_unl),
            x_unlabeled=x_unl[rest], y_unlabeled_true=None if y_unl is None else y_unl[rest])
        weighted = {} if self.weight == 1 else {"row_weight": np.concatenate(
            [np.ones(len(splits.y_train)), np.full(len(rows), self.weight)])}
        second = train(config, combined, _phase_progress(
            progress, start=0.5, share=0.5, phase="second model: labelled + pseudo-labelled rows", rounds_left=0),
            should_stop, on_epoch, snapshot_metrics, **weighted)

        first_bal = [r["val_balanced_accuracy"] for r in first_rows if r.get("stage") == "train"]
        report.update({
            "method": self.name, **self.settings(),
            "mean_confidence": float(confidence.mean()) if len(confidence) else None,
            "first_model": {"epochs_run": len(first_bal),
                            "val_balanced_accuracy": max(first_bal) if first_bal else None},
        })
        # the run is described by the rows a person labelled: groups and counts stay those of the labelled split
        artifacts = dataclasses.replace(second.artifacts, class_counts=splits.class_counts)
        return dataclasses.replace(second, artifacts=artifacts, splits=splits, info={**second.info, "semi": report})


@SEMI.register(
    "pseudo_label", display="Pseudo-labels, confident rows only",
    description="A first model, trained on the labelled rows, labels the unlabelled rows it is sure about; "
                "a second model then learns from both. A model trained on imbalanced labels is sure mostly about "
                "the common classes, so the kept rows lean toward them.",
    paper="Lee 2013, Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for Deep Neural "
          "Networks (ICML workshop); here with a fixed threshold and no ramp-up of the unlabelled loss's weight",
    params=PseudoLabelParams)
class PseudoLabel(_PseudoLabelling):
    name = "pseudo_label"

    def __init__(self, *, threshold: float, max_ratio: float | None):
        self.threshold, self.max_ratio = threshold, max_ratio

    def choose(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return select_pseudo_labels(probs, threshold=self.threshold, max_ratio=self.max_ratio)

    def settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "max_ratio": self.max_ratio, "weight": 1.0}


@SEMI.register(
    "pseudo_label_all", display="Pseudo-labels, every row (Yang & Xu)",
    description="A first model, trained on the labelled rows, labels every unlabelled row with its most likely "
                "class, however unsure; a second model then learns from both, each pseudo-labelled row counting "
                "as much as the weight says.",
    paper="Yang & Xu 2020, Rethinking the Value of Labels for Improving Class-Imbalanced Learning (NeurIPS)",
    params=EveryRowParams)
class EveryRowPseudoLabel(_PseudoLabelling):
    name = "pseudo_label_all"

    def __init__(self, *, weight: float):
        self.weight = weight

    def choose(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return pseudo_label_every_row(probs)

    def settings(self) -> dict[str, Any]:
        return {"threshold": None, "max_ratio": None, "weight": self.weight}


def run_semi(config: RunConfig, splits: Splits, *, train: TrainFn, progress, should_stop, on_epoch=None,
             snapshot_metrics=None):
    """Train with `config.semi`'s method; `train` is the plain training of one model."""
    method = SEMI.create(config.semi.name, config.semi.params)
    return method.run(config, splits, train=train, progress=progress, should_stop=should_stop, on_epoch=on_epoch,
                      snapshot_metrics=snapshot_metrics)


class SemiSupervised(Stage):
    """Takes over the training: the method trains the models it needs through `inner` (the
    rest of the run's stages), e.g. a first model that labels the unlabelled rows and a
    second one that learns from both."""

    name = "semi-supervised"

    def applies(self, config: RunConfig) -> bool:
        return config.semi is not None

    def around(self, config: RunConfig, splits: Splits, run: RunHooks,
               inner: Callable[[RunConfig, Splits, RunHooks], TrainResult]) -> TrainResult:
        def train(config, splits, progress, should_stop, on_epoch, snapshot_metrics, row_weight=None):
            return inner(config, splits, run.replace(progress=progress, should_stop=should_stop, on_epoch=on_epoch,
                                                     snapshot_metrics=snapshot_metrics, row_weight=row_weight))

        return run_semi(config, splits, train=train, progress=run.progress, should_stop=run.should_stop,
                        on_epoch=run.on_epoch, snapshot_metrics=run.snapshot_metrics)


SEMI_SUPERVISED = SemiSupervised()
