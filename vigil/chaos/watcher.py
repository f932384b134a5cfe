"""What a chaos run's services publish, read from the broker as it happens."""

from __future__ import annotations

import threading
import time

from vigil.chaos.model import ChaosRun


class Watcher:
    """Reads "hits", "alerts", "camera-status" and "dead-letters" from their start into the run,
    in a thread, through broker restarts."""

    def __init__(self, bootstrap: str, run: ChaosRun) -> None:
        self.bootstrap = bootstrap
        self.run = run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        time.sleep(1.0)  # the last records of the stopping services
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        from kafka import KafkaConsumer

        from vigil.services.common.kafka import broker_reachable

        while not self._stop.is_set() and not broker_reachable(self.bootstrap, timeout_s=0.5):
            time.sleep(0.2)
        consumer = None
        while consumer is None and not self._stop.is_set():
            try:
                consumer = KafkaConsumer(
                    bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
                )
                partitions = []
                for topic in ("hits", "alerts", "camera-status", "dead-letters"):
                    numbers = consumer.partitions_for_topic(topic)
                    if not numbers:
                        raise RuntimeError(f"{topic} not created yet")
                    partitions += [_partition(topic, number) for number in numbers]
                consumer.assign(partitions)
                consumer.seek_to_beginning()
            except Exception:
                if consumer is not None:
                    consumer.close()
                consumer = None
                time.sleep(0.5)
        while consumer is not None and not self._stop.is_set():
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    self._take(record)
        if consumer is not None:
            consumer.close()

    def _take(self, record) -> None:
        from vigil.services.common.contract import AlertMessage, CameraStatusMessage, HitMessage

        if record.topic == "hits":
            hit = HitMessage.model_validate_json(record.value)
            self.run.hits[hit.hit_id] = hit
        elif record.topic == "alerts":
            self.run.alerts.append(AlertMessage.model_validate_json(record.value))
        elif record.topic == "camera-status" and record.value:
            status = CameraStatusMessage.model_validate_json(record.value)
            if status.state == "streaming" and self.run.stream_start_s is None:
                self.run.stream_start_s = status.since_ts_ms / 1000
        elif record.topic == "dead-letters":
            headers = {name: raw.decode("utf-8", "replace") for name, raw in record.headers or []}
            self.run.dead_letters.append((headers.get("dlq.reason", ""), headers.get("dlq.source_topic", "")))


def _partition(topic: str, partition: int):
    from kafka import TopicPartition

    return TopicPartition(topic, partition)
