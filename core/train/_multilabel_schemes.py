"""Ways to train a multi-label network beyond one network, one loss and one sampler
(`MULTILABEL_SCHEMES`, the config's `scheme` section; multi-label data only).

Without a scheme a multi-label run is `fit_multilabel`'s one network. An entry is a class
whose `fit(config, data, run)` returns the run's `TrainResult`, stored like any multi-label
network run's (one network's weights and scores)."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from core.config import RunConfig
from core.data import MultiLabelRunData
from core.registry import Params, Registry
from core.train._common import RunHooks, TrainResult
from core.train._multilabel import fit_multilabel
from core.train._three_branch import fit_three_branch

__all__ = ["MULTILABEL_SCHEMES", "PLTBalance", "multilabel_fit"]

MULTILABEL_SCHEMES: Registry = Registry("multilabel_scheme")


class PLTBalanceParams(Params):
    corrector_weight: float = Field(0.2, ge=0.0, le=5.0, title="Weight of the label corrector",
                                    description="How much each branch's label-correction loss adds to its focal "
                                                "modifier loss (0.2 in the authors' code).")
    tau: float = Field(0.7, ge=0.5, le=1.0, title="Confidence to correct (tau)",
                       description="An absent finding is read as present when a branch gives it more than this.")
    correct_from_epoch: int = Field(1, ge=0, le=1000, title="Correct from epoch",
                                    description="First epoch (counted from 0) in which absent findings may be "
                                                "corrected.")


@MULTILABEL_SCHEMES.register(
    "plt_balance", display="PLT-MLC three branches",
    description="Trains three networks side by side: one on every case once, one on rare findings first, one on "
                "every finding equally often; the last also learns from the other two's losses and makes the "
                "predictions. Two to three times the training time (twice on the generated table).",
    paper="Zhang et al. 2023, Learning in Imperfect Environment: Multi-Label Classification with Long-Tailed "
          "Distribution and Partial Labels (PLT-MLC / COMIC), ICCV",
    params=PLTBalanceParams, networks=3,
)
class PLTBalance:
    def __init__(self, **params):
        self.params = params

    def fit(self, config: RunConfig, data: MultiLabelRunData, run: RunHooks) -> TrainResult:
        return fit_three_branch(config, data, run, self.params)


def multilabel_fit(config: RunConfig) -> Callable[[RunConfig, MultiLabelRunData, RunHooks], TrainResult]:
    """The fit of a multi-label network run: its scheme's, or one network's."""
    if config.scheme is None:
        return fit_multilabel
    return MULTILABEL_SCHEMES.create(config.scheme.name, config.scheme.params).fit
