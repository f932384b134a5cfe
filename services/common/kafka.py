"""Kafka wiring every Vigil service shares: settings, topics, a producer that survives broker
restarts, consumer helpers, the dead-letter convention and the table of standing queries.

The same code talks to Apache Kafka in a cluster and to the local tansu broker of the
embedded default (services/broker). Where tansu differs (compaction never applied, the memory
engine forgetting everything on restart), the code below does not rely on the difference:
readers keep the last value per key themselves and producers are not idempotent (an
idempotent kafka-python producer fails for good with UnknownProducerIdError once a restarted
broker has forgotten its producer id).

Delivery is at-least-once: consumers start with auto-commit off and commit after what they
derived is durable downstream.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as kafka_errors
from kafka.producer.future import FutureRecordMetadata, RecordMetadata
from prometheus_client import REGISTRY, Counter, Gauge
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from vigil.errors import VigilError
from vigil.services.common.contract import (
    BadMessageError,
    FrameHeaders,
    QueryMessage,
    Topics,
    decode_json,
    describe_validation_error,
    encode_json,
)

log = logging.getLogger("vigil.kafka")


class _HideClientConfiguration(logging.Filter):
    """kafka-python 3.0.12 logs a new admin client's whole configuration at DEBUG, SASL
    password included. Vigil never logs secrets, whatever level a user turns on."""

    hides_kafka_secrets = True

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Starting KafkaAdminClient with configuration")


_admin_log = logging.getLogger("kafka.admin.client")
if not any(getattr(existing, "hides_kafka_secrets", False) for existing in _admin_log.filters):
    _admin_log.addFilter(_HideClientConfiguration())

DEFAULT_LOCAL_PORT = 19092
DEFAULT_BOOTSTRAP = f"127.0.0.1:{DEFAULT_LOCAL_PORT}"
MIB = 1024 * 1024
# Room for a record's key, headers and batch framing on top of its value.
RECORD_OVERHEAD_BYTES = 64 * 1024
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class BrokerUnavailableError(VigilError):
    """No Kafka broker answered in time; the message names the bootstrap address."""


class MessageTooLargeError(VigilError):
    """A record bigger than the topics accept (max_message_bytes)."""


class TopicMissingError(VigilError):
    """A topic a reader needs does not exist (ensure_topics creates them)."""


# --- metrics ---------------------------------------------------------------------------


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


# --- settings --------------------------------------------------------------------------


class KafkaSettings(BaseSettings):
    """Where Kafka is and how to talk to it (environment: VIGIL_KAFKA_<FIELD>).

    Leaving `bootstrap` unset means the embedded default: a local tansu broker on
    127.0.0.1:19092 (services/broker.resolve_bootstrap starts one when none answers there).
    """

    model_config = SettingsConfigDict(env_prefix="VIGIL_KAFKA_", extra="forbid", validate_default=True)

    bootstrap: str = Field(DEFAULT_BOOTSTRAP, description="host:port[,host:port...]")
    local_port: int = Field(
        DEFAULT_LOCAL_PORT,
        ge=1,
        le=65_535,
        description="the embedded default's port on 127.0.0.1, when bootstrap is not set",
    )
    client_id: str = Field("vigil", min_length=1, max_length=200)
    topic_prefix: str = Field("", max_length=100, pattern=r"^[A-Za-z0-9._-]*$")

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None

    frame_partitions: int = Field(8, ge=1, le=10_000, description="frames: cameras split over these")
    event_partitions: int = Field(4, ge=1, le=10_000, description="hits, alerts, camera-status, dead-letters")
    replication_factor: int = Field(1, ge=1, le=10, description="3 on a production cluster")
    max_message_bytes: int = Field(10 * MIB, ge=MIB, le=100 * MIB, description="largest record (a frame)")
    frames_retention_ms: int = Field(HOUR_MS, ge=60_000, description="frames are only useful live")
    events_retention_ms: int = Field(30 * DAY_MS, ge=HOUR_MS, description="hits and alerts")
    dead_letters_retention_ms: int = Field(14 * DAY_MS, ge=HOUR_MS)

    max_block_ms: int = Field(5_000, ge=100, le=120_000, description="longest a send may wait")
    producer_buffer_bytes: int = Field(64 * MIB, ge=MIB, description="unacknowledged bytes per producer")
    linger_ms: int = Field(5, ge=0, le=1_000)
    request_timeout_ms: int = Field(10_000, ge=1_000)
    delivery_timeout_ms: int = Field(60_000, ge=2_000, description="give up on a record after this")
    connect_timeout_s: float = Field(30.0, gt=0, description="how long ensure_topics waits for a broker")
    # tansu completes a group join after half the session timeout: kafka-python 3's default
    # of 45 s makes every consumer start take 23 s there, and 10 s put a restarted detector
    # back in service 14-16 s after a kill -9 (the target is 10). 6 s is the least Apache
    # Kafka accepts; kafka-python heartbeats from its own thread (every 1.5 s here), so a long
    # scoring batch does not miss one, and max_poll_interval_ms bounds a stuck loop.
    consumer_session_timeout_ms: int = Field(6_000, ge=6_000, le=300_000)
    consumer_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=10_000,
        description="longest a fetch waits at the broker for new records. Kafka answers as soon as "
        "one arrives, so lower only costs idle round trips; tansu (the local broker) answers only "
        "when the wait runs out, so a record waits up to this long (kafka-python's 500 ms default "
        "put a median 120 ms between a hit and its alert). Not lower: the durable local broker "
        "reads each stored batch within that wait, and reading a backlog of 30 KB frames went "
        "from 155 records/s at 100 ms to 4 at 50 ms",
    )

    @field_validator("bootstrap")
    @classmethod
    def _host_port_list(cls, bootstrap: str) -> str:
        addresses = [address.strip() for address in bootstrap.split(",") if address.strip()]
        if not addresses:
            raise ValueError("no broker address given (expected host:port[,host:port...])")
        for address in addresses:
            split_host_port(address)
        return ",".join(addresses)

    @model_validator(mode="after")
    def _embedded_default_address(self) -> KafkaSettings:
        if "bootstrap" not in self.model_fields_set:
            # Not recorded as set: resolve_bootstrap still sees the embedded default.
            object.__setattr__(self, "bootstrap", f"127.0.0.1:{self.local_port}")
        return self

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_"):
            missing = [
                f"sasl_{name}"
                for name, value in (
                    ("mechanism", self.sasl_mechanism),
                    ("username", self.sasl_username),
                    ("password", self.sasl_password),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"security_protocol {self.security_protocol} needs {', '.join(missing)}")
        if self.max_message_bytes > self.producer_buffer_bytes:
            raise ValueError("producer_buffer_bytes must be at least max_message_bytes (one frame must fit)")
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms:
            raise ValueError("delivery_timeout_ms must be at least linger_ms + request_timeout_ms")
        return self

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.topic_prefix)

    @property
    def bootstrap_servers(self) -> list[str]:
        return self.bootstrap.split(",")

    def client_config(self) -> dict[str, Any]:
        """Connection options for kafka-python clients. Holds the password: never log it."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            # kafka-python backs off up to 30 s between reconnects by default; a restarted
            # broker should be found again within a second.
            "reconnect_backoff_max_ms": 1_000,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.security_protocol.startswith("SASL_"):
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if self.ssl_cafile is not None:
            config["ssl_cafile"] = str(self.ssl_cafile)
        return config


def load_kafka_settings() -> KafkaSettings:
    """KafkaSettings from the environment; a VigilError naming the bad variable otherwise."""
    try:
        return KafkaSettings()
    except ValidationError as error:
        raise VigilError(
            f"invalid Kafka settings (VIGIL_KAFKA_*): {describe_validation_error(error)}"
        ) from None


def split_host_port(address: str) -> tuple[str, int]:
    host, separator, port = address.rpartition(":")
    host = host.strip("[]")  # IPv6 literals: [::1]:9092
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    return host, int(port)


def broker_reachable(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """True when any bootstrap address accepts a TCP connection.

    Checked before creating a kafka-python client: a client whose bootstrap times out leaves
    its I/O thread behind (kafka-python 3.0.12), so retry loops must not create one per try.
    """
    for address in bootstrap.split(","):
        host, port = split_host_port(address)
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False


def _unavailable(settings: KafkaSettings, what: str, waited_s: float) -> BrokerUnavailableError:
    return BrokerUnavailableError(
        f"{what}: no Kafka broker answered at {settings.bootstrap} within {waited_s:.1f} s "
        "(set VIGIL_KAFKA_BOOTSTRAP to your cluster, or start the local one with `vigil broker`)"
    )


# --- topics ----------------------------------------------------------------------------


def topic_specs(settings: KafkaSettings) -> dict[str, dict[str, Any]]:
    """Every topic with its partitions and configs, as KafkaAdminClient.create_topics takes them.

    tansu stores these configs but applies neither retention nor compaction; Apache Kafka does.
    """
    topics = settings.topics

    def spec(partitions: int, configs: dict[str, str]) -> dict[str, Any]:
        return {
            "num_partitions": partitions,
            "replication_factor": settings.replication_factor,
            "configs": configs,
        }

    def deleted_after(retention_ms: int, **extra: str) -> dict[str, str]:
        return {"cleanup.policy": "delete", "retention.ms": str(retention_ms), **extra}

    compacted = {"cleanup.policy": "compact"}
    largest = {"max.message.bytes": str(settings.max_message_bytes)}
    # A dead frame is as large as a live one, plus its dlq.* headers.
    largest_dead = {"max.message.bytes": str(settings.max_message_bytes + RECORD_OVERHEAD_BYTES)}
    return {
        topics.frames: spec(
            settings.frame_partitions, deleted_after(settings.frames_retention_ms, **largest)
        ),
        # One partition: a small table every reader loads whole, in publication order.
        topics.queries: spec(1, compacted),
        topics.hits: spec(settings.event_partitions, deleted_after(settings.events_retention_ms)),
        topics.alerts: spec(settings.event_partitions, deleted_after(settings.events_retention_ms)),
        topics.camera_status: spec(settings.event_partitions, compacted),
        # One partition, like queries: a detector that takes over cameras loads it whole.
        topics.detector_state: spec(1, compacted),
        # The alerter's policy memory and alert records: loaded whole at start, like detector_state.
        topics.alert_state: spec(1, compacted),
        topics.dead_letters: spec(
            settings.event_partitions, deleted_after(settings.dead_letters_retention_ms, **largest_dead)
        ),
    }


def ensure_topics(settings: KafkaSettings, timeout_s: float | None = None) -> dict[str, str]:
    """Create every Vigil topic that does not exist yet; returns {topic: "created" | "existed"}.

    Idempotent. Waits up to `timeout_s` (default settings.connect_timeout_s) for a broker that
    is still starting, then raises BrokerUnavailableError naming the bootstrap address. An
    existing topic is left as it is; a partition count other than configured is logged.
    """
    timeout_s = settings.connect_timeout_s if timeout_s is None else timeout_s
    started = time.monotonic()
    retrying = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        retry=retry_if_exception_type(BrokerUnavailableError),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                return _create_topics(settings)
    except BrokerUnavailableError:
        raise _unavailable(settings, "creating topics", time.monotonic() - started) from None
    raise AssertionError("unreachable: tenacity either returns or re-raises")


def _create_topics(settings: KafkaSettings) -> dict[str, str]:
    if not broker_reachable(settings.bootstrap):
        raise BrokerUnavailableError(settings.bootstrap)
    wanted = topic_specs(settings)
    try:
        admin = KafkaAdminClient(
            **settings.client_config(),
            client_id=f"{settings.client_id}-admin",
            bootstrap_timeout_ms=5_000,
        )
    except (kafka_errors.KafkaTimeoutError, kafka_errors.KafkaConnectionError) as error:
        raise BrokerUnavailableError(settings.bootstrap) from error
    try:
        response = admin.create_topics(wanted, raise_errors=False)
        outcome: dict[str, str] = {}
        failures: list[str] = []
        for result in response["topics"]:
            error = kafka_errors.for_code(result["error_code"])
            if error is kafka_errors.NoError:
                outcome[result["name"]] = "created"
            elif error is kafka_errors.TopicAlreadyExistsError:
                outcome[result["name"]] = "existed"
            else:
                failures.append(
                    f"{result['name']}: {error.__name__} {result.get('error_message') or ''}".strip()
                )
        if failures:
            raise VigilError(f"could not create Kafka topics at {settings.bootstrap}: {'; '.join(failures)}")
        existed = [name for name, state in outcome.items() if state == "existed"]
        if existed:
            _warn_on_partition_mismatch(admin, {name: wanted[name]["num_partitions"] for name in existed})
        created = sorted(name for name, state in outcome.items() if state == "created")
        if created:
            log.info("created Kafka topics at %s: %s", settings.bootstrap, ", ".join(created))
        return outcome
    except (kafka_errors.KafkaTimeoutError, kafka_errors.KafkaConnectionError) as error:
        raise BrokerUnavailableError(settings.bootstrap) from error
    finally:
        admin.close()


def _warn_on_partition_mismatch(admin: KafkaAdminClient, wanted: dict[str, int]) -> None:
    for topic in admin.describe_topics(list(wanted)):
        actual = len(topic.get("partitions") or [])
        if actual != wanted[topic["name"]]:
            log.warning(
                "topic %s has %d partitions, configured %d: left as it is (Kafka cannot shrink a topic;"
                " grow it with kafka-topics --alter if you need more)",
                topic["name"],
                actual,
                wanted[topic["name"]],
            )


# --- producer --------------------------------------------------------------------------


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
            raise _unavailable(self.settings, "cannot connect a producer", time.monotonic() - started)
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
            raise _unavailable(self.settings, f"cannot connect a producer ({error})", waited_s) from error

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


# --- consumers -------------------------------------------------------------------------


class KafkaRecord(Protocol):
    """What a consumed record offers (kafka-python's ConsumerRecord has these attributes)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


def make_consumer(
    settings: KafkaSettings,
    group_id: str | None,
    topics: Sequence[str] = (),
    **overrides: Any,
) -> KafkaConsumer:
    """A KafkaConsumer for Vigil topics, subscribed to `topics` when given.

    At-least-once by default: auto-commit off (commit after processing), a new group starts
    from the earliest record. group_id None gives a group-less consumer for manual assignment
    (assign_all_partitions): no rebalance, no commits. kafka-python options in `overrides` win.
    """
    if topics and group_id is None:
        raise ValueError("subscribing needs a group_id; without one, use assign_all_partitions()")
    config: dict[str, Any] = {
        **settings.client_config(),
        "client_id": f"{settings.client_id}-consumer",
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "allow_auto_create_topics": False,
        # Kafka's default. A larger first batch still comes whole (fetch v3+, tansu too: a 10 MB
        # frame was read with this), and the durable local broker reads every object a fetch may
        # return before answering: at 10 MB a fetch from the start of "frames" took seconds.
        "max_partition_fetch_bytes": 1 * MIB,
        "fetch_max_bytes": max(52_428_800, settings.max_message_bytes + RECORD_OVERHEAD_BYTES),
        "bootstrap_timeout_ms": int(settings.connect_timeout_s * 1000),
        "session_timeout_ms": settings.consumer_session_timeout_ms,
        "heartbeat_interval_ms": settings.consumer_session_timeout_ms // 4,
        "fetch_max_wait_ms": settings.consumer_fetch_max_wait_ms,
    }
    config.update(overrides)
    started = time.monotonic()
    if not broker_reachable(settings.bootstrap):
        raise _unavailable(settings, "cannot connect a consumer", time.monotonic() - started)
    try:
        consumer = KafkaConsumer(**config)
    except kafka_errors.KafkaTimeoutError:
        raise _unavailable(settings, "cannot connect a consumer", time.monotonic() - started) from None
    if topics:
        consumer.subscribe(list(topics))
    return consumer


def assign_all_partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """Assign every partition of `topic` to a group-less consumer (no group join: instant)."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise TopicMissingError(
            f"topic {topic!r} does not exist at {consumer.config['bootstrap_servers']}: "
            "create the topics first (ensure_topics; `vigil broker` does it for the local broker)"
        )
    assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
    consumer.assign(assigned)
    return assigned


def replay_to_end(
    consumer: KafkaConsumer,
    partitions: Sequence[TopicPartition],
    poll: Callable[[int], int],
    settings: KafkaSettings,
    what: str,
    timeout_s: float,
) -> None:
    """Seek `partitions` to their first record and call `poll(timeout_ms)` (which applies what it
    reads and returns how many records that was) until the topic has been read to its end as of
    now. BrokerUnavailableError names `what` after `timeout_s`.

    "The end" is every partition at its end offset AND a poll that read nothing: tansu reports
    the end of a partition written in one batch as 1, whatever the batch held, so the end
    offset alone would stop after the first batch.
    """
    started = time.monotonic()
    consumer.seek_to_beginning(*partitions)
    try:
        end_offsets = consumer.end_offsets(list(partitions), timeout_ms=int(timeout_s * 1000))
    except kafka_errors.KafkaTimeoutError:
        raise _unavailable(settings, what, time.monotonic() - started) from None

    def reached() -> bool:
        for partition, end in end_offsets.items():
            position = consumer.position(partition, timeout_ms=1_000)
            if position is None or position < end:
                return False
        return True

    while True:
        if time.monotonic() - started > timeout_s:
            raise _unavailable(settings, what, time.monotonic() - started)
        if poll(200) == 0 and reached():
            return


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


# --- standing queries ------------------------------------------------------------------


def publish_query(producer: ResilientProducer, topics: Topics, query: QueryMessage) -> None:
    """Add or replace a standing query (key = query_id) and wait until the broker has it."""
    producer.send(topics.queries, encode_json(query), key=query.query_id)
    producer.flush()


def delete_query(producer: ResilientProducer, topics: Topics, query_id: str) -> None:
    """Delete a standing query: a tombstone (value None) under its key."""
    producer.send(topics.queries, None, key=query_id)
    producer.flush()


class QueryTable:
    """The standing queries: the last value per key of "queries", a tombstone deletes.

    Pure (no I/O), so the rules are tested without a broker. Readers keep the table
    themselves because compaction is not guaranteed (tansu never compacts; Kafka compacts
    lazily), so a replay sees every version of a query, oldest first.
    """

    def __init__(self) -> None:
        self._queries: dict[str, QueryMessage] = {}
        self.version = 0  # bumps on every change: cheap "did anything change?" for callers

    def apply(self, record: KafkaRecord) -> str | None:
        """Apply one "queries" record. Returns None, or why the record is bad (for the
        dead-letter topic); a bad record leaves the table as it was."""
        if record.key is None:
            return "queries record has no key (the key must be the query_id)"
        try:
            query_id = record.key.decode("utf-8")
        except UnicodeDecodeError:
            return "queries record key is not UTF-8"
        if record.value is None:
            if self._queries.pop(query_id, None) is not None:
                self.version += 1
            return None
        try:
            query = decode_json(QueryMessage, record.value)
        except BadMessageError as error:
            return str(error)
        if query.query_id != query_id:
            return f"QueryMessage: query_id {query.query_id!r} does not match the record key {query_id!r}"
        self._queries[query_id] = query
        self.version += 1
        return None

    def get(self, query_id: str) -> QueryMessage | None:
        return self._queries.get(query_id)

    def snapshot(self) -> dict[str, QueryMessage]:
        """A copy safe to iterate while another thread applies records."""
        return dict(self._queries)

    def for_camera(self, camera_id: str) -> list[QueryMessage]:
        """Enabled queries that watch this camera."""
        return [query for query in self.snapshot().values() if query.applies_to(camera_id)]

    def __len__(self) -> int:
        return len(self._queries)

    def __contains__(self, query_id: object) -> bool:
        return query_id in self._queries

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot())


class QueryTableReader:
    """Keeps a QueryTable in step with "queries": load() replays the topic from the beginning up
    to its end offsets at start, poll() follows what comes after.

    Group-less on purpose: every reader needs every query, so no partition is shared out, no
    offset is committed, and no group join (seconds on tansu) delays the start. Bad records
    go to the dead-letter topic when a producer is given, and are skipped either way.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        dead_letters: ResilientProducer | None = None,
        table: QueryTable | None = None,
        on_bad_record: Callable[[KafkaRecord, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.table = table if table is not None else QueryTable()
        self._dead_letters = dead_letters
        self._on_bad_record = on_bad_record
        self._consumer = make_consumer(settings, group_id=None)
        try:
            self._partitions = assign_all_partitions(self._consumer, self.topics.queries)
        except BaseException:
            self._consumer.close()
            raise

    def load(self, timeout_s: float = 30.0) -> QueryTable:
        """Rebuild the table from the first record to the end of the topic as of now."""
        replay_to_end(
            self._consumer, self._partitions, self.poll, self.settings, "loading the queries", timeout_s
        )
        return self.table

    def poll(self, timeout_ms: int = 1000) -> int:
        """Apply the records that arrived; returns how many were read (good or bad)."""
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        count = 0
        for records in batches.values():
            for record in records:
                count += 1
                reason = self.table.apply(record)
                if reason is not None:
                    self._reject(record, reason)
        return count

    def _reject(self, record: KafkaRecord, reason: str) -> None:
        if self._on_bad_record is not None:
            self._on_bad_record(record, reason)
        if self._dead_letters is not None:
            send_to_dead_letter(self._dead_letters, self.topics, record, reason)
        else:
            log.warning("skipped bad queries record %d@%d: %s", record.partition, record.offset, reason)

    def close(self) -> None:
        self._consumer.close(autocommit=False)

    def __enter__(self) -> QueryTableReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
