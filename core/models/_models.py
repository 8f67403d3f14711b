"""Model registry. Every model is features -> linear head, so geometry analyses and
classifier re-balancing (cRT, LWS, tau-norm) can reach the penultimate layer and the head.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from core.registry import Params, Registry

__all__ = ["MODELS", "Classifier", "create_model", "list_models"]

MODELS: Registry[nn.Module] = Registry("model")


class Classifier(nn.Module):
    """`forward(x) = head(forward_features(x))`; `cam_layer` is the last conv block (or None)."""

    def __init__(self, feature_dim: int, num_classes: int):
        super().__init__()
        self.feature_dim = feature_dim
        self.head = nn.Linear(feature_dim, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))

    @property
    def cam_layer(self) -> nn.Module | None:
        """The layer Grad-CAM reads (a property, so it is not registered twice)."""
        return None


class MlpParams(Params):
    hidden: int = Field(128, ge=4, le=4096, title="Units per layer",
                        description="Width of each hidden layer.")
    depth: int = Field(2, ge=1, le=8, title="Hidden layers",
                       description="Number of hidden layers.")
    dropout: float = Field(0.0, ge=0, lt=1, title="Dropout",
                           description="Share of units switched off at random while training, against "
                                       "over-fitting.")


@MODELS.register("mlp", display="Multi-layer perceptron (MLP)",
                 description="A plain network of fully connected layers, for tables (images are flattened).",
                 params=MlpParams, modality=("tabular", "image"))
class Mlp(Classifier):
    def __init__(self, *, hidden: int, depth: int, dropout: float, input_shape, num_classes: int):
        super().__init__(hidden, num_classes)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.body = nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x)


@MODELS.register("linear", display="Linear model (softmax regression)",
                 description="One weight per feature and class, no hidden layer: for word counts each weight is a "
                             "word's pull towards a class, so attributions are exact.",
                 paper="Cox 1958, The regression analysis of binary sequences (logistic regression)",
                 modality=("tabular",))
class Linear(Classifier):
    """Features are the inputs themselves, so `head` is the whole model: trained with any
    loss, sampler or two-stage fix like the other networks."""

    def __init__(self, *, input_shape, num_classes: int):
        super().__init__(math.prod(input_shape), num_classes)
        self.flatten = nn.Flatten()

    def forward_features(self, x: Tensor) -> Tensor:
        return self.flatten(x)


class SmallCnnParams(Params):
    width: int = Field(32, ge=4, le=256, title="Width (channels)",
                       description="Channels of the first convolution block (doubled in the second).")


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


@MODELS.register("small_cnn", display="Small convolutional network",
                 description="Three small convolution blocks: for 8x8 to 32x32 images.",
                 params=SmallCnnParams, modality=("image",))
class SmallCnn(Classifier):
    def __init__(self, *, width: int, input_shape, num_classes: int):
        super().__init__(4 * width, num_classes)
        channels = input_shape[0]
        self.block1 = nn.Sequential(_conv_bn(channels, width), nn.MaxPool2d(2) if min(input_shape[1:]) >= 8 else nn.Identity())
        self.block2 = nn.Sequential(_conv_bn(width, 2 * width), nn.MaxPool2d(2) if min(input_shape[1:]) >= 16 else nn.Identity())
        self.block3 = _conv_bn(2 * width, 4 * width)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward_features(self, x: Tensor) -> Tensor:
        return self.pool(self.block3(self.block2(self.block1(x))))

    @property
    def cam_layer(self) -> nn.Module:
        return self.block3


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet32Params(Params):
    width: int = Field(16, ge=4, le=128, title="Width (channels)",
                       description="Channels of the first stage (x2 and x4 in the later ones).")


@MODELS.register("resnet32", display="ResNet-32",
                 description="The deep residual network (3 stages of 5 blocks) the long-tail papers use on CIFAR "
                             "images.",
                 paper="He et al. 2016, Deep Residual Learning; the long-tail papers' CIFAR backbone",
                 params=ResNet32Params, modality=("image",))
class ResNet32(Classifier):
    def __init__(self, *, width: int, input_shape, num_classes: int, blocks_per_stage: int = 5):
        super().__init__(4 * width, num_classes)
        self.stem = _conv_bn(input_shape[0], width)
        stages, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks_per_stage):
                stages.append(BasicBlock(cin, cout, 2 if (b == 0 and i > 0) else 1))
                cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: Tensor) -> Tensor:
        return self.pool(self.stages(self.stem(x)))

    @property
    def cam_layer(self) -> nn.Module:
        return self.stages[-1]


def create_model(name: str, params: dict | None = None, *, input_shape, num_classes: int) -> Classifier:
    info = MODELS.info(name)
    if info.capabilities.get("family") == "baseline":
        raise ValueError(f"{name!r} is a table baseline (scikit-learn), not a network; fit it with create_baseline")
    modality = "image" if len(input_shape) == 3 else "tabular"
    if modality not in info.capabilities.get("modality", (modality,)):
        raise ValueError(f"model {name!r} needs {' or '.join(info.capabilities['modality'])} data; "
                         f"this dataset is {modality}. Choose one of: "
                         f"{', '.join(n for n in MODELS.names() if modality in MODELS.info(n).capabilities['modality'])}")
    return MODELS.create(name, params, input_shape=tuple(input_shape), num_classes=num_classes)


def list_models() -> list[str]:
    return MODELS.names()
