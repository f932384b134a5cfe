"""The live feed of alert changes, from the API's mirror of the alert book to event-stream subscribers.

    feed = AlertFeed(replay=1000)
    feed.publish("raised", record)                  # any thread (the API service's loop)
    with feed.subscribe(last_event_id, loop) as subscription:   # in the HTTP server's loop
        for event in subscription.backlog: ...
        event = await subscription.next(timeout_s=15)

Each change gets an id "<epoch>-<seq>": `seq` counts up within this process, `epoch` names the
process. A client that reconnects with the last id it saw (`Last-Event-ID`) is sent what it
missed from the last `replay` changes, with no gap and no repeat: the backlog is taken and the
subscription registered under one lock. When that is impossible (the API restarted, or the
client fell further behind than the replay buffer), `subscribe` says so with `resync`: the client
should fetch the alert list again.

A subscriber that stops reading gets at most `max_queued` changes queued; past that its stream
ends (and its client reconnects with Last-Event-ID), so one stuck client never grows memory.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import deque
from dataclasses import dataclass

from vigil.pipelines.alert_book import AlertRecord
from vigil.pipelines.alert_changes import ChangeKind


@dataclass(frozen=True)
class AlertChange:
    id: str
    seq: int
    kind: ChangeKind
    record: AlertRecord


class Subscription:
    """One subscriber's queue; used from its asyncio loop only (publish crosses over safely)."""

    def __init__(self, feed: AlertFeed, loop: asyncio.AbstractEventLoop, max_queued: int) -> None:
        self._feed = feed
        self._loop = loop
        self._queue: asyncio.Queue[AlertChange | None] = asyncio.Queue()
        self._max_queued = max_queued
        self.backlog: list[AlertChange] = []
        self.resync = False
        self.overflowed = False

    def _offer(self, change: AlertChange | None) -> None:
        """Called from any thread."""
        try:
            self._loop.call_soon_threadsafe(self._put, change)
        except RuntimeError:  # the subscriber's loop is closed: it is gone
            self._feed._unsubscribe(self)

    def _put(self, change: AlertChange | None) -> None:
        if self.overflowed:
            return
        if change is not None and self._queue.qsize() >= self._max_queued:
            self.overflowed = True
            change = None  # ends the stream
        self._queue.put_nowait(change)

    async def next(self, timeout_s: float) -> AlertChange | None:
        """The next change; None when the stream should end (the feed closed, or this subscriber
        fell behind). Raises TimeoutError when nothing came within `timeout_s`."""
        return await asyncio.wait_for(self._queue.get(), timeout_s)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._feed._unsubscribe(self)


class AlertFeed:
    def __init__(self, replay: int = 1000, max_queued: int = 1000) -> None:
        if replay < 1 or max_queued < 1:
            raise ValueError("replay and max_queued must be at least 1")
        self.epoch = secrets.token_hex(4)
        self._lock = threading.Lock()
        self._changes: deque[AlertChange] = deque(maxlen=replay)
        self._seq = 0
        self._subscribers: set[Subscription] = set()
        self._max_queued = max_queued
        self._closed = False

    def publish(self, kind: ChangeKind, record: AlertRecord) -> AlertChange:
        with self._lock:
            self._seq += 1
            change = AlertChange(f"{self.epoch}-{self._seq}", self._seq, kind, record)
            self._changes.append(change)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber._offer(change)
        return change

    def subscribe(self, last_event_id: str | None, loop: asyncio.AbstractEventLoop) -> Subscription:
        """A new subscription with the changes after `last_event_id` as its backlog (none for a
        first connection; `resync` set when they cannot be known)."""
        subscription = Subscription(self, loop, self._max_queued)
        with self._lock:
            if self._closed:
                subscription._queue.put_nowait(None)
                return subscription
            if last_event_id:
                epoch, _, seq_text = last_event_id.partition("-")
                # ASCII digits only: "²" is a digit to str.isdigit but not to int().
                seq = int(seq_text) if seq_text.isascii() and seq_text.isdecimal() else -1
                oldest = self._changes[0].seq if self._changes else self._seq + 1
                if epoch != self.epoch or seq < 0 or seq > self._seq or seq < oldest - 1:
                    subscription.resync = True
                else:
                    subscription.backlog = [change for change in self._changes if change.seq > seq]
            self._subscribers.add(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def close(self) -> None:
        """End every stream (clients reconnect, e.g. to the restarted API)."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
            self._subscribers.clear()
        for subscriber in subscribers:
            subscriber._offer(None)
