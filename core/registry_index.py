"""Every plug-in registry by kind, for listings (`tailscope methods`, the Methods page)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from core.registry import Params, Registry, describe_params

__all__ = ["all_registries", "listing"]


class DRWParams(Params):
    drw_epoch: int | None = Field(None, ge=0, title="Re-weight from epoch",
                                  description="Epoch from which rare classes count more (the paper: 160 of 200); "
                                              "unset: no re-weighting.")
    drw_beta: float = Field(0.9999, gt=0, lt=1, title="Effective-number beta",
                            description="Sets those weights: values near 1 approach 1/count.")


# Options that combine with any loss: set on the loss, e.g. `loss: {name: ldam, drw_epoch: 160}`.
LOSS_SCHEDULES = [{
    "name": "drw",
    "display": "Deferred re-weighting (DRW)",
    "description": "Deferred re-weighting: the plain loss first, then class-balanced (effective-number) weights "
                   "from drw_epoch on; combines with any loss.",
    "paper": "Cao et al., NeurIPS 2019, Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
    "params": describe_params(DRWParams),
}]


def all_registries() -> dict[str, Registry]:
    from core.analysis import ATTRIBUTIONS
    from core.data import DATASETS, LABEL_NOISE
    from core.methods import CLEANERS, LOSSES, POSTHOC, RESAMPLERS, SAMPLERS
    from core.models import MODELS
    from core.train import PRETRAIN, SEMI, STAGE2

    return {"datasets": DATASETS, "models": MODELS, "losses": LOSSES, "samplers": SAMPLERS,
            "resamplers": RESAMPLERS, "stage2": STAGE2, "label_noise": LABEL_NOISE, "label_issues": CLEANERS, "pretrain": PRETRAIN,
            "semi": SEMI, "posthoc": POSTHOC, "attributions": ATTRIBUTIONS}


def listing() -> dict[str, list[dict[str, Any]]]:
    """Every plug-in of every kind as plain dicts (name, description, paper, parameters)."""
    out = {kind: [info.to_dict() for info in reg.infos()] for kind, reg in all_registries().items()}
    out["loss_schedules"] = LOSS_SCHEDULES
    return out
