"""Changes of standing queries on Kafka: `publish_query_change` writes a change to both
"query-history" (who, when, what: append-only, kept `query_history_retention_ms`) and "queries"
(the query itself, or a tombstone for a delete), and returns once the broker has both.

The history goes first: should the process die between the two, the trail names a change that
may not have happened, rather than a change happening with no one named.
"""

from __future__ import annotations

from vigil.services.common.contract import QueryChangeMessage, Topics, decode_json, encode_json
from vigil.services.common.kafka.errors import BrokerUnavailableError
from vigil.services.common.kafka.producer import ResilientProducer

_DELIVERY_TIMEOUT_S = 15.0


def publish_query_change(
    producer: ResilientProducer, topics: Topics, change: QueryChangeMessage
) -> dict[str, int]:
    """Write `change` (see the module docstring); returns {topic: offset} of the two records.
    Raises BrokerUnavailableError when the broker has not acknowledged both."""
    value = encode_json(change.query) if change.query is not None else None
    futures = {
        topics.query_history: producer.send(topics.query_history, encode_json(change), key=change.query_id),
        topics.queries: producer.send(topics.queries, value, key=change.query_id),
    }
    producer.flush(_DELIVERY_TIMEOUT_S)
    offsets: dict[str, int] = {}
    for topic, future in futures.items():
        try:
            offsets[topic] = future.get(timeout=_DELIVERY_TIMEOUT_S).offset
        except Exception as error:  # kafka-python's KafkaError or a timeout: not on the broker
            raise BrokerUnavailableError(
                f"the change of standing query {change.query_id!r} is not confirmed on {topic!r}: {error}"
            ) from None
    return offsets


def decode_query_change(value: bytes | None) -> QueryChangeMessage:
    """A "query-history" value; BadMessageError names what was wrong."""
    return decode_json(QueryChangeMessage, value)
