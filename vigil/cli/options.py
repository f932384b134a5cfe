"""What the commands share: the encoder options (one spelling, one help text everywhere) and the
encoder settings they make, validated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from vigil.errors import VigilError

EncoderKindOption = Annotated[Literal["clip", "offline"], typer.Option("--model", "-m", help="encoder")]
DeviceOption = Annotated[Literal["auto", "cpu", "cuda"], typer.Option("--device", help="execution device")]
ClipModelOption = Annotated[str, typer.Option("--clip-model", help="open_clip model name")]
PretrainedOption = Annotated[str, typer.Option("--pretrained", help="open_clip pretrained tag")]
CheckpointOption = Annotated[
    Path | None, typer.Option("--checkpoint", help="local CLIP checkpoint file (instead of a tag)")
]
PrecisionOption = Annotated[
    Literal["fp32", "int8", "fp16"], typer.Option("--precision", help="fp16 runs on CUDA only")
]


def encoder_settings(model: str, device: str, clip_model: str, pretrained: str, checkpoint, precision):
    from pydantic import ValidationError

    from vigil.models.registry import EncoderSettings
    from vigil.services.common.contract import describe_validation_error

    try:
        return EncoderSettings.model_validate(
            {
                "kind": model,
                "device": device,
                "clip": {
                    "model": clip_model,
                    "pretrained": pretrained,
                    "checkpoint": checkpoint,
                    "precision": precision,
                    "device": device,
                },
            }
        )
    except ValidationError as error:
        raise VigilError(f"invalid encoder options: {describe_validation_error(error)}") from None
