"""`vigil queries`: register, list and delete standing queries on Kafka."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from vigil.errors import VigilError

queries_app = typer.Typer(help='Register, list and delete standing queries (on Kafka "queries").')


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
