"""`ResilientProducer`: the one way Vigil publishes, a KafkaProducer that keeps publishing across
broker restarts, with a byte budget bounding what it holds unacknowledged.

Not idempotent on purpose: an idempotent kafka-python producer fails for good with
UnknownProducerIdError once a restarted broker (the local tansu one keeps its log in memory)
has forgotten its producer id. The byte budget and the close workaround live here because
they serve only this class.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaProducer
from kafka import errors as kafka_errors
from kafka.producer.future import FutureRecordMetadata, RecordMetadata

from vigil.errors import VigilError
from vigil.services.common.contract import FrameHeaders
from vigil.services.common.kafka.errors import (
    BrokerUnavailableError,
    MessageTooLargeError,
    broker_unavailable_error,
)
from vigil.services.common.kafka.metrics import MESSAGES_SENT, PRODUCER_BUFFERED_BYTES, SEND_ERRORS
from vigil.services.common.kafka.reachability import broker_reachable
from vigil.services.common.kafka.settings import RECORD_OVERHEAD_BYTES, KafkaSettings
from vigil.services.common.kafka.topics import ensure_topics, topic_specs

log = logging.getLogger("vigil.kafka")


class _ByteBudget:
    """Bounds the bytes queued but not yet acknowledged (kafka-python 3 has no buffer_memory)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = threading.Condition()

    def reserve(self, size: int, deadline: float) -> bool:
        with self._changed:
            # An empty budget always admits one record, however large, so it cannot starve.
            while self.used and self.used + size > self.limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            self.used += size
        PRODUCER_BUFFERED_BYTES.inc(size)
        return True

    def release(self, size: int) -> None:
        with self._changed:
            self.used -= size
            self._changed.notify_all()
        PRODUCER_BUFFERED_BYTES.dec(size)


# Delivery errors after which a kafka-python producer never recovers by itself.
_FATAL_PRODUCER_ERRORS = (
    kafka_errors.UnknownProducerIdError,
    kafka_errors.OutOfOrderSequenceNumberError,
    kafka_errors.InvalidProducerEpochError,
    kafka_errors.ProducerFencedError,
    kafka_errors.IllegalStateError,
)


class ResilientProducer:
    """A KafkaProducer that keeps publishing across broker restarts.

    - send() never blocks for long: waiting for buffer space, for a connection and for topic
      metadata are each bounded by settings.max_block_ms; when the record cannot be queued it
      raises BrokerUnavailableError naming the bootstrap address.
    - While the broker is down, records queue (up to producer_buffer_bytes) and are retried
      until delivery_timeout_ms; kafka-python reconnects when the broker is back.
    - Not idempotent on purpose (see the module docstring); a producer that reaches a state
      it cannot leave (its I/O thread died, a fatal producer-id error) is replaced.
    - Connects lazily: the first send connects, so a service may start before the broker.
    - Heals a broker that came back empty (the local broker keeps its log in memory): it has
      no topics, and tansu even acknowledges records for topics it no longer has (creating
      them with its own partition count). When a partition's acknowledged offsets go
      backwards, or a record lands on a partition past its topic's configured count, the next
      send re-creates the topics
      first (ensure_topics is idempotent); when a send finds no topic metadata it tries too,
      at most every ENSURE_TOPICS_EVERY_S. `heal_topics()` lets a caller ask while it waits.

    Thread-safe: camera threads may share one instance.
    """

    ENSURE_TOPICS_EVERY_S = 2.0

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.topics = settings.topics
        self._budget = _ByteBudget(settings.producer_buffer_bytes)
        self._producer: KafkaProducer | None = None
        self._replace_reason: str | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._last_error_log: dict[str, float] = {}
        # Last acknowledged offset per (topic, partition), written by the producer's I/O thread.
        self._last_offsets: dict[tuple[str, int], int] = {}
        self._log_lost = threading.Event()
        self._last_ensure = -1e9
        # A partition past a topic's configured count means the broker made the topic up itself
        # (tansu auto-creates on produce, with its own default of partitions): it lost ours.
        self._partitions = {name: spec["num_partitions"] for name, spec in topic_specs(settings).items()}
        self._made_up_topics: set[str] = set()

    # public API

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: str | bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        *,
        timestamp_ms: int | None = None,
    ) -> FutureRecordMetadata:
        """Queue one record; returns kafka-python's future (.get(timeout) -> RecordMetadata).

        Raises BrokerUnavailableError when the record cannot be queued within max_block_ms,
        MessageTooLargeError when it exceeds max_message_bytes.
        """
        if self._closed:
            raise VigilError("this ResilientProducer is closed")
        if self._log_lost.is_set():
            self._log_lost.clear()
            log.warning(
                "Kafka at %s acknowledged offsets lower than before: it lost its log (restarted "
                "with empty storage?); re-creating the topics",
                self.settings.bootstrap,
            )
            self._last_offsets.clear()
            self.heal_topics(force=True)
        key_bytes = key.encode("utf-8") if isinstance(key, str) else key
        headers = headers or []
        size = len(value or b"") + len(key_bytes or b"") + sum(len(name) + len(raw) for name, raw in headers)
        if size > self.settings.max_message_bytes:
            SEND_ERRORS.labels(topic=topic).inc()
            raise MessageTooLargeError(
                f"record for {topic!r} is {size} bytes, over max_message_bytes "
                f"{self.settings.max_message_bytes} (VIGIL_KAFKA_MAX_MESSAGE_BYTES)"
            )
        block_s = self.settings.max_block_ms / 1000
        deadline = time.monotonic() + block_s
        if not self._budget.reserve(size, deadline):
            SEND_ERRORS.labels(topic=topic).inc()
            raise BrokerUnavailableError(
                f"cannot queue a record for {topic!r}: {self._budget.used} bytes are still waiting for "
                f"the Kafka broker at {self.settings.bootstrap} after {block_s:.1f} s (buffer of "
                f"{self.settings.producer_buffer_bytes} bytes full)"
            )
        try:
            future = self._send_once(topic, value, key_bytes, headers, timestamp_ms, deadline)
        except BaseException:
            self._budget.release(size)
            SEND_ERRORS.labels(topic=topic).inc()
            raise
        future.add_callback(self._delivered, topic, size)
        future.add_errback(self._failed, topic, size)
        return future

    def send_frame(self, headers: FrameHeaders, jpeg: bytes) -> FutureRecordMetadata:
        """One JPEG frame on "frames", keyed by camera so a camera's frames stay in order on one
        partition. The Kafka timestamp is the send time; capture time travels in ts_ms."""
        return self.send(self.topics.frames, jpeg, key=headers.camera_id, headers=headers.to_kafka())

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued record is acknowledged or has failed."""
        producer = self._producer
        if producer is None:
            return
        try:
            producer.flush(timeout=timeout_s)
        except kafka_errors.KafkaTimeoutError:
            raise BrokerUnavailableError(
                f"{self._budget.used} bytes still unacknowledged by the Kafka broker at "
                f"{self.settings.bootstrap} after {timeout_s} s"
            ) from None

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush for up to timeout_s, then close; records still unsent are dropped (and counted)."""
        with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            _close_producer(producer, timeout_s)

    def heal_topics(self, force: bool = False) -> None:
        """Re-create missing topics (idempotent, one try, no waiting), at most every
        ENSURE_TOPICS_EVERY_S unless forced; a broker that is still away is not an error here."""
        now = time.monotonic()
        if not force and now - self._last_ensure < self.ENSURE_TOPICS_EVERY_S:
            return
        self._last_ensure = now
        try:
            ensure_topics(self.settings, timeout_s=0)
        except VigilError as error:
            log.debug("cannot (re)create topics yet: %s", error)

    @property
    def buffered_bytes(self) -> int:
        return self._budget.used

    def __enter__(self) -> ResilientProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # internals

    def _send_once(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: list[tuple[str, bytes]],
        timestamp_ms: int | None,
        deadline: float,
    ) -> FutureRecordMetadata:
        for attempt in (1, 2):
            producer = self._current_producer(deadline)
            try:
                return producer.send(topic, value=value, key=key, headers=headers, timestamp_ms=timestamp_ms)
            except kafka_errors.KafkaTimeoutError:
                self.heal_topics()  # a broker that restarted empty has no topics to describe
                raise BrokerUnavailableError(
                    f"cannot publish to {topic!r}: no metadata from the Kafka broker at "
                    f"{self.settings.bootstrap} within {self.settings.max_block_ms} ms "
                    "(broker down, or the topic does not exist)"
                ) from None
            except kafka_errors.MessageSizeTooLargeError as error:
                raise MessageTooLargeError(f"record for {topic!r}: {error}") from None
            except kafka_errors.IllegalStateError as error:
                # The KafkaProducer was closed under us: replace it and try once more.
                with self._lock:
                    if self._producer is producer:
                        self._replace_reason = f"it is unusable ({error})"
                if attempt == 2:
                    raise BrokerUnavailableError(
                        f"cannot publish to {topic!r} via {self.settings.bootstrap}: {error}"
                    ) from None
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _current_producer(self, deadline: float) -> KafkaProducer:
        with self._lock:
            if self._closed:
                raise VigilError("this ResilientProducer is closed")
            producer = self._producer
            if producer is not None:
                sender = getattr(producer, "_sender", None)
                if sender is not None and not sender.is_alive():
                    self._replace_reason = "its I/O thread stopped"
                if self._replace_reason is not None:
                    log.warning(
                        "replacing the Kafka producer for %s: %s",
                        self.settings.bootstrap,
                        self._replace_reason,
                    )
                    self._producer = None
                    self._replace_reason = None
                    # Closing without waiting fails its queued records, which releases their budget.
                    _close_producer(producer, 0.0)
                    producer = None
            if producer is None:
                producer = self._connect(deadline)
                self._producer = producer
            return producer

    def _connect(self, deadline: float) -> KafkaProducer:
        started = time.monotonic()
        remaining_s = max(deadline - started, 0.1)
        if not broker_reachable(self.settings.bootstrap, timeout_s=min(remaining_s, 1.0)):
            raise broker_unavailable_error(
                self.settings, "cannot connect a producer", time.monotonic() - started
            )
        try:
            return KafkaProducer(
                **self.settings.client_config(),
                client_id=f"{self.settings.client_id}-producer",
                bootstrap_timeout_ms=int(remaining_s * 1000),
                enable_idempotence=False,
                acks="all",
                compression_type="lz4",
                linger_ms=self.settings.linger_ms,
                # A frame must fit in one request; the topic's max.message.bytes is the same size.
                max_request_size=self.settings.max_message_bytes + RECORD_OVERHEAD_BYTES,
                batch_size=256 * 1024,
                max_block_ms=self.settings.max_block_ms,
                delivery_timeout_ms=self.settings.delivery_timeout_ms,
                # Topics come from ensure_topics with their partitions and configs; an
                # auto-created one would silently get the broker's defaults.
                allow_auto_create_topics=False,
            )
        except kafka_errors.KafkaError as error:
            waited_s = time.monotonic() - started
            raise broker_unavailable_error(
                self.settings, f"cannot connect a producer ({error})", waited_s
            ) from error

    def _delivered(self, topic: str, size: int, metadata: RecordMetadata) -> None:
        self._budget.release(size)
        MESSAGES_SENT.labels(topic=topic).inc()
        partition = (metadata.topic, metadata.partition)
        previous = self._last_offsets.get(partition)
        self._last_offsets[partition] = metadata.offset
        if previous is not None and metadata.offset <= previous:
            self._log_lost.set()
        elif metadata.partition >= self._partitions.get(metadata.topic, metadata.partition + 1):
            if metadata.topic not in self._made_up_topics:  # once: healing cannot shrink it
                self._made_up_topics.add(metadata.topic)
                self._log_lost.set()

    def _failed(self, topic: str, size: int, error: BaseException) -> None:
        self._budget.release(size)
        SEND_ERRORS.labels(topic=topic).inc()
        if isinstance(error, _FATAL_PRODUCER_ERRORS):
            self._replace_reason = f"{type(error).__name__}: {error}"
        # One line per topic per 10 s: a broker outage fails thousands of frames.
        now = time.monotonic()
        if now - self._last_error_log.get(topic, -1e9) >= 10.0:
            self._last_error_log[topic] = now
            log.warning(
                "delivery to %s via %s failed: %s: %s",
                topic,
                self.settings.bootstrap,
                type(error).__name__,
                error,
            )


def _close_producer(producer: KafkaProducer, timeout_s: float) -> None:
    try:
        producer.close(timeout=timeout_s)
    except kafka_errors.KafkaError:
        # kafka-python 3.0.12: close() re-raises the timeout of its internal flush and leaves
        # the producer and its I/O thread running. Finish the close it meant to do: stop the
        # sender without sending (which fails the records still queued).
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(timeout=2.0)
        producer._closed = True  # so that its __del__ does not try (and fail) again
