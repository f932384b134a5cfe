"""What a new version of an alert's record changed, for a mirror of the alerter's book (pure).

    mirror = AlertMirror[AlertMessage]()
    mirror.load(record)                        # at start, reading "alert-state" to its end: no changes
    mirror.apply(alert_id, record)             # then each new record: ["raised"], ["acknowledged"], ...
    mirror.apply(alert_id, None)               # a tombstone (retention forgot it): [] and gone

The alerter writes one record per alert to "alert-state" at each change (raised, ended,
acknowledged); a process that follows the topic (the API) tells its clients what happened by
comparing the record with the one it had: a new alert was "raised", a record newly acknowledged
was "acknowledged", newly given an end was "ended". A record that repeats the one held (a replay,
the alerter's at-least-once writes) changed nothing. Should the follower have missed an
intermediate version, every change between the two is reported, in the order they happen.
"""

from __future__ import annotations

from typing import Generic, Literal

from vigil.pipelines.alert_book import Alert, AlertBook, AlertRecord

ChangeKind = Literal["raised", "acknowledged", "ended"]


def alert_changes(before: AlertRecord[Alert] | None, after: AlertRecord[Alert]) -> list[ChangeKind]:
    """What `after` changed of `before` (None: the alert was unknown)."""
    if before is None:
        return ["raised"]
    changes: list[ChangeKind] = []
    if after.end_ts_ms is not None and before.end_ts_ms is None:
        changes.append("ended")
    if after.status == "acknowledged" and before.status != "acknowledged":
        changes.append("acknowledged")
    return changes


class AlertMirror(Generic[Alert]):
    """A read-only copy of the alerter's book, kept from its records. Not thread-safe: the
    service serialises access."""

    def __init__(self) -> None:
        self.book = AlertBook[Alert]()

    def load(self, alert_id: str, record: AlertRecord[Alert] | None) -> None:
        """Take a record (None: deleted) as the state to start from: nothing to report."""
        if record is None:
            self.book.discard(alert_id)
        else:
            self.book.add(record)

    def apply(self, alert_id: str, record: AlertRecord[Alert] | None) -> list[ChangeKind]:
        """Take a new record (None: deleted); what it changed."""
        before = self.book.get(alert_id) if alert_id in self.book else None
        self.load(alert_id, record)
        if record is None:
            return []
        return alert_changes(before, record)
