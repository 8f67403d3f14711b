"""Loss schedules: options that combine with any loss and change it while training runs.

One so far, deferred re-weighting (DRW, Cao et al. 2019): the plain loss first, so the
features are learnt from the data as it is, then class-balanced weights from a chosen
epoch on, so the classifier stops favouring the common classes. It is declared here, beside
the losses, so the Train form, `tailscope methods` and the config's check of the loss
section all read one declaration. Its settings sit in the loss section of a config
(`loss: {name: ldam, drw_epoch: 160}`), because they apply to whichever loss is chosen.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from core.methods._weights import class_weights
from core.registry import Params, Registry

__all__ = ["LOSS_SCHEDULES", "DRWParams", "DeferredReweighting"]

LOSS_SCHEDULES: Registry[DeferredReweighting] = Registry("loss schedule")


class DRWParams(Params):
    drw_epoch: int | None = Field(None, ge=0, title="Re-weight from epoch", examples=[16],
                                  description="Epoch from which rare classes count more; must be below the number of "
                                              "epochs (the paper: 160 of 200, i.e. 80 %). Unset: no re-weighting.")
    drw_beta: float = Field(0.9999, gt=0, lt=1, title="Effective-number beta",
                            description="Sets those weights: values near 1 approach 1/count.")


@LOSS_SCHEDULES.register(
    "drw", display="Deferred re-weighting (DRW)",
    description="The plain loss first, then class-balanced (effective-number) weights from a chosen epoch on; "
                "combines with any loss.",
    paper="Cao et al., NeurIPS 2019, Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
    params=DRWParams, switch="drw_epoch")
class DeferredReweighting:
    """The per-class weight a loss uses at each epoch (`Loss.set_class_weight`): none before
    `drw_epoch`, effective-number weights of `class_counts` from then on (never, when unset)."""

    def __init__(self, *, drw_epoch: int | None, drw_beta: float, class_counts):
        self.drw_epoch = drw_epoch
        self.weight = class_weights(torch.as_tensor(class_counts, dtype=torch.float64), "effective_number",
                                    beta=drw_beta)

    def class_weight(self, epoch: int) -> Tensor | None:
        if self.drw_epoch is None or epoch < self.drw_epoch:
            return None
        return self.weight
