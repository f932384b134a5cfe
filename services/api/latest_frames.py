"""Each camera's latest frame, for the API's snapshots: a light follower of "frames" that runs
only while someone looks.

Why a follower, and why a lazy one (2 cores): reading "the last record of camera X" on demand
would need a consumer per request and a search back from the end of a partition that several
cameras share (tansu reports a partition's end per stored batch, not per record, and lists the
partition's every batch on each fetch), so each snapshot would cost a burst of fetches. A
follower that always ran would read every frame of every camera (the detector's load, again)
even with no console open. So the follower reads from the end of "frames" while snapshots are
being asked for, keeps the newest JPEG per camera (by capture time), and pauses its partitions
`idle_after_s` after the last request: a console refreshing its camera list every few seconds
keeps it going, and nothing is read once it closes. The first request after a pause waits up to
`first_frame_wait_s` for a fresh frame of its camera (one comes every 1/fps seconds), then
answers with what it has, its capture time in `X-Frame-Ts-Ms`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kafka import TopicPartition

from vigil.services.common.contract import BadMessageError, FrameHeaders
from vigil.services.common.kafka import KafkaSettings, make_consumer

log = logging.getLogger(__name__)

_POLL_MS = 300
_RETRY_S = 2.0


@dataclass(frozen=True)
class Snapshot:
    camera_id: str
    ts_ms: int  # capture time
    jpeg: bytes


class LatestFrames:
    def __init__(
        self, settings: KafkaSettings, *, idle_after_s: float = 30.0, first_frame_wait_s: float = 2.0
    ):
        self.settings = settings
        self.idle_after_s = idle_after_s
        self.first_frame_wait_s = first_frame_wait_s
        self._latest: dict[str, Snapshot] = {}
        self._changed = threading.Condition()
        self._wanted_until = 0.0  # monotonic: follow until then
        self._following_since: float | None = None  # when it last resumed (time.time()); None: paused
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-latest-frames", daemon=True)
        self._thread.start()

    def latest(self, camera_id: str) -> Snapshot | None:
        """The newest frame of `camera_id` seen, or None; (re)starts following when paused."""
        with self._changed:
            self._wanted_until = time.monotonic() + self.idle_after_s
            following = self._following_since is not None
        if not following:
            self._wake.set()
            asked_ms = round(time.time() * 1000)

            def fresh() -> bool:
                snapshot = self._latest.get(camera_id)
                return snapshot is not None and snapshot.ts_ms >= asked_ms - 1000 * self.first_frame_wait_s

            with self._changed:
                self._changed.wait_for(fresh, timeout=self.first_frame_wait_s)
        return self._latest.get(camera_id)

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=_POLL_MS / 1000 + 5.0)

    # --- the follower's thread -----------------------------------------------------------

    def _run(self) -> None:
        consumer = None
        partitions: list[TopicPartition] = []
        while not self._closed.is_set():
            if time.monotonic() >= self._wanted_until:
                if consumer is not None and self._following_since is not None:
                    consumer.pause(*partitions)
                with self._changed:
                    self._following_since = None
                self._wake.wait()
                self._wake.clear()
                continue
            try:
                if consumer is None:
                    consumer = make_consumer(self.settings, group_id=None)
                    topic = self.settings.topics.frames
                    partitions = [
                        TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
                    ]
                    consumer.assign(partitions)
                    consumer.pause(*partitions)
                if self._following_since is None:
                    consumer.resume(*partitions)
                    consumer.seek_to_end(*partitions)
                    with self._changed:
                        self._following_since = time.time()
                self._keep(consumer.poll(timeout_ms=_POLL_MS))
            except Exception as error:  # Kafka away: try again; what is kept stays served
                log.debug("following frames for snapshots: %s", error)
                if consumer is not None:
                    consumer.close(autocommit=False)
                consumer = None
                with self._changed:
                    self._following_since = None
                self._closed.wait(_RETRY_S)
        if consumer is not None:
            consumer.close(autocommit=False)

    def _keep(self, batches: dict) -> None:
        newest: dict[str, Snapshot] = {}
        for records in batches.values():
            for record in records:
                try:
                    headers = FrameHeaders.from_kafka(record.headers)
                except BadMessageError:
                    continue
                known = newest.get(headers.camera_id) or self._latest.get(headers.camera_id)
                if record.value and (known is None or headers.ts_ms >= known.ts_ms):
                    newest[headers.camera_id] = Snapshot(headers.camera_id, headers.ts_ms, record.value)
        if newest:
            with self._changed:
                self._latest.update(newest)
                self._changed.notify_all()
