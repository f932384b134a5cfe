"""The Prometheus metrics of this process's Kafka clients: records sent, send failures, dead
letters and the bytes producers hold unacknowledged.

One module so that each metric is registered once per process, whichever client module a
service imports first; `_metric` also survives a re-import (importlib.reload, test runners).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge


def _metric(factory: type, name: str, documentation: str, labelnames: Sequence[str]) -> Any:
    """Register a metric once per process: re-importing this module (importlib.reload, test
    runners) must reuse the registered collector instead of failing on a duplicate name."""
    try:
        return factory(name, documentation, labelnames)
    except ValueError:
        return REGISTRY._names_to_collectors[name]  # the one registered by the first import


MESSAGES_SENT = _metric(
    Counter, "vigil_kafka_messages_sent_total", "Records the broker acknowledged", ["topic"]
)
SEND_ERRORS = _metric(
    Counter,
    "vigil_kafka_send_errors_total",
    "Records that could not be queued or whose delivery failed",
    ["topic"],
)
DEAD_LETTERS = _metric(
    Counter,
    "vigil_kafka_dead_letters_total",
    "Records sent to the dead-letter topic, by the topic they came from",
    ["source_topic"],
)
PRODUCER_BUFFERED_BYTES = _metric(
    Gauge,
    "vigil_kafka_producer_buffered_bytes",
    "Bytes queued in this process's producers and not yet acknowledged",
    [],
)
