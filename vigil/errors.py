"""Errors a user can cause or fix. The CLI prints them as one clear line (no stack trace)."""

from __future__ import annotations

from pydantic import ValidationError


class VigilError(Exception):
    """Base class: the message names what was wrong and, where possible, how to fix it."""


class BadImageError(VigilError):
    """An image that cannot be embedded: empty, unreadable, truncated, wrong shape or dtype."""


class BadTextError(VigilError):
    """A text that cannot be embedded (e.g. empty after stripping whitespace)."""


class ModelUnavailableError(VigilError):
    """Weights or an exported model are missing; the message names every way to provide them."""


def describe_validation_error(error: ValidationError, whole: str = "message") -> str:
    """One line naming every bad field and what was wrong with it, never the value sent (it may
    be a secret or a digest): 'ts_ms: Field required; width: ...'. `whole` names an error of the
    value as a whole (no field)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or whole}: {item['msg']}" for item in error.errors()
    )
