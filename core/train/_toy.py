"""A light CPU training loop for the teaching playground: a small MLP on 2-D toy data.

It reuses the registries a real run uses (``create_model("mlp")``, ``create_loss``,
``create_sampler``), so a loss or sampler behaves here exactly as on the Train page, and
it *yields* a :class:`ToySnapshot` every few steps so a page can redraw the decision
regions while the network learns. Each snapshot keeps the logits on a coarse mesh and on
a balanced held-out sample; :func:`apply_tau` re-scores them with post-hoc logit
adjustment (the ``logit_adjustment`` entry of ``core.methods.POSTHOC``), which moves the
boundary without retraining.

Metrics: per-class recall on the balanced held-out sample; ``balanced_accuracy`` is its
mean, ``accuracy`` the prior-weighted mean sum_j pi_j recall_j, i.e. the accuracy one
would see on test data as imbalanced as the training sample. The gap between the two is
what imbalance hides.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from core.artifacts import EvalArtifacts
from core.data._toy import ToyData
from core.methods import apply_posthoc, create_loss, create_sampler
from core.models import create_model

__all__ = ["ToyAdam", "ToySnapshot", "toy_mesh", "train_toy", "run_toy", "apply_tau", "toy_scores"]


@dataclass(frozen=True)
class ToySnapshot:
    """The model at one step: mesh logits for the regions, held-out scores for the bars."""

    step: int
    total_steps: int
    loss: float  # mean training loss since the previous snapshot
    elapsed_s: float  # training time so far (drawing excluded)
    grid_x: np.ndarray  # (G,) mesh columns
    grid_y: np.ndarray  # (G,) mesh rows
    grid_logits: np.ndarray  # (G, G, K): row i is grid_y[i], column j is grid_x[j]
    test_logits: np.ndarray  # (n_test, K) on the balanced held-out sample
    test_labels: np.ndarray  # (n_test,)
    class_counts: np.ndarray  # (K,) training counts: the prior of the adjustment
    recall: np.ndarray  # (K,) per-class recall on the held-out sample
    accuracy: float  # prior-weighted recall: accuracy under the training imbalance
    balanced_accuracy: float  # mean recall
    tau: float = 0.0  # post-hoc logit adjustment applied to the logits above

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    @property
    def grid_probs(self) -> np.ndarray:
        z = self.grid_logits - self.grid_logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    @property
    def grid_pred(self) -> np.ndarray:
        return self.grid_logits.argmax(axis=-1)


def toy_mesh(x: np.ndarray, resolution: int = 60, margin: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Axes of a square mesh covering the points plus a margin (a square keeps the
    picture undistorted at equal axis scales)."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 + margin
    return tuple(np.linspace(c - half, c + half, resolution, dtype=np.float32) for c in centre)


def toy_scores(test_logits: np.ndarray, test_labels: np.ndarray,
               class_counts: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(per-class recall, prior-weighted accuracy, balanced accuracy) on held-out logits."""
    k = len(class_counts)
    hit = test_logits.argmax(axis=1) == test_labels
    support = np.bincount(test_labels, minlength=k)
    recall = np.bincount(test_labels, weights=hit, minlength=k) / np.maximum(support, 1)
    prior = np.asarray(class_counts, dtype=np.float64) / np.sum(class_counts)
    return recall, float(prior @ recall), float(recall.mean())


def _snapshot(step: int, total: int, loss: float, elapsed: float, grid: tuple[np.ndarray, np.ndarray],
              grid_logits: np.ndarray, test_logits: np.ndarray, data: ToyData) -> ToySnapshot:
    counts = data.class_counts
    recall, acc, bal = toy_scores(test_logits, data.y_test, counts)
    return ToySnapshot(step, total, loss, elapsed, grid[0], grid[1], grid_logits, test_logits, data.y_test,
                       counts, recall, acc, bal)


def train_toy(
    data: ToyData,
    *,
    loss: str = "ce",
    loss_params: Mapping[str, Any] | None = None,
    sampler: str = "instance",
    sampler_params: Mapping[str, Any] | None = None,
    steps: int = 400,
    batch_size: int = 64,
    lr: float = 0.01,
    hidden: int = 32,
    depth: int = 2,
    snapshot_every: int = 40,
    resolution: int = 60,
    seed: int = 0,
) -> Iterator[ToySnapshot]:
    """Train an MLP on ``data`` with Adam, yielding a snapshot every ``snapshot_every``
    steps and after the last step. Same arguments, same seed: same snapshots."""
    if steps < 1 or snapshot_every < 1 or batch_size < 2:
        raise ValueError("steps and snapshot_every must be >= 1 and batch_size >= 2")
    k = data.num_classes
    x = torch.from_numpy(np.ascontiguousarray(data.x_train, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(data.y_train, dtype=np.int64))
    grid = toy_mesh(np.concatenate([data.x_train, data.x_test]), resolution)
    gx, gy = np.meshgrid(*grid)
    x_grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1))
    x_test = torch.from_numpy(np.ascontiguousarray(data.x_test, dtype=np.float32))

    # --- model, loss, sampler, optimiser (seeded without touching the global generator) ---
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model("mlp", {"hidden": hidden, "depth": depth}, input_shape=(2,), num_classes=k)
    loss_fn = create_loss(loss, loss_params, class_counts=data.class_counts.tolist())
    sample = create_sampler(sampler, sampler_params)
    optimizer = ToyAdam(list(model.parameters()), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    per_epoch = len(sample.sample_indices(y, num_classes=k, epoch=0, num_epochs=1,
                                          generator=torch.Generator().manual_seed(seed)))
    steps_per_epoch = max(math.ceil(per_epoch / batch_size), 1)
    num_epochs = math.ceil(steps / steps_per_epoch)

    def evaluate(step: int, loss_value: float, elapsed: float) -> ToySnapshot:
        model.eval()
        with torch.no_grad():
            grid_logits = model(x_grid).numpy().reshape(len(grid[1]), len(grid[0]), k)
            test_logits = model(x_test).numpy()
        model.train()
        return _snapshot(step, steps, loss_value, elapsed, grid, grid_logits, test_logits, data)

    state = {"step": 0, "epoch": 0, "idx": None, "pos": 0, "time": 0.0}

    def advance() -> ToySnapshot:
        """Train up to the next snapshot and take it."""
        started, loss_sum, loss_n = time.perf_counter(), 0.0, 0
        while True:
            if state["idx"] is None or state["pos"] >= len(state["idx"]):
                state["idx"] = sample.sample_indices(y, num_classes=k, epoch=state["epoch"], num_epochs=num_epochs,
                                                     generator=generator)
                state["epoch"], state["pos"] = state["epoch"] + 1, 0
            batch = state["idx"][state["pos"]:state["pos"] + batch_size]
            state["pos"] += batch_size
            if len(batch) < 2:
                continue
            # --- forward / backward / step ----------------------------------------------------
            value = loss_fn(model(x[batch]), y[batch])
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            state["step"] += 1
            loss_sum, loss_n = loss_sum + value.item(), loss_n + 1
            if state["step"] % snapshot_every == 0 or state["step"] == steps:
                state["time"] += time.perf_counter() - started
                return evaluate(state["step"], loss_sum / loss_n, state["time"])

    while state["step"] < steps:
        with _single_thread():  # never held while suspended: the page runs between snapshots
            snapshot = advance()
        yield snapshot


class ToyAdam:
    """Adam (Kingma & Ba 2015), the same update as ``torch.optim.Adam`` with its defaults.

    Written out because the first ``torch.optim`` optimizer of a process imports
    ``torch._dynamo``, which costs seconds: too long for a boundary meant to appear at once.
    """

    def __init__(self, params: list[torch.Tensor], *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - b1 ** self.t))


@contextmanager
def _single_thread() -> Iterator[None]:
    """One intra-op thread: a tiny MLP gains nothing from more, and on a busy machine
    OpenMP threads spinning for cores slow it down by an order of magnitude."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_toy(data: ToyData, **kwargs: Any) -> ToySnapshot:
    """Train to the end and return the last snapshot."""
    last = None
    for last in train_toy(data, **kwargs):
        pass
    return last


def apply_tau(snapshot: ToySnapshot, tau: float) -> ToySnapshot:
    """The snapshot re-scored with post-hoc logit adjustment z - tau * log prior.

    The shift is additive, so it is applied relative to the snapshot's own ``tau``; tau
    equal to it is the identity. Goes through ``POSTHOC["logit_adjustment"]`` with the
    mesh and held-out logits stacked as its "test" logits.
    """
    k = len(snapshot.class_counts)
    flat = snapshot.grid_logits.reshape(-1, k)
    stacked = np.concatenate([flat, snapshot.test_logits])
    empty = np.zeros((0, k), dtype=np.float32)
    artifacts = EvalArtifacts(
        logits=stacked, labels=np.zeros(len(stacked), dtype=np.int64), features=empty, head_weight=np.zeros((k, 0)),
        head_bias=np.zeros(k), train_features=empty, train_labels=np.zeros(0, dtype=np.int64),
        class_counts=np.asarray(snapshot.class_counts), val_logits=empty, val_labels=np.zeros(0, dtype=np.int64),
        val_features=empty, test_index=np.arange(len(stacked)),
    )
    shift = float(tau) - snapshot.tau
    if shift < 0:  # the registry's tau is non-negative: undo with the opposite sign
        adjusted = 2 * stacked - apply_posthoc("logit_adjustment", artifacts, {"tau": -shift})
    else:
        adjusted = apply_posthoc("logit_adjustment", artifacts, {"tau": shift})
    grid_logits = adjusted[: len(flat)].reshape(snapshot.grid_logits.shape)
    test_logits = adjusted[len(flat):]
    recall, acc, bal = toy_scores(test_logits, snapshot.test_labels, snapshot.class_counts)
    return replace(snapshot, grid_logits=grid_logits, test_logits=test_logits, recall=recall, accuracy=acc,
                   balanced_accuracy=bal, tau=float(tau))
