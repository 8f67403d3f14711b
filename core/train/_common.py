"""What every part of training shares: the run's callbacks, the rows the loss will see, the
network in training as the stages around the loop see it, what a training returns, and the
`Stage` protocol `train_run` composes.

Stages import this module (and the small helpers `_device`, `_schedule`, `_data`), never each
other and never the loop: the loop calls their hooks without knowing which stages exist.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.artifacts import EvalArtifacts, MadeRows
from core.config import RunConfig
from core.data import Splits
from core.models import Classifier
from core.train._stage_one import StageOneStore

__all__ = ["Cancelled", "Diverged", "Snapshot", "TrainResult", "RunHooks", "TrainingRows", "Network", "Stage",
           "ProgressFn", "TrainFn", "Criterion", "BatchLoss", "CHECK_EVERY_BATCHES", "loop_progress", "between_batches"]

ProgressFn = Callable[[dict[str, Any]], None]
TrainFn = Callable[..., "TrainResult"]  # train_run(config, splits=..., progress=..., should_stop=...)
# the loop's loss on one batch: logits (and optional extra per-row weights) -> the config's loss, with the
# DRW schedule and the rows' weights already in it
Criterion = Callable[..., torch.Tensor]
# a stage's replacement for the loop's loss of one batch: (forward, criterion, inputs, labels) -> loss
BatchLoss = Callable[[Callable[[torch.Tensor], torch.Tensor], Criterion, torch.Tensor, torch.Tensor], torch.Tensor]
CHECK_EVERY_BATCHES = 4


class Cancelled(Exception):
    """Raised inside a loop when `should_stop()` says so."""


class Diverged(ValueError):
    """Training stopped because the loss blew up; the message names the likely cause."""


@dataclass(frozen=True)
class Snapshot:
    """What an epoch hook sees: features of the fixed train subset, head and predictions."""

    epoch: int
    features: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    head_weight: np.ndarray
    class_counts: np.ndarray


@dataclass
class TrainResult:
    model: Classifier | None  # None for table baselines (nothing to store as weights)
    history: list[dict[str, Any]]
    artifacts: EvalArtifacts
    splits: Splits
    device: str
    synthetic_count: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # selected epoch, steps, trained prior
    made_rows: MadeRows | None = None  # the rows a resampler made (`synthetic_rows.npz`)


def _quiet(info: dict[str, Any]) -> None:
    return None


def _never() -> bool:
    return False


@dataclass
class RunHooks:
    """The callbacks of one run and what its stages record. `train` is the whole `train_run`,
    for stages that train models of their own (the cleaning folds); `row_weight` starts the
    training rows with a loss weight each (pseudo-labelled rows weighted apart); `info` is
    filled by the stages of one training and lands in `TrainResult.info`; `teachers` are
    trained models a stage hands to the training it wraps (MTARD's two); `stage_one` keeps
    the loop's result for a two-stage run on the same settings (a pool's shared folder)."""

    progress: ProgressFn = _quiet
    should_stop: Callable[[], bool] = _never
    on_epoch: Callable[[dict[str, Any]], None] | None = None
    snapshot_metrics: Callable[[Snapshot], dict[str, float]] | None = None
    train: TrainFn | None = None
    row_weight: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    teachers: tuple[Classifier, ...] = ()
    stage_one: StageOneStore | None = None

    def replace(self, **changes: Any) -> RunHooks:
        return dataclasses.replace(self, **changes)

    def record(self, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
        """Append a history row and hand it to `on_epoch` (the live view)."""
        history.append(row)
        if self.on_epoch:
            self.on_epoch(row)


@dataclass(frozen=True)
class TrainingRows:
    """The rows the loss will see, after the stages that change them (cleaning, resampling)."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None = None  # per-row loss weight; None: every row weighs 1
    kept: np.ndarray | None = None  # which of the split's training rows are still in; None: all
    synthetic: int = 0  # rows a resampler made
    made: MadeRows | None = None  # which they are, and by which resampler

    @classmethod
    def of(cls, splits: Splits, weight: np.ndarray | None = None) -> TrainingRows:
        return cls(splits.x_train, splits.y_train, None if weight is None or np.all(weight == 1) else weight)


@dataclass
class Network:
    """A network in training, as the stages before and after the loop see it."""

    model: Classifier
    device: torch.device
    x_train: torch.Tensor  # the training rows on the device (after cleaning and resampling)
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    class_counts: np.ndarray  # the training split's counts: the imbalance the user chose
    trained_prior: np.ndarray  # the class prior the loss saw (a re-trained head may change it)
    history: list[dict[str, Any]] = field(default_factory=list)
    batch_loss: BatchLoss | None = None  # set by a stage before the loop: the loss of each batch (robust training)
    before_step: Callable[[], None] | None = None  # set by a stage: called between backward and the optimiser step


class Stage:
    """One optional part of a run. `applies` says when it takes part; every hook it leaves
    alone does nothing. The hooks, in the order a run meets them:

    - `check`: refuse a combination before anything runs;
    - `around`: take over the whole training, calling `inner` for each model it needs;
    - `rows`: change the training rows before any model sees them;
    - `fit`: fit something other than the network (None: the network is trained);
    - `before_loop`: change the fresh network before the optimisation loop;
    - `after_loop`: change the trained network before the final evaluation.
    """

    name = "stage"

    def applies(self, config: RunConfig) -> bool:
        raise NotImplementedError

    def check(self, config: RunConfig) -> None:
        return None

    def around(self, config: RunConfig, splits: Splits, run: RunHooks,
               inner: Callable[[RunConfig, Splits, RunHooks], TrainResult]) -> TrainResult:
        return inner(config, splits, run)

    def rows(self, config: RunConfig, splits: Splits, rows: TrainingRows, run: RunHooks) -> TrainingRows:
        return rows

    def fit(self, config: RunConfig, splits: Splits, rows: TrainingRows, run: RunHooks) -> TrainResult | None:
        return None

    def before_loop(self, config: RunConfig, splits: Splits, net: Network, run: RunHooks) -> None:
        return None

    def after_loop(self, config: RunConfig, net: Network, run: RunHooks) -> None:
        return None


def between_batches(run: RunHooks, epoch: int, batch: int, n_batches: int, epochs: int, started: float) -> None:
    """Every `CHECK_EVERY_BATCHES` batches and after an epoch's last: stop if the run was
    cancelled, else report where training is (the training loops' one check-in)."""
    if batch % CHECK_EVERY_BATCHES == 0 or batch == n_batches - 1:
        if run.should_stop():
            raise Cancelled(f"cancelled at epoch {epoch + 1}, batch {batch + 1}")
        run.progress(loop_progress("train", epoch, batch, n_batches, epochs, started))


def loop_progress(stage: str, epoch: int, batch: int, n_batches: int, epochs: int, started: float) -> dict[str, Any]:
    """What a training loop reports after `batch` of `epoch` (both from 0): where it is, the
    share done and the time left at the pace so far."""
    done = epoch + (batch + 1) / n_batches
    elapsed = time.perf_counter() - started
    return {"stage": stage, "epoch": epoch + 1, "epochs": epochs, "batch": batch + 1, "batches": n_batches,
            "fraction": done / epochs, "elapsed_s": elapsed, "eta_s": elapsed / done * (epochs - done)}
