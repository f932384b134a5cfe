"""The `vigil` command line (Typer). Commands parse arguments and print; the work lives in
models/, pipelines/ and services/. User mistakes end as one line on stderr, exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import typer

from vigil import __version__
from vigil.logs import configure_logging
from vigil.models.errors import VigilError

app = typer.Typer(
    help="Vigil: real-time surveillance event detection against standing natural-language queries.",
    no_args_is_help=True,
    add_completion=False,
    # Locals in tracebacks could print credentials from settings.
    pretty_exceptions_show_locals=False,
)
models_app = typer.Typer(
    help="List the encoders on this machine (no subcommand), build or export models.",
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")

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


def _encoder_settings(model: str, device: str, clip_model: str, pretrained: str, checkpoint, precision):
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


@app.command()
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

    settings = _encoder_settings(model, device, clip_model, pretrained, checkpoint, precision)
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

    settings = _encoder_settings("clip", "auto", clip_model, pretrained, checkpoint, "fp32")
    manifest = export_clip(settings.clip, out_dir=out, precisions=tuple(precision), random_init=random_init)
    typer.echo(f"exported: {manifest}")


@app.command()
def demo() -> None:
    """The main job offline: rank English and Vietnamese descriptions of real photos."""
    from vigil.demo import run_demo

    run_demo()


@app.command()
def broker(port: Annotated[int, typer.Option("--port", help="loopback port")] = 19092) -> None:
    """Run the local Kafka-protocol broker (tansu, in memory, loopback only) until Ctrl-C."""
    from vigil.services.broker import broker_command

    configure_logging(service=True)
    broker_command(port)


@app.command()
def ingest(
    config: Annotated[Path, typer.Option("--config", "-c", help="cameras YAML (see examples/cameras.yaml)")],
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Prometheus /metrics port (0: off; default: config)")
    ] = None,
) -> None:
    """Read the configured cameras (RTSP or files) and publish sampled JPEG frames to Kafka."""
    from vigil.services.ingest.service import run_ingest

    configure_logging(service=True)
    run_ingest(config, metrics_port)


@app.command()
def scan(
    video: Annotated[Path, typer.Argument(help="recorded video file")],
    query: Annotated[list[str], typer.Option("--query", "-q", help="a standing query (repeat)")],
    model: EncoderKindOption = "offline",
    fps: Annotated[float, typer.Option("--fps", help="frames per second of video to look at")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per event per line")] = False,
    threshold: Annotated[
        str, typer.Option("--threshold", help="'auto' or a calibrated score in (0, 1)")
    ] = "auto",
    device: DeviceOption = "auto",
    clip_model: ClipModelOption = "ViT-B-32",
    pretrained: PretrainedOption = "openai",
    checkpoint: CheckpointOption = None,
    precision: PrecisionOption = "fp32",
) -> None:
    """Find the events of standing queries in a recorded file (no broker); progress on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from vigil.models.registry import create_encoder
    from vigil.pipelines.calibration import resolve_threshold
    from vigil.pipelines.scan import ScanSettings
    from vigil.services.scan import scan_video

    if not video.is_file():
        raise VigilError(f"{video}: no such file")
    try:
        level: float | str = threshold if threshold == "auto" else float(threshold)
        resolve_threshold(level)
    except ValueError:
        raise VigilError(f"--threshold must be 'auto' or a number in (0, 1), got {threshold!r}") from None
    encoder = create_encoder(_encoder_settings(model, device, clip_model, pretrained, checkpoint, precision))
    console = Console(stderr=True)
    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}% ({task.completed:.0f} s of video)"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("scan", total=None)

        def progress(done_s: float, total_s: float | None) -> None:
            bar.update(task, completed=done_s, total=total_s)

        result = scan_video(
            video, query, encoder, fps=fps, settings=ScanSettings(threshold=level), progress=progress
        )
    if as_json:
        for event in result.events:
            typer.echo(json.dumps(event.as_json(), ensure_ascii=False))
        return
    typer.echo(
        f"encoder: {encoder.info.name}; {result.frames_sampled} frames over {result.duration_s:.1f} s "
        f"at {fps:g} frames/s; {len(result.events)} event(s)"
    )
    if result.events:
        typer.echo(f"{'start':>8} {'end':>8} {'peak':>8} {'score':>6}  query")
    for event in result.events:
        row = event.as_json()
        typer.echo(
            f"{row['start_s']:>7.1f}s {row['end_s']:>7.1f}s {row['peak_s']:>7.1f}s "
            f"{row['score']:>6.3f}  {row['query']}"
        )


@app.command()
def version() -> None:
    """Print Vigil's version."""
    typer.echo(__version__)


def main() -> None:
    configure_logging()
    try:
        app()
    except VigilError as error:
        typer.echo(f"vigil: error: {error}", err=True)
        sys.exit(2)
