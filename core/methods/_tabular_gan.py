"""Synthetic rare-class rows from a conditional tabular GAN, registered in `RESAMPLERS` beside
SMOTE (`tabular_gan`).

The `ctgan` package was the plan; it needs pandas < 3 and this project runs pandas 3, so the
GAN is written here in torch, after CTGAN (Xu et al. 2019) with the additions of CTAB-GAN+
(Zhao et al. 2022) that matter for a class label on a standardised table:

- a generator and a critic conditioned on the class (a one-hot vector), trained by sampling:
  each batch draws its classes by the log of their frequency (CTGAN's `log_frequency`), so the
  rare classes are seen far more often than their share;
- the WGAN-GP objective with gradient penalty 10 (CTAB-GAN+);
- CTAB-GAN+'s information loss: the generator matches the mean and spread of the critic's
  last hidden features on real and made rows (L1 of both differences);
- CTAB-GAN+'s downstream loss: a classifier trained on the real rows must recognise each made
  row's class, so a row made for a class looks like that class;
- Adam with lr 2e-4, betas (0.5, 0.9), eps 1e-3, weight decay 1e-5 (CTAB-GAN+'s defaults).

Left out: mode-specific normalisation and the mixed / log encoders (columns here are already
standardised numbers), the CNN networks, PacGAN and differential privacy. New rows are made
for the classes `sampling_strategy` names (imbalanced-learn's values) and appended after the
input rows, so they are told apart like SMOTE's. Fitting reports progress and checks for a
cancel every few steps (`CHECK_EVERY_STEPS`), as the training loop does every few batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from imblearn.utils import check_sampling_strategy
from pydantic import Field
from torch import Tensor, nn

__all__ = ["ConditionalTabularGan", "FittingStopped", "information_loss"]

GRADIENT_PENALTY = 10.0
CHECK_EVERY_STEPS = 4  # as the training loop: progress and a cancel check every few steps, not per epoch


class FittingStopped(Exception):
    """Raised inside fitting when the caller's `should_stop()` says so."""


def _generator(noise: int, classes: int, hidden: int, features: int) -> nn.Module:
    return nn.Sequential(nn.Linear(noise + classes, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, features))


class _Critic(nn.Module):
    def __init__(self, features: int, classes: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features + classes, hidden), nn.LeakyReLU(0.2), nn.Dropout(0.5),
                                  nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Dropout(0.5))
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(torch.cat([x, condition], 1))
        return self.out(features).squeeze(1), features


def information_loss(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """CTAB-GAN+: ||mean(fake) - mean(real)||_1 + ||std(fake) - std(real)||_1 over a batch."""
    return ((fake_features.mean(0) - real_features.mean(0)).abs().sum()
            + (fake_features.std(0) - real_features.std(0)).abs().sum())


def gradient_penalty(critic: _Critic, real: Tensor, fake: Tensor, condition: Tensor, generator: torch.Generator) -> Tensor:
    """WGAN-GP: (||grad critic(mix)|| - 1)^2 on random mixes of real and made rows."""
    alpha = torch.rand(len(real), 1, generator=generator)
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad = torch.autograd.grad(critic(mix, condition)[0].sum(), mix, create_graph=True)[0]
    return ((grad.norm(dim=1) - 1) ** 2).mean()


class ConditionalTabularGan:
    """imbalanced-learn's `fit_resample` shape: fit the GAN on (X, y), return the input rows
    followed by the made ones."""

    def __init__(self, *, sampling_strategy: Any = "auto", epochs: int = 100, batch_size: int = 256,
                 noise_dim: int = 64, hidden: int = 128, information_weight: float = 1.0,
                 classifier_weight: float = 1.0, random_state: int = 0,
                 progress: Callable[[dict[str, Any]], None] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        self.sampling_strategy, self.epochs, self.batch_size = sampling_strategy, epochs, batch_size
        self.noise_dim, self.hidden = noise_dim, hidden
        self.information_weight, self.classifier_weight = information_weight, classifier_weight
        self.random_state, self.progress, self.should_stop = random_state, progress, should_stop

    def fit_resample(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        targets = check_sampling_strategy(self.sampling_strategy, y, "over-sampling")
        self.fit(X, y)
        made = [(self.sample(cls, n), np.full(n, cls, dtype=np.asarray(y).dtype)) for cls, n in targets.items() if n > 0]
        if not made:
            return np.asarray(X), np.asarray(y)
        return (np.concatenate([np.asarray(X), *[m[0].astype(np.asarray(X).dtype) for m in made]]),
                np.concatenate([np.asarray(y), *[m[1] for m in made]]))

    def fit(self, X: np.ndarray, y: np.ndarray) -> ConditionalTabularGan:
        torch.manual_seed(self.random_state)
        self.rng = torch.Generator().manual_seed(self.random_state)
        x = torch.as_tensor(np.asarray(X, np.float32))
        self.classes_ = np.unique(y)
        labels = torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.long)
        k, d = len(self.classes_), x.shape[1]
        self.generator_ = _generator(self.noise_dim, k, self.hidden, d)
        critic, classifier = _Critic(d, k, self.hidden), nn.Sequential(nn.Linear(d, self.hidden), nn.ReLU(),
                                                                        nn.Linear(self.hidden, k))
        adam = {"lr": 2e-4, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 1e-5}
        opt_g = torch.optim.Adam(self.generator_.parameters(), **adam)
        opt_d = torch.optim.Adam([*critic.parameters(), *classifier.parameters()], **adam)
        counts = torch.bincount(labels, minlength=k).float()
        draw = torch.log1p(counts) / torch.log1p(counts).sum()  # CTGAN's log-frequency conditions
        order = torch.argsort(labels, stable=True)  # rows of class c: order[start[c] : start[c] + counts[c]]
        start = torch.cumsum(counts.long(), 0) - counts.long()
        rows_of = (order, start, counts.long())
        size = max(2, min(self.batch_size, len(x)))
        steps = max(len(x) // size, 1)
        self.history_ = []
        started = time.perf_counter()
        for epoch in range(self.epochs):
            for step in range(steps):
                losses = self._step(x, rows_of, draw, size, k, critic, classifier, opt_g, opt_d)
                if step % CHECK_EVERY_STEPS == 0 or step == steps - 1:
                    self._report(epoch, step, steps, started)
            self.history_.append(losses)
        self.generator_.eval()
        return self

    def _report(self, epoch: int, step: int, steps: int, started: float) -> None:
        """Stop when asked; else tell the caller how far fitting is and the time left at this pace
        (the training loop's progress fields, with stage "resample")."""
        if self.should_stop is not None and self.should_stop():
            raise FittingStopped(f"tabular GAN: stopped at epoch {epoch + 1}, step {step + 1}")
        if self.progress is not None:
            done = epoch + (step + 1) / steps
            elapsed = time.perf_counter() - started
            self.progress({"stage": "resample", "epoch": epoch + 1, "epochs": self.epochs, "batch": step + 1,
                           "batches": steps, "fraction": done / self.epochs, "elapsed_s": elapsed,
                           "eta_s": elapsed / done * (self.epochs - done)})

    def _step(self, x, rows_of, draw, size, k, critic, classifier, opt_g, opt_d) -> dict[str, float]:
        """One critic-and-classifier update and one generator update on a batch of `size`."""
        cls = torch.multinomial(draw, size, replacement=True, generator=self.rng)
        order, start, counts = rows_of
        pick = (torch.rand(size, generator=self.rng) * counts[cls]).long()
        real = x[order[start[cls] + pick]]
        condition = nn.functional.one_hot(cls, k).float()
        noise = torch.randn(size, self.noise_dim, generator=self.rng)
        fake = self.generator_(torch.cat([noise, condition], 1))
        # --- critic (WGAN-GP) and the downstream classifier on real rows -------------------
        score_real, _ = critic(real, condition)
        score_fake, _ = critic(fake.detach(), condition)
        loss_d = score_fake.mean() - score_real.mean() + GRADIENT_PENALTY * gradient_penalty(
            critic, real, fake.detach(), condition, self.rng)
        loss_c = nn.functional.cross_entropy(classifier(real), cls)
        opt_d.zero_grad(set_to_none=True)
        (loss_d + loss_c).backward()
        opt_d.step()
        # --- generator: fool the critic, match its features, be recognised as its class ----
        score_fake, fake_features = critic(fake, condition)
        _, real_features = critic(real, condition)
        loss_g = (-score_fake.mean()
                  + self.information_weight * information_loss(real_features.detach(), fake_features)
                  + self.classifier_weight * nn.functional.cross_entropy(classifier(fake), cls))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"critic": loss_d.item(), "generator": loss_g.item(), "classifier": loss_c.item()}

    @torch.no_grad()
    def sample(self, cls: Any, n: int) -> np.ndarray:
        """`n` made rows of class `cls` (a label of the fitted y)."""
        index = int(np.searchsorted(self.classes_, cls))
        condition = nn.functional.one_hot(torch.full((n,), index), len(self.classes_)).float()
        noise = torch.randn(n, self.noise_dim, generator=self.rng)
        return self.generator_(torch.cat([noise, condition], 1)).numpy()
