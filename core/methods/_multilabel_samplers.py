"""Samplers for multi-label training: which cases an epoch visits (`MULTILABEL_SAMPLERS`).

A single-label sampler draws classes; here a case carries several labels, so drawing one
more copy of a case with a rare label also draws its common ones. Each entry returns an
index tensor on the targets' device, as the single-label samplers do, and says how often
it visits each case on average (`expected_visits`), which tests and pages read.

Targets are an (n, L) float tensor, 1 present, 0 absent, NaN or -1 unknown; an unknown
entry is not a positive here (a sampler cannot favour what nobody reported).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from core.registry import Params, Registry

__all__ = ["MULTILABEL_SAMPLERS", "MultiLabelSampler", "RepeatFactorSampler", "ClassAwareSampler",
           "ReverseClassSampler", "create_multilabel_sampler", "label_draw_probabilities", "list_multilabel_samplers",
           "positives_of", "repeat_factors"]

MULTILABEL_SAMPLERS: Registry[MultiLabelSampler] = Registry("multilabel_sampler")


def positives_of(targets: Tensor) -> Tensor:
    """(n, L) bool: the known present entries."""
    t = torch.as_tensor(targets)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"targets must be a non-empty (cases x labels) matrix, got shape {tuple(t.shape)}")
    return t == 1


class MultiLabelSampler:
    """Public `sample_indices` validates; subclasses implement `_sample_indices`."""

    def __init__(self, **params):
        for key, value in params.items():
            setattr(self, key, value)

    def sample_indices(self, targets: Tensor, *, epoch: int, num_epochs: int,
                       generator: torch.Generator | None = None) -> Tensor:
        """One epoch's case indices (long, on the targets' device)."""
        positive = positives_of(targets)
        if not 0 <= epoch < num_epochs:
            raise ValueError(f"epoch {epoch} outside 0..{num_epochs - 1}")
        idx = self._sample_indices(positive, generator=generator)
        return idx.to(device=positive.device, dtype=torch.long)

    def _sample_indices(self, positive: Tensor, *, generator) -> Tensor:
        raise NotImplementedError

    def expected_visits(self, targets) -> np.ndarray:
        """(n,) float64: how many times each case is drawn in one epoch, on average."""
        return self._expected_visits(positives_of(torch.as_tensor(targets)).cpu())

    def _expected_visits(self, positive: Tensor) -> np.ndarray:
        raise NotImplementedError


@MULTILABEL_SAMPLERS.register(
    "instance", display="Every case once (plain)",
    description="Each epoch visits every training case once, in a fresh random order.",
    paper="Standard mini-batch training",
)
class InstanceMultiLabelSampler(MultiLabelSampler):
    def _sample_indices(self, positive, *, generator):
        return torch.randperm(positive.shape[0], device=positive.device, generator=generator)

    def _expected_visits(self, positive):
        return np.ones(positive.shape[0])


def repeat_factors(positive: Tensor | np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(per-label r_c, per-case r_I) of repeat-factor sampling: f_c the share of cases carrying
    label c, r_c = max(1, sqrt(t / f_c)), r_I = max of r_c over the case's labels (1 without a
    label). A label no case carries gets r_c = 1 (nothing to repeat)."""
    pos = np.asarray(torch.as_tensor(positive).cpu(), dtype=bool)
    share = pos.mean(axis=0)
    with np.errstate(divide="ignore"):
        per_label = np.where(share > 0, np.maximum(1.0, np.sqrt(threshold / np.maximum(share, 1e-300))), 1.0)
    per_case = np.where(pos, per_label, 1.0).max(axis=1) if pos.shape[1] else np.ones(pos.shape[0])
    return per_label, per_case


class RFSParams(Params):
    threshold: float = Field(0.05, gt=0.0, le=1.0, title="Frequency threshold (t)",
                             description="Findings carried by a smaller share of cases than this are repeated, "
                                         "by sqrt(t / share); LVIS used 0.001 with 1,203 categories.")


@MULTILABEL_SAMPLERS.register(
    "repeat_factor", display="Repeat-factor sampling (RFS)",
    description="Cases with a rare finding are repeated each epoch, by the square root of how rare their rarest "
                "finding is.",
    paper="Gupta, Dollar & Girshick 2019, LVIS: A Dataset for Large Vocabulary Instance Segmentation, CVPR",
    params=RFSParams,
)
class RepeatFactorSampler(MultiLabelSampler):
    """As detectron2's `RepeatFactorTrainingSampler` (detectron2/data/samplers/
    distributed_sampler.py): f_c counts cases, not annotations; each epoch a case is repeated
    floor(r_I) times plus once more with probability frac(r_I) (stochastic rounding), then the
    list is shuffled."""

    def __init__(self, *, threshold: float = 0.05):
        super().__init__(threshold=threshold)

    def _sample_indices(self, positive, *, generator):
        _, per_case = repeat_factors(positive, self.threshold)
        factors = torch.as_tensor(per_case, dtype=torch.float64, device=positive.device)
        whole = factors.floor()
        extra = torch.rand(factors.shape, generator=generator, device=positive.device, dtype=torch.float64)
        copies = (whole + (extra < factors - whole).double()).long()
        idx = torch.repeat_interleave(torch.arange(factors.numel(), device=positive.device), copies)
        return idx[torch.randperm(idx.numel(), device=positive.device, generator=generator)]

    def _expected_visits(self, positive):
        return repeat_factors(positive, self.threshold)[1]


def label_draw_probabilities(positive: Tensor | np.ndarray, rule: str) -> np.ndarray:
    """(L,) float64: the chance that one draw picks each label, among the labels some case
    carries (0 for the others). "uniform": 1 / L' each (class-aware, PLT-MLC's balanced
    sampler); "reverse": proportional to n_max / n_c, so a label carried by a tenth as many
    cases is picked ten times as often (PLT-MLC's reverse sampler)."""
    counts = np.asarray(torch.as_tensor(positive).cpu(), dtype=bool).sum(axis=0).astype(np.float64)
    carried = counts > 0
    if rule == "uniform":
        weight = carried.astype(np.float64)
    elif rule == "reverse":
        weight = np.where(carried, counts.max() / np.maximum(counts, 1), 0.0)
    else:
        raise ValueError(f"unknown label-draw rule {rule!r}; known: uniform, reverse")
    total = weight.sum()
    return weight / total if total > 0 else weight


@MULTILABEL_SAMPLERS.register(
    "class_aware", display="Class-aware sampling",
    description="Each draw picks a finding uniformly, then a case carrying it, so every finding is drawn "
                "equally often (cases without a finding are never drawn).",
    paper="Shen, Lin & Huang 2016, Relay Backpropagation for Effective Learning of Deep Convolutional Neural "
          "Networks, ECCV (the sampler of Wu et al. 2020's DB loss)",
)
class ClassAwareSampler(MultiLabelSampler):
    """n draws per epoch: a label uniformly among the labels some case carries, then a case
    uniformly among those carrying it. A case with labels C is drawn n / L' x sum_{c in C}
    1 / n_c times on average (L' labels carried by some case): the over-counting of
    co-occurring labels that DB loss's re-balanced weights undo."""

    rule, words = "uniform", "class-aware sampling"

    def _draw_labels(self, positive: Tensor, n: int, generator) -> Tensor:
        carried = torch.nonzero(positive.any(dim=0)).flatten()
        return carried[torch.randint(carried.numel(), (n,), generator=generator, device=positive.device)]

    def _sample_indices(self, positive, *, generator):
        n = positive.shape[0]
        if not bool(positive.any()):
            raise ValueError(f"{self.words} needs at least one case with a known present finding")
        labels = self._draw_labels(positive, n, generator)
        counts = positive.sum(dim=0)
        # the k-th case carrying label c, k uniform: cases sorted by label via a cumulative rank
        order = torch.argsort((~positive).T.to(torch.int8), dim=1, stable=True)  # (L, n): carriers first
        pick = (torch.rand(n, generator=generator, device=positive.device) * counts[labels]).long()
        return order[labels, pick]

    def _expected_visits(self, positive):
        pos = positive.numpy().astype(np.float64)
        counts = pos.sum(axis=0)
        per_draw = label_draw_probabilities(positive, self.rule) / np.maximum(counts, 1)
        return pos.shape[0] * (pos @ per_draw)


@MULTILABEL_SAMPLERS.register(
    "reverse_class", display="Reverse sampling (rare findings first)",
    description="Each draw picks a finding with a chance that grows as the finding gets rarer (inversely to how "
                "many cases carry it), then a case carrying it: the rare findings dominate the epoch.",
    paper="Zhang et al. 2023, Learning in Imperfect Environment: Multi-Label Classification with Long-Tailed "
          "Distribution and Partial Labels (PLT-MLC / COMIC), ICCV (the reverse sampler of its tail branch; "
          "after Zhou et al. 2020, BBN, CVPR)",
)
class ReverseClassSampler(ClassAwareSampler):
    """As the release's `sample_class_index_by_weight` (wannature/COMIC utils/dataloader.py):
    label c with probability (n_max / n_c) / sum_k (n_max / n_k), then a case uniformly among
    those carrying it; n draws per epoch."""

    rule, words = "reverse", "reverse sampling"

    def _draw_labels(self, positive, n, generator):
        prob = torch.as_tensor(label_draw_probabilities(positive, self.rule), dtype=torch.float64,
                               device=positive.device)
        return torch.multinomial(prob, n, replacement=True, generator=generator)


def create_multilabel_sampler(name: str, params: dict | None = None) -> MultiLabelSampler:
    return MULTILABEL_SAMPLERS.create(name, params)


def list_multilabel_samplers() -> list[str]:
    return MULTILABEL_SAMPLERS.names()

