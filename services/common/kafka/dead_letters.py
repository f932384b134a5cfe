"""The dead-letter convention (Kafka Connect's): a record that broke the contract, or a delivery
that failed for good, goes to the "dead-letters" topic with dlq.* headers saying why and from
where, and the reader moves on.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from kafka.producer.future import FutureRecordMetadata

from vigil.services.common.contract import Topics
from vigil.services.common.kafka.consumers import KafkaRecord
from vigil.services.common.kafka.metrics import DEAD_LETTERS
from vigil.services.common.kafka.producer import ResilientProducer

log = logging.getLogger("vigil.kafka")


DLQ_HEADER_PREFIX = "dlq."
# A dead letter of a record too large to copy keeps its key and headers only up to this size.
DLQ_REFERENCE_MAX_BYTES = 16 * 1024


def send_to_dead_letter(
    producer: ResilientProducer, topics: Topics, record: KafkaRecord, reason: str
) -> FutureRecordMetadata:
    """Publish a record that broke the contract to the dead-letter topic and move on.

    Kafka Connect's convention: the original key, value, timestamp and headers, plus headers
    saying why and where from: dlq.reason, dlq.source_topic, dlq.partition, dlq.offset and
    dlq.ts_ms (when it was dead-lettered). The record's own timestamp stays the original's.

    A record too large to copy (over max_message_bytes: a broker that does not enforce its
    topics' limits let it through) is dead-lettered as a reference instead: an empty value,
    no key or original headers beyond DLQ_REFERENCE_MAX_BYTES, and dlq.payload_bytes = its
    size; the source topic, partition and offset say where to read it while it is retained.
    So dead-lettering can never fail for the size of what it reports.
    """
    original_headers = [
        (name, raw if raw is not None else b"")
        for name, raw in (record.headers or [])
        if not name.startswith(DLQ_HEADER_PREFIX)
    ]
    key = record.key
    # Kafka refuses a record with neither key nor value; an empty value keeps the headers.
    value = record.value if record.value is not None or record.key is not None else b""
    size = len(value or b"") + len(key or b"") + sum(len(name) + len(raw) for name, raw in original_headers)
    omitted = size > producer.settings.max_message_bytes
    if omitted:
        value = b""
        if sum(len(name) + len(raw) for name, raw in original_headers) > DLQ_REFERENCE_MAX_BYTES:
            original_headers = []
        if key is not None and len(key) > DLQ_REFERENCE_MAX_BYTES:
            key = None
        reason = f"{reason} (the record's {size} bytes are not copied: over max_message_bytes)"
    headers = original_headers + [
        ("dlq.reason", reason[:4000].encode("utf-8", errors="replace")),
        ("dlq.source_topic", record.topic.encode("utf-8")),
        ("dlq.partition", str(record.partition).encode("ascii")),
        ("dlq.offset", str(record.offset).encode("ascii")),
        ("dlq.ts_ms", str(int(time.time() * 1000)).encode("ascii")),
    ]
    if omitted:
        headers.append(("dlq.payload_bytes", str(size).encode("ascii")))
    timestamp_ms = record.timestamp if record.timestamp is not None and record.timestamp >= 0 else None
    future = producer.send(topics.dead_letters, value, key=key, headers=headers, timestamp_ms=timestamp_ms)
    DEAD_LETTERS.labels(source_topic=record.topic).inc()
    log.warning(
        "dead-lettered %s[%d]@%d to %s: %s",
        record.topic,
        record.partition,
        record.offset,
        topics.dead_letters,
        reason,
    )
    return future


def send_json_dead_letter(
    producer: ResilientProducer,
    topics: Topics,
    document: dict[str, Any],
    reason: str,
    source: str,
    key: str | bytes | None = None,
) -> FutureRecordMetadata:
    """Publish a dead letter that is not a consumed record (e.g. a webhook delivery that failed
    for good): value = `document` as UTF-8 JSON, headers dlq.reason, dlq.source (what gave up
    on it, e.g. "webhook:ops") and dlq.ts_ms, plus content-type application/json."""
    value = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    headers = [
        ("dlq.reason", reason[:4000].encode("utf-8", errors="replace")),
        ("dlq.source", source[:400].encode("utf-8", errors="replace")),
        ("dlq.ts_ms", str(int(time.time() * 1000)).encode("ascii")),
        ("content-type", b"application/json"),
    ]
    future = producer.send(topics.dead_letters, value, key=key, headers=headers)
    DEAD_LETTERS.labels(source_topic=source).inc()
    log.warning("dead-lettered a %s record to %s: %s", source, topics.dead_letters, reason)
    return future
