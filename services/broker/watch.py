"""`vigil up`'s watch over Kafka: revive the local broker, notice an outage, re-assert queries.

Called from `vigil up`'s loop (check() at most every `interval_s`), it

- restarts the local broker `vigil up` started when tansu or its object store died, like any
  other child, with the same doubling backoff while it keeps dying;
- notices when Kafka (local or a cluster) stops answering, and logs the outage and its end;
- whenever Kafka answers again after an outage or a restart, re-creates missing topics and
  seeds again the config's standing queries that the "queries" topic has no record of (a
  broker that came back empty, as an in-memory one does). A query the topic knows is left as
  it is, and so is one it holds a tombstone of: an operator may have changed or deleted it
  since start (services/common/kafka/queries.py, `seed_standing_queries`).
"""

from __future__ import annotations

import logging
import time

from vigil.errors import VigilError
from vigil.services.broker.endpoint import KafkaEndpoint
from vigil.services.common.contract import QueryMessage
from vigil.services.common.kafka import (
    KafkaSettings,
    broker_reachable,
    ensure_topics,
    seed_standing_queries,
)

log = logging.getLogger("vigil.up")

_REVIVE_DELAY_S = (0.5, 30.0)


class BrokerWatch:
    def __init__(
        self,
        endpoint: KafkaEndpoint,
        settings: KafkaSettings,
        standing_queries: list[QueryMessage],
        *,
        seeded_by: str = "vigil up",
        interval_s: float = 0.5,
    ) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.standing_queries = standing_queries
        self.seeded_by = seeded_by  # who the query history names for a query seeded again
        self.interval_s = interval_s
        self.up = True
        self.revivals = 0
        self.reasserted = 0
        self._down_since = 0.0
        self._next_check = 0.0
        self._next_revive = 0.0
        self._revive_delay_s = _REVIVE_DELAY_S[0]
        self._pending_reassert = False

    def check(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.interval_s
        if self.endpoint.broker is not None and not self.endpoint.broker.running and now >= self._next_revive:
            self._revive(now)
        reachable = broker_reachable(self.endpoint.bootstrap, timeout_s=0.3)
        if not reachable and self.up:
            self.up, self._down_since = False, now
            log.error("Kafka at %s is unreachable", self.endpoint.bootstrap)
        elif reachable and not self.up:
            self.up = True
            self._pending_reassert = True
            log.warning(
                "Kafka at %s answers again after %.1f s", self.endpoint.bootstrap, now - self._down_since
            )
        if self._pending_reassert and self.up:
            try:
                self.reassert_queries()
                self._pending_reassert = False
            except VigilError as error:  # still coming up: next check
                log.warning("could not re-assert the standing queries yet: %s", error)

    def reassert_queries(self) -> list[str]:
        """Topics ensured, and every standing query of the config that "queries" has no record of
        seeded again; returns their ids."""
        ensure_topics(self.settings, timeout_s=5)
        missing = seed_standing_queries(self.settings, self.standing_queries, self.seeded_by)
        if missing:
            self.reasserted += len(missing)
            log.warning(
                "Kafka had lost %d standing queries of the config; registered again: %s",
                len(missing),
                ", ".join(missing),
            )
        return missing

    def _revive(self, now: float) -> None:
        try:
            if self.endpoint.revive():
                self.revivals += 1
                self._pending_reassert = True
                self._revive_delay_s = _REVIVE_DELAY_S[0]
                log.warning("restarted the local Kafka broker (restart %d)", self.revivals)
        except VigilError as error:
            log.error(
                "could not restart the local Kafka broker (next try in %.0f s): %s",
                self._revive_delay_s,
                error,
            )
            self._next_revive = now + self._revive_delay_s
            self._revive_delay_s = min(self._revive_delay_s * 2, _REVIVE_DELAY_S[1])
