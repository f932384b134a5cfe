"""What a webhook request carries: the body (compact UTF-8 JSON), the event id, and the
Stripe-style signature over timestamp and body (`sign`), with its check for receivers
(`verify_signature`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

SIGNATURE_HEADER = "X-Vigil-Signature"
EVENT_ID_HEADER = "X-Vigil-Event-Id"
ATTEMPT_HEADER = "X-Vigil-Attempt"
SIGNATURE_VERSION = "v1"

SecretLike = str | bytes | SecretStr


def _key(secret: SecretLike) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def _digest(secret: SecretLike, body: bytes, timestamp: int) -> str:
    return hmac.new(_key(secret), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign(secret: SecretLike, body: bytes, timestamp: int | None = None) -> str:
    """The X-Vigil-Signature value for `body`: "t=<unix seconds>,v1=<hex HMAC-SHA256>"."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={timestamp},{SIGNATURE_VERSION}={_digest(secret, body, timestamp)}"


def verify_signature(
    secret: SecretLike, body: bytes, header: str | None, now: float | None = None, tolerance_s: float = 300
) -> bool:
    """Whether `header` signs exactly `body` with `secret`, at a time within `tolerance_s` of now.

    For receivers (and tests). Constant-time comparison; several v1 entries are accepted (one
    matching is enough), for a sender rotating its secret. Malformed headers are False.
    """
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == SIGNATURE_VERSION:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, body, timestamp).encode("ascii")
    # No early exit: every candidate is compared.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", errors="replace"))
    return matched


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON. Raises TypeError/ValueError for a non-JSON payload."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def check_event_id(event_id: str) -> None:
    """ValueError unless `event_id` can travel in the X-Vigil-Event-Id header."""
    if not (isinstance(event_id, str) and 0 < len(event_id) <= 400 and event_id.isascii()):
        raise ValueError(f"event id must be 1-400 ASCII characters, got {event_id!r}")
    if not event_id.isprintable():  # no CR/LF: it travels in a header
        raise ValueError(f"event id must not contain control characters, got {event_id!r}")
