"""Model registry: every network exposes `forward_features` and a linear `head`; table
baselines (a second family) fit scikit-learn estimators on the same splits."""

from core.models._baselines import BASELINE_FAMILY, create_baseline, is_baseline
from core.models._models import MODELS, Classifier, create_model, list_models

__all__ = ["MODELS", "Classifier", "create_model", "list_models", "BASELINE_FAMILY", "create_baseline", "is_baseline"]
