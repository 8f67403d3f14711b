"""Every plug-in registry by kind, for listings (`tailscope methods`, the Methods page)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from core.registry import Params, Registry, describe_params

__all__ = ["all_registries", "listing"]


class DRWParams(Params):
    drw_epoch: int | None = Field(None, ge=0, description="epoch from which the class-balanced weights apply "
                                                          "(the paper: 160 of 200); unset: no DRW")
    drw_beta: float = Field(0.9999, gt=0, lt=1, description="effective-number beta of those weights")


# Options that combine with any loss: set on the loss, e.g. `loss: {name: ldam, drw_epoch: 160}`.
LOSS_SCHEDULES = [{
    "name": "drw",
    "description": "Deferred re-weighting: the plain loss first, then class-balanced (effective-number) weights "
                   "from drw_epoch on; combines with any loss.",
    "paper": "Cao et al., NeurIPS 2019, Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
    "params": describe_params(DRWParams),
}]


def all_registries() -> dict[str, Registry]:
    from core.analysis import ATTRIBUTIONS
    from core.data import DATASETS
    from core.methods import LOSSES, POSTHOC, RESAMPLERS, SAMPLERS
    from core.models import MODELS
    from core.train import STAGE2

    return {"datasets": DATASETS, "models": MODELS, "losses": LOSSES, "samplers": SAMPLERS,
            "resamplers": RESAMPLERS, "stage2": STAGE2, "posthoc": POSTHOC, "attributions": ATTRIBUTIONS}


def listing() -> dict[str, list[dict[str, Any]]]:
    """Every plug-in of every kind as plain dicts (name, description, paper, parameters)."""
    out = {kind: [info.to_dict() for info in reg.infos()] for kind, reg in all_registries().items()}
    out["loss_schedules"] = LOSS_SCHEDULES
    return out
