"""The Vigil topics: their partitions and configs (`topic_specs`), and `ensure_topics`, which
creates the missing ones with an admin client, waiting for a broker that is still starting.

kafka-python logs a new admin client's whole configuration, SASL password included; the log
filter that hides that line is installed here, next to the admin client it was written for. It
works process-wide from the package's import on, so it covers every admin client a service
makes (services/embedded.py has one too).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaAdminClient
from kafka import errors as kafka_errors
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from vigil.errors import VigilError
from vigil.services.common.kafka.errors import BrokerUnavailableError, broker_unavailable_error
from vigil.services.common.kafka.reachability import broker_reachable
from vigil.services.common.kafka.settings import RECORD_OVERHEAD_BYTES, KafkaSettings

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


TOMBSTONES_KEPT_MS = 10 * 365 * 24 * 3600 * 1000


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
    keeps_tombstones = {**compacted, "delete.retention.ms": str(TOMBSTONES_KEPT_MS)}
    largest = {"max.message.bytes": str(settings.max_message_bytes)}
    # A dead frame is as large as a live one, plus its dlq.* headers.
    largest_dead = {"max.message.bytes": str(settings.max_message_bytes + RECORD_OVERHEAD_BYTES)}
    return {
        topics.frames: spec(
            settings.frame_partitions, deleted_after(settings.frames_retention_ms, **largest)
        ),
        # One partition: a small table every reader loads whole, in publication order. Tombstones
        # are kept as the cameras' are (below): a query deleted through the API stays deleted.
        topics.queries: spec(1, keeps_tombstones),
        topics.hits: spec(settings.event_partitions, deleted_after(settings.events_retention_ms)),
        topics.alerts: spec(settings.event_partitions, deleted_after(settings.events_retention_ms)),
        topics.camera_status: spec(settings.event_partitions, compacted),
        # One partition, like queries: a detector that takes over cameras loads it whole.
        topics.detector_state: spec(1, compacted),
        # The alerter's policy memory and alert records: loaded whole at start, like detector_state.
        topics.alert_state: spec(1, compacted),
        # Users and tokens: one partition, read whole and followed by every process that authenticates.
        topics.identities: spec(1, compacted),
        # One partition: the API loads the whole audit trail at start, in the order it was written.
        topics.query_history: spec(1, deleted_after(settings.query_history_retention_ms)),
        # One partition, like queries: ingest and the API load the whole table. Tombstones are
        # kept (10 years rather than Kafka's day): a camera deleted through the API must stay
        # deleted, not be seeded again from the YAML file once its tombstone is compacted away.
        topics.cameras: spec(1, keeps_tombstones),
        # Commands to the alerter (acknowledgements from the API), kept like the events.
        topics.alert_commands: spec(settings.event_partitions, deleted_after(settings.events_retention_ms)),
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
        raise broker_unavailable_error(settings, "creating topics", time.monotonic() - started) from None
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
