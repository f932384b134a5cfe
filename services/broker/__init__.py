"""The local Kafka-protocol broker (tansu) of the embedded default, and where Kafka is."""

from vigil.services.broker.endpoint import (
    KafkaEndpoint,
    broker_command,
    resolve_bootstrap,
    run_broker,
    start_local_broker,
)
from vigil.services.broker.local import LocalBroker, LocalBrokerError, free_loopback_port

__all__ = [
    "KafkaEndpoint",
    "LocalBroker",
    "LocalBrokerError",
    "broker_command",
    "free_loopback_port",
    "resolve_bootstrap",
    "run_broker",
    "start_local_broker",
]
