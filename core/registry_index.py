"""Every plug-in registry by kind, for listings (`tailscope methods`, the Methods page)."""

from __future__ import annotations

from core.registry import Registry

__all__ = ["all_registries"]


def all_registries() -> dict[str, Registry]:
    from core.analysis import ATTRIBUTIONS
    from core.data import DATASETS
    from core.methods import LOSSES, POSTHOC, RESAMPLERS, SAMPLERS
    from core.models import MODELS
    from core.train import STAGE2

    return {"datasets": DATASETS, "models": MODELS, "losses": LOSSES, "samplers": SAMPLERS,
            "resamplers": RESAMPLERS, "stage2": STAGE2, "posthoc": POSTHOC, "attributions": ATTRIBUTIONS}
