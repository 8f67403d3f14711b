"""Model registry: every network exposes `forward_features` and a linear `head`; table
baselines (a second family) fit scikit-learn-style estimators on the same splits, among them
the ordinal models for ordered stages (proportional odds, PRESTO, separate regressions) and
the multi-label baselines (one-vs-rest logistic regression, a classifier chain)."""

from core.models._baselines import BASELINE_FAMILY, create_baseline, is_baseline, is_multilabel_model
from core.models._models import MODELS, Classifier, create_model, list_models
from core.models._multilabel_baselines import LogisticChain, OneVsRestLogistic
from core.models._ordinal import (
    OrdinalLogit, SeparateLogits, choose_penalty, cumulative_probabilities, fit_cumulative, presto_penalty, rare_brier,
)

__all__ = ["MODELS", "Classifier", "create_model", "list_models", "BASELINE_FAMILY", "create_baseline", "is_baseline",
           "is_multilabel_model", "LogisticChain", "OneVsRestLogistic",
           "OrdinalLogit", "SeparateLogits", "choose_penalty", "cumulative_probabilities", "fit_cumulative",
           "presto_penalty", "rare_brier"]
