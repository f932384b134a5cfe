"""Whether Kafka answers, seen from one service: a metric, a log line per outage, a health field.

kafka-python never raises on a dead broker from poll() (its errors only go to its own log), so
without this a service would sit silent through an outage. The monitor probes the bootstrap
addresses every `interval_s` (a TCP connect, not a Kafka client: a client whose bootstrap times
out leaves its I/O thread behind) and:
- sets `vigil_kafka_broker_up` (1 or 0) and counts `vigil_kafka_broker_outages_total`;
- logs the outage once when it starts ("Kafka at ... unreachable") and once when it ends, with
  its length;
- answers `up` and `down_since` for health endpoints.
The services' clients resume by themselves (they reconnect within `reconnect_backoff_max_ms`);
this only tells people.
"""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from vigil.services.common.kafka import KafkaSettings, broker_reachable

log = logging.getLogger(__name__)


def _registered(registry: CollectorRegistry, factory: type, name: str, documentation: str):
    """The metric on `registry`; the one already there when two services share a registry."""
    try:
        return factory(name, documentation, registry=registry)
    except ValueError:
        collector_name = name.removesuffix("_total")
        return registry._names_to_collectors.get(name) or registry._names_to_collectors[collector_name]


class BrokerMonitor:
    def __init__(
        self, settings: KafkaSettings, registry: CollectorRegistry | None, *, interval_s: float = 1.0
    ) -> None:
        self.bootstrap = settings.bootstrap
        self.interval_s = interval_s
        self.up = True
        self.down_since: float | None = None  # wall-clock seconds
        registry = registry if registry is not None else REGISTRY
        self._up_gauge = _registered(
            registry, Gauge, "vigil_kafka_broker_up", "1 while a Kafka bootstrap address accepts connections"
        )
        self._outages = _registered(
            registry, Counter, "vigil_kafka_broker_outages_total", "Times Kafka stopped answering"
        )
        self._up_gauge.set(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-monitor", daemon=True)

    def start(self) -> BrokerMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> bool:
        """Probe once and record the outcome; returns whether Kafka answered."""
        reachable = broker_reachable(self.bootstrap, timeout_s=min(self.interval_s, 1.0))
        if reachable and not self.up:
            down_s = time.time() - (self.down_since or time.time())
            log.warning("Kafka at %s answers again after %.1f s", self.bootstrap, down_s)
            self.up, self.down_since = True, None
            self._up_gauge.set(1)
        elif not reachable and self.up:
            log.error("Kafka at %s is unreachable: carrying on, and resuming when it is back", self.bootstrap)
            self.up, self.down_since = False, time.time()
            self._up_gauge.set(0)
            self._outages.inc()
        return reachable

    def health(self) -> dict[str, object]:
        """For a health endpoint: {"kafka": "up"} or {"kafka": "down", "kafka_down_s": ...}."""
        if self.up:
            return {"kafka": "up"}
        return {"kafka": "down", "kafka_down_s": round(time.time() - (self.down_since or time.time()), 1)}

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as error:  # never let the probe take the service down
                log.debug("broker probe failed: %s", error)
