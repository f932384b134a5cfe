"""The API's read-only mirror of the alerter's book, and the hits it lists, followed from Kafka.

    book = MirroredAlerts(state_log, feed, hits_kept=10_000)
    book.take_alert_record(record, publish=False)   # loading "alert-state" to its end
    book.loaded.set()
    book.take_alert_record(record)                  # then each new record: the change on `feed`
    book.take_hit(record)                           # "hits": the newest `hits_kept`

The alerter owns the book and writes each alert's record to "alert-state" as it changes
(services/alerter/state.py); this copy is what the API serves and what an acknowledgement is
checked against. What a new record changed (raised, acknowledged, ended) is decided in
pipelines/alert_changes.py. Filled by the service's loop, read by the HTTP handlers: every
access holds one lock.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Literal

from pydantic import ValidationError

from vigil.pipelines.alert_book import AlertRecord, AlertStatus, alert_id_for
from vigil.pipelines.alert_changes import AlertMirror
from vigil.pipelines.hit_log import HitLog
from vigil.services.api.feed import AlertFeed
from vigil.services.api.hits import SeenHit
from vigil.services.common.contract import (
    AlertMessage,
    BadMessageError,
    HitMessage,
    QueryMessage,
    decode_json,
)
from vigil.services.common.kafka import KafkaRecord
from vigil.services.common.state_log import ALERT_RECORD_PREFIX, GroupStateLog

log = logging.getLogger(__name__)


class MirroredAlerts:
    def __init__(self, state_log: GroupStateLog, feed: AlertFeed, hits_kept: int) -> None:
        self.state_log = state_log
        self.feed = feed
        self.loaded = threading.Event()  # "alert-state" read to its end once: /readyz
        self._mirror = AlertMirror[AlertMessage]()
        self._hit_log = HitLog[HitMessage](hits_kept)
        self._lock = threading.RLock()

    # --- from the service's loop ---------------------------------------------------------

    def take_alert_record(self, record: KafkaRecord, *, publish: bool = True) -> None:
        """One record of "alert-state": an alert record of the followed group changes the book
        (and, with `publish`, is told on the feed); anything else is skipped."""
        name = self.state_log.name_of(record.key)
        if name is None or not name.startswith(ALERT_RECORD_PREFIX):
            return  # another group's, or the policy's memory
        alert_id = name[len(ALERT_RECORD_PREFIX) :]
        alert: AlertRecord[AlertMessage] | None = None
        if record.value is not None:
            try:
                alert = AlertRecord[AlertMessage].from_state(json.loads(record.value))
            except (ValueError, ValidationError) as error:
                log.warning("skipped an unreadable alert record %r: %s", name, error)
                return
        with self._lock:
            if not publish or alert is None:
                self._mirror.load(alert_id, alert)  # a tombstone (retention) is told to no one
                return
            for change in self._mirror.apply(alert_id, alert):
                self.feed.publish(change, alert)

    def take_hit(self, record: KafkaRecord) -> None:
        """One record of "hits"; one that does not decode is the alerter's to dead-letter."""
        try:
            hit = decode_json(HitMessage, record.value)
        except BadMessageError:
            return
        with self._lock:
            self._hit_log.add(hit)

    # --- for the HTTP handlers -----------------------------------------------------------

    def records(
        self, status: AlertStatus | Literal["all"] = "all", limit: int | None = None
    ) -> list[AlertRecord[AlertMessage]]:
        """Newest raised first (see AlertBook.records)."""
        with self._lock:
            return self._mirror.book.records(status, limit=limit)

    def get(self, alert_id: str) -> AlertRecord[AlertMessage]:
        """Raises UnknownAlertError."""
        with self._lock:
            return self._mirror.book.get(alert_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._mirror.book)

    def seen_hits(self, standing: dict[str, QueryMessage]) -> list[SeenHit]:
        """The hits read (the newest `hits_kept`), newest event first, each with its alert if it
        raised one and the severity of that alert, else of its query in `standing`."""
        with self._lock:
            hits = self._hit_log.hits()
            book = self._mirror.book
            alert_ids = {hit.hit_id: alert_id_for(hit.hit_id) for hit in hits}
            alerts = {hit_id: book.get(a) for hit_id, a in alert_ids.items() if a in book}
        seen = []
        for hit in hits:
            alert = alerts.get(hit.hit_id)
            query = standing.get(hit.query_id)
            severity = alert.alert.severity if alert is not None else query.severity if query else None
            seen.append(SeenHit(hit, alert.alert_id if alert is not None else None, severity))
        return seen
