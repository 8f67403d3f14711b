"""A light CPU training loop for the teaching playground: a small MLP on 2-D toy data.

It reuses the registries a real run uses (``create_model("mlp")``, ``create_loss``,
``create_sampler``), so a loss or sampler behaves here exactly as on the Train page.
:class:`ToyTrainer` keeps the whole training state (model, optimiser, sampler position,
random generator), so a page can step it a few updates at a time, pause and go on: the
steps taken in chunks are the same as those taken in one go. :func:`train_toy` yields a
:class:`ToySnapshot` every few steps for a live picture. Each snapshot keeps the logits on
a coarse mesh and on the held-out samples; :func:`apply_tau` re-scores them with post-hoc
logit adjustment (the ``logit_adjustment`` entry of ``core.methods.POSTHOC``), which moves
the boundary without retraining.

Metrics: per-class recall on the balanced held-out sample, ``balanced_accuracy`` its mean;
``accuracy`` is measured on fresh points mixed like the training sample, i.e. the accuracy
one would see on test data as imbalanced as the training data. The gap between the two is
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

__all__ = ["ToyAdam", "ToySnapshot", "ToyTrainer", "toy_mesh", "train_toy", "run_toy", "apply_tau", "toy_scores"]


@dataclass(frozen=True)
class ToySnapshot:
    """The model at one step: mesh logits for the regions, held-out scores for the bars."""

    step: int
    total_steps: int
    loss: float  # mean training loss since the previous snapshot (nan before the first step)
    elapsed_s: float  # training time so far (drawing excluded)
    grid_x: np.ndarray  # (G,) mesh columns
    grid_y: np.ndarray  # (G,) mesh rows
    grid_logits: np.ndarray  # (G, G, K): row i is grid_y[i], column j is grid_x[j]
    test_logits: np.ndarray  # (n_test, K) on the balanced held-out sample
    test_labels: np.ndarray  # (n_test,)
    mix_logits: np.ndarray  # (n_mix, K) on the held-out sample mixed like the training data
    mix_labels: np.ndarray  # (n_mix,)
    class_counts: np.ndarray  # (K,) training counts: the prior of the adjustment
    recall: np.ndarray  # (K,) per-class recall on the balanced held-out sample
    accuracy: float  # accuracy on the sample mixed like the training data
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


def toy_scores(test_logits: np.ndarray, test_labels: np.ndarray, mix_logits: np.ndarray,
               mix_labels: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(per-class recall and balanced accuracy on the balanced sample, accuracy on the mixed one)."""
    k = test_logits.shape[1]
    hit = test_logits.argmax(axis=1) == test_labels
    support = np.bincount(test_labels, minlength=k)
    recall = np.bincount(test_labels, weights=hit, minlength=k) / np.maximum(support, 1)
    accuracy = float(np.mean(mix_logits.argmax(axis=1) == mix_labels)) if len(mix_labels) else float("nan")
    return recall, accuracy, float(recall.mean())


class ToyTrainer:
    """One toy training that advances a few steps at a time and can be resumed.

    Adam on an MLP, batches drawn by the registered sampler, all seeded from ``seed``
    without touching the global generator. ``advance(n)`` trains ``n`` more steps (never
    past ``steps``) and returns the snapshot after them; the same arguments and seed give
    the same snapshots however the steps are chunked.
    """

    def __init__(self, data: ToyData, *, loss: str = "ce", loss_params: Mapping[str, Any] | None = None,
                 sampler: str = "instance", sampler_params: Mapping[str, Any] | None = None, steps: int = 400,
                 batch_size: int = 64, lr: float = 0.01, hidden: int = 32, depth: int = 2, resolution: int = 60,
                 seed: int = 0):
        if steps < 1 or batch_size < 2:
            raise ValueError("steps must be >= 1 and batch_size >= 2")
        self.data, self.total_steps, self.batch_size = data, steps, batch_size
        k = data.num_classes
        self._x = torch.from_numpy(np.ascontiguousarray(data.x_train, dtype=np.float32))
        self._y = torch.from_numpy(np.ascontiguousarray(data.y_train, dtype=np.int64))
        self.grid = toy_mesh(np.concatenate([data.x_train, data.x_test]), resolution)
        gx, gy = np.meshgrid(*self.grid)
        self._x_grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1))
        self._x_test = torch.from_numpy(np.ascontiguousarray(data.x_test, dtype=np.float32))
        self._x_mix = torch.from_numpy(np.ascontiguousarray(data.x_mix, dtype=np.float32))

        # --- model, loss, sampler, optimiser (seeded without touching the global generator) ---
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = create_model("mlp", {"hidden": hidden, "depth": depth}, input_shape=(2,), num_classes=k)
        self._loss_fn = create_loss(loss, loss_params, class_counts=data.class_counts.tolist())
        self._sampler = create_sampler(sampler, sampler_params)
        self._optimizer = ToyAdam(list(self.model.parameters()), lr=lr)
        self._generator = torch.Generator().manual_seed(seed)
        per_epoch = len(self._sampler.sample_indices(self._y, num_classes=k, epoch=0, num_epochs=1,
                                                     generator=torch.Generator().manual_seed(seed)))
        self._num_epochs = math.ceil(steps / max(math.ceil(per_epoch / batch_size), 1))
        self.step, self.elapsed_s = 0, 0.0
        self._epoch, self._idx, self._pos = 0, None, 0
        self.last = self._evaluate(float("nan"))

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    def advance(self, n: int = 1) -> ToySnapshot:
        """Train ``n`` more steps (fewer at the end) and return the snapshot after them."""
        if n < 1:
            raise ValueError(f"advance by at least one step, got {n}")
        if self.done:
            return self.last
        with _single_thread():
            started, losses = time.perf_counter(), []
            for _ in range(min(n, self.total_steps - self.step)):
                losses.append(self._one_step())
            self.elapsed_s += time.perf_counter() - started
            self.last = self._evaluate(float(np.mean(losses)))
        return self.last

    def _one_step(self) -> float:
        k = self.data.num_classes
        while True:
            if self._idx is None or self._pos >= len(self._idx):
                self._idx = self._sampler.sample_indices(self._y, num_classes=k, epoch=self._epoch,
                                                         num_epochs=self._num_epochs, generator=self._generator)
                self._epoch, self._pos = self._epoch + 1, 0
            batch = self._idx[self._pos:self._pos + self.batch_size]
            self._pos += self.batch_size
            if len(batch) >= 2:
                break
        # --- forward / backward / step ------------------------------------------------------------
        value = self._loss_fn(self.model(self._x[batch]), self._y[batch])
        self._optimizer.zero_grad()
        value.backward()
        self._optimizer.step()
        self.step += 1
        return value.item()

    def _evaluate(self, loss: float) -> ToySnapshot:
        data, k = self.data, self.data.num_classes
        self.model.eval()
        with torch.no_grad():
            grid_logits = self.model(self._x_grid).numpy().reshape(len(self.grid[1]), len(self.grid[0]), k)
            test_logits = self.model(self._x_test).numpy()
            mix_logits = self.model(self._x_mix).numpy()
        self.model.train()
        recall, acc, bal = toy_scores(test_logits, data.y_test, mix_logits, data.y_mix)
        return ToySnapshot(self.step, self.total_steps, loss, self.elapsed_s, self.grid[0], self.grid[1], grid_logits,
                           test_logits, data.y_test, mix_logits, data.y_mix, data.class_counts, recall, acc, bal)


def train_toy(data: ToyData, *, snapshot_every: int = 40, **kwargs: Any) -> Iterator[ToySnapshot]:
    """Train an MLP on ``data`` (arguments as :class:`ToyTrainer`), yielding a snapshot
    every ``snapshot_every`` steps and after the last step. Same arguments, same seed:
    same snapshots."""
    if snapshot_every < 1:
        raise ValueError("snapshot_every must be >= 1")
    trainer = ToyTrainer(data, **kwargs)
    while not trainer.done:  # the trainer is never mid-step while suspended: the page runs between snapshots
        yield trainer.advance(snapshot_every - trainer.step % snapshot_every)


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
    mesh and both held-out samples' logits stacked as its "test" logits.
    """
    k = len(snapshot.class_counts)
    flat = snapshot.grid_logits.reshape(-1, k)
    stacked = np.concatenate([flat, snapshot.test_logits, snapshot.mix_logits])
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
    n_grid, n_test = len(flat), len(snapshot.test_logits)
    grid_logits = adjusted[:n_grid].reshape(snapshot.grid_logits.shape)
    test_logits, mix_logits = adjusted[n_grid:n_grid + n_test], adjusted[n_grid + n_test:]
    recall, acc, bal = toy_scores(test_logits, snapshot.test_labels, mix_logits, snapshot.mix_labels)
    return replace(snapshot, grid_logits=grid_logits, test_logits=test_logits, mix_logits=mix_logits, recall=recall,
                   accuracy=acc, balanced_accuracy=bal, tau=float(tau))
