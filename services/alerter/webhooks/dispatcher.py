"""`WebhookDispatcher`: each webhook gets its own thread and bounded queue, so that a slow receiver
never holds up alerting. Its workers drive their `WebhookSender` through the sender's two
package-internal entry points: `_deliver` (a body already encoded once for every webhook) and
`_dead_letter` (events never attempted: queue full, or cancelled at close)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vigil.services.alerter.webhooks.outcomes import CANCELLED, QUEUE_FULL, DeadLetter, DeliveryResult
from vigil.services.alerter.webhooks.sender import WebhookSender
from vigil.services.alerter.webhooks.settings import WebhookSettings
from vigil.services.alerter.webhooks.signing import check_event_id, encode_payload

# The package's one logger, named as it was before the package was split into modules.
log = logging.getLogger("vigil.services.alerter.webhooks")

_STOP = object()


class _Worker:
    def __init__(self, sender: WebhookSender, queue_size: int) -> None:
        self.sender = sender
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.thread = threading.Thread(target=self._run, name=f"webhook-{sender.settings.name}", daemon=True)
        self.thread.start()

    def submit(self, event_id: str, body: bytes, payload: Mapping[str, Any]) -> None:
        try:
            self.queue.put_nowait((event_id, body, payload))
        except queue.Full:
            error = f"queue full ({self.queue.maxsize} events waiting)"
            self.sender._dead_letter(event_id, payload, DeliveryResult(False, 0, None, error), QUEUE_FULL)

    def abandon_queued(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                event_id, _, payload = item
                error = "cancelled: the dispatcher closed before delivery"
                self.sender._dead_letter(event_id, payload, DeliveryResult(False, 0, None, error), CANCELLED)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            event_id = item[0]
            try:
                self.sender._deliver(*item)
            except Exception:  # a bug must not stop the webhook's thread
                log.exception("webhook %s: delivering event %s failed", self.sender.settings.name, event_id)


class WebhookDispatcher:
    """Fans events out to webhooks without blocking: one thread and one bounded queue each.

    submit() returns at once; an event that finds a webhook's queue full is dead-lettered for
    that webhook ("queue full"). close(timeout) drains the queues: whatever is still waiting or
    retrying when the timeout runs out is dead-lettered as "cancelled".
    """

    def __init__(
        self,
        webhooks: Iterable[WebhookSettings],
        on_dead_letter: Callable[[DeadLetter], None] | None = None,
        observe: Callable[[str, float], None] | None = None,
        *,
        queue_size: int = 1000,
    ) -> None:
        webhooks = list(webhooks)
        names = [w.name for w in webhooks]
        if len(set(names)) != len(names):
            raise ValueError(f"webhook names must be unique, got {names}")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._lock = threading.Lock()
        self._closed = False
        self._workers = [_Worker(WebhookSender(w, on_dead_letter, observe), queue_size) for w in webhooks]

    def submit(self, event_id: str, payload: Mapping[str, Any]) -> None:
        """Queue `payload` for every webhook. Raises ValueError/TypeError for a bad event id or
        a non-JSON payload, RuntimeError after close()."""
        check_event_id(event_id)
        body = encode_payload(payload)
        with self._lock:
            if self._closed:
                raise RuntimeError("the webhook dispatcher is closed")
            for worker in self._workers:
                worker.submit(event_id, body, payload)

    def close(self, timeout: float = 10.0) -> bool:
        """Deliver what is queued within `timeout` seconds, then stop. True if everything was
        delivered or dead-lettered in the normal course; False if some was cancelled."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            try:
                worker.queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                pass
        clean = True
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            if worker.thread.is_alive():
                clean = False
                worker.sender.cancel()
                worker.abandon_queued()
                worker.queue.put(_STOP)  # room now: the queue was just emptied
        for worker in self._workers:
            if worker.thread.is_alive():  # the request in flight, bounded by its timeout
                worker.thread.join(worker.sender.settings.timeout_s + 1.0)
            worker.sender.close()
        return clean

    def __enter__(self) -> WebhookDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
