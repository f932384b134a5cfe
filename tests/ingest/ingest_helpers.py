"""Helpers for the ingest tests: waiting on a condition, a camera worker without Kafka, reading
what ingest published.

A module of its own (not conftest) so that tests import it by a name no other conftest shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from vigil.services.common.contract import CameraStatusMessage, FrameHeaders, decode_json
from vigil.services.common.kafka import KafkaSettings, assign_all_partitions, make_consumer
from vigil.services.ingest.buffers import DropOldestQueue
from vigil.services.ingest.camera import CameraWorker
from vigil.services.ingest.config import parse_config
from vigil.services.ingest.metrics import IngestMetrics


def wait_for(
    condition: Callable[[], object], timeout_s: float, interval_s: float = 0.05, what: str = ""
) -> float:
    """Poll until condition() is truthy; returns the seconds it took (AssertionError on timeout)."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")
        time.sleep(interval_s)


def make_worker(url: str, queue_size: int, **settings):
    """(worker, queue, registry, statuses) for camera "cam" at `url`, not started; `statuses`
    collects every status the worker reports (what ingest publishes on "camera-status")."""
    camera = parse_config({"cameras": [{"id": "cam", "url": url, **settings}]}, environ={}).cameras[0]
    registry = CollectorRegistry()
    queue = DropOldestQueue(queue_size)
    statuses = []
    worker = CameraWorker(camera, queue, IngestMetrics(registry), on_status=statuses.append)
    return worker, queue, registry, statuses


def sample(registry: CollectorRegistry, name: str, **labels) -> float:
    """The value of metric `name` for camera "cam" (0 when absent)."""
    return registry.get_sample_value(name, {"camera": "cam", **labels}) or 0.0


@dataclass
class PublishedFrame:
    headers: FrameHeaders
    jpeg: bytes
    received: float  # when the test's consumer got it (time.time())


class TopicReader:
    """Reads what ingest published, from the first record, without joining a group (instant)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.frames: list[PublishedFrame] = []
        self.statuses: list[CameraStatusMessage] = []
        self._frames = self._consumer(settings.topics.frames)
        self._statuses = self._consumer(settings.topics.camera_status)

    def _consumer(self, topic: str) -> KafkaConsumer:
        consumer = make_consumer(self.settings, group_id=None)
        assign_all_partitions(consumer, topic)
        consumer.seek_to_beginning()
        return consumer

    def poll(self, timeout_ms: int = 200) -> None:
        for records in self._frames.poll(timeout_ms=timeout_ms).values():
            for record in records:
                self.frames.append(
                    PublishedFrame(FrameHeaders.from_kafka(record.headers), record.value, time.time())
                )
        for records in self._statuses.poll(timeout_ms=0).values():
            self.statuses.extend(decode_json(CameraStatusMessage, record.value) for record in records)

    def poll_for(self, seconds: float) -> None:
        """Keep reading for `seconds` (instead of sleeping while records pile up unread)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll(100)

    def frames_of(self, camera_id: str, after_ts_ms: int = 0) -> list[PublishedFrame]:
        return [f for f in self.frames if f.headers.camera_id == camera_id and f.headers.ts_ms > after_ts_ms]

    def wait_for_frames(self, camera_id: str, count: int, timeout_s: float, after_ts_ms: int = 0) -> float:
        def enough() -> bool:
            self.poll(100)
            return len(self.frames_of(camera_id, after_ts_ms)) >= count

        return wait_for(enough, timeout_s, interval_s=0, what=f"{count} frames of {camera_id}")

    def close(self) -> None:
        self._frames.close(autocommit=False)
        self._statuses.close(autocommit=False)
