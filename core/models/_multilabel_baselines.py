"""Multi-label table baselines: the classic scikit-learn answers a deep multi-label fix has to
beat, in the model registry's baseline family with `multilabel=True` (they take a label
matrix, 1 present, 0 absent, NaN unknown, and give each label's probability).

- One-vs-rest logistic regression: one class-weighted (`balanced`, per label) logistic
  regression per label, each fitted on the cases whose entry for that label is known, so an
  unknown entry is never read as absent and changes nothing.
- Classifier chain (scikit-learn's `ClassifierChain`, Read et al. 2011): each label's logistic
  regression also sees the labels before it in the chain. A link learns from the true
  earlier labels, so a case needs every entry known to teach the chain: it is fitted on the
  cases whose entries are all known (under random hiding an unbiased subsample; no unknown
  entry is imputed or read as absent). Too few such cases is refused in one line.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from core.models._baselines import BASELINE_FAMILY
from core.models._models import MODELS
from core.registry import Params

__all__ = ["OneVsRestLogistic", "LogisticChain"]

_ML = {"modality": ("tabular",), "family": BASELINE_FAMILY, "multilabel": True}


class MultiLabelLogisticParams(Params):
    C: float = Field(1.0, gt=0, le=1e6, title="Regularisation (C)",
                     description="Inverse strength of regularisation: smaller values give a simpler model.")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", title="Class weights",
        description="'balanced' weights present and absent by 1 / their share, for each finding on its own.")
    max_iter: int = Field(2000, ge=10, le=100_000, title="Solver iterations",
                          description="Upper limit on the fitting steps.")


class ChainParams(MultiLabelLogisticParams):
    order: Literal["head_first", "tail_first", "random"] = Field(
        "head_first", title="Chain order",
        description="Which findings come first in the chain: the most common, the rarest, or a random order "
                    "drawn from the seed.",
        json_schema_extra={"choice_labels": {"head_first": "most common first", "tail_first": "rarest first",
                                             "random": "random"}})


def _logistic(C: float, class_weight: str, max_iter: int, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, class_weight=None if class_weight == "none" else class_weight,
                              max_iter=max_iter, random_state=seed)


def _matrix(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"a multi-label baseline needs a label matrix (cases x findings), got shape {y.shape}")
    return y


class OneVsRestLogistic:
    """One logistic regression per label on that label's known entries; a label whose known
    entries are all one value predicts that value's share (0 or 1) for every case."""

    def __init__(self, C: float = 1.0, class_weight: str = "balanced", max_iter: int = 2000, seed: int = 0):
        self.params = (C, class_weight, max_iter, seed)

    def fit(self, x: np.ndarray, y) -> OneVsRestLogistic:
        y = _matrix(y)
        self.estimators_: list = []
        for c in range(y.shape[1]):
            known = ~np.isnan(y[:, c])
            values = y[known, c]
            if np.unique(values).size < 2:
                self.estimators_.append(float(values.mean()) if values.size else 0.0)
            else:
                self.estimators_.append(_logistic(*self.params).fit(x[known], values.astype(int)))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, L): each label's probability of being present."""
        return np.stack([np.full(len(x), e) if isinstance(e, float) else e.predict_proba(x)[:, 1]
                         for e in self.estimators_], axis=1)


class LogisticChain:
    """scikit-learn's ClassifierChain of class-weighted logistic regressions, fitted on the
    cases whose entries are all known."""

    def __init__(self, C: float = 1.0, class_weight: str = "balanced", max_iter: int = 2000,
                 order: str = "head_first", seed: int = 0):
        self.params, self.order, self.seed = (C, class_weight, max_iter, seed), order, seed

    def fit(self, x: np.ndarray, y) -> LogisticChain:
        from sklearn.multioutput import ClassifierChain

        y = _matrix(y)
        complete = ~np.isnan(y).any(axis=1)
        full = y[complete]
        one_valued = [c for c in range(y.shape[1]) if np.unique(full[:, c]).size < 2]
        if one_valued:
            raise ValueError(f"the classifier chain learns from cases whose every finding is known: "
                             f"{int(complete.sum())} of {len(y)} training cases are, and among them finding "
                             f"{one_valued[0] + 1} is never "
                             "both present and absent; hide fewer entries (data.hide_labels) or use the one-vs-rest "
                             "baseline")
        labels = y.shape[1]
        order = {"head_first": np.arange(labels), "tail_first": np.arange(labels)[::-1], "random": "random"}[self.order]
        self.cases_used_ = int(complete.sum())
        self.chain_ = ClassifierChain(_logistic(*self.params), order=order, random_state=self.seed)
        self.chain_.fit(x[complete], full.astype(int))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.chain_.predict_proba(x), dtype=np.float64)


@MODELS.register("ovr_logistic_regression", display="One-vs-rest logistic regression (multi-label baseline)",
                 description="Baseline for several findings per case: one class-weighted logistic regression per "
                             "finding (scikit-learn), each fitted only on the cases where that finding is known.",
                 paper="Zhang & Zhou 2014, A Review on Multi-Label Learning Algorithms (binary relevance); "
                       "King & Zeng 2001 (class weighting)",
                 params=MultiLabelLogisticParams, **_ML)
def ovr_logistic_regression(*, C: float, class_weight: str, max_iter: int, seed: int = 0, **_):
    return OneVsRestLogistic(C, class_weight, max_iter, seed)


@MODELS.register("classifier_chain", display="Classifier chain (multi-label baseline)",
                 description="Baseline for several findings per case: a chain of class-weighted logistic "
                             "regressions (scikit-learn), each also seeing the findings before it; fitted on the "
                             "cases whose findings are all known.",
                 paper="Read, Pfahringer, Holmes & Frank 2011, Classifier Chains for Multi-label Classification "
                       "(Machine Learning 85)",
                 params=ChainParams, **_ML)
def classifier_chain(*, C: float, class_weight: str, max_iter: int, order: str, seed: int = 0, **_):
    return LogisticChain(C, class_weight, max_iter, order, seed)
