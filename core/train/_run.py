"""`train_run`: one run, composed from stages.

Each stage says when it applies and acts through hooks (`_common.Stage`); `train_run` keeps
the ones that apply, in the order of `STAGES`, lets the first that takes over the training
(`around`) run it, walks the row stages, and hands the rows to a stage that fits something
else (a table baseline) or to the network loop. Adding a stage is one module and one entry
in `STAGES`; the loop never learns about it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from core.config import RunConfig
from core.data import Splits
from core.models import is_baseline
from core.train import _rcal, _sbcl, _weight_balancing  # noqa: F401  (they register rcal, sbcl, weight_balancing)
from core.train._baselines import TABLE_BASELINE
from core.train._cleaning import LABEL_CLEANING, CleaningOutcome, FoldProbabilities, cleaning_outcome, out_of_fold
from core.train._common import ProgressFn, RunHooks, Snapshot, Stage, TrainingRows, TrainResult
from core.train._data import prepare_run_data
from core.train._multilabel_baselines import fit_multilabel_baseline
from core.train._device import deterministic_algorithms, seed_everything
from core.train._multilabel_schemes import multilabel_fit
from core.train._network import fit_network
from core.train._pretrain import PRETRAINING
from core.train._resampling import RESAMPLING
from core.train._robust import ROBUST_TRAINING
from core.train._semi import SEMI_SUPERVISED
from core.train._sharpness import SHARPNESS_AWARE
from core.train._stage2 import STAGE_TWO
from core.train._stage_one import StageOneStore

__all__ = ["STAGES", "train_run", "fold_probabilities", "clean_training_rows"]

# the order a run meets them: a baseline replaces the network, semi-supervised training wraps
# whole trainings, cleaning then resampling change the rows, pre-training acts before the loop,
# robust training changes the loop's loss (and trains MTARD's teachers around it), sharpness-aware
# training wraps that loss and steps from the worst nearby weights, and stage 2 acts after the loop
STAGES: tuple[Stage, ...] = (TABLE_BASELINE, SEMI_SUPERVISED, LABEL_CLEANING, RESAMPLING, PRETRAINING,
                             ROBUST_TRAINING, SHARPNESS_AWARE, STAGE_TWO)


def train_run(
    config: RunConfig,
    *,
    splits: Splits | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    snapshot_metrics: Callable[[Snapshot], dict[str, float]] | None = None,
    stage_one: StageOneStore | None = None,
) -> TrainResult:
    """Train one run to the end and evaluate it.

    `progress` gets a dict every few batches; `should_stop` is polled as often and
    cancels with :class:`Cancelled`; `on_epoch` gets each history row as it is made;
    `snapshot_metrics` turns a :class:`Snapshot` into extra history numbers every
    `train.nc_every` epochs (the jobs layer plugs neural-collapse metrics in here);
    `stage_one` keeps each network's first stage, and a two-stage run whose first stage is
    kept there starts from it. Table baselines (scikit-learn) are fitted instead, on the same splits.
    """
    splits = splits or prepare_run_data(config, progress)
    if config.data.multilabel:  # its own loop; config refuses the stages it cannot take
        run = RunHooks(on_epoch=on_epoch).replace(**{k: v for k, v in (("progress", progress),
                                                                        ("should_stop", should_stop)) if v})
        with deterministic_algorithms(config.train.deterministic):
            fit = fit_multilabel_baseline if is_baseline(config.model.name) else multilabel_fit(config)
            return fit(config, splits, run)
    stages = [stage for stage in STAGES if stage.applies(config)]
    for stage in stages:
        stage.check(config)
    run = RunHooks(on_epoch=on_epoch, snapshot_metrics=snapshot_metrics, train=train_run, stage_one=stage_one)
    run = run.replace(**{k: v for k, v in (("progress", progress), ("should_stop", should_stop)) if v is not None})
    with deterministic_algorithms(config.train.deterministic):
        return _composed(stages)(config, splits, run)


def _composed(stages: Sequence[Stage]) -> Callable[[RunConfig, Splits, RunHooks], TrainResult]:
    """One training through `stages`, wrapped by each stage's `around` (outermost first)."""

    def train_one(config: RunConfig, splits: Splits, run: RunHooks) -> TrainResult:
        run = run.replace(info={})
        seed_everything(config.train.seed)
        rows = TrainingRows.of(splits, run.row_weight)
        for stage in stages:
            rows = stage.rows(config, splits, rows, run)
        for stage in stages:
            fitted = stage.fit(config, splits, rows, run)
            if fitted is not None:
                return fitted
        return fit_network(config, splits, rows, stages, run)

    train = train_one
    for stage in reversed(stages):
        train = functools.partial(stage.around, inner=train)
    return train


def fold_probabilities(config: RunConfig, splits: Splits, *, folds: int = 5, model: str = "auto", epochs: int = 10,
                       progress: Callable[[int, int], None] | None = None,
                       should_stop: Callable[[], bool] | None = None) -> FoldProbabilities:
    """Out-of-fold probabilities of the run's training split (folds shuffled by the data seed):
    each fold scored by a model fitted on the others (a baseline, or the run's network)."""
    return out_of_fold(config, splits, train=train_run, folds=folds, model=model, epochs=epochs, progress=progress,
                       should_stop=should_stop)


def clean_training_rows(config: RunConfig, splits: Splits, *, progress=None, should_stop=None) -> CleaningOutcome:
    """The config's cleaner on the run's training split: flags, per-row weights and counts."""
    return cleaning_outcome(config, splits, train=train_run, progress=progress, should_stop=should_stop)
