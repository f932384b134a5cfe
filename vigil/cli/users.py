"""`vigil users` and `vigil tokens`: users, roles and API tokens on Kafka "identities".

They write to the broker directly (like `vigil queries`), so they work from the operator's
machine with VIGIL_KAFKA_* set; every process that serves the API follows the topic and honours
a change within a second. `vigil tokens create` prints the new token alone on stdout (so
`TOKEN=$(vigil tokens create an)` works) and what it is on stderr; it is never shown again.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer

from vigil.errors import VigilError

users_app = typer.Typer(help='Users and their roles (on Kafka "identities").')
tokens_app = typer.Typer(help="API tokens of users: create (shown once), list, revoke.")

RoleOption = Literal["viewer", "operator", "admin"]
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_duration(text: str) -> int:
    """Seconds in "90s", "15m", "12h", "30d" or "2w"."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text.lower())
    if match is None or int(match[1]) == 0:
        raise VigilError(f"--expires {text!r}: expected a positive number and a unit, e.g. 30d, 12h, 15m")
    return int(match[1]) * _UNITS_S[match[2]]


def _directory():
    """The identities of the configured Kafka, loaded, with a producer to change them."""
    from vigil.services.common.identities import IdentityDirectory
    from vigil.services.common.kafka import ResilientProducer, load_kafka_settings

    settings = load_kafka_settings()
    producer = ResilientProducer(settings)
    try:
        directory = IdentityDirectory(settings, producer)
    except BaseException:
        producer.close()
        raise
    directory.load()
    return directory, producer


def _by() -> str:
    import getpass

    return getpass.getuser() or "cli"


def _when(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "-"
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="login: letters, digits, . _ @ -")],
    role: Annotated[RoleOption, typer.Option("--role", help="viewer, operator or admin")],
    display_name: Annotated[str | None, typer.Option("--display-name", help="e.g. their full name")] = None,
) -> None:
    """Add a user, or change an existing one's role (and enable them again)."""
    from pydantic import ValidationError

    from vigil.services.common.contract import describe_validation_error

    directory, producer = _directory()
    try:
        existing = directory.user(name)
        try:
            if existing is None:
                directory.add_user(name, role, display_name, by=_by())
            else:
                directory.change_user(
                    name,
                    role=role,
                    display_name=display_name or existing.display_name,
                    disabled=False,
                    by=_by(),
                )
        except ValidationError as error:
            raise VigilError(f"invalid user: {describe_validation_error(error)}") from None
    finally:
        directory.close()
        producer.close()
    typer.echo(f"{'added' if existing is None else 'changed'} {name} ({role})")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False) -> None:
    """Every user, with their role and whether they are disabled."""
    directory, producer = _directory()
    try:
        users = directory.users()
    finally:
        directory.close()
        producer.close()
    if as_json:
        typer.echo(json.dumps([user.model_dump(mode="json") for user in users], ensure_ascii=False, indent=2))
        return
    for user in users:
        shown = f" ({user.display_name})" if user.display_name else ""
        state = "  disabled" if user.disabled else ""
        typer.echo(f"{user.name}{shown}: {user.role}{state}")


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="the user")]) -> None:
    """Disable a user and revoke their tokens (never the last admin)."""
    directory, producer = _directory()
    try:
        directory.disable_user(name, by=_by())
    finally:
        directory.close()
        producer.close()
    typer.echo(f"disabled {name}; their tokens are revoked")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="the user the token acts as")],
    expires: Annotated[
        str | None, typer.Option("--expires", help="lifetime, e.g. 30d, 12h (default: until revoked)")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="what the token is for")] = None,
) -> None:
    """Create a token for a user and print it, once (stdout); its id and expiry go to stderr."""
    expires_in_s = parse_duration(expires) if expires is not None else None
    directory, producer = _directory()
    try:
        stored, secret = directory.issue_token(name, _by(), label=label, expires_in_s=expires_in_s)
    finally:
        directory.close()
        producer.close()
    typer.echo(
        f"token {stored.token_id} for {name}, expires {_when(stored.expires_ts_ms)}; "
        "shown once, keep it safe:",
        err=True,
    )
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list(
    name: Annotated[str | None, typer.Argument(help="only this user's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """Tokens (ids and metadata; never the tokens themselves)."""
    directory, producer = _directory()
    try:
        if name is not None and directory.user(name) is None:
            raise VigilError(f"no user {name!r}")
        tokens = directory.tokens(name)
    finally:
        directory.close()
        producer.close()
    shown = [token.model_dump(mode="json", exclude={"sha256"}) for token in tokens]
    if as_json:
        typer.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for token in tokens:
        state = "active" if token.live(now_ms) else "expired"
        if token.revoked_ts_ms is not None:
            state = f"revoked {_when(token.revoked_ts_ms)}"
        label = f" {token.label!r}" if token.label else ""
        typer.echo(
            f"{token.token_id}  {token.user}{label}  created {_when(token.created_ts_ms)}"
            f"  expires {_when(token.expires_ts_ms)}  {state}"
        )


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="the token's id (see `vigil tokens list`)")],
) -> None:
    """Revoke a token: every API refuses it within a second."""
    directory, producer = _directory()
    try:
        directory.revoke_token(token_id, by=_by())
    finally:
        directory.close()
        producer.close()
    typer.echo(f"revoked {token_id}")
