"""Label-issue cleaners (`CLEANERS`): find training rows whose label is probably wrong, then
drop them or let them count less in the loss.

Confident learning (Northcutt et al. 2021) compares each row's given label with
*out-of-fold* predicted probabilities: a model that never saw the row. A model scoring
rows it was trained on has memorised their labels, wrong ones included, and finds
nothing. So the training split is cut into K stratified folds, a model is fitted on K-1
of them and scores the held-out one; cleanlab then counts, per pair of classes, how many
rows of given class i the models confidently put in class j, and flags that many of the
least likely rows (`filter_by="prune_by_noise_rate"`, cleanlab's default).

The fitting itself is the caller's (`fit_predict`): the trainer plugs in its own loop for
networks; :func:`baseline_fit_predict` covers the scikit-learn baselines, which are fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from core.registry import Params, Registry

__all__ = [
    "CLEANERS", "Cleaner", "LabelIssueFlags", "FILTERS", "create_cleaner", "list_cleaners", "stratified_folds",
    "out_of_fold_probabilities", "confident_learning", "baseline_fit_predict", "weighted_batch_loss",
]

CLEANERS: Registry[Cleaner] = Registry("label-issue cleaner")
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")
FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (fit rows, held-out rows) -> (held, K) probabilities


@dataclass(frozen=True)
class LabelIssueFlags:
    """Per training row: the given label, the class the out-of-fold models suggest, the
    label-quality score (probability of the given label; low is suspicious) and the flag."""

    given: np.ndarray  # (n,) int
    suggested: np.ndarray  # (n,) int: argmax of the out-of-fold probabilities
    score: np.ndarray  # (n,) float in [0, 1]
    flag: np.ndarray  # (n,) bool: a suspected label issue
    pred_probs: np.ndarray  # (n, K) out-of-fold probabilities

    @property
    def num_flagged(self) -> int:
        return int(self.flag.sum())

    def per_class(self, num_classes: int) -> np.ndarray:
        """Suspected issues per *given* class."""
        return np.bincount(self.given[self.flag], minlength=num_classes)


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) of a shuffled stratified K-fold. A class with fewer rows than
    folds is spread over as many folds as it has rows (sklearn warns; we do not)."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) < folds:
        raise ValueError(f"{len(labels)} training rows cannot be cut into {folds} folds")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
        return [(np.sort(fit), np.sort(held)) for fit, held in split]


def out_of_fold_probabilities(labels: np.ndarray, num_classes: int, fit_predict: FitPredict, *, folds: int = 5,
                              seed: int = 0, progress: Callable[[int, int], None] | None = None
                              ) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (n, K), fold of each row): every row scored by the model of the one
    fold that held it out, i.e. a model that never saw it."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.full((len(labels), num_classes), np.nan)
    fold_of = np.full(len(labels), -1, dtype=np.int64)
    plan = stratified_folds(labels, folds, seed)
    for i, (fit, held) in enumerate(plan):
        out = np.asarray(fit_predict(fit, held), dtype=np.float64)
        if out.shape != (len(held), num_classes):
            raise ValueError(f"fold {i + 1}: expected probabilities of shape {(len(held), num_classes)}, "
                             f"got {out.shape}")
        probs[held], fold_of[held] = out, i
        if progress:
            progress(i + 1, len(plan))
    probs = np.clip(probs, 0.0, None)
    return probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12), fold_of


def confident_learning(labels: np.ndarray, pred_probs: np.ndarray, *,
                       filter_by: str = "prune_by_noise_rate") -> LabelIssueFlags:
    """cleanlab's confident learning on out-of-fold probabilities: the flags
    (`cleanlab.filter.find_label_issues`) and the self-confidence label-quality score
    (`cleanlab.rank.get_label_quality_scores`)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=np.int64)
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    if filter_by not in FILTERS:
        raise ValueError(f"unknown filter_by {filter_by!r}; one of {', '.join(FILTERS)}")
    if pred_probs.ndim != 2 or len(pred_probs) != len(labels):
        raise ValueError(f"pred_probs must be (n, K) with n = {len(labels)} rows, got {pred_probs.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes with very few rows; the tail is why we are here
        flag = find_label_issues(labels, pred_probs, filter_by=filter_by, n_jobs=1)
        score = get_label_quality_scores(labels, pred_probs, method="self_confidence")
    return LabelIssueFlags(given=labels, suggested=pred_probs.argmax(axis=1), score=np.asarray(score, np.float64),
                           flag=np.asarray(flag, bool), pred_probs=pred_probs)


def baseline_fit_predict(x: np.ndarray, y: np.ndarray, num_classes: int, *, model: str = "logistic_regression",
                         params: dict | None = None, seed: int = 0) -> FitPredict:
    """`fit_predict` for a scikit-learn baseline of the model registry, on flattened inputs
    (small pictures such as 8x8 digits work well as 64 numbers)."""
    from core.models import create_baseline

    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)

    def fit_predict(fit: np.ndarray, held: np.ndarray) -> np.ndarray:
        estimator = create_baseline(model, params, seed=seed).fit(flat[fit], y[fit])
        out = np.zeros((len(held), num_classes))
        out[:, estimator.classes_.astype(int)] = estimator.predict_proba(flat[held])
        return out

    return fit_predict


def weighted_batch_loss(loss_fn, logits, target, weight):
    """sum_i w_i l_i / sum_i w_i for any registered loss, without changing it: the batch is
    split by weight value and each group's mean loss is weighted by the group's total weight.
    Exact for per-sample losses; a batch-level loss (Dice, AnyLoss) sees each group as a batch."""
    values = weight.unique()
    if len(values) == 1:
        return loss_fn(logits, target)
    total, mass = logits.new_zeros(()), weight.sum()
    for value in values:
        rows = weight == value
        if value > 0:
            total = total + loss_fn(logits[rows], target[rows]) * (value * rows.sum()) / mass
    return total


class Cleaner:
    """Finds suspected label issues and says what becomes of them: per-row training weights
    (0: dropped, `weight`: down-weighted, 1: kept as is)."""

    def __init__(self, *, action: str = "drop", weight: float = 0.2, folds: int = 5,
                 filter_by: str = "prune_by_noise_rate", model: str = "auto", epochs: int = 10):
        self.action, self.weight, self.folds = action, weight, folds
        self.filter_by, self.model, self.epochs = filter_by, model, epochs

    def find(self, labels: np.ndarray, pred_probs: np.ndarray) -> LabelIssueFlags:
        labels = np.asarray(labels)
        if labels.ndim != 1 or (len(labels) and labels.min() < 0):
            raise ValueError("labels must be class indices 0..K-1")
        return self._find(labels, pred_probs)

    def _find(self, labels: np.ndarray, pred_probs: np.ndarray) -> LabelIssueFlags:
        raise NotImplementedError

    def sample_weights(self, flag: np.ndarray) -> np.ndarray:
        """Training weight per row: flagged rows get 0 (drop) or `weight` (downweight)."""
        suspect = 0.0 if self.action == "drop" else float(self.weight)
        return np.where(np.asarray(flag, bool), suspect, 1.0)


class ConfidentLearningParams(Params):
    action: Literal["drop", "downweight"] = Field(
        "drop", title="What to do with a suspected row",
        description="Leave it out of training (drop), or let it count less in the loss (downweight).")
    weight: float = Field(0.2, ge=0, le=1, title="Weight of a suspected row",
                          description="With downweight: how much a suspected row counts (1 = as much as any row).")
    folds: int = Field(5, ge=2, le=20, title="Folds",
                       description="The training rows are cut into this many parts; each row is scored by a model "
                                   "fitted on the other parts, so no model judges a row it has seen.")
    filter_by: Literal[FILTERS] = Field(
        "prune_by_noise_rate", title="Flagging rule",
        description="Which rows cleanlab flags: by the estimated rate of each label swap (the default), per class, "
                    "both, their combination, or every row the models predict differently.",
        json_schema_extra={"choice_labels": {
            "prune_by_noise_rate": "by estimated swap rates", "prune_by_class": "per class", "both": "both rules",
            "confident_learning": "confident joint only", "predicted_neq_given": "prediction differs from label"}})
    model: str = Field("auto", title="Model that scores the rows",
                       description="auto: logistic regression for tables and small pictures, the run's own network "
                                   "otherwise; run: the run's own model; or any model name.")
    epochs: int = Field(10, ge=1, le=1000, title="Epochs per fold",
                        description="Training epochs of each fold's network (networks only).")

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name not in ("auto", "run"):
            from core.models import MODELS

            MODELS.info(name)  # unknown: fails listing the known models
        return name


@CLEANERS.register(
    "confident_learning", display="Confident learning",
    description="Finds training rows whose label disagrees with what models trained on the other rows predict, "
                "then leaves them out or counts them less.",
    paper="Northcutt, Jiang & Chuang, JAIR 2021, Confident Learning: Estimating Uncertainty in Dataset Labels",
    params=ConfidentLearningParams)
class ConfidentLearning(Cleaner):
    def _find(self, labels: np.ndarray, pred_probs: np.ndarray) -> LabelIssueFlags:
        return confident_learning(labels, pred_probs, filter_by=self.filter_by)


def create_cleaner(name: str, params: dict | None = None) -> Cleaner:
    return CLEANERS.create(name, params)


def list_cleaners() -> list[str]:
    return CLEANERS.names()
