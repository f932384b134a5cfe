"""What a chaos run is made of: its faults, and what came out of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ADMIN_TOKEN = "chaos-admin-token-0123456789abcdef"
OPERATOR_QUERY = {"query_id": "operator-query", "text": "a red umbrella", "created_by": "operator"}
FAULTS = ("kill:ingest", "kill:detector", "kill:alerter", "kill:broker", "poison", "ack", "query")
POISON_REASONS = ("too_large", "future", "past", "garbage")
DAY_MS = 86_400_000
# Poison frames carry sequence numbers from here: the clean reference leaves them out.
POISON_SEQ_FROM = 10**9


@dataclass(frozen=True)
class Fault:
    at_s: float  # into the stream
    action: str

    def __post_init__(self) -> None:
        if self.action not in FAULTS:
            raise ValueError(f"unknown fault {self.action!r}; one of {', '.join(FAULTS)}")


@dataclass(frozen=True)
class Event:
    query_id: str
    start_s: float
    end_s: float | None


@dataclass
class ChaosRun:
    home: Path
    stream_start_s: float | None = None
    hits: dict = field(default_factory=dict)  # hit id -> its latest HitMessage on "hits"
    alerts: list = field(default_factory=list)  # every AlertMessage record on "alerts"
    dead_letters: list = field(default_factory=list)  # (dlq.reason, dlq.source_topic)
    stored_hits: list = field(default_factory=list)  # HitMessage rows in Milvus, after the run
    faults: list = field(default_factory=list)  # (action, at_s, recovered_s or None)
    acknowledged: str | None = None  # the alert id acknowledged by an `ack` fault
    # Frames (or whole-frame refreshes) the detector shed, by reason, since its last restart:
    # a fault that made it shed changes what it saw, so a moved event is explained here.
    frames_shed: dict = field(default_factory=dict)
    exit_code: int | None = None

    def events(self) -> list[Event]:
        """The stored events, in seconds into the stream, oldest first."""
        origin = self.stream_start_s or 0.0
        return sorted(
            (
                Event(
                    hit.query_id,
                    round(hit.event_start_ts_ms / 1000 - origin, 1),
                    None if hit.end_ts_ms is None else round(hit.end_ts_ms / 1000 - origin, 1),
                )
                for hit in self.stored_hits
            ),
            key=lambda event: (event.start_s, event.query_id),
        )

    def recovery(self, action: str) -> list[float | None]:
        return [recovered for done, _, recovered in self.faults if done == action]
