"""Encoder commands: `vigil zeroshot`, and `vigil models` (list, build, export-clip)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from vigil.cli.options import (
    CheckpointOption,
    ClipModelOption,
    DeviceOption,
    EncoderKindOption,
    PrecisionOption,
    PretrainedOption,
    encoder_settings,
)

models_app = typer.Typer(
    help="List the encoders on this machine (no subcommand), build or export models.",
    invoke_without_command=True,
)


def zeroshot(
    images: Annotated[list[Path], typer.Argument(help="image files to classify")],
    label: Annotated[list[str], typer.Option("--label", "-l", help="a candidate label (repeat)")],
    model: EncoderKindOption = "offline",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON array on stdout")] = False,
    device: DeviceOption = "auto",
    clip_model: ClipModelOption = "ViT-B-32",
    pretrained: PretrainedOption = "openai",
    checkpoint: CheckpointOption = None,
    precision: PrecisionOption = "fp32",
) -> None:
    """Rank the labels for each image by image-text similarity (any language the encoder reads)."""
    from vigil.models.images import load_image
    from vigil.models.registry import create_encoder

    settings = encoder_settings(model, device, clip_model, pretrained, checkpoint, precision)
    pixels = [load_image(path) for path in images]  # fail on a bad file before loading models
    encoder = create_encoder(settings)
    label_vectors = encoder.embed_texts(label)
    image_vectors = encoder.embed_images(pixels)
    results = []
    for path, scores in zip(images, image_vectors @ label_vectors.T, strict=True):
        order = np.argsort(-scores, kind="stable")
        ranked = [{"label": label[i], "score": round(float(scores[i]), 6)} for i in order]
        results.append({"image": str(path), "labels": ranked})
    if as_json:
        typer.echo(json.dumps(results, ensure_ascii=False, indent=2))
        return
    typer.echo(f"encoder: {encoder.info.name} ({', '.join(encoder.info.providers) or 'cpu'})")
    for result in results:
        typer.echo(result["image"])
        for rank, item in enumerate(result["labels"], start=1):
            typer.echo(f"  {rank:>2}. {item['score']:+.4f}  {item['label']}")


@models_app.callback()
def models_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
    device: DeviceOption = "auto",
) -> None:
    """List the encoders available here: source, licence, checksums, execution provider."""
    if ctx.invoked_subcommand is not None:
        return
    from vigil.models.registry import describe_encoders

    statuses = describe_encoders(device=device)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps([s.model_dump(mode="json") for s in statuses], ensure_ascii=False, indent=2))
        return
    for status in statuses:
        if not status.available:
            typer.echo(f"{status.kind}: unavailable: {status.problem}")
            continue
        info = status.info
        typer.echo(f"{status.kind}: {info.name}")
        typer.echo(f"  dimension: {info.dim}")
        typer.echo(f"  source:    {info.source}")
        typer.echo(f"  licence:   {info.licence}")
        typer.echo(f"  provider:  {', '.join(info.providers)}")
        for name, digest in info.checksums.items():
            typer.echo(f"  sha256:    {digest}  {name}")


@models_app.command("build")
def models_build() -> None:
    """Build the offline encoder's ONNX models and label-embedding caches (idempotent)."""
    from vigil.models.offline.build import build_offline_models

    for line in build_offline_models():
        typer.echo(line)


@models_app.command("export-clip")
def models_export_clip(
    clip_model: ClipModelOption = "ViT-B-32",
    pretrained: PretrainedOption = "openai",
    checkpoint: CheckpointOption = None,
    precision: Annotated[
        list[str], typer.Option("--precision", help="precisions to export (repeat): fp32 int8 fp16")
    ] = ["fp32", "int8"],  # noqa: B006 (Typer reads the default, never mutates it)
    out: Annotated[Path | None, typer.Option("--out", help="export directory")] = None,
    random_init: Annotated[
        bool, typer.Option("--random-init", help="random weights: for speed tests only, never results")
    ] = False,
) -> None:
    """Export an open_clip model (pretrained tag while online, or a local checkpoint) to ONNX."""
    from vigil.models.clip.export import export_clip

    settings = encoder_settings("clip", "auto", clip_model, pretrained, checkpoint, "fp32")
    manifest = export_clip(settings.clip, out_dir=out, precisions=tuple(precision), random_init=random_init)
    typer.echo(f"exported: {manifest}")
