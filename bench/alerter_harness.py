"""Alerter bench, service part: the harness around the running alerter, which leaves the service
as it is: the loop that runs it in a thread, the sender of hits, a follower of "alerts", wrappers
that time the service's own methods, a process's CPU time, and the figures (n, median, p90, max)
of what they keep.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

FOLLOWER_FETCH_WAIT_MS = 10


def stats_ms(values_s: list[float]) -> dict:
    """n, median, p90 and max of seconds, in ms (numpy's linear percentiles)."""
    import numpy as np

    if not values_s:
        return {"n": 0, "median_ms": None, "p90_ms": None, "max_ms": None}
    ms = np.asarray(values_s, dtype=float) * 1000
    median, p90 = np.percentile(ms, [50, 90])
    return {"n": len(values_s), "median_ms": float(median), "p90_ms": float(p90), "max_ms": float(ms.max())}


def process_cpu_s(pid: int | None) -> float:
    """utime + stime of a process (every thread), seconds; 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class AlertsFollower(threading.Thread):
    """Follows "alerts" from its end: (receive time, CreateTime s, timestamp type, AlertMessage)."""

    def __init__(self, settings) -> None:
        super().__init__(daemon=True)
        from vigil.services.common.kafka import assign_all_partitions, make_consumer

        # tansu holds a fetch for its full max wait even when records arrive meanwhile, so with
        # kafka-python's default (500 ms) the follower would add its own 0-250 ms; at 10 ms,
        # "received" is when the alert is on the broker and readable.
        self.consumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=FOLLOWER_FETCH_WAIT_MS)
        partitions = assign_all_partitions(self.consumer, settings.topics.alerts)
        self.consumer.seek_to_end(*partitions)
        for partition in partitions:
            self.consumer.position(partition)  # resolve "the end" now, before any alert
        self.received: dict[str, tuple[float, float, int]] = {}  # hit_id -> (received, created, type)
        self.halt = threading.Event()

    def run(self) -> None:
        from vigil.services.common.contract import AlertMessage

        while not self.halt.is_set():
            for records in self.consumer.poll(timeout_ms=100).values():
                now = time.time()
                for record in records:
                    alert = AlertMessage.model_validate_json(record.value)
                    self.received[alert.hit_id] = (now, record.timestamp / 1000, record.timestamp_type)
        self.consumer.close(autocommit=False)

    def wait_for(self, hit_ids: list[str], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(hit_id in self.received for hit_id in hit_ids):
                return True
            time.sleep(0.02)
        return False


class Timings:
    """Wraps the service's methods (instance attributes) to keep their durations."""

    def __init__(self, service) -> None:
        from vigil.services.alerter.state import POLICY_STATE

        self.handle: list[float] = []
        self.speak: list[tuple[float, bool | None]] = []  # (seconds, cached; None: no audio)
        self.checkpoint: list[float] = []
        self.snapshot_save: list[float] = []
        handle, speak, checkpoint = service._handle, service._speak, service.checkpoint
        save = service.state_log.save

        def timed_handle(record):
            started = time.perf_counter()
            try:
                return handle(record)
            finally:
                self.handle.append(time.perf_counter() - started)

        def timed_speak(text, language):
            started = time.perf_counter()
            spoken = speak(text, language)
            self.speak.append((time.perf_counter() - started, None if spoken is None else spoken.cached))
            return spoken

        def timed_checkpoint(*args, **kwargs):
            pending = bool(service._offsets)
            started = time.perf_counter()
            try:
                return checkpoint(*args, **kwargs)
            finally:
                if pending and not service._offsets:  # committed (not skipped by the interval)
                    self.checkpoint.append(time.perf_counter() - started)

        def timed_save(name, state):
            started = time.perf_counter()
            try:
                return save(name, state)
            finally:
                if name == POLICY_STATE:
                    self.snapshot_save.append(time.perf_counter() - started)

        service._handle, service._speak, service.checkpoint = timed_handle, timed_speak, timed_checkpoint
        service.state_log.save = timed_save

    def clear(self) -> None:
        for samples in (self.handle, self.speak, self.checkpoint, self.snapshot_save):
            samples.clear()


class ServiceLoop:
    """`service.run` in a thread of this process (as tests/alerter/alerter_support.py `Running`
    does), keeping what it raised."""

    def __init__(self, service) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

        def loop() -> None:
            try:
                service.run(self.stop)
            except BaseException as error:
                self.errors.append(error)

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()


class HitSender:
    """`send(camera, query_id)` puts a hit on "hits": (hit id, the producer's future); `sent` keeps
    when each was handed to the producer, `acked` when the broker acknowledged it."""

    def __init__(self, producer, topics) -> None:
        from vigil.services.common.contract import HitMessage, derive_hit_id, encode_json

        self.sent: dict[str, float] = {}
        self.acked: dict[str, float] = {}
        sent, acked = self.sent, self.acked

        def send(camera: str, query_id: str):
            start_ms = int(time.time() * 1000) - 2_000
            hit = HitMessage(
                hit_id=derive_hit_id(camera, query_id, start_ms),
                camera_id=camera,
                query_id=query_id,
                event_start_ts_ms=start_ms,
                peak_ts_ms=start_ms + 1_000,
                peak_score=0.8,
                thumbnail=f"{camera}/{start_ms + 1_000}.jpg",
                encoder="bench",
            )
            sent[hit.hit_id] = time.time()
            future = producer.send(topics.hits, encode_json(hit), key=camera)
            future.add_callback(lambda _metadata, hit_id=hit.hit_id: acked.__setitem__(hit_id, time.time()))
            return hit.hit_id, future

        self.send = send
