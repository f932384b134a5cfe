"""One thread that moves sampled frames from the camera queues into Kafka, fairly.

Round-robin, one frame per camera per round (the starting camera rotates), so a camera with
a high rate cannot starve the others. Under backpressure the publisher waits and the camera
queues drop their oldest frames (counted): what reaches Kafka stays recent, memory bounded.

Backpressure means either of:
- more than `max_in_flight` frames handed to the producer are not yet acknowledged (a slow
  or absent broker: kafka-python keeps retrying them until delivery_timeout_ms);
- the producer cannot queue a frame at all (BrokerUnavailableError): that frame is dropped,
  and the publisher backs off before the next try.
A broker that comes back may have forgotten its topics (the local broker keeps them in
memory): the producer heals that itself (ResilientProducer.heal_topics), and the publisher
asks it to while it waits for the broker.

Camera state changes go to "camera-status" (key = camera id), the latest per camera, resent
until the broker takes them.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka.producer.future import RecordMetadata

from vigil.pipelines.camera_status import CameraStatus
from vigil.services.common.contract import CameraStatusMessage, FrameHeaders, encode_json
from vigil.services.common.kafka import (
    BrokerUnavailableError,
    KafkaSettings,
    MessageTooLargeError,
    ResilientProducer,
)
from vigil.services.ingest.buffers import DropOldestQueue
from vigil.services.ingest.metrics import IngestMetrics
from vigil.services.ingest.reader import EncodedFrame

logger = logging.getLogger(__name__)

# Backoff after the producer refused a frame: the producer itself already waited
# max_block_ms, so this only spaces out the retries of a long outage.
_RETRY_INITIAL_S = 0.25
_RETRY_MAX_S = 2.0
# The publisher looks at its queues at least this often even when no camera wakes it.
_IDLE_WAKE_S = 0.5


class FramePublisher:
    def __init__(
        self,
        producer: ResilientProducer,
        settings: KafkaSettings,
        metrics: IngestMetrics,
        max_in_flight: int = 64,
    ) -> None:
        self.producer = producer
        self.settings = settings
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self._queues: dict[str, DropOldestQueue[EncodedFrame]] = {}
        self._seq: dict[str, int] = {}
        self._pending_status: dict[str, CameraStatus] = {}
        self._status_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._in_flight = 0
        self._in_flight_changed = threading.Condition()
        self._rotation = 0
        self._retry_delay = _RETRY_INITIAL_S
        self.broker_available = True
        self._thread = threading.Thread(target=self._run, name="ingest-publisher", daemon=True)

    def queue_for(self, camera_id: str, maxsize: int) -> DropOldestQueue[EncodedFrame]:
        """The camera's queue (created on first call); putting into it wakes the publisher."""
        if camera_id not in self._queues:
            self._queues[camera_id] = DropOldestQueue(maxsize, on_put=self._wake.set)
            self._seq[camera_id] = 0
        return self._queues[camera_id]

    def remove_queue(self, camera_id: str) -> None:
        """Forget a deleted camera's queue (its reader has stopped); what it held is dropped,
        counted as `deleted`. Its sequence numbers continue should the camera come back."""
        queue = self._queues.pop(camera_id, None)
        left = queue.drain() if queue is not None else []
        if left:
            self.metrics.frames_dropped.labels(camera_id, "deleted").inc(len(left))

    def post_status(self, status: CameraStatus) -> None:
        """Publish the camera's state (only the latest is kept while the broker is away)."""
        with self._status_lock:
            self._pending_status[status.camera_id] = status
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Publish what the queues still hold (for up to drain_timeout_s), flush, and stop;
        frames left over are counted as dropped (reason shutdown)."""
        deadline = time.monotonic() + drain_timeout_s
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=drain_timeout_s + 1.0)
        if self._thread.is_alive():  # stuck in a send to a dead broker: do not race it
            logger.warning("ingest stopping: the publisher is still waiting for Kafka; not draining")
        else:
            while time.monotonic() < deadline and self.broker_available and self._publish_round(deadline):
                pass
            self._publish_statuses()
        try:
            self.producer.flush(timeout_s=max(0.5, deadline - time.monotonic()))
        except BrokerUnavailableError as error:
            logger.warning("ingest stopping: %s", error)
        for camera_id, queue in list(self._queues.items()):
            left = queue.drain()
            if left:
                self.metrics.frames_dropped.labels(camera_id, "shutdown").inc(len(left))
            self.metrics.queue_depth.labels(camera_id).set(0)

    # -- the publisher's thread -----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(_IDLE_WAKE_S)
            self._wake.clear()
            self._publish_statuses()
            while not self._stop.is_set() and self._publish_round():
                pass

    def _publish_round(self, deadline: float | None = None) -> bool:
        """Publish at most one frame per camera; False when every queue was empty."""
        camera_ids = list(self._queues)
        if not camera_ids:
            return False
        self._rotation = (self._rotation + 1) % len(camera_ids)
        published_any = False
        for camera_id in camera_ids[self._rotation :] + camera_ids[: self._rotation]:
            if not self._wait_for_room(deadline):
                return False
            queue = self._queues.get(camera_id)  # None: the camera was deleted meanwhile
            frame = queue.get_nowait() if queue is not None else None
            if queue is None or frame is None:
                continue
            self.metrics.queue_depth.labels(camera_id).set(len(queue))
            published_any = True
            self._publish(frame)
        return published_any

    def _publish(self, frame: EncodedFrame) -> None:
        camera_id = frame.camera_id
        headers = FrameHeaders(
            camera_id=camera_id,
            ts_ms=frame.ts_ms,
            seq=self._seq[camera_id],
            width=frame.width,
            height=frame.height,
        )
        started = time.perf_counter()
        try:
            future = self.producer.send_frame(headers, frame.jpeg)
        except BrokerUnavailableError as error:
            self.metrics.frames_dropped.labels(camera_id, "broker_unavailable").inc()
            self._broker_trouble(str(error))
            return
        except MessageTooLargeError as error:  # this frame only: the next one may be smaller
            self.metrics.frames_dropped.labels(camera_id, "too_large").inc()
            logger.error(
                "camera %s: frame not published: %s", camera_id, error, extra={"camera_id": camera_id}
            )
            return
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        self._seq[camera_id] += 1
        with self._in_flight_changed:
            self._in_flight += 1
        future.add_callback(self._acknowledged, camera_id)
        future.add_errback(self._failed, camera_id)
        if not self.broker_available:
            logger.info("Kafka broker at %s takes frames again", self.settings.bootstrap)
            self.broker_available = True
            self._retry_delay = _RETRY_INITIAL_S

    def _wait_for_room(self, deadline: float | None) -> bool:
        """Block while max_in_flight frames are unacknowledged; False to stop publishing."""
        while True:
            with self._in_flight_changed:
                if self._in_flight < self.max_in_flight:
                    return True
                if (self._stop.is_set() and deadline is None) or (
                    deadline is not None and time.monotonic() >= deadline
                ):
                    return False
                self._in_flight_changed.wait(0.2)
                still_full = self._in_flight >= self.max_in_flight
            if still_full:  # outside the lock: the producer's callbacks need it
                self.producer.heal_topics()

    def _acknowledged(self, camera_id: str, _metadata: RecordMetadata) -> None:
        self.metrics.frames_published.labels(camera_id).inc()
        self._frame_settled()

    def _failed(self, camera_id: str, _error: BaseException) -> None:
        self.metrics.frames_dropped.labels(camera_id, "delivery_failed").inc()
        self._frame_settled()

    def _frame_settled(self) -> None:
        with self._in_flight_changed:
            self._in_flight -= 1
            self._in_flight_changed.notify_all()

    def _publish_statuses(self) -> None:
        with self._status_lock:
            pending, self._pending_status = self._pending_status, {}
        for camera_id, status in pending.items():
            try:
                self.producer.send(
                    self.settings.topics.camera_status,
                    encode_json(status_message(status, time.time())),
                    key=camera_id,
                )
            except BrokerUnavailableError as error:
                with self._status_lock:  # keep it unless a newer one arrived meanwhile
                    self._pending_status.setdefault(camera_id, status)
                self._broker_trouble(str(error))
                return

    def _broker_trouble(self, reason: str) -> None:
        if self.broker_available:
            logger.warning("Kafka unavailable, frames are being dropped: %s", reason)
            self.broker_available = False
        self.producer.heal_topics(force=True)
        self._stop.wait(self._retry_delay)
        self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX_S)


def status_message(status: CameraStatus, now: float) -> CameraStatusMessage:
    """The "camera-status" message for `status`, published at `now` (epoch seconds)."""
    since_ms = round(status.since * 1000)
    return CameraStatusMessage(
        camera_id=status.camera_id,
        state=status.state,
        reason=status.reason,
        since_ts_ms=since_ms,
        ts_ms=max(round(now * 1000), since_ms),
        reconnects=status.reconnects,
    )
