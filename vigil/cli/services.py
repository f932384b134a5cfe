"""Commands that run the services: each one alone (`broker`, `ingest`, `detector`, `alerter`, `api`), or
all of them in one process (`up`, and `demo` on built-in footage)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigil.errors import VigilError
from vigil.logs import configure_logging

MetricsPortOption = Annotated[
    int | None, typer.Option("--metrics-port", help="Prometheus /metrics port (0: off; default: config)")
]


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


def broker(
    port: Annotated[int, typer.Option("--port", help="loopback port")] = 19092,
    memory: Annotated[bool, typer.Option("--memory", help="keep the log in memory (gone at stop)")] = False,
) -> None:
    """Run the local Kafka-protocol broker (tansu, loopback only) until Ctrl-C; durable in
    <VIGIL_HOME>/broker unless --memory."""
    from vigil.services.broker import broker_command

    configure_logging(service=True)
    broker_command(port, memory=memory)


def ingest(
    config: Annotated[Path, typer.Option("--config", "-c", help="cameras YAML (see examples/cameras.yaml)")],
    metrics_port: MetricsPortOption = None,
) -> None:
    """Read the configured cameras (RTSP or files) and publish sampled JPEG frames to Kafka."""
    from vigil.services.ingest.service import run_ingest

    configure_logging(service=True)
    run_ingest(config, metrics_port)


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


def api(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML with an `api:` section (see examples/vigil.yaml)"),
    ] = None,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Serve the HTTP API and the operators' console: alerts and their live stream,
    acknowledgements, media, queries, hits, cameras, users, search."""
    from vigil.services.api.service import run_api

    configure_logging(service=True)
    run_api(config, metrics_port)


def up(
    config: Annotated[Path, typer.Option("--config", "-c", help="cameras, detector and queries YAML")] = Path(
        "examples/vigil.yaml"
    ),
    seconds: Annotated[float | None, typer.Option("--seconds", help="stop after this long")] = None,
) -> None:
    """The embedded default: local broker, ingest, detector, alerter, API, Milvus lite; prints hits
    and spoken alerts as they happen."""
    from vigil.services.alerter.config import load_alerter_config
    from vigil.services.common.api_settings import ApiSettings
    from vigil.services.embedded import alert_audio_path, run_embedded
    from vigil.terminal import describe_alert, describe_hit

    configure_logging(service=True)
    if not config.is_file():
        raise VigilError(f"{config}: no such config file")
    alerter_config = load_alerter_config(config)  # its speech cache (run_embedded checks it too)
    api_config = ApiSettings.load(config)
    run_embedded(
        config,
        on_hit=lambda hit: typer.echo(describe_hit(hit)),
        on_alert=lambda alert: typer.echo(describe_alert(alert, alert_audio_path(alert, alerter_config))),
        seconds=seconds,
        on_ready=lambda bootstrap: typer.echo(api_config.describe() or "alerts API off"),
        on_first_admin=typer.echo,  # stdout, once: never the log (stderr)
    )
