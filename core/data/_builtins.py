"""Built-in datasets, all offline: sklearn's bundled sets and seeded synthetic mixtures."""

from __future__ import annotations

import numpy as np
from pydantic import Field
from sklearn import datasets as skds

from core.data._dataset import Dataset
from core.registry import Params, Registry, Seed

__all__ = ["DATASETS", "load_builtin", "list_datasets"]

DATASETS: Registry[Dataset] = Registry("dataset")


@DATASETS.register("digits", display="Handwritten digits",
                   description="Handwritten digits 0-9 as 8x8 grey images (1,797 samples).",
                   paper="Alpaydin & Kaynak 1998, UCI Optical Recognition of Handwritten Digits",
                   modality="image")
def digits() -> Dataset:
    d = skds.load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return Dataset("digits", x, d.target.astype(np.int64), tuple(str(c) for c in range(10)), "image")


class Blobs2dParams(Params):
    num_classes: int = Field(3, ge=2, le=10, title="Classes",
                             description="Number of classes.")
    samples_per_class: int = Field(400, ge=10, le=20000, title="Points per class",
                                   description="Points drawn for each class.")
    noise: float = Field(1.0, gt=0, le=5, title="Spread",
                         description="Standard deviation of each cloud.")
    seed: Seed = Field(0, title="Random seed",
                      description="Seed that draws the points.")


@DATASETS.register("blobs2d", display="2-D blobs",
                   description="Round clouds of points in a plane, one per class: every decision boundary can be "
                               "seen.",
                   params=Blobs2dParams, modality="tabular")
def blobs2d(num_classes: int, samples_per_class: int, noise: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(num_classes) / num_classes
    centres = 3.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    y = np.repeat(np.arange(num_classes), samples_per_class)
    x = centres[y] + noise * rng.standard_normal((len(y), 2))
    names = tuple(f"class {c}" for c in range(num_classes))
    return Dataset("blobs2d", x.astype(np.float32), y, names, "tabular", ("x1", "x2"))


class GaussianHdParams(Params):
    num_classes: int = Field(10, ge=2, le=100, title="Classes",
                             description="Number of classes.")
    dim: int = Field(64, ge=2, le=4096, title="Dimensions",
                     description="Number of features of each point.")
    samples_per_class: int = Field(300, ge=10, le=20000, title="Points per class",
                                   description="Points drawn for each class.")
    separation: float = Field(2.0, gt=0, le=20, title="Separation",
                              description="How far apart the class centres lie.")
    seed: Seed = Field(0, title="Random seed",
                      description="Seed that draws the points.")


@DATASETS.register("gaussian_hd", display="Many-dimensional blobs",
                   description="Clouds of points in many dimensions, one per class: for looking at feature "
                               "geometry.",
                   params=GaussianHdParams, modality="tabular")
def gaussian_hd(num_classes: int, dim: int, samples_per_class: int, separation: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    means = separation * rng.standard_normal((num_classes, dim)) / np.sqrt(dim) * 3
    y = np.repeat(np.arange(num_classes), samples_per_class)
    x = means[y] + rng.standard_normal((len(y), dim))
    names = tuple(f"class {c}" for c in range(num_classes))
    return Dataset("gaussian_hd", x.astype(np.float32), y, names, "tabular",
                   tuple(f"f{i}" for i in range(dim)))


def _sklearn_table(name: str, bunch) -> Dataset:
    return Dataset(name, bunch.data.astype(np.float32), bunch.target.astype(np.int64),
                   tuple(str(n) for n in bunch.target_names), "tabular",
                   tuple(str(f) for f in bunch.feature_names))


@DATASETS.register("breast_cancer", display="Breast cancer (Wisconsin)",
                   description="Breast tumour measurements: malignant vs benign (569 rows, 30 features).",
                   paper="Street, Wolberg & Mangasarian 1993, Wisconsin Diagnostic Breast Cancer",
                   modality="tabular")
def breast_cancer() -> Dataset:
    return _sklearn_table("breast_cancer", skds.load_breast_cancer())


@DATASETS.register("wine", display="Wine cultivars",
                   description="Chemical analysis of wines from three cultivars (178 rows, 13 features).",
                   paper="Aeberhard & Forina 1991, UCI Wine", modality="tabular")
def wine() -> Dataset:
    return _sklearn_table("wine", skds.load_wine())


def load_builtin(name: str, params: dict | None = None) -> Dataset:
    return DATASETS.create(name, params)


def list_datasets() -> list[str]:
    return DATASETS.names()
