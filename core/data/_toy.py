"""2-D toy data for the teaching playground: blobs, moons and spirals with 2-6 classes.

Every generator draws ``samples_per_class`` points per class, roughly inside [-1.5, 1.5]^2,
with Gaussian jitter of standard deviation ``noise`` (in those units), from one seed. The
geometry never depends on the seed, so two draws with different seeds come from the same
distribution: that is how :func:`make_toy_data` gets a balanced held-out sample next to
the imbalanced training sample (which reuses :func:`profile_counts` and
:func:`apply_imbalance_profile`, exactly as real data sets do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from core.data._builtins import DATASETS
from core.data._dataset import Dataset
from core.data._imbalance import Profile, TrainCounts, apply_imbalance_profile, profile_counts
from core.registry import Params, Seed

__all__ = ["TOY_SHAPES", "TOY_NOISE", "TOY_PRESETS", "ToyData", "blobs", "moons", "spirals", "make_toy_data"]

MIN_CLASSES, MAX_CLASSES = 2, 6
HELD_OUT_PER_CLASS = 300
# The held-out samples use their own streams so they never repeat a training point.
_HELD_OUT_SEED_OFFSET = 104_729
_MIX_SEED_OFFSET = 130_363


class ToyParams(Params):
    num_classes: int = Field(2, ge=MIN_CLASSES, le=MAX_CLASSES, title="Classes",
                             description="Number of classes.")
    samples_per_class: int = Field(300, ge=5, le=20000, title="Points per class",
                                   description="Points drawn for each class.")
    noise: float = Field(0.15, ge=0, le=2, title="Jitter",
                         description="Standard deviation of the random jitter around each shape.")
    seed: Seed = Field(0, title="Random seed",
                      description="Seed that draws the points.")


def _check(num_classes: int, samples_per_class: int, noise: float) -> None:
    if not MIN_CLASSES <= num_classes <= MAX_CLASSES:
        raise ValueError(f"toy data has {MIN_CLASSES}-{MAX_CLASSES} classes, got {num_classes}")
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be positive, got {samples_per_class}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")


def _dataset(name: str, x: np.ndarray, y: np.ndarray, num_classes: int) -> Dataset:
    return Dataset(name, x.astype(np.float32), y.astype(np.int64),
                   tuple(f"class {c}" for c in range(num_classes)), "tabular", ("x1", "x2"))


def blobs(num_classes: int = 3, samples_per_class: int = 300, noise: float = 0.35, seed: int = 0) -> Dataset:
    """Gaussian blobs centred on the unit circle (neighbours 1 apart at six classes)."""
    _check(num_classes, samples_per_class, noise)
    rng = np.random.default_rng(seed)
    angles = np.pi / 2 + 2 * np.pi * np.arange(num_classes) / num_classes
    centres = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    y = np.repeat(np.arange(num_classes), samples_per_class)
    x = centres[y] + noise * rng.standard_normal((len(y), 2))
    return _dataset("blobs", x, y, num_classes)


@DATASETS.register("moons2d", display="2-D half-moons",
                   description="Interlocking half-moons (2-6 classes): a curved boundary in a plane.",
                   params=ToyParams, modality="tabular")
def moons(num_classes: int = 2, samples_per_class: int = 300, noise: float = 0.15, seed: int = 0) -> Dataset:
    """A chain of interlocking half-moons, scikit-learn's ``make_moons`` for two classes.

    Moon k is a unit half-circle centred at (k, 0.5 * (k % 2)), opening down for even k
    and up for odd k; the chain is centred and shrunk to fit [-1.5, 1.5] before the jitter.
    """
    _check(num_classes, samples_per_class, noise)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), samples_per_class)
    t = np.pi * rng.random(len(y))
    flip = np.where(y % 2 == 0, 1.0, -1.0)
    x = np.stack([y + flip * np.cos(t), 0.5 * (y % 2) + flip * np.sin(t)], axis=1)
    x -= np.array([(num_classes - 1) / 2, 0.25])
    x *= 3.0 / (num_classes + 1)
    x += noise * rng.standard_normal(x.shape)
    return _dataset("moons2d", x, y, num_classes)


@DATASETS.register("spirals2d", display="2-D spirals",
                   description="Interleaved spiral arms (2-6 classes): hard to separate in a plane.",
                   params=ToyParams, modality="tabular")
def spirals(num_classes: int = 3, samples_per_class: int = 300, noise: float = 0.15, seed: int = 0) -> Dataset:
    """Arms r = t, angle = 2 pi k / K + 1.5 pi t for t in [0.1, 1] (1.5 at the rim), then jitter."""
    _check(num_classes, samples_per_class, noise)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), samples_per_class)
    t = 0.1 + 0.9 * rng.random(len(y))
    angle = 2 * np.pi * y / num_classes + 1.5 * np.pi * t
    x = 1.5 * t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x += noise * rng.standard_normal(x.shape)
    return _dataset("spirals2d", x, y, num_classes)


TOY_SHAPES = {"blobs": blobs, "moons": moons, "spirals": spirals}
# Jitter at which each shape still reads as itself: spiral arms 0.6 apart drown in the
# blobs' 0.45 (a 5-NN classifier then does no better than a straight line).
TOY_NOISE = {"blobs": 0.45, "moons": 0.15, "spirals": 0.1}

# Ready-made lessons: keyword arguments of make_toy_data, by the name a class reads.
TOY_PRESETS: dict[str, dict] = {
    "Rare class hidden in a blob": dict(shape="blobs", num_classes=3, samples_per_class=500, profile="exp",
                                        ratio=50, noise=TOY_NOISE["blobs"]),
    "Moons with a rare class": dict(shape="moons", num_classes=2, samples_per_class=500, profile="exp", ratio=50,
                                    noise=TOY_NOISE["moons"]),
    "Spirals, one arm rare": dict(shape="spirals", num_classes=3, samples_per_class=500, profile="exp", ratio=20,
                                  noise=TOY_NOISE["spirals"]),
    "Six classes, long tail": dict(shape="blobs", num_classes=6, samples_per_class=500, profile="exp", ratio=100,
                                   noise=0.3),
    "Balanced: nothing rare": dict(shape="blobs", num_classes=3, samples_per_class=300, profile="none", ratio=1,
                                   noise=TOY_NOISE["blobs"]),
}


@dataclass(frozen=True)
class ToyData(TrainCounts):
    """An imbalanced training sample, a balanced held-out sample (recall, balanced accuracy)
    and a fresh held-out sample with the training mix (plain accuracy as it would be seen)."""

    shape: str
    x_train: np.ndarray  # (n, 2) float32
    y_train: np.ndarray  # (n,) int64
    x_test: np.ndarray  # (HELD_OUT_PER_CLASS * K, 2), balanced
    y_test: np.ndarray
    class_names: tuple[str, ...]
    x_mix: np.ndarray  # (n, 2): new points, the training set's class counts
    y_mix: np.ndarray


def make_toy_data(
    shape: str = "blobs",
    *,
    num_classes: int = 3,
    samples_per_class: int = 300,
    noise: float = 0.3,
    profile: Profile = "exp",
    ratio: float = 10.0,
    mu: float = 0.5,
    seed: int = 0,
    held_out_per_class: int = HELD_OUT_PER_CLASS,
) -> ToyData:
    """Draw ``samples_per_class`` per class, keep the profile's counts (class 0 is the
    head, the last class the tail) and add a balanced held-out sample and one mixed like
    the training sample (same counts, fresh points)."""
    if shape not in TOY_SHAPES:
        raise ValueError(f"unknown toy shape {shape!r}; known: {', '.join(TOY_SHAPES)}")
    make = TOY_SHAPES[shape]
    full = make(num_classes, samples_per_class, noise, seed)
    counts = profile_counts([samples_per_class] * num_classes, profile, ratio, mu)
    keep = apply_imbalance_profile(full.y, counts, seed)
    held = make(num_classes, held_out_per_class, noise, seed + _HELD_OUT_SEED_OFFSET)
    mix = make(num_classes, samples_per_class, noise, seed + _MIX_SEED_OFFSET)
    mix_keep = apply_imbalance_profile(mix.y, counts, seed + _MIX_SEED_OFFSET)
    return ToyData(shape, full.x[keep], full.y[keep], held.x, held.y, full.class_names, mix.x[mix_keep],
                   mix.y[mix_keep])
