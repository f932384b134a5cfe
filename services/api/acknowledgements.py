"""An acknowledgement from the API: a command to the alerter, answered once the book shows it.

    record = await acknowledge(alerts, commands, alert_id, "an", timeout_s=10)

The alerter owns the book; the API only mirrors it (services/api/alert_mirror.py). So the API
checks its mirror (UnknownAlertError: 404; AlreadyAcknowledgedError, naming who and when: 409),
sends an `AcknowledgeCommand` on "alert-commands" (key = alert id), and waits, without holding
a thread, until the mirror shows the alert acknowledged: by this command (same user and time),
the acknowledged record; by someone else first (two operators racing), AlreadyAcknowledgedError
naming them. When the alerter does not apply it within `timeout_s` (stopped, or behind),
AcknowledgementPendingError says so: the command stays on the topic and applies once the
alerter is back, and a retry then answers 409 naming this user.

The wait subscribes to the mirror's feed before it reads the book, so the change cannot slip
between the two.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from vigil.errors import VigilError
from vigil.pipelines.alert_book import AlertRecord, AlreadyAcknowledgedError
from vigil.services.api.alert_mirror import MirroredAlerts
from vigil.services.common.contract import AcknowledgeCommand, AlertMessage, encode_json
from vigil.services.common.kafka import BrokerUnavailableError

# After the feed ended a subscription (it fell behind, or is closing), the book is looked at this often.
_BOOK_CHECK_S = 0.1


class AcknowledgementPendingError(VigilError):
    """The alerter did not apply the acknowledgement in time (or it could not be sent); 503."""


SendCommand = Callable[[AcknowledgeCommand], None]


def _acknowledged_by(
    command: AcknowledgeCommand, record: AlertRecord[AlertMessage]
) -> AlertRecord[AlertMessage]:
    if record.acknowledged_by == command.user and record.acknowledged_ts_ms == command.ts_ms:
        return record
    raise AlreadyAcknowledgedError(
        record.alert_id, record.acknowledged_by or "?", record.acknowledged_ts_ms or 0
    )


async def acknowledge(
    alerts: MirroredAlerts, send: SendCommand, alert_id: str, user: str, timeout_s: float
) -> AlertRecord[AlertMessage]:
    """See the module docstring. `send(command)` puts it on "alert-commands" and waits for the
    broker (blocking: it runs in a worker thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    with alerts.feed.subscribe(None, loop) as subscription:
        record = alerts.get(alert_id)
        if record.status == "acknowledged":
            raise AlreadyAcknowledgedError(
                alert_id, record.acknowledged_by or "?", record.acknowledged_ts_ms or 0
            )
        command = AcknowledgeCommand(alert_id=alert_id, user=user, ts_ms=int(time.time() * 1000))
        try:
            await asyncio.to_thread(send, command)
        except BrokerUnavailableError as error:
            raise AcknowledgementPendingError(
                f"the acknowledgement could not be sent to the alerter: {error}"
            ) from None
        following = True
        while (remaining := deadline - loop.time()) > 0:
            if following:
                try:
                    change = await subscription.next(remaining)
                except TimeoutError:
                    break
                if change is None:
                    following = False  # the feed ended this subscription: read the book instead
                elif change.kind == "acknowledged" and change.record.alert_id == alert_id:
                    return _acknowledged_by(command, change.record)
                continue
            record = alerts.get(alert_id)
            if record.status == "acknowledged":
                return _acknowledged_by(command, record)
            await asyncio.sleep(min(_BOOK_CHECK_S, remaining))
    raise AcknowledgementPendingError(
        f"the alerter did not apply the acknowledgement of {alert_id} within {timeout_s:g} s "
        "(is it running?); it stays queued on alert-commands and applies when the alerter is back"
    )


def command_sender(producer, topic: str, timeout_s: float) -> SendCommand:
    """`send` for `acknowledge`: one command on `topic` keyed by its alert id, flushed."""

    def send(command: AcknowledgeCommand) -> None:
        producer.send(topic, encode_json(command), key=command.alert_id)
        producer.flush(timeout_s)

    return send
