"""Data-level resamplers from imbalanced-learn, and a conditional tabular GAN
(`_tabular_gan.py`), one registry (`RESAMPLERS`).

These run once on a feature matrix before training (tabular data or flattened images),
unlike the per-epoch index samplers. Nothing is re-implemented: each entry builds the
imblearn estimator from a validated schema that uses imblearn's own parameter names, and
:func:`resample` adds what a page needs on top: a mask of the rows that did not exist
before (synthetic or duplicated), and errors that say which resampler failed and what to
change.

imblearn is imported where a resampler is built or checked, not with this module: it brings
scikit-learn's test tooling with it (0.3-0.5 s), which every page server, run worker and pool
process paid at start whether or not a run resampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from core.registry import Params, Registry, Seed

__all__ = ["RESAMPLERS", "ResampleResult", "resample", "check_resampler", "create_resampler", "list_resamplers",
           "SAMPLING_STRATEGIES"]

RESAMPLERS: Registry[Any] = Registry("resampler")

SAMPLING_STRATEGIES = ("auto", "minority", "majority", "not minority", "not majority", "all")

_STRATEGY_HELP = ("imblearn sampling_strategy: 'auto', 'minority', 'not majority', 'all' (and for "
                  "cleaning 'majority', 'not minority'), a float (minority/majority ratio after "
                  "resampling, binary only) or a {class: count} dict.")
_SEED_HELP = "Seed for imblearn; None uses the seed passed to resample()."


@dataclass(frozen=True)
class ResampleResult:
    """Resampled rows; ``synthetic[i]`` is True for an output row that was not in the input
    (a new SMOTE-style row or an extra copy); ``removed[j]`` is True for an input row the
    resampler dropped (under-samplers and cleaners)."""

    x: np.ndarray
    y: np.ndarray
    synthetic: np.ndarray
    removed: np.ndarray

    @property
    def n_synthetic(self) -> int:
        return int(self.synthetic.sum())


# ---------------------------------------------------------------------------- params

class _StrategyParams(Params):
    sampling_strategy: str | float | dict[int, int] = Field("auto", title="Which classes to resample",
                                                            description=_STRATEGY_HELP)

    @field_validator("sampling_strategy")
    @classmethod
    def _known_strategy(cls, value):
        if isinstance(value, str) and value not in SAMPLING_STRATEGIES:
            raise ValueError(f"unknown sampling_strategy {value!r}; use one of "
                             f"{', '.join(SAMPLING_STRATEGIES)}, a float or a {{class: count}} dict")
        if isinstance(value, float) and not 0.0 < value <= 1.0:
            raise ValueError("a float sampling_strategy is a ratio in (0, 1]")
        return value


class _SeededParams(_StrategyParams):
    random_state: Seed | None = Field(None, title="Random seed",
                                     description="Seed of the resampling; empty uses the run's seed.")


class SMOTEParams(_SeededParams):
    k_neighbors: int = Field(5, ge=1, le=100,
                             title="Neighbours to blend with",
                             description="Nearest same-class rows a new row may be placed between.")


class BorderlineSMOTEParams(SMOTEParams):
    m_neighbors: int = Field(10, ge=1, le=100,
                             title="Neighbours that define the border",
                             description="Nearest rows of any class that decide whether a row sits near the "
                                         "border.")
    kind: Literal["borderline-1", "borderline-2"] = Field(
        "borderline-1", title="Variant",
        description="Variant 2 also places new rows toward neighbours of other classes.",
        json_schema_extra={"choice_labels": {"borderline-1": "variant 1",
                                             "borderline-2": "variant 2"}})


class ADASYNParams(_SeededParams):
    n_neighbors: int = Field(5, ge=1, le=100,
                             title="Neighbours",
                             description="Nearest rows used to judge how hard a row is and to place new rows.")


class RandomOverParams(_SeededParams):
    shrinkage: float | None = Field(None, ge=0.0, le=10.0,
                                    title="Jitter of copies",
                                    description="Empty: exact copies; a value adds small random noise to each copy "
                                                "(smoothed bootstrap).")


class RandomUnderParams(_SeededParams):
    replacement: bool = Field(False, title="Draw with replacement",
                              description="Allow the same row to be kept more than once.")


class TomekParams(_StrategyParams):
    pass


class ENNParams(_StrategyParams):
    n_neighbors: int = Field(3, ge=1, le=100, title="Neighbours",
                             description="Nearest rows that vote on whether a row is kept.")
    kind_sel: Literal["all", "mode"] = Field(
        "all", title="Removal rule",
        description="'all': remove a row unless all its neighbours agree with its label; 'mode': unless most do.",
        json_schema_extra={"choice_labels": {"all": "all must agree",
                                             "mode": "most must agree"}})


class SMOTETomekParams(SMOTEParams):
    pass


class NearMissParams(_StrategyParams):
    version: int = Field(1, ge=1, le=3, title="Variant (1, 2 or 3)",
                         description="Which NearMiss rule picks the common-class rows to keep.")
    n_neighbors: int = Field(3, ge=1, le=100, title="Neighbours",
                             description="Nearest rare-class rows used to score common-class rows.")
    n_neighbors_ver3: int = Field(3, ge=1, le=100,
                                  title="Neighbours (variant 3)",
                                  description="Rows pre-selected by NearMiss-3 before scoring.")


# ---------------------------------------------------------------------------- entries

_SMOTE_PAPER = "Chawla et al., JAIR 2002, SMOTE: Synthetic Minority Over-sampling Technique"
_TOMEK_PAPER = "Tomek, IEEE Trans. SMC 1976, Two Modifications of CNN"


def _seed(random_state: int | None, seed: int) -> int:
    return seed if random_state is None else random_state


@RESAMPLERS.register("smote", display="SMOTE",
                     description="Makes up new rare-class rows on lines between neighbouring rows of the same "
                                 "class.",
                     paper=_SMOTE_PAPER, params=SMOTEParams, kind="over", neighbours_param="k_neighbors")
def _smote(*, sampling_strategy, random_state, k_neighbors, seed=0):
    from imblearn.over_sampling import SMOTE

    return SMOTE(sampling_strategy=sampling_strategy, k_neighbors=k_neighbors,
                 random_state=_seed(random_state, seed))


@RESAMPLERS.register(
    "borderline_smote", display="Borderline-SMOTE",
    description="Like SMOTE, but only from rare-class rows near the border with other classes (those 'in danger').",
    paper="Han, Wang & Mao, ICIC 2005, Borderline-SMOTE: A New Over-Sampling Method in Imbalanced Data Sets "
          "Learning",
    params=BorderlineSMOTEParams, kind="over", neighbours_param="k_neighbors",
)
def _borderline_smote(*, sampling_strategy, random_state, k_neighbors, m_neighbors, kind, seed=0):
    from imblearn.over_sampling import BorderlineSMOTE

    return BorderlineSMOTE(sampling_strategy=sampling_strategy, k_neighbors=k_neighbors,
                           m_neighbors=m_neighbors, kind=kind, random_state=_seed(random_state, seed))


@RESAMPLERS.register(
    "adasyn", display="ADASYN",
    description="Makes up new rare-class rows like SMOTE, mostly where that class is hard to learn.",
    paper="He et al., IJCNN 2008, ADASYN: Adaptive Synthetic Sampling Approach for Imbalanced Learning",
    params=ADASYNParams, kind="over", neighbours_param="n_neighbors",
)
def _adasyn(*, sampling_strategy, random_state, n_neighbors, seed=0):
    from imblearn.over_sampling import ADASYN

    return ADASYN(sampling_strategy=sampling_strategy, n_neighbors=n_neighbors,
                  random_state=_seed(random_state, seed))


@RESAMPLERS.register(
    "random_over", display="Random oversampling",
    description="Copies random rows of the rare classes until the classes match.",
    paper="Buda et al., Neural Networks 2018, A systematic study of the class imbalance problem in "
          "convolutional neural networks",
    params=RandomOverParams, kind="over",
)
def _random_over(*, sampling_strategy, random_state, shrinkage, seed=0):
    from imblearn.over_sampling import RandomOverSampler

    return RandomOverSampler(sampling_strategy=sampling_strategy, shrinkage=shrinkage,
                             random_state=_seed(random_state, seed))


@RESAMPLERS.register(
    "random_under", display="Random undersampling",
    description="Drops random rows of the common classes until the classes match.",
    paper="Buda et al., Neural Networks 2018, A systematic study of the class imbalance problem in "
          "convolutional neural networks",
    params=RandomUnderParams, kind="under",
)
def _random_under(*, sampling_strategy, random_state, replacement, seed=0):
    from imblearn.under_sampling import RandomUnderSampler

    return RandomUnderSampler(sampling_strategy=sampling_strategy, replacement=replacement,
                              random_state=_seed(random_state, seed))


@RESAMPLERS.register(
    "tomek_links", display="Tomek links (cleaning)",
    description="Removes common-class rows whose nearest neighbour belongs to another class, clearing the border.",
    paper=_TOMEK_PAPER, params=TomekParams, kind="clean",
)
def _tomek_links(*, sampling_strategy, seed=0):
    from imblearn.under_sampling import TomekLinks

    return TomekLinks(sampling_strategy=sampling_strategy)


@RESAMPLERS.register(
    "edited_nearest_neighbours", display="Edited nearest neighbours (cleaning)",
    description="Removes rows whose nearest neighbours mostly carry a different label.",
    paper="Wilson, IEEE Trans. SMC 1972, Asymptotic Properties of Nearest Neighbor Rules Using Edited Data",
    params=ENNParams, kind="clean",
)
def _edited_nearest_neighbours(*, sampling_strategy, n_neighbors, kind_sel, seed=0):
    from imblearn.under_sampling import EditedNearestNeighbours

    return EditedNearestNeighbours(sampling_strategy=sampling_strategy, n_neighbors=n_neighbors,
                                   kind_sel=kind_sel)


@RESAMPLERS.register(
    "smote_tomek", display="SMOTE + Tomek links",
    description="SMOTE, then removal of the cross-class neighbour pairs (Tomek links) it creates.",
    paper="Batista, Prati & Monard, SIGKDD Explorations 2004, A Study of the Behavior of Several Methods "
          "for Balancing Machine Learning Training Data",
    params=SMOTETomekParams, kind="over", neighbours_param="k_neighbors",
)
def _smote_tomek(*, sampling_strategy, random_state, k_neighbors, seed=0):
    from imblearn.combine import SMOTETomek
    from imblearn.over_sampling import SMOTE
    from imblearn.under_sampling import TomekLinks

    rs = _seed(random_state, seed)
    smote = SMOTE(sampling_strategy=sampling_strategy, k_neighbors=k_neighbors, random_state=rs)
    return SMOTETomek(smote=smote, tomek=TomekLinks(sampling_strategy="all"), random_state=rs)


@RESAMPLERS.register(
    "near_miss", display="NearMiss",
    description="Keeps only the common-class rows closest to the rare classes (NearMiss-1, -2 or -3).",
    paper="Mani & Zhang, ICML 2003 Workshop, kNN Approach to Unbalanced Data Distributions",
    params=NearMissParams, kind="under", neighbours_param="n_neighbors",
)
def _near_miss(*, sampling_strategy, version, n_neighbors, n_neighbors_ver3, seed=0):
    from imblearn.under_sampling import NearMiss

    return NearMiss(sampling_strategy=sampling_strategy, version=version, n_neighbors=n_neighbors,
                    n_neighbors_ver3=n_neighbors_ver3)


class TabularGanParams(_SeededParams):
    epochs: int = Field(100, ge=1, le=10_000, title="Epochs",
                        description="Passes over the training rows while the GAN learns them (CTAB-GAN+: 150).")
    batch_size: int = Field(256, ge=2, le=65_536, title="Batch size",
                            description="Rows per step; the rare classes are drawn far above their share.")
    noise_dim: int = Field(64, ge=1, le=1024, title="Noise size",
                           description="Length of the random input each made row starts from.")
    hidden: int = Field(128, ge=4, le=4096, title="Layer width",
                        description="Width of the generator's, the critic's and the classifier's hidden layers.")
    information_weight: float = Field(1.0, ge=0, le=100, title="Information loss weight",
                                      description="CTAB-GAN+: how strongly made rows must match the real rows' "
                                                  "feature means and spreads as the critic sees them (0: off).")
    classifier_weight: float = Field(1.0, ge=0, le=100, title="Downstream loss weight",
                                     description="CTAB-GAN+: how strongly a classifier trained on real rows must "
                                                 "recognise each made row's class (0: off).")


@RESAMPLERS.register(
    "tabular_gan", display="Conditional tabular GAN (CTAB-GAN+ style)",
    description="A generator learns the table with the class as its condition, then makes new rows of the rare "
                "classes; slower than SMOTE (seconds to minutes), and its rows are checked for copies of real ones.",
    paper="Xu et al., NeurIPS 2019, Modeling Tabular Data using Conditional GAN (CTGAN); Zhao et al. 2022, "
          "CTAB-GAN+: Enhancing Tabular Data Synthesis (WGAN-GP, information and downstream losses). Written in "
          "torch here (the ctgan package needs pandas < 3); no mode-specific normalisation, CNNs or privacy",
    params=TabularGanParams, kind="over", reports_progress=True)
def _tabular_gan(*, sampling_strategy, random_state, epochs, batch_size, noise_dim, hidden, information_weight,
                 classifier_weight, seed=0, progress=None, should_stop=None):
    from core.methods._tabular_gan import ConditionalTabularGan

    return ConditionalTabularGan(sampling_strategy=sampling_strategy, epochs=epochs, batch_size=batch_size,
                                 noise_dim=noise_dim, hidden=hidden, information_weight=information_weight,
                                 classifier_weight=classifier_weight, random_state=_seed(random_state, seed),
                                 progress=progress, should_stop=should_stop)


# ---------------------------------------------------------------------------- API

def create_resampler(name: str, params: dict | None = None, *, seed: int = 0, progress=None, should_stop=None):
    """The configured imblearn estimator (unfitted); one that reports progress (the GAN) also
    gets the callbacks."""
    if RESAMPLERS.info(name).capabilities.get("reports_progress"):
        return RESAMPLERS.create(name, params, seed=seed, progress=progress, should_stop=should_stop)
    return RESAMPLERS.create(name, params, seed=seed)


def list_resamplers() -> list[str]:
    return RESAMPLERS.names()


def resample(name: str, X, y, params: dict | None = None, seed: int = 0, *, progress=None,
             should_stop=None) -> ResampleResult:
    """Resample ``(X, y)`` with the named imblearn method.

    ``X`` may have more than two dimensions (images): rows are flattened for imblearn and
    reshaped back. Rows added by an over-sampler are flagged in ``synthetic``. A resampler
    that fits a model (the GAN) reports `progress` and stops when `should_stop()` is true.
    """
    info = RESAMPLERS.info(name)
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: X must be (n, ...) and y (n,) with the same n; "
                         f"got X {X.shape}, y {y.shape}")
    n = X.shape[0]
    flat = X.reshape(n, -1)
    check_resampler(name, params, y)
    estimator = create_resampler(name, params, seed=seed, progress=progress, should_stop=should_stop)
    try:
        x_res, y_res = estimator.fit_resample(flat, y)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} could not resample this data: {exc}. Check sampling_strategy "
                         f"against the class counts {_counts_text(y)}, or lower the neighbour "
                         f"parameters.") from exc
    synthetic = _synthetic_mask(name, info.capabilities.get("kind"), estimator, flat, x_res, n)
    return ResampleResult(np.asarray(x_res).reshape(-1, *X.shape[1:]), np.asarray(y_res), synthetic,
                          _removed_mask(estimator, n))


def _counts_text(y: np.ndarray) -> str:
    classes, counts = np.unique(y, return_counts=True)
    return "{" + ", ".join(f"{c}: {k}" for c, k in zip(classes.tolist(), counts.tolist())) + "}"


def check_resampler(name: str, params: dict | None, y) -> None:
    """Raise ValueError, saying what to change, when `resample(name, X, y, params)` could not
    run on these labels (a class too small for the neighbour count, a bad strategy);
    without fitting anything, so a form can check every choice at once."""
    info = RESAMPLERS.info(name)
    values = info.validate_params(params).model_dump()
    if info.capabilities.get("kind") == "over":
        _check_neighbours(name, info.capabilities.get("neighbours_param"), values, np.asarray(y))


def _check_neighbours(name: str, param: str | None, values: dict, y: np.ndarray) -> None:
    """Every class that gets synthetic rows needs more members than the neighbour count."""
    if param is None:
        return
    from imblearn.utils import check_sampling_strategy

    k = values[param]
    try:
        targets = check_sampling_strategy(values["sampling_strategy"], y, "over-sampling")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: invalid sampling_strategy {values['sampling_strategy']!r} for class "
                         f"counts {_counts_text(y)}: {exc}") from exc
    for cls, n_new in targets.items():
        size = int((y == cls).sum())
        if n_new > 0 and size <= k:
            raise ValueError(
                f"{name}: class {cls} has only {size} sample(s) but {param}={k} needs at least {k + 1}; "
                f"set {param} to at most {max(size - 1, 1)}"
                f"{'' if size > 1 else ' (a single sample has no neighbours)'}, "
                f"use random_over instead, or exclude or merge that class."
            )


def _removed_mask(estimator, n: int) -> np.ndarray:
    """Input rows absent from the output: imblearn's ``sample_indices_`` lists the input rows
    a selecting resampler kept (SMOTETomek: its Tomek step, over the SMOTE output whose
    first n rows are the input). Pure generators keep every input row."""
    from imblearn.combine import SMOTETomek
    from imblearn.over_sampling import RandomOverSampler

    selector = estimator.tomek_ if isinstance(estimator, SMOTETomek) else estimator
    if not hasattr(selector, "sample_indices_") or isinstance(estimator, RandomOverSampler):
        return np.zeros(n, dtype=bool)
    kept = np.asarray(selector.sample_indices_)
    return ~np.isin(np.arange(n), kept[kept < n])


def _synthetic_mask(name: str, kind: str | None, estimator, x_in: np.ndarray, x_res: np.ndarray,
                    n: int) -> np.ndarray:
    """Rows of the output that were not input rows.

    Under-samplers and cleaners only select input rows. RandomOverSampler records
    ``sample_indices_``: the first occurrence of each input index is the original, later
    ones are copies. SMOTETomek keeps its Tomek step's ``sample_indices_`` into the SMOTE
    output, whose first n rows are the input. The SMOTE family appends new rows after an
    unchanged copy of the input, which is checked rather than assumed.
    """
    from imblearn.combine import SMOTETomek

    m = x_res.shape[0]
    if kind != "over":
        return np.zeros(m, dtype=bool)
    if isinstance(estimator, SMOTETomek):
        return np.asarray(estimator.tomek_.sample_indices_) >= n
    if hasattr(estimator, "sample_indices_"):
        idx = np.asarray(estimator.sample_indices_)
        first = np.zeros(m, dtype=bool)
        first[np.unique(idx, return_index=True)[1]] = True
        return ~first
    if m < n or not np.array_equal(np.asarray(x_res[:n]), x_in.astype(x_res.dtype, copy=False)):
        raise RuntimeError(f"{name}: imblearn no longer keeps the input rows first; cannot tell "
                           "synthetic rows apart (update _synthetic_mask)")
    return np.arange(m) >= n
