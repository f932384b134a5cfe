"""Which CLIP to run, as data: an open_clip model name, where its weights come from, and how to run it.

A spec names weights in one of two ways: an open_clip pretrained tag (downloaded by open_clip
itself, so it needs the network once) or a local checkpoint file (works offline). The export of a
spec lives in its own directory under `models_dir()/clip`, named so that two different weight
sources can never share (and silently overwrite) one export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.errors import ModelUnavailableError
from vigil.models.encoder import sha256_file
from vigil.models.onnx_session import Device
from vigil.paths import models_dir

Precision = Literal["fp32", "int8", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8", "fp16")

# Names end up in directory names, so only plain characters: this also refuses open_clip's
# "hf-hub:" / "local-dir:" schemas, which we do not support (use --checkpoint for local weights).
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

# Directory tag of exports made from random weights; they exist for tests and benchmarks only.
RANDOM_INIT_TAG = "random-init"


class ClipSpec(BaseModel):
    """One CLIP configuration: architecture, weights source, precision and device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("ViT-B-32", pattern=_NAME_PATTERN, description="open_clip model name")
    pretrained: str | None = Field(
        "openai", pattern=_NAME_PATTERN, description="open_clip pretrained tag (needs the network once)"
    )
    checkpoint: Path | None = Field(
        None, description="local checkpoint file; takes precedence over `pretrained`"
    )
    precision: Precision = "fp32"
    device: Device = "auto"


def weights_help() -> str:
    """The two ways to give CLIP weights, for every error about missing ones."""
    return (
        "get weights with `--pretrained TAG` while online (open_clip downloads them, e.g. "
        "`vigil models export-clip --pretrained openai`), or `--checkpoint PATH` to a local "
        "checkpoint file"
    )


def checkpoint_tag(checkpoint: Path) -> str:
    """`ckpt-<first 12 hex of sha256>`: names the export after the file's content, not its path."""
    if not checkpoint.is_file():
        raise ModelUnavailableError(
            f"CLIP checkpoint {checkpoint} does not exist or is not a file; {weights_help()}"
        )
    return f"ckpt-{sha256_file(checkpoint)[:12]}"


def weights_tag(spec: ClipSpec, random_init: bool = False) -> str:
    """The part of the export name that says where the weights came from."""
    if random_init:
        return RANDOM_INIT_TAG
    if spec.checkpoint is not None:
        return checkpoint_tag(spec.checkpoint)
    if spec.pretrained:
        return spec.pretrained
    raise ModelUnavailableError(f"CLIP {spec.model}: no weights named; {weights_help()}")


def export_dir(spec: ClipSpec, random_init: bool = False) -> Path:
    """Where the export of `spec` lives: models_dir()/clip/<model>-<pretrained tag | ckpt-sha12>."""
    return models_dir() / "clip" / f"{spec.model}-{weights_tag(spec, random_init)}"
