"""The ingest service: every configured camera read on a thread of its own, sampled frames
published to Kafka "frames", camera states to "camera-status", metrics on /metrics.

    run_ingest(Path("cameras.yaml"), metrics_port=None)   # until SIGINT / SIGTERM
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from vigil.pipelines.camera_status import CameraStatus
from vigil.services.common.broker_health import BrokerMonitor
from vigil.services.common.kafka import (
    BrokerUnavailableError,
    ResilientProducer,
    ensure_topics,
)
from vigil.services.common.lifecycle import serve_metrics, stop_on_signals
from vigil.services.ingest.camera import CameraWorker
from vigil.services.ingest.config import IngestServiceSettings
from vigil.services.ingest.metrics import IngestMetrics
from vigil.services.ingest.publisher import FramePublisher

logger = logging.getLogger(__name__)

# How often the supervisor looks for stalled cameras; a fraction of any sane stall_after_s.
_WATCH_INTERVAL_S = 0.25
# Topics are created at start when the broker answers within this; otherwise the publisher
# creates them once it does (the service must start, and count drops, without a broker).
_STARTUP_TOPICS_TIMEOUT_S = 5.0


class IngestService:
    """Owns the camera threads, the publisher thread and the producer.

    metrics_registry: where the metrics go (the process-wide registry by default; tests and
    embedders that run several services in one process give each its own).
    """

    def __init__(
        self,
        settings: IngestServiceSettings,
        *,
        metrics_registry: CollectorRegistry | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.settings = settings
        self.config = config = settings.ingest
        self.kafka_settings = kafka_settings = settings.kafka
        self.metrics = IngestMetrics(metrics_registry)
        self.metrics_port = config.metrics_port if metrics_port is None else metrics_port
        self.producer = ResilientProducer(kafka_settings)
        self.publisher = FramePublisher(
            self.producer, kafka_settings, self.metrics, max_in_flight=config.publisher.max_in_flight
        )
        self.workers: dict[str, CameraWorker] = {}
        for camera in config.cameras:
            queue = self.publisher.queue_for(camera.id, camera.queue_size)
            self.workers[camera.id] = CameraWorker(
                camera, queue, self.metrics, on_status=self.publisher.post_status
            )
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._watch, name="ingest-supervisor", daemon=True)
        self._stop_metrics: Callable[[], None] | None = None
        self.broker_monitor = BrokerMonitor(kafka_settings, self.metrics.registry)
        self._started = False

    def start(self) -> IngestService:
        if self._started:
            return self
        self._started = True
        if self.metrics_port:
            self._stop_metrics = serve_metrics(self.metrics_port, self.metrics.registry)
            logger.info("ingest metrics on :%d/metrics", self.metrics_port)
        try:
            ensure_topics(self.kafka_settings, timeout_s=_STARTUP_TOPICS_TIMEOUT_S)
        except BrokerUnavailableError as error:
            logger.warning("starting without Kafka (frames are dropped until it answers): %s", error)
        self.broker_monitor.start()
        self.publisher.start()
        for worker in self.workers.values():
            worker.start()
        self._supervisor.start()
        enabled = len(self.config.enabled_cameras)
        logger.info("ingest started: %d camera(s), %d enabled", len(self.workers), enabled)
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop reading, publish what is queued (publisher.drain_timeout_s), flush, close.

        A camera thread blocked in a read ends within that camera's read_timeout_s; threads
        are daemons, so one that is still blocked after `timeout_s` cannot keep the process up.
        """
        if not self._started or self._stop.is_set():
            return
        self._stop.set()
        for worker in self.workers.values():
            worker.request_stop()
        longest_read = max((camera.read_timeout_s for camera in self.config.cameras), default=0.0)
        deadline = time.monotonic() + (longest_read + 1.0 if timeout_s is None else timeout_s)
        for camera_id, worker in self.workers.items():
            if not worker.join(max(0.0, deadline - time.monotonic())):
                logger.warning("camera %s: reader still blocked at stop; abandoned", camera_id)
        self._supervisor.join(timeout=1.0)
        self.publisher.stop(drain_timeout_s=self.config.publisher.drain_timeout_s)
        self.producer.close()
        self.broker_monitor.stop()
        if self._stop_metrics is not None:
            self._stop_metrics()
        logger.info("ingest stopped")

    def status(self) -> dict[str, CameraStatus]:
        return {camera_id: worker.status for camera_id, worker in self.workers.items()}

    def __enter__(self) -> IngestService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _watch(self) -> None:
        while not self._stop.wait(_WATCH_INTERVAL_S):
            for worker in self.workers.values():
                worker.check_stall()


def run_ingest(config_path: Path, metrics_port: int | None = None) -> None:
    """`vigil ingest --config cameras.yaml`: run until SIGINT or SIGTERM, then stop gracefully.

    metrics_port None takes the config file's metrics_port; 0 turns /metrics off. Kafka comes
    from the environment (VIGIL_KAFKA_BOOTSTRAP, ...). Raises IngestConfigError (a VigilError,
    printed as one line by the CLI) when the file is invalid. Call from the main thread.
    """
    service = IngestService(IngestServiceSettings.load(config_path), metrics_port=metrics_port)
    with stop_on_signals() as stop:
        try:
            service.start()
            while not stop.wait(1.0):  # a timed wait lets the signal handler run promptly
                pass
        finally:
            service.stop()
