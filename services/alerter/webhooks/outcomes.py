"""How a delivery ends: the outcome names passed to `observe`, the result `WebhookSender.deliver`
returns, and the dead letter an event becomes when a webhook cannot take it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Outcomes passed to `observe` (one call per event and webhook).
DELIVERED, REJECTED, EXHAUSTED, QUEUE_FULL, CANCELLED = (
    "delivered",  # a 2xx response
    "rejected",  # a permanent failure: a 4xx other than 429, a redirect, an unusable request
    "exhausted",  # still failing (connection, timeout, 429, 5xx) after max_attempts
    "queue_full",  # the dispatcher's queue for this webhook was full; never attempted
    "cancelled",  # the dispatcher closed before the event could be (re)tried
)


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    attempts: int  # requests sent (0: never tried)
    status: int | None  # the last HTTP status, None when no response came back
    error: str | None  # why it failed; None when ok


@dataclass(frozen=True)
class DeadLetter:
    """An event a webhook could not take; `to_dict()` is JSON-ready for the "dead-letters" topic."""

    webhook: str
    url: str  # safe_url: no credentials, query values masked
    event_id: str
    attempts: int
    status: int | None
    error: str
    outcome: str  # rejected, exhausted, queue_full or cancelled
    payload: Mapping[str, Any]
    ts_ms: int  # when it was dead-lettered

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
