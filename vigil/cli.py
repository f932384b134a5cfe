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
from vigil.errors import VigilError
from vigil.logs import configure_logging

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
queries_app = typer.Typer(help='Register, list and delete standing queries (on Kafka "queries").')
app.add_typer(queries_app, name="queries")

EncoderKindOption = Annotated[Literal["clip", "offline"], typer.Option("--model", "-m", help="encoder")]
DeviceOption = Annotated[Literal["auto", "cpu", "cuda"], typer.Option("--device", help="execution device")]
ClipModelOption = Annotated[str, typer.Option("--clip-model", help="open_clip model name")]
PretrainedOption = Annotated[str, typer.Option("--pretrained", help="open_clip pretrained tag")]
CheckpointOption = Annotated[
    Path | None, typer.Option("--checkpoint", help="local CLIP checkpoint file (instead of a tag)")
]
MetricsPortOption = Annotated[
    int | None, typer.Option("--metrics-port", help="Prometheus /metrics port (0: off; default: config)")
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
def demo(
    seconds: Annotated[float, typer.Option("--seconds", help="how long to run")] = 62.0,
) -> None:
    """The embedded default, live and offline: real footage over RTSP, standing queries, hits and
    spoken alerts (audio files)."""
    from vigil.demo import run_demo

    configure_logging(service=True)
    outcome = run_demo(seconds)
    if not outcome.ok:
        raise VigilError(f"the demo failed: {'; '.join(outcome.problems)} (see above)")


@app.command()
def broker(
    port: Annotated[int, typer.Option("--port", help="loopback port")] = 19092,
    memory: Annotated[bool, typer.Option("--memory", help="keep the log in memory (gone at stop)")] = False,
) -> None:
    """Run the local Kafka-protocol broker (tansu, loopback only) until Ctrl-C; durable in
    <VIGIL_HOME>/broker unless --memory."""
    from vigil.services.broker import broker_command

    configure_logging(service=True)
    broker_command(port, memory=memory)


@app.command()
def ingest(
    config: Annotated[Path, typer.Option("--config", "-c", help="cameras YAML (see examples/cameras.yaml)")],
    metrics_port: MetricsPortOption = None,
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


@app.command("eval")
def eval_command(
    split: Annotated[
        Literal["tune", "heldout", "all"], typer.Option("--split", help="which split of the dev set")
    ] = "all",
    quick: Annotated[bool, typer.Option("--quick", help="two streams per split (a smoke run)")] = False,
    model: Annotated[
        Literal["offline", "clip", "auto"], typer.Option("--model", "-m", help="encoder")
    ] = "offline",
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML with a `detector:` section (default: none)")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="report folder (default var/evaluation)")] = None,
    docs: Annotated[
        Path | None, typer.Option("--docs", help="update these tables (default docs/EVALUATION.md)")
    ] = None,
    no_docs: Annotated[bool, typer.Option("--no-docs", help="leave the docs alone")] = False,
    device: DeviceOption = "auto",
    clip_model: ClipModelOption = "ViT-B-32",
    pretrained: PretrainedOption = "openai",
    checkpoint: CheckpointOption = None,
    precision: PrecisionOption = "fp32",
) -> None:
    """Evaluate the detector on the dev set (docs/EVALUATION.md): JSON report per split, table."""
    import shlex

    from vigil.evaluation.evaluate import docs_target, evaluate
    from vigil.services.detector.config import load_detector_config

    configure_logging()
    evaluate(
        split=split,
        quick=quick,
        encoder_settings=_encoder_settings(model, device, clip_model, pretrained, checkpoint, precision),
        config=load_detector_config(config),
        out_dir=out,
        docs=docs_target(docs, no_docs, quick),
        command=shlex.join(["vigil", "eval", *sys.argv[2:]]),
        echo=typer.echo,
    )


@app.command()
def detector(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML with a `detector:` section (see examples/vigil.yaml)"),
    ] = None,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Match frames from Kafka against the standing queries; hits to Kafka and Milvus."""
    from vigil.services.detector.service import run_detector

    configure_logging(service=True)
    run_detector(config, metrics_port)


@app.command()
def alerter(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML with an `alerter:` section (see examples/vigil.yaml)"),
    ] = None,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Turn hits from Kafka into spoken alerts: "alerts", webhooks and (optionally) the speaker."""
    from vigil.services.alerter.service import run_alerter

    configure_logging(service=True)
    run_alerter(config, metrics_port)


@app.command()
def up(
    config: Annotated[Path, typer.Option("--config", "-c", help="cameras, detector and queries YAML")] = Path(
        "examples/vigil.yaml"
    ),
    seconds: Annotated[float | None, typer.Option("--seconds", help="stop after this long")] = None,
) -> None:
    """The embedded default: local broker, ingest, detector, alerter, Milvus lite; prints hits and
    spoken alerts as they happen."""
    from vigil.services.alerter.config import load_alerter_config
    from vigil.services.embedded import alert_audio_path, run_embedded
    from vigil.terminal import describe_alert, describe_hit

    configure_logging(service=True)
    if not config.is_file():
        raise VigilError(f"{config}: no such config file")
    alerter_config = load_alerter_config(config)  # its speech cache (run_embedded checks it too)
    run_embedded(
        config,
        on_hit=lambda hit: typer.echo(describe_hit(hit)),
        on_alert=lambda alert: typer.echo(describe_alert(alert, alert_audio_path(alert, alerter_config))),
        seconds=seconds,
        on_ready=lambda bootstrap: typer.echo(alerter_config.api.describe() or "alerts API off"),
    )


def _kafka_settings():
    from vigil.services.common.kafka import load_kafka_settings

    return load_kafka_settings()


@queries_app.command("add")
def queries_add(
    text: Annotated[str, typer.Argument(help='what to look for, e.g. "a person climbing the fence"')],
    query_id: Annotated[str, typer.Option("--id", help="query id (letters, digits, . _ -)")],
    camera: Annotated[
        list[str], typer.Option("--camera", help="only this camera (repeat); default all")
    ] = [],  # noqa: B006
    threshold: Annotated[str, typer.Option("--threshold", help="'auto' or a number in (0, 1)")] = "auto",
    language: Annotated[Literal["auto", "en", "vi"], typer.Option("--language")] = "auto",
    severity: Annotated[Literal["info", "warning", "critical"], typer.Option("--severity")] = "warning",
    disabled: Annotated[bool, typer.Option("--disabled", help="register it switched off")] = False,
) -> None:
    """Add or replace a standing query."""
    import getpass
    import time

    from pydantic import ValidationError

    from vigil.services.common.contract import QueryMessage, describe_validation_error
    from vigil.services.common.kafka import ResilientProducer, publish_query

    try:
        level: float | str = threshold if threshold == "auto" else float(threshold)
        query = QueryMessage.model_validate(
            {
                "query_id": query_id,
                "text": text,
                "language": language,
                "cameras": camera,
                "threshold": level,
                "severity": severity,
                "enabled": not disabled,
                "created_by": getpass.getuser() or "cli",
                "updated_ts_ms": int(time.time() * 1000),
            }
        )
    except ValueError as error:
        reason = describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
        raise VigilError(f"invalid query: {reason}") from None
    settings = _kafka_settings()
    with ResilientProducer(settings) as producer:
        publish_query(producer, settings.topics, query)
    typer.echo(f"registered {query.query_id}: {query.text!r}")


@queries_app.command("delete")
def queries_delete(query_id: Annotated[str, typer.Argument(help="query id")]) -> None:
    """Delete a standing query (its open events are closed)."""
    from vigil.services.common.kafka import QueryTableReader, ResilientProducer, delete_query

    settings = _kafka_settings()
    with QueryTableReader(settings) as reader:
        if query_id not in reader.load():
            raise VigilError(f"no standing query {query_id!r}")
    with ResilientProducer(settings) as producer:
        delete_query(producer, settings.topics, query_id)
    typer.echo(f"deleted {query_id}")


@queries_app.command("list")
def queries_list(as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False) -> None:
    """The standing queries now in force."""
    from vigil.services.common.kafka import QueryTableReader

    with QueryTableReader(_kafka_settings()) as reader:
        table = reader.load()
    queries = sorted(table.snapshot().values(), key=lambda q: q.query_id)
    if as_json:
        typer.echo(json.dumps([q.model_dump(mode="json") for q in queries], ensure_ascii=False, indent=2))
        return
    for q in queries:
        where = ",".join(q.cameras) or "all cameras"
        state = "" if q.enabled else "  (disabled)"
        typer.echo(f"{q.query_id}: {q.text!r}  [{q.language}, {where}, threshold {q.threshold}]{state}")


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
