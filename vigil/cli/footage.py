"""Commands over recorded footage, with no broker: `vigil scan` (one video file) and `vigil eval`
(the dev set)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

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
from vigil.errors import VigilError
from vigil.logs import configure_logging


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
    encoder = create_encoder(encoder_settings(model, device, clip_model, pretrained, checkpoint, precision))
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
        encoder_settings=encoder_settings(model, device, clip_model, pretrained, checkpoint, precision),
        config=load_detector_config(config),
        out_dir=out,
        docs=docs_target(docs, no_docs, quick),
        command=shlex.join(["vigil", "eval", *sys.argv[2:]]),
        echo=typer.echo,
    )
