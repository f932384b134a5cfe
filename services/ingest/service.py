"""The ingest service: every camera read on a thread of its own, sampled frames published to
Kafka "frames", camera states to "camera-status", metrics on /metrics.

    run_ingest(Path("cameras.yaml"), metrics_port=None)   # until SIGINT / SIGTERM

The cameras are those of the compacted "cameras" topic, which operators edit through the API
(services/api/cameras.py); ingest follows it and applies a change without a restart: an added
camera starts reading, an edited one restarts its reader on the new settings (a change that
does not reach them, a display name, restarts nothing), a deleted one stops and its last status
says "camera deleted" (the decision: pipelines/camera_table.py, `plan_camera_changes`). The
YAML file's cameras seed the topic: each one the topic has no record of is published at start;
for one it has, the topic wins (pipelines/camera_table.py says why), and the file's entry only
adds what the topic does not carry (resize, timeouts, FFmpeg options; `build_camera`). Until
Kafka answers, ingest reads the file's cameras, so an outage at start does not blind it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kafka import errors as kafka_errors
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from vigil.pipelines.camera_status import CameraStatus
from vigil.pipelines.camera_table import cameras_to_seed, plan_camera_changes
from vigil.services.common.broker_health import BrokerMonitor
from vigil.services.common.contract import CameraMessage, describe_validation_error
from vigil.services.common.kafka import (
    BrokerUnavailableError,
    ResilientProducer,
    TopicMissingError,
    ensure_topics,
)
from vigil.services.common.kafka.cameras import CameraTableReader, publish_camera
from vigil.services.common.lifecycle import serve_metrics, stop_on_signals
from vigil.services.ingest.camera import CameraWorker
from vigil.services.ingest.config import CameraSettings, IngestConfigError, IngestServiceSettings
from vigil.services.ingest.metrics import IngestMetrics
from vigil.services.ingest.publisher import FramePublisher

logger = logging.getLogger(__name__)

# How often the supervisor looks for stalled cameras; a fraction of any sane stall_after_s.
_WATCH_INTERVAL_S = 0.25
# Topics are created at start when the broker answers within this; otherwise the publisher
# creates them once it does (the service must start, and count drops, without a broker).
_STARTUP_TOPICS_TIMEOUT_S = 5.0
# How long a poll of the "cameras" topic waits: a change is applied within about this.
_CAMERAS_POLL_MS = 250
# Between attempts to open the "cameras" topic while Kafka is away.
_CAMERAS_RETRY_S = 2.0
_KAFKA_TROUBLE = (BrokerUnavailableError, TopicMissingError, kafka_errors.KafkaError)


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
        self.cameras_reader: CameraTableReader | None = None
        self._unseedable: dict[str, CameraSettings] = {}  # YAML cameras the topic cannot hold
        self._refused: dict[str, str] = {}  # camera id -> why its settings cannot be built
        self._applied_version = -1
        self._apply_lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._watch, name="ingest-supervisor", daemon=True)
        self._follower = threading.Thread(target=self._follow_cameras, name="ingest-cameras", daemon=True)
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
        self._apply(self._cameras_at_start())
        self._supervisor.start()
        self._follower.start()
        enabled = sum(1 for worker in list(self.workers.values()) if worker.camera.enabled)
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
        with self._apply_lock:  # no camera starts or stops from the topic from here on
            workers = dict(self.workers)
        for worker in workers.values():
            worker.request_stop()
        longest_read = max((worker.camera.read_timeout_s for worker in workers.values()), default=0.0)
        deadline = time.monotonic() + (longest_read + 1.0 if timeout_s is None else timeout_s)
        for camera_id, worker in workers.items():
            if not worker.join(max(0.0, deadline - time.monotonic())):
                logger.warning("camera %s: reader still blocked at stop; abandoned", camera_id)
        self._supervisor.join(timeout=1.0)
        self._follower.join(timeout=_CAMERAS_POLL_MS / 1000 + 5.0)
        if self.cameras_reader is not None:
            self.cameras_reader.close()
        self.publisher.stop(drain_timeout_s=self.config.publisher.drain_timeout_s)
        self.producer.close()
        self.broker_monitor.stop()
        if self._stop_metrics is not None:
            self._stop_metrics()
        logger.info("ingest stopped")

    def status(self) -> dict[str, CameraStatus]:
        return {camera_id: worker.status for camera_id, worker in list(self.workers.items())}

    def __enter__(self) -> IngestService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _watch(self) -> None:
        while not self._stop.wait(_WATCH_INTERVAL_S):
            for worker in list(self.workers.values()):
                worker.check_stall()

    # -- the cameras topic ----------------------------------------------------------------

    def _cameras_at_start(self) -> dict[str, CameraSettings]:
        try:
            self._open_cameras(_STARTUP_TOPICS_TIMEOUT_S)
        except _KAFKA_TROUBLE as error:
            logger.warning("reading the config file's cameras until Kafka answers: %s", error)
            return {camera.id: camera for camera in self.config.cameras}
        return self._wanted()

    def _open_cameras(self, timeout_s: float) -> None:
        """Load the "cameras" topic, seed it with the file's cameras it has no record of."""
        reader = CameraTableReader(self.kafka_settings)
        try:
            reader.load(timeout_s)
            if self._seed(reader):
                reader.load(timeout_s)
        except BaseException:
            reader.close()
            raise
        self.cameras_reader = reader
        self._applied_version = -1

    def _seed(self, reader: CameraTableReader) -> int:
        table = self.config.cameras
        seeds = set(cameras_to_seed([camera.id for camera in table], reader.table))
        by = f"config:{self.config.source.name}" if self.config.source is not None else "config"
        now_ms = round(time.time() * 1000)
        published = 0
        for camera in table:
            if camera.id not in seeds:
                self._explain_topic_wins(camera, reader.table.get(camera.id))
                continue
            try:
                message = CameraMessage(
                    camera_id=camera.id,
                    name=camera.id,
                    url=camera.url_template,
                    enabled=camera.enabled,
                    updated_by=by,
                    updated_ts_ms=now_ms,
                )
            except ValidationError as error:
                logger.error(
                    "camera %s: read from the file alone, not put on the cameras topic: %s",
                    camera.id,
                    describe_validation_error(error),  # names the field, quotes no URL
                )
                self._unseedable[camera.id] = camera
                continue
            publish_camera(self.producer, self.kafka_settings.topics, message)
            published += 1
        if published:
            logger.info("seeded the cameras topic with %d camera(s) of the config file", published)
        return published

    def _explain_topic_wins(self, camera: CameraSettings, message: CameraMessage | None) -> None:
        if message is None:
            logger.info("camera %s of the config file was deleted through the API: not read", camera.id)
        elif message.url != camera.url_template or message.enabled != camera.enabled:
            logger.warning(
                "camera %s: the cameras topic's settings (by %s) win over the config file's; change "
                "them through the API (PUT /api/v1/cameras/%s)",
                camera.id,
                message.updated_by,
                camera.id,
            )

    def _wanted(self) -> dict[str, CameraSettings]:
        """The cameras to read as the topic says (a camera whose settings cannot be built keeps
        the reader it has, if any, and its status says why)."""
        reader = self.cameras_reader
        assert reader is not None
        self._applied_version = reader.table.version
        wanted = dict(self._unseedable)
        for camera_id, message in reader.table.snapshot().items():
            try:
                wanted[camera_id] = self.config.build_camera(message)
                self._refused.pop(camera_id, None)
            except IngestConfigError as error:
                reason = f"not started: {error}"
                if self._refused.get(camera_id) != reason:
                    self._refused[camera_id] = reason
                    logger.error("camera %s: %s", camera_id, reason)
                running = self.workers.get(camera_id)
                if running is not None:
                    wanted[camera_id] = running.camera
                else:
                    self.publisher.post_status(CameraStatus(camera_id, "down", reason, time.time()))
        return wanted

    def _follow_cameras(self) -> None:
        while not self._stop.is_set():
            try:
                if self.cameras_reader is None:
                    self._open_cameras(self.kafka_settings.connect_timeout_s)
                reader = self.cameras_reader
                assert reader is not None
                reader.poll(_CAMERAS_POLL_MS)
                if reader.table.version != self._applied_version:
                    self._apply(self._wanted())
            except _KAFKA_TROUBLE as error:
                logger.debug("cameras topic: %s", error)
                self._stop.wait(_CAMERAS_RETRY_S)
            except Exception:  # the last resort: the cameras already running keep running
                logger.exception("following the cameras topic failed; trying again")
                self._stop.wait(_CAMERAS_RETRY_S)

    def _apply(self, wanted: dict[str, CameraSettings]) -> None:
        """Start, restart and stop readers so that those running are `wanted`."""
        with self._apply_lock:
            if self._stop.is_set():
                return
            running = {camera_id: worker.camera for camera_id, worker in self.workers.items()}
            changes = plan_camera_changes(running, wanted)
            if not changes:
                return
            for camera_id in changes.stop:
                self.workers[camera_id].request_stop(deleted=True)
            for camera_id in changes.restart:
                self.workers[camera_id].request_stop(replaced=True)
            for camera_id in changes.stop + changes.restart:
                # A restarted camera stays listed (its old reader) until its new reader replaces it.
                worker = (
                    self.workers[camera_id] if camera_id in changes.restart else self.workers.pop(camera_id)
                )
                if not worker.join(worker.camera.read_timeout_s + 1.0):
                    logger.warning("camera %s: old reader still blocked; abandoned", camera_id)
                self.metrics.forget_source(camera_id, worker.camera.redacted_url)
            for camera_id in changes.stop:
                self.publisher.remove_queue(camera_id)
            for camera_id in changes.start + changes.restart:
                camera = wanted[camera_id]
                queue = self.publisher.queue_for(camera_id, camera.queue_size)
                worker = CameraWorker(camera, queue, self.metrics, on_status=self.publisher.post_status)
                self.workers[camera_id] = worker
                worker.start()
            if running:  # at start, "ingest started" says it
                logger.info(
                    "cameras changed: started %s, restarted %s, stopped %s",
                    ", ".join(changes.start) or "none",
                    ", ".join(changes.restart) or "none",
                    ", ".join(changes.stop) or "none",
                )


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
