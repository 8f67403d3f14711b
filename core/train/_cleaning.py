"""The label-cleaning stage (`label_issues:` in the config): suspected label issues of the
training split are dropped or down-weighted before any model sees the rows; and the
out-of-fold probabilities it (and the gallery's label-issue review) rests on.

Each of K stratified folds of the training split is scored by a model fitted on the other
K-1 folds: a scikit-learn baseline (fast; small pictures as flat rows) or the run's own
network trained by the normal training (handed in as `train`, so this stage never imports
the composition that runs it) for a few epochs, validated on the run's validation split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from core.config import ModelSpec, RunConfig
from core.data import Splits
from core.methods import LabelIssueFlags, baseline_fit_predict, create_cleaner, out_of_fold_probabilities
from core.models import is_baseline
from core.train._common import RunHooks, Stage, TrainFn, TrainingRows

__all__ = ["FoldProbabilities", "fold_model", "out_of_fold", "CleaningOutcome", "cleaning_outcome",
           "LABEL_CLEANING"]

SMALL_PICTURE = 1024  # values per picture up to which "auto" fits logistic regression on the pixels


@dataclass(frozen=True)
class FoldProbabilities:
    probs: np.ndarray  # (n_train, K) out-of-fold probabilities
    fold: np.ndarray  # (n_train,) which fold held each row out
    model: str  # the model that produced them


def fold_model(choice: str, config: RunConfig, splits: Splits) -> str:
    """The model name behind `auto` / `run` / a name."""
    if choice == "run":
        return config.model.name
    if choice != "auto":
        return choice
    small = splits.modality == "tabular" or int(np.prod(splits.input_shape)) <= SMALL_PICTURE
    return "logistic_regression" if small else config.model.name


def _fold_splits(splits: Splits, fit: np.ndarray, held: np.ndarray) -> Splits:
    """The run's splits with training = the fit rows and test = the held-out rows."""
    x, y = splits.x_train, splits.y_train
    update: dict[str, Any] = {"x_train": x[fit], "y_train": y[fit], "x_test": x[held], "y_test": y[held]}
    names = {f.name for f in fields(splits)}
    update.update({name: None for name in ("y_train_clean", "x_unlabeled", "y_unlabeled_true") if name in names})
    if getattr(splits, "ids_train", None) is not None:  # the held-out training rows keep their identifiers
        update.update(ids_train=splits.ids_train[fit], ids_test=splits.ids_train[held])
    return replace(splits, **update)


def _network_fit_predict(config: RunConfig, splits: Splits, model: str, epochs: int,
                         should_stop: Callable[[], bool] | None, train: TrainFn):
    """`fit_predict` training `model` with plain cross-entropy and instance sampling (the
    probabilities confident learning expects) through `train` (the normal training)."""
    from scipy.special import softmax

    spec = config.model if model == config.model.name else ModelSpec(name=model)
    sub = RunConfig.model_validate({
        **config.model_dump(mode="json", exclude_none=True),
        "model": spec.model_dump(mode="json"), "loss": {"name": "ce"}, "sampler": {"name": "instance"},
        "train": {**config.train.model_dump(mode="json"), "epochs": epochs, "nc_every": 0,
                  "warmup_epochs": 0, "patience": None},
        "resampler": None, "stage2": None, "label_issues": None, "pretrain": None, "semi": None, "posthoc": [],
        "evaluation": {}, "data": {**config.data.model_dump(mode="json", exclude_none=True), "unlabeled": None},
    })

    def fit_predict(fit: np.ndarray, held: np.ndarray) -> np.ndarray:
        result = train(sub, splits=_fold_splits(splits, fit, held), should_stop=should_stop)
        return softmax(np.asarray(result.artifacts.logits, np.float64), axis=1)

    return fit_predict


def out_of_fold(config: RunConfig, splits: Splits, *, train: TrainFn, folds: int = 5, model: str = "auto",
                epochs: int = 10, progress: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> FoldProbabilities:
    """Out-of-fold probabilities of the run's training split (folds shuffled by the data seed);
    a network is trained by `train` (`train_run`)."""
    name = fold_model(model, config, splits)
    if is_baseline(name):
        params = config.model.params if name == config.model.name else None
        fit_predict = baseline_fit_predict(splits.x_train, splits.y_train, splits.num_classes, model=name,
                                           params=params, seed=config.train.seed)
    else:
        fit_predict = _network_fit_predict(config, splits, name, epochs, should_stop, train)
    probs, fold = out_of_fold_probabilities(splits.y_train, splits.num_classes, fit_predict, folds=folds,
                                            seed=config.data.seed, progress=progress)
    return FoldProbabilities(probs, fold, name)


@dataclass(frozen=True)
class CleaningOutcome:
    flags: LabelIssueFlags
    weights: np.ndarray  # (n_train,) 0: dropped, <1: down-weighted, 1: kept
    info: dict[str, Any]  # counts for the run's summary


def cleaning_outcome(config: RunConfig, splits: Splits, *, train: TrainFn, progress=None,
                     should_stop=None) -> CleaningOutcome:
    """The config's cleaner on the run's training split: the flags, the per-row training
    weights it implies, and counts (per given class) for the summary."""
    spec = config.label_issues
    cleaner = create_cleaner(spec.name, spec.params)

    def fold_done(done: int, total: int) -> None:
        if progress:
            progress({"stage": "label issues", "epoch": done, "epochs": total, "fraction": done / total})

    oof = out_of_fold(config, splits, train=train, folds=cleaner.folds, model=cleaner.model, epochs=cleaner.epochs,
                      progress=fold_done, should_stop=should_stop)
    flags = cleaner.find(splits.y_train, oof.probs)
    weights = cleaner.sample_weights(flags.flag)
    per_class = flags.per_class(splits.num_classes)
    info = {"cleaner": spec.name, "action": cleaner.action, "weight": cleaner.weight, "folds": cleaner.folds,
            "model": oof.model, "rows": int(len(weights)), "suspected": flags.num_flagged,
            "dropped": int((weights == 0).sum()), "downweighted": int(((weights > 0) & (weights < 1)).sum()),
            "suspected_per_class": per_class.tolist()}
    clean = getattr(splits, "y_train_clean", None)
    if clean is not None:
        noisy = np.asarray(clean) != splits.y_train
        caught = int((noisy & flags.flag).sum())
        info.update({"noisy_rows": int(noisy.sum()), "caught": caught,
                     "precision": caught / max(flags.num_flagged, 1) if flags.num_flagged else None,
                     "recall": caught / int(noisy.sum()) if noisy.any() else None})
    return CleaningOutcome(flags, weights, info)


class LabelCleaning(Stage):
    name = "label cleaning"

    def applies(self, config: RunConfig) -> bool:
        return config.label_issues is not None

    def rows(self, config: RunConfig, splits: Splits, rows: TrainingRows, run: RunHooks) -> TrainingRows:
        """Drop the rows weighted 0, carry the weights below 1 into the loss."""
        outcome = cleaning_outcome(config, splits, train=run.train, progress=run.progress,
                                   should_stop=run.should_stop)
        run.info["label_issues"] = outcome.info
        keep = outcome.weights > 0
        weight = outcome.weights[keep] if rows.weight is None else outcome.weights[keep] * rows.weight[keep]
        return replace(rows, x=rows.x[keep], y=rows.y[keep], kept=keep,
                       weight=weight if (weight != 1).any() else None)


LABEL_CLEANING = LabelCleaning()
