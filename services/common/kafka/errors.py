"""The errors the Kafka clients raise, and the one message every "no broker" failure shares.

They are VigilErrors: the CLI prints them as one line, and each names what to do about it.
`broker_unavailable_error` builds the BrokerUnavailableError that topics, the producer and the
consumers raise, so that all of them name the bootstrap address and the fix the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil.errors import VigilError

if TYPE_CHECKING:
    from vigil.services.common.kafka.settings import KafkaSettings


class BrokerUnavailableError(VigilError):
    """No Kafka broker answered in time; the message names the bootstrap address."""


class MessageTooLargeError(VigilError):
    """A record bigger than the topics accept (max_message_bytes)."""


class TopicMissingError(VigilError):
    """A topic a reader needs does not exist (ensure_topics creates them)."""


def broker_unavailable_error(settings: KafkaSettings, what: str, waited_s: float) -> BrokerUnavailableError:
    """The error for `what` failing because no broker answered within `waited_s`."""
    return BrokerUnavailableError(
        f"{what}: no Kafka broker answered at {settings.bootstrap} within {waited_s:.1f} s "
        "(set VIGIL_KAFKA_BOOTSTRAP to your cluster, or start the local one with `vigil broker`)"
    )
