"""The stage-2 stage: two-stage fixes on a trained model (Kang et al., ICLR 2020, "Decoupling
Representation and Classifier for Long-Tailed Recognition"): the features stay frozen, only
the linear head is re-balanced. Features are computed once, so stage 2 costs seconds. RCAL
registers itself in the same registry (`_rcal.py`); both build on `_head.py`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from core.config import RunConfig
from core.methods import RESAMPLERS, SAMPLERS
from core.registry import Params
from core.train._common import Network, RunHooks, Stage
from core.train._device import balanced_accuracy_t
from core.train._head import STAGE2, head_features, train_head

__all__ = ["STAGE2", "STAGE_TWO", "run_stage2", "tau_normalised_weight", "select_tau"]

TAU_GRID = np.linspace(0, 2, 21)


class HeadTrainingParams(Params):
    epochs: int = Field(10, ge=1, le=1000, title="Epochs",
                        description="Passes over the training data while the classifier is retrained on frozen "
                                    "features.")
    lr: float = Field(0.1, gt=0, le=10, title="Learning rate",
                      description="Step size of the classifier training (SGD with momentum 0.9, cosine schedule).")
    weight_decay: float = Field(5e-4, ge=0, le=1, title="Weight decay",
                                description="Pull of the classifier weights toward zero, against over-fitting.")
    sampler: str = Field("class_balanced", title="Sampler",
                         description="How examples are drawn for this stage (class-balanced in the paper).",
                         json_schema_extra={"choices": SAMPLERS.names(),
                                            "choice_labels": {n: SAMPLERS.info(n).label for n in SAMPLERS.names()}})

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, name: str) -> str:
        SAMPLERS.info(name)  # unknown: fails listing the known samplers
        return name


class CrtParams(HeadTrainingParams):
    resampler: str | None = Field(None, title="Resampler",
                                  description="Optional: resample the stored features (e.g. SMOTE) instead of "
                                              "using a sampler.",
                                  json_schema_extra={"choices": [None, *RESAMPLERS.names()],
                                            "choice_labels": {n: RESAMPLERS.info(n).label for n in RESAMPLERS.names()}})

    resampler_params: dict[str, Any] = Field(default_factory=dict, title="Resampler settings",
                                                                   description="The resampler's own settings, e.g. "
                                                                               "{k_neighbors: 3} for SMOTE.")

    @field_validator("resampler")
    @classmethod
    def _known_resampler(cls, name: str | None) -> str | None:
        if name is not None:
            RESAMPLERS.info(name)
        return name

    @model_validator(mode="after")
    def _valid_resampler_params(self) -> CrtParams:
        if self.resampler_params and self.resampler is None:
            raise ValueError("resampler_params needs a resampler")
        if self.resampler is not None:
            RESAMPLERS.info(self.resampler).validate_params(self.resampler_params)
        return self


class TauNormParams(Params):
    tau: float | None = Field(None, ge=0, le=5, title="Normalisation strength (tau)",
                              description="Power of the weight length each class's classifier weights are divided "
                                          "by; empty: chosen on validation data from 0, 0.1, ..., 2.")


@STAGE2.register("crt", display="Classifier re-training (cRT)",
                 description="Keeps the learned features, resets the classifier (the last layer) and retrains it "
                             "with every class shown equally often.",
                 paper="Kang et al., ICLR 2020, Decoupling Representation and Classifier for Long-Tailed Recognition",
                 params=CrtParams)
def crt(*, epochs, lr, weight_decay, sampler, resampler, resampler_params, model, x_train, y_train, x_val, y_val,
        class_counts, seed, batch_size, progress, should_stop, first_epoch, info) -> list[dict[str, Any]]:
    feats, val_feats = head_features(model, x_train), head_features(model, x_val)
    labels = y_train
    if resampler:
        from core.methods import resample

        out = resample(resampler, feats.cpu().numpy(), labels.cpu().numpy(), resampler_params, seed=seed)
        feats = torch.from_numpy(out.x.astype(np.float32)).to(x_train.device)
        labels = torch.from_numpy(out.y.astype(np.int64)).to(x_train.device)
        sampler = "instance"
    model.head.reset_parameters()
    return train_head(name="crt", head=model.head, params=list(model.head.parameters()), feats=feats, labels=labels,
                        val_feats=val_feats, y_val=y_val, num_classes=len(class_counts), epochs=epochs, lr=lr,
                        weight_decay=weight_decay, sampler_name=sampler, batch_size=batch_size, seed=seed,
                        first_epoch=first_epoch, progress=progress, should_stop=should_stop, info=info)


@STAGE2.register("lws", display="Learnable weight scaling (LWS)",
                 description="Keeps the whole network and learns one scale per class for the classifier, with "
                             "every class shown equally often.",
                 paper="Kang et al., ICLR 2020, Decoupling Representation and Classifier for Long-Tailed Recognition",
                 params=HeadTrainingParams)
def lws(*, epochs, lr, weight_decay, sampler, model, x_train, y_train, x_val, y_val, class_counts, seed,
        batch_size, progress, should_stop, first_epoch, info) -> list[dict[str, Any]]:
    feats, val_feats = head_features(model, x_train), head_features(model, x_val)
    weight, bias = model.head.weight.detach().clone(), model.head.bias.detach().clone()
    scale = torch.ones(len(class_counts), device=weight.device, requires_grad=True)

    def head(z: Tensor) -> Tensor:
        return (z @ weight.T) * scale + bias

    rows = train_head(name="lws", head=head, params=[scale], feats=feats, labels=y_train, val_feats=val_feats,
                        y_val=y_val, num_classes=len(class_counts), epochs=epochs, lr=lr, weight_decay=weight_decay,
                        sampler_name=sampler, batch_size=batch_size, seed=seed, first_epoch=first_epoch,
                        progress=progress, should_stop=should_stop, info=info)
    with torch.no_grad():
        model.head.weight.copy_(weight * scale.detach()[:, None])
    return rows


def tau_normalised_weight(weight: np.ndarray | Tensor, tau: float):
    """w_j / ||w_j||^tau (Kang et al. 2020); the bias is left as it is, as in their code."""
    if isinstance(weight, Tensor):
        return weight / weight.norm(dim=1, keepdim=True).clamp(min=1e-12) ** tau
    return weight / np.maximum(np.linalg.norm(weight, axis=1, keepdims=True), 1e-12) ** tau


def select_tau(val_feats: Tensor, y_val: Tensor, weight: Tensor, bias: Tensor, num_classes: int) -> float:
    """The tau in 0, 0.1, ..., 2 with the best validation balanced accuracy (ties: smallest)."""
    scores = [balanced_accuracy_t((val_feats @ tau_normalised_weight(weight, t).T + bias).argmax(1), y_val, num_classes)[0]
              for t in TAU_GRID]
    return float(TAU_GRID[int(np.argmax(scores))])


@STAGE2.register("tau_norm", display="Classifier normalisation (tau-norm)",
                 description="Divides each class's classifier weights by their length to the power tau, chosen on "
                             "validation data.",
                 paper="Kang et al., ICLR 2020, Decoupling Representation and Classifier for Long-Tailed Recognition",
                 params=TauNormParams)
def tau_norm(*, tau, model, x_train, y_train, x_val, y_val, class_counts, seed, batch_size, progress,
             should_stop, first_epoch, info) -> list[dict[str, Any]]:
    val_feats = head_features(model, x_val)
    with torch.no_grad():
        weight, bias = model.head.weight.detach().float(), model.head.bias.detach().float()
        chosen = select_tau(val_feats, y_val, weight, bias, len(class_counts)) if tau is None else tau
        model.head.weight.copy_(tau_normalised_weight(weight, chosen))
        val_logits = model.head(val_feats)
    pred = val_logits.argmax(1)
    bal, recall = balanced_accuracy_t(pred, y_val, len(class_counts))
    return [{"stage": "tau_norm", "epoch": first_epoch + 1, "tau": chosen,
             "val_loss": float(nn.functional.cross_entropy(val_logits, y_val)),
             "val_accuracy": float((pred == y_val).float().mean()), "val_balanced_accuracy": bal,
             "val_recall": [None if math.isnan(r) else float(r) for r in recall.tolist()]}]


def run_stage2(name: str, params: dict | None, **context) -> list[dict[str, Any]]:
    context.setdefault("first_epoch", 0)
    context.setdefault("info", {})
    return STAGE2.create(name, params, **context)


class StageTwo(Stage):
    """The trained network's classifier is re-balanced on its frozen features (any `STAGE2`
    method: cRT, LWS, tau-norm, RCAL); its epochs join the history after the training's."""

    name = "stage 2"

    def applies(self, config: RunConfig) -> bool:
        return config.stage2 is not None

    def after_loop(self, config: RunConfig, net: Network, run: RunHooks) -> None:
        info: dict[str, Any] = {}
        rows = run_stage2(config.stage2.name, config.stage2.params, model=net.model, x_train=net.x_train,
                          y_train=net.y_train, x_val=net.x_val, y_val=net.y_val, class_counts=net.class_counts,
                          seed=config.train.seed, batch_size=config.train.batch_size, progress=run.progress,
                          should_stop=run.should_stop, first_epoch=len(net.history), info=info)
        for row in rows:
            run.record(row, net.history)
        net.trained_prior = info.get("head_prior", net.trained_prior)  # a re-trained head learned another prior
        if "maxnorm_radius" in info:  # weight balancing's bound on the classifier rows, set from training's
            run.info["stage2"] = {"maxnorm_radius": info["maxnorm_radius"]}


STAGE_TWO = StageTwo()
