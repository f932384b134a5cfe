"""Kafka wiring every Vigil service shares: settings, topics, a producer that survives broker
restarts, consumer helpers, the dead-letter convention and the standing queries on Kafka.

The same code talks to Apache Kafka in a cluster and to the local tansu broker of the
embedded default (services/broker). Where tansu differs (compaction never applied, the memory
engine forgetting everything on restart), the code does not rely on the difference: readers
keep the last value per key themselves and producers are not idempotent (an idempotent
kafka-python producer fails for good with UnknownProducerIdError once a restarted broker has
forgotten its producer id).

Delivery is at-least-once: consumers start with auto-commit off and commit after what they
derived is durable downstream.

One module per concept: settings.py (KafkaSettings and its loader), reachability.py (is a broker
there), errors.py, metrics.py, topics.py (specs and creation), producer.py (ResilientProducer),
consumers.py, dead_letters.py, queries.py (publishing and reading the standing queries; the
table's rules are pipelines/query_table.py), query_history.py (a change: its audit record and the
query together). Callers import from here.
"""

from vigil.services.common.kafka.consumers import (
    KafkaRecord,
    assign_all_partitions,
    make_consumer,
    replay_to_end,
)
from vigil.services.common.kafka.dead_letters import (
    DLQ_HEADER_PREFIX,
    DLQ_REFERENCE_MAX_BYTES,
    send_json_dead_letter,
    send_to_dead_letter,
)
from vigil.services.common.kafka.errors import BrokerUnavailableError, MessageTooLargeError, TopicMissingError
from vigil.services.common.kafka.metrics import (
    DEAD_LETTERS,
    MESSAGES_SENT,
    PRODUCER_BUFFERED_BYTES,
    SEND_ERRORS,
)
from vigil.services.common.kafka.producer import ResilientProducer
from vigil.services.common.kafka.queries import (
    QueryTableReader,
    decode_query,
    delete_query,
    publish_query,
    seed_standing_queries,
)
from vigil.services.common.kafka.query_history import decode_query_change, publish_query_change
from vigil.services.common.kafka.reachability import broker_reachable
from vigil.services.common.kafka.settings import (
    DAY_MS,
    DEFAULT_BOOTSTRAP,
    DEFAULT_LOCAL_PORT,
    HOUR_MS,
    MIB,
    RECORD_OVERHEAD_BYTES,
    KafkaSettings,
    load_kafka_settings,
    split_host_port,
)
from vigil.services.common.kafka.topics import ensure_topics, topic_specs

__all__ = [
    "DAY_MS",
    "DEAD_LETTERS",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_LOCAL_PORT",
    "DLQ_HEADER_PREFIX",
    "DLQ_REFERENCE_MAX_BYTES",
    "HOUR_MS",
    "MESSAGES_SENT",
    "MIB",
    "PRODUCER_BUFFERED_BYTES",
    "RECORD_OVERHEAD_BYTES",
    "SEND_ERRORS",
    "BrokerUnavailableError",
    "KafkaRecord",
    "KafkaSettings",
    "MessageTooLargeError",
    "QueryTableReader",
    "ResilientProducer",
    "TopicMissingError",
    "assign_all_partitions",
    "broker_reachable",
    "decode_query",
    "decode_query_change",
    "delete_query",
    "ensure_topics",
    "load_kafka_settings",
    "make_consumer",
    "publish_query",
    "publish_query_change",
    "replay_to_end",
    "seed_standing_queries",
    "send_json_dead_letter",
    "send_to_dead_letter",
    "split_host_port",
    "topic_specs",
]
