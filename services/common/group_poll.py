"""Polling a group consumer through a broker outage.

kafka-python 3.0 retries its retriable errors inside `poll()`, except one: when the group
coordinator's address refuses the connection (the broker is down, or restarting), the lookup's
KafkaConnectionError escapes `poll()`. Seen as an alerter whose loop died a few seconds after
the broker came back (2 of 8 outage tests). Here it is what it is for the service: nothing
polled this turn. The outage itself is reported by BrokerMonitor (broker_health.py); the next
poll looks the coordinator up again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaConsumer
from kafka import errors as kafka_errors

log = logging.getLogger("vigil.kafka")


def poll_through_outage(consumer: KafkaConsumer, timeout_ms: int, **options: Any) -> dict:
    """`consumer.poll(timeout_ms, **options)`; {} (after waiting out `timeout_ms`, so a caller's
    loop does not spin) when the broker refused the connection."""
    started = time.monotonic()
    try:
        return consumer.poll(timeout_ms=timeout_ms, **options)
    except kafka_errors.KafkaConnectionError as error:
        log.debug("poll met a refused connection (%s): nothing polled this turn", error)
        time.sleep(max(0.0, timeout_ms / 1000 - (time.monotonic() - started)))
        return {}
