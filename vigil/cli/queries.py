"""`vigil queries`: register, edit, list and delete standing queries on Kafka, and show who changed
one when. Every change goes to "query-history" too, under the shell's user name (as the API's go
under the token's user; services/api/query_catalog.py)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from vigil.errors import VigilError

queries_app = typer.Typer(help='Register, edit, list and delete standing queries (on Kafka "queries").')


def _kafka_settings():
    from vigil.services.common.kafka import load_kafka_settings

    return load_kafka_settings()


def _user() -> str:
    import getpass

    try:
        return getpass.getuser() or "cli"
    except OSError:  # no user name in the environment or the password database
        return "cli"


def _invalid(error: ValueError) -> VigilError:
    from pydantic import ValidationError

    from vigil.services.common.contract import describe_validation_error

    reason = describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
    return VigilError(f"invalid query: {reason}")


def _change(write) -> None:
    """Run `write(catalog, user)` over a loaded catalog of the queries and their history."""
    from vigil.services.api.query_catalog import QueryCatalog, QueryExistsError, UnknownQueryError
    from vigil.services.common.kafka import ResilientProducer

    settings = _kafka_settings()
    with ResilientProducer(settings) as producer, QueryCatalog(settings, producer) as catalog:
        try:
            write(catalog.load(), _user())
        except (QueryExistsError, UnknownQueryError) as error:
            raise VigilError(str(error)) from None


ArmedOption = Annotated[
    list[str] | None,
    typer.Option("--armed", help='alert only within this window, "[days ]HH:MM-HH:MM" (repeat)'),
]
QuietOption = Annotated[
    list[str] | None,
    typer.Option("--quiet", help='quiet hours: raised but not spoken, "[days ]HH:MM-HH:MM" (repeat)'),
]
TimezoneOption = Annotated[
    str | None, typer.Option("--timezone", help='of the windows, e.g. "Asia/Ho_Chi_Minh" (default UTC)')
]


def _schedule(armed: list[str] | None, quiet: list[str] | None, timezone: str | None, base=None):
    """The query's own schedule from the options over `base` (its current one); None when
    nothing is given and there is no base. Raises ValueError naming what is wrong."""
    from vigil.pipelines.alerting.schedules import TimeWindow, WeeklySchedule

    if not armed and not quiet and timezone is None:
        return base
    fields = base.model_dump() if base is not None else {}
    if armed:
        fields["armed"] = [TimeWindow.parse(window) for window in armed]
    if quiet:
        fields["quiet_hours"] = [TimeWindow.parse(window) for window in quiet]
    if timezone is not None:
        fields["timezone"] = timezone
    return WeeklySchedule.model_validate(fields)


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
    armed: ArmedOption = None,
    quiet: QuietOption = None,
    timezone: TimezoneOption = None,
) -> None:
    """Add or replace a standing query."""
    import time

    from vigil.services.common.contract import QueryMessage

    try:
        level: float | str = threshold if threshold == "auto" else float(threshold)
        schedule = _schedule(armed, quiet, timezone)
        query = QueryMessage.model_validate(
            {
                "query_id": query_id,
                "text": text,
                "language": language,
                "cameras": camera,
                "threshold": level,
                "severity": severity,
                "enabled": not disabled,
                "schedule": schedule,
                "created_by": _user(),
                "updated_ts_ms": int(time.time() * 1000),
            }
        )
    except ValueError as error:
        raise _invalid(error) from None
    _change(lambda catalog, user: catalog.upsert(query, user))
    typer.echo(f"registered {query.query_id}: {query.text!r}")


@queries_app.command("edit")
def queries_edit(
    query_id: Annotated[str, typer.Argument(help="query id")],
    text: Annotated[str | None, typer.Option("--text", help="what to look for instead")] = None,
    camera: Annotated[
        list[str] | None,
        typer.Option("--camera", help="only these cameras (repeat); --all-cameras: every one"),
    ] = None,
    all_cameras: Annotated[bool, typer.Option("--all-cameras", help="watch every camera")] = False,
    threshold: Annotated[str | None, typer.Option("--threshold", help="'auto' or a number in (0, 1)")] = None,
    language: Annotated[Literal["auto", "en", "vi"] | None, typer.Option("--language")] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, typer.Option("--severity")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="switch it on or off")] = None,
    armed: ArmedOption = None,
    quiet: QuietOption = None,
    timezone: TimezoneOption = None,
    always: Annotated[bool, typer.Option("--always", help="drop its schedule: armed at all times")] = False,
) -> None:
    """Change some fields of a standing query; the others stay."""
    import time

    from vigil.services.common.contract import QueryMessage

    changes: dict[str, object] = {
        name: value
        for name, value in (
            ("text", text),
            ("language", language),
            ("severity", severity),
            ("enabled", enabled),
        )
        if value is not None
    }
    if camera or all_cameras:
        changes["cameras"] = [] if all_cameras else camera
    if threshold is not None:
        try:
            changes["threshold"] = threshold if threshold == "auto" else float(threshold)
        except ValueError:
            raise VigilError(
                f"invalid query: threshold must be 'auto' or a number, got {threshold!r}"
            ) from None
    scheduling = always or bool(armed or quiet) or timezone is not None
    if not changes and not scheduling:
        raise VigilError("nothing to change: give --text, --camera, --threshold, --severity, --armed, ...")

    def edit(catalog, user: str) -> None:
        current = catalog.get(query_id)
        try:
            if scheduling:
                base = None if always else current.schedule
                changes["schedule"] = _schedule(armed, quiet, timezone, base)
            edited = QueryMessage.model_validate(
                {**current.model_dump(), **changes, "updated_ts_ms": int(time.time() * 1000)}
            )
        except ValueError as error:
            raise _invalid(error) from None
        catalog.update(edited, user)

    _change(edit)
    typer.echo(f"edited {query_id}: {', '.join(sorted(changes))}")


@queries_app.command("history")
def queries_history(
    query_id: Annotated[str, typer.Argument(help="query id")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """Who changed a standing query, when and to what (oldest first)."""
    from datetime import UTC, datetime

    from vigil.services.api.query_catalog import QueryCatalog, UnknownQueryError
    from vigil.services.common.kafka import ResilientProducer

    settings = _kafka_settings()
    with ResilientProducer(settings) as producer, QueryCatalog(settings, producer) as catalog:
        try:
            changes = catalog.load().history(query_id)
        except UnknownQueryError as error:
            raise VigilError(str(error)) from None
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in changes], ensure_ascii=False, indent=2))
        return
    for change in changes:
        when = datetime.fromtimestamp(change.ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        what = f"  {change.query.text!r} [{change.query.severity}]" if change.query is not None else ""
        typer.echo(f"{when}  {change.action:<8} by {change.by}{what}")


@queries_app.command("delete")
def queries_delete(query_id: Annotated[str, typer.Argument(help="query id")]) -> None:
    """Delete a standing query (its open events are closed)."""
    _change(lambda catalog, user: catalog.delete(query_id, user))
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
        when = f", {q.schedule.describe()}" if q.schedule is not None else ""
        typer.echo(f"{q.query_id}: {q.text!r}  [{q.language}, {where}, threshold {q.threshold}{when}]{state}")
