"""The local Kafka-protocol broker (tansu) of the embedded default, and where Kafka is."""

from vigil.services.broker.local import (
    KafkaEndpoint,
    LocalBroker,
    LocalBrokerError,
    broker_command,
    free_loopback_port,
    resolve_bootstrap,
    run_broker,
)

__all__ = [
    "KafkaEndpoint",
    "LocalBroker",
    "LocalBrokerError",
    "broker_command",
    "free_loopback_port",
    "resolve_bootstrap",
    "run_broker",
]
