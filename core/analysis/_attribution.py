"""Attribution maps: which input values pushed a model towards (or away from) a class.

Every method is a thin wrapper around a captum explainer, registered in `ATTRIBUTIONS`
with its plain-language description, paper, typed parameters and the capabilities pages
need to offer only what applies (`modality`, `needs_cam_layer`, `output`). The maths is
captum's; this module adds batching, device handling and a model left as it was found
(`_attribution_cache` remembers maps on disk; `_feature_importance` sums them per class).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from core.registry import Params, Registry, Seed

__all__ = [
    "ATTRIBUTIONS",
    "AttributionMethod",
    "attribute",
    "attribution_output_shape",
    "cam_layer_of",
    "list_attributions",
]

ATTRIBUTIONS: Registry[AttributionMethod] = Registry("attribution method")

ProgressFn = Callable[[int, int], None]

# Upper bound on the rows captum pushes through the model at once (IG steps, occlusion
# perturbations, noise samples), so memory stays flat whatever the method's parameters.
_WORK_ROWS = 256


def _captum():
    """captum's explainers, imported when a map is drawn: importing captum (and the
    matplotlib it loads) costs 2-3 s, which every page, worker and CLI command that never
    draws a map would otherwise pay at start."""
    import captum.attr

    return captum.attr


# ---------------------------------------------------------------- parameter schemas


class SmoothGradParams(Params):
    smoothgrad: bool = Field(False, title="Smooth over noisy copies",
                             description="Average over noisy copies of the input (SmoothGrad, Smilkov et al. 2017) "
                                         "for a less speckled map.")
    nt_samples: int = Field(8, ge=1, le=200, title="Noisy copies",
                            description="Noisy copies per input when smoothing is on.")
    nt_stdevs: float = Field(0.1, gt=0, le=10, title="Noise size",
                             description="Standard deviation of the noise, in input units (images lie in [0, 1], "
                                         "tables are standardised).")
    seed: Seed = Field(0, title="Random seed",
                      description="Seed of the noise, so the same settings give the same map.")


class IntegratedGradientsParams(SmoothGradParams):
    n_steps: int = Field(50, ge=2, le=1000, title="Steps along the path",
                         description="Points on the path from an all-zero input to this one; more is more exact, "
                                     "and slower.")


class SaliencyParams(SmoothGradParams):
    absolute: bool = Field(True, title="Size only",
                           description="Show how strongly each value matters (the paper's saliency); off also "
                                       "shows whether it raises or lowers the score.")


class GradientShapParams(Params):
    n_samples: int = Field(20, ge=1, le=500, title="Points per input",
                           description="Random points between baseline and input, per input.")
    stdevs: float = Field(0.09, ge=0, le=10, title="Noise size",
                          description="Noise added to each of those points, in input units.")
    n_baselines: int = Field(8, ge=1, le=256, title="Baselines",
                             description="Starting inputs drawn: zeros plus small noise.")
    baseline_noise: float = Field(0.01, ge=0, le=1, title="Baseline noise",
                                  description="Standard deviation of the noise on the zero baselines.")
    seed: Seed = Field(0, title="Random seed",
                      description="Seed of baselines and noise, so the same settings give the same map.")


class OcclusionParams(Params):
    window: int | None = Field(None, ge=1, le=512, title="Window size",
                               description="Side of the blanked square (images) or run of features (tables); "
                                           "empty: about 1/8 of the image side, 1 feature for tables.")
    stride: int | None = Field(None, ge=1, le=512, title="Window step",
                               description="Step between windows; empty: half the window (at least 1).")
    baseline: float = Field(0.0, title="Blank value",
                            description="Value written into the blanked window.")


class LayerGradCamParams(Params):
    relu: bool = Field(True, title="Only what raises the score",
                       description="Keep only regions that raise the class score, as in the paper.")
    upsample: Literal["bilinear", "nearest"] = Field("bilinear", title="Stretching",
                                                     description="How the coarse map is stretched to the image "
                                                                 "size.",
                                                     json_schema_extra={"choice_labels": {"bilinear": "smooth",
                                                                                          "nearest": "blocky"}})


class FeatureAblationParams(Params):
    baseline: float = Field(0.0, title="Replacement value",
                            description="Value that replaces each feature in turn (0 is the average of a "
                                        "standardised table).")


# ---------------------------------------------------------------- methods


class AttributionMethod:
    """One captum explainer bound to a model. `attribute` checks, `_attribute` works;
    both take one batch already on the model's device."""

    def __init__(self, *, model: nn.Module, **params: Any):
        self.model = model
        self.params = params

    def attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        if targets.ndim != 1 or targets.shape[0] != inputs.shape[0]:
            raise ValueError(f"need one target per input: {inputs.shape[0]} inputs, targets of shape {tuple(targets.shape)}")
        with _seeded(self.params.get("seed"), inputs.device):
            return self._attribute(inputs, targets)

    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError


class _GradientMethod(AttributionMethod):
    """A gradient method that SmoothGrad may wrap in captum's NoiseTunnel."""

    def _explainer(self) -> Any:
        raise NotImplementedError

    def _extra_kwargs(self, inputs: Tensor) -> dict[str, Any]:
        return {}

    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        explainer, kwargs = self._explainer(), self._extra_kwargs(inputs)
        inputs = inputs.detach().requires_grad_()
        if not self.params.get("smoothgrad"):
            return explainer.attribute(inputs, target=targets, **kwargs)
        return _captum().NoiseTunnel(explainer).attribute(
            inputs, nt_type="smoothgrad", nt_samples=self.params["nt_samples"],
            nt_samples_batch_size=max(1, _WORK_ROWS // max(1, inputs.shape[0])),
            stdevs=self.params["nt_stdevs"], target=targets, **kwargs,
        )


_GRADIENT_CAPS = dict(modality=("tabular", "image"), needs_cam_layer=False, output="input")


@ATTRIBUTIONS.register(
    "integrated_gradients", display="Integrated gradients",
    description="Adds up the gradient along a straight path from an all-zero input to this one; the values sum to the score change.",
    paper="Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks",
    params=IntegratedGradientsParams, **_GRADIENT_CAPS,
)
class IntegratedGradientsMethod(_GradientMethod):
    def _explainer(self) -> Any:
        return _captum().IntegratedGradients(self.model)

    def _extra_kwargs(self, inputs: Tensor) -> dict[str, Any]:
        return {"baselines": torch.zeros_like(inputs), "n_steps": self.params["n_steps"],
                "internal_batch_size": max(inputs.shape[0], _WORK_ROWS)}


@ATTRIBUTIONS.register(
    "saliency", display="Saliency (gradient)",
    description="How much the class score reacts to a tiny change in each input value (the raw gradient).",
    paper="Simonyan et al. 2014, Deep Inside Convolutional Networks: Visualising Image Classification Models and Saliency Maps",
    params=SaliencyParams, **_GRADIENT_CAPS,
)
class SaliencyMethod(_GradientMethod):
    def _explainer(self) -> Any:
        return _captum().Saliency(self.model)

    def _extra_kwargs(self, inputs: Tensor) -> dict[str, Any]:
        return {"abs": self.params["absolute"]}


@ATTRIBUTIONS.register(
    "input_x_gradient", display="Input × gradient",
    description="Gradient times input: sensitivity weighted by how large each input value is.",
    paper="Shrikumar et al. 2016, Not Just a Black Box: Learning Important Features Through Propagating Activation Differences",
    params=SmoothGradParams, **_GRADIENT_CAPS,
)
class InputXGradientMethod(_GradientMethod):
    def _explainer(self) -> Any:
        return _captum().InputXGradient(self.model)


@ATTRIBUTIONS.register(
    "gradient_shap", display="GradientSHAP",
    description="Averages gradients over noisy points between near-zero baselines and the input; an estimate of SHAP values.",
    paper="Lundberg & Lee 2017, A Unified Approach to Interpreting Model Predictions",
    params=GradientShapParams, **_GRADIENT_CAPS,
)
class GradientShapMethod(AttributionMethod):
    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        p = self.params
        # Baselines come from their own generator so they do not depend on the batch.
        generator = torch.Generator().manual_seed(p["seed"])
        noise = torch.randn((p["n_baselines"], *inputs.shape[1:]), generator=generator)
        baselines = (noise * p["baseline_noise"]).to(device=inputs.device, dtype=inputs.dtype)
        explainer, chunk = _captum().GradientShap(self.model), max(1, _WORK_ROWS // p["n_samples"])
        return torch.cat([
            explainer.attribute(inputs[i:i + chunk], baselines=baselines, n_samples=p["n_samples"],
                                stdevs=p["stdevs"], target=targets[i:i + chunk])
            for i in range(0, inputs.shape[0], chunk)
        ])


@ATTRIBUTIONS.register(
    "occlusion", display="Occlusion",
    description="How much the class score drops when a small window of the input is blanked out; slow, but needs no gradients.",
    paper="Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks",
    params=OcclusionParams, modality=("tabular", "image"), needs_cam_layer=False, output="input",
)
class OcclusionMethod(AttributionMethod):
    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        window_shape, strides = _occlusion_window(tuple(inputs.shape[1:]), self.params["window"], self.params["stride"])
        n_windows = int(np.prod([(size - w) // s + 1 for size, w, s in zip(inputs.shape[1:], window_shape, strides)]))
        return _captum().Occlusion(self.model).attribute(
            inputs, sliding_window_shapes=window_shape, strides=strides, baselines=self.params["baseline"],
            target=targets, perturbations_per_eval=_perturbations_per_eval(inputs, n_windows),
        )


def _perturbations_per_eval(inputs: Tensor, n_perturbations: int) -> int:
    """Perturbed copies per forward pass. Tables get one, so every pass has the original's
    batch shape and a feature the model ignores scores exactly 0 (a bigger batch may pick
    another matmul kernel and leave 1e-8 noise); images, where passes are costly, are
    batched up to `_WORK_ROWS` rows."""
    if inputs.ndim == 2:
        return 1
    return max(1, min(n_perturbations, _WORK_ROWS // inputs.shape[0]))


def _occlusion_window(sample_shape: tuple[int, ...], window: int | None, stride: int | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Captum window and strides: a square over all channels for images, a run of features
    for tables. The image default (~1/8 of the side) keeps a digit's stroke or a lesion
    larger than one window while needing only ~200 evaluations."""
    if len(sample_shape) == 1:
        w, s = window or 1, stride or 1
        if w > sample_shape[0]:
            raise ValueError(f"occlusion window {w} is wider than the {sample_shape[0]} features")
        return (w,), (s,)
    channels, height, width = sample_shape
    w = window or max(2, min(height, width) // 8)
    s = stride or max(1, w // 2)
    if w > min(height, width):
        raise ValueError(f"occlusion window {w} is larger than the {height}x{width} image")
    return (channels, w, w), (channels, s, s)


@ATTRIBUTIONS.register(
    "layer_grad_cam", display="Grad-CAM",
    description="Where the last convolution block looked, weighted by how much it raised the class score; coarse, stretched to the image.",
    paper="Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization",
    params=LayerGradCamParams, modality=("image",), needs_cam_layer=True, output="spatial_map",
)
class LayerGradCamMethod(AttributionMethod):
    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        layer = cam_layer_of(self.model)
        if layer is None:
            raise ValueError("layer_grad_cam needs a convnet with a `cam_layer`; this model has none")
        inputs = inputs.detach().requires_grad_()  # the layer output must carry a gradient
        captum = _captum()
        coarse = captum.LayerGradCam(self.model, layer).attribute(inputs, target=targets, relu_attributions=self.params["relu"])
        return captum.LayerAttribution.interpolate(coarse, tuple(inputs.shape[-2:]), interpolate_mode=self.params["upsample"])


@ATTRIBUTIONS.register(
    "feature_ablation", display="Feature ablation",
    description="How much the class score changes when each feature in turn is replaced by a baseline value.",
    paper="Kokhlikyan et al. 2020, Captum: A Unified and Generic Model Interpretability Library for PyTorch",
    params=FeatureAblationParams, modality=("tabular",), needs_cam_layer=False, output="input",
)
class FeatureAblationMethod(AttributionMethod):
    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        return _captum().FeatureAblation(self.model).attribute(
            inputs, baselines=self.params["baseline"], target=targets,
            perturbations_per_eval=_perturbations_per_eval(inputs, inputs.shape[1]),
        )


# ---------------------------------------------------------------- public API


def list_attributions(modality: str | None = None, *, model: nn.Module | None = None) -> list[str]:
    """Method names that apply to `modality` ("tabular"/"image") and, when given, `model`
    (Grad-CAM needs a `cam_layer`), so a page offers only what will run."""
    names = []
    for info in ATTRIBUTIONS.infos():
        if modality is not None and modality not in info.capabilities["modality"]:
            continue
        if model is not None and info.capabilities["needs_cam_layer"] and cam_layer_of(model) is None:
            continue
        names.append(info.name)
    return names


def cam_layer_of(model: nn.Module) -> nn.Module | None:
    """The model's `cam_layer`. A submodule assigned in `__init__` lands in `_modules`,
    where a class-level `cam_layer = None` default would hide it from plain attribute
    lookup, so both places are checked."""
    layer = getattr(model, "cam_layer", None)
    if layer is None:
        layer = getattr(model, "_modules", {}).get("cam_layer")
    return layer if isinstance(layer, nn.Module) else None


def attribution_output_shape(method: str, input_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of one sample's attribution: the input's, or (1,H,W) for spatial maps."""
    shape = tuple(int(s) for s in input_shape)
    if ATTRIBUTIONS.info(method).capabilities["output"] == "spatial_map":
        return (1, *shape[-2:])
    return shape


def attribute(
    model: nn.Module,
    inputs: np.ndarray | Tensor,
    *,
    method: str,
    targets: Sequence[int] | int | np.ndarray | Tensor,
    params: dict | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Attributions of `inputs` ((N,F) table or (N,C,H,W) images) towards the logit of
    each sample's target class, as float32 with the inputs' shape ((N,1,H,W) for Grad-CAM).

    The model is borrowed: for the call it is moved to `device`, put in eval mode (dropout
    and batch statistics would otherwise change the map) and its parameters are frozen so
    no gradient lands in them; all three are restored afterwards. `progress(done, total)`
    is called after every batch with sample counts.
    """
    info = ATTRIBUTIONS.info(method)
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, Tensor) else inputs).detach()
    modality = {2: "tabular", 4: "image"}.get(x.ndim)
    if modality is None:
        raise ValueError(f"inputs must be (N,F) tables or (N,C,H,W) images; got shape {tuple(x.shape)}")
    if modality not in info.capabilities["modality"]:
        raise ValueError(f"{method} works on {' or '.join(info.capabilities['modality'])} data, not {modality}; "
                         f"choose one of: {', '.join(list_attributions(modality, model=model))}")
    if info.capabilities["needs_cam_layer"] and cam_layer_of(model) is None:
        raise ValueError(f"{method} needs a convnet with a `cam_layer`; choose one of: {', '.join(list_attributions(modality, model=model))}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = x.shape[0]
    target_tensor = _target_tensor(targets, n, _num_classes(model))
    explainer = ATTRIBUTIONS.create(method, params, model=model)
    out = np.empty((n, *attribution_output_shape(method, x.shape[1:])), dtype=np.float32)

    with _borrowed(model, torch.device(device)) as dtype, torch.inference_mode(False), torch.enable_grad():
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            batch = x[start:stop].to(device=device, dtype=dtype)
            result = explainer.attribute(batch, target_tensor[start:stop].to(device))
            out[start:stop] = result.detach().float().cpu().numpy().reshape(out[start:stop].shape)
            if progress is not None:
                progress(stop, n)
    return out


# ---------------------------------------------------------------- helpers


def _num_classes(model: nn.Module) -> int | None:
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return head.out_features
    if isinstance(model, nn.Linear):
        return model.out_features
    return None


def _target_tensor(targets: Any, n: int, num_classes: int | None) -> Tensor:
    if isinstance(targets, (int, np.integer)):
        t = torch.full((n,), int(targets), dtype=torch.long)
    else:
        t = torch.as_tensor(np.asarray(targets.cpu() if isinstance(targets, Tensor) else targets), dtype=torch.long).reshape(-1)
        if t.shape[0] != n:
            raise ValueError(f"need one target per input: {n} inputs, {t.shape[0]} targets")
    if n and (t.min() < 0 or (num_classes is not None and t.max() >= num_classes)):
        raise ValueError(f"targets must lie in [0, {num_classes if num_classes is not None else 'num_classes'})")
    return t


@contextmanager
def _borrowed(model: nn.Module, device: torch.device) -> Iterator[torch.dtype]:
    """Model on `device`, in eval mode, parameters frozen; everything restored after."""
    was_training = model.training
    first = next(model.parameters(), None)
    home = first.device if first is not None else device
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    requires = [p.requires_grad for p in model.parameters()]
    try:
        model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        yield dtype
    finally:
        for p, flag in zip(model.parameters(), requires):
            p.requires_grad_(flag)
        model.train(was_training).to(home)


@contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's generators for one batch without disturbing the caller's stream."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    numpy_state = np.random.get_state()  # captum's GradientShap draws from numpy's global stream
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            np.random.seed(seed)
            yield
    finally:
        np.random.set_state(numpy_state)
