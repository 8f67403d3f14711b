"""Model registry: every model exposes `forward_features` and a linear `head`."""

from core.models._models import MODELS, Classifier, create_model, list_models

__all__ = ["MODELS", "Classifier", "create_model", "list_models"]
