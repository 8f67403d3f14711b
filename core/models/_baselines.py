"""Reference baselines for tables: the classic answers a deep fix has to beat.

They are models of a second family in the same registry (`family="baseline"`): the same
config, splits and folds as any run, and the same stored outputs (log-probabilities as
logits), but no learned features, so geometry and attribution do not apply to them.
Each fits its own class-balanced objective, which is why losses and samplers are refused.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.models._models import MODELS
from core.registry import Params

__all__ = ["BASELINE_FAMILY", "is_baseline", "is_multilabel_model", "create_baseline"]

BASELINE_FAMILY = "baseline"


def is_baseline(name: str) -> bool:
    return MODELS.info(name).capabilities.get("family") == BASELINE_FAMILY


def is_multilabel_model(name: str) -> bool:
    """A model that only takes several labels per case (the multi-label baselines)."""
    return bool(MODELS.info(name).capabilities.get("multilabel"))


class LogisticParams(Params):
    C: float = Field(1.0, gt=0, le=1e6, title="Regularisation (C)",
                     description="Inverse strength of regularisation: smaller values give a simpler model.")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", title="Class weights",
        description="'balanced' weights each class by 1 / its share, the classic answer to imbalance.")
    max_iter: int = Field(2000, ge=10, le=100_000, title="Solver iterations",
                          description="Upper limit on the fitting steps.")


class ForestParams(Params):
    n_estimators: int = Field(200, ge=1, le=5000, title="Trees",
                              description="Number of trees, each grown on a class-balanced bootstrap sample.")
    max_depth: int | None = Field(None, ge=1, le=100, title="Tree depth limit",
                                  description="Deepest a tree may grow; empty grows them fully.")
    min_samples_leaf: int = Field(1, ge=1, le=1000, title="Smallest leaf",
                                  description="Fewest rows a leaf may hold.")


class BoostingParams(Params):
    max_iter: int = Field(200, ge=1, le=10_000, title="Boosting rounds",
                          description="Number of trees added one after another.")
    learning_rate: float = Field(0.1, gt=0, le=1, title="Learning rate",
                                 description="How much each new tree corrects the previous ones.")
    max_leaf_nodes: int = Field(31, ge=2, le=1024, title="Leaves per tree",
                                description="Most leaves a tree may have.")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", title="Class weights",
        description="'balanced' weights each class by 1 / its share.")


def _weight(choice: str) -> str | None:
    return None if choice == "none" else choice


@MODELS.register("logistic_regression", display="Logistic regression (baseline)",
                 description="Baseline: class-weighted logistic regression (scikit-learn) on the standardised "
                             "table.",
                 paper="King & Zeng 2001, Logistic Regression in Rare Events Data (class weighting)",
                 params=LogisticParams, modality=("tabular",), family=BASELINE_FAMILY)
def logistic_regression(*, C: float, class_weight: str, max_iter: int, seed: int = 0, **_):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, class_weight=_weight(class_weight), max_iter=max_iter, random_state=seed)


@MODELS.register("balanced_random_forest", display="Balanced random forest (baseline)",
                 description="Baseline: random forest whose every tree sees a class-balanced bootstrap "
                             "(imbalanced-learn).",
                 paper="Chen, Liaw & Breiman 2004, Using Random Forest to Learn Imbalanced Data",
                 params=ForestParams, modality=("tabular",), family=BASELINE_FAMILY)
def balanced_random_forest(*, n_estimators: int, max_depth: int | None, min_samples_leaf: int, seed: int = 0, **_):
    from imblearn.ensemble import BalancedRandomForestClassifier

    return BalancedRandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=seed,
        sampling_strategy="all", replacement=True, bootstrap=False, n_jobs=1)


@MODELS.register("hist_gradient_boosting", display="Gradient boosting (baseline)",
                 description="Baseline: class-weighted gradient-boosted trees (scikit-learn's histogram version).",
                 paper="Ke et al., NeurIPS 2017, LightGBM (the algorithm scikit-learn's version follows)",
                 params=BoostingParams, modality=("tabular",), family=BASELINE_FAMILY)
def hist_gradient_boosting(*, max_iter: int, learning_rate: float, max_leaf_nodes: int, class_weight: str,
                           seed: int = 0, **_):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=learning_rate,
                                          max_leaf_nodes=max_leaf_nodes, class_weight=_weight(class_weight),
                                          early_stopping=False, random_state=seed)


def create_baseline(name: str, params: dict | None = None, *, seed: int = 0):
    """An unfitted scikit-learn-style estimator for a baseline model name."""
    if not is_baseline(name):
        raise ValueError(f"{name!r} is not a baseline model; baselines: "
                         f"{', '.join(n for n in MODELS.names() if is_baseline(n))}")
    return MODELS.create(name, params, seed=seed)
