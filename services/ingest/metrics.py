"""Prometheus metrics of the ingest service (`vigil_ingest_*`), labelled by camera id.

Camera URLs never appear here: labels carry the camera id, and the one place a URL is
shown (`vigil_ingest_camera_info`) carries the redacted one.
"""

from __future__ import annotations

from typing import get_args

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from vigil.services.common.contract import CameraState

CAMERA_STATES: tuple[str, ...] = get_args(CameraState)
DROP_REASONS = ("queue_full", "broker_unavailable", "delivery_failed", "too_large", "shutdown", "deleted")

# Decoding one packet takes ~0.1 ms (small H.264 P-frame) to ~50 ms (4K keyframe).
_DECODE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Handing a frame to the producer is a memory copy unless its buffer is full.
_PUBLISH_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


class IngestMetrics:
    """All ingest metrics, in `registry` (the process-wide default unless one is given, e.g.
    a fresh registry per test or per service instance)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else REGISTRY
        r = self.registry
        self.frames_decoded = Counter(
            "vigil_ingest_frames_decoded", "Frames decoded from the camera", ["camera"], registry=r
        )
        self.frames_sampled = Counter(
            "vigil_ingest_frames_sampled",
            "Frames kept by the sampler and JPEG-encoded",
            ["camera"],
            registry=r,
        )
        self.frames_published = Counter(
            "vigil_ingest_frames_published", "Frames the Kafka broker acknowledged", ["camera"], registry=r
        )
        self.frames_dropped = Counter(
            "vigil_ingest_frames_dropped",
            "Sampled frames never published; reason: queue_full (oldest dropped under "
            "backpressure), broker_unavailable (could not be queued), delivery_failed (queued, "
            "never acknowledged), too_large (over the broker's record size limit), shutdown (still "
            "queued at stop)",
            ["camera", "reason"],
            registry=r,
        )
        self.packets_undecodable = Counter(
            "vigil_ingest_packets_undecodable",
            "Packets that failed to decode (corrupt, or a frame over the size bound); the decoder "
            "resumes at the next keyframe",
            ["camera"],
            registry=r,
        )
        self.reconnects = Counter(
            "vigil_ingest_reconnects", "Attempts to reconnect after a camera was lost", ["camera"], registry=r
        )
        self.decode_seconds = Histogram(
            "vigil_ingest_decode_seconds", "Time to decode one packet", buckets=_DECODE_BUCKETS, registry=r
        )
        self.encode_seconds = Histogram(
            "vigil_ingest_encode_seconds",
            "Time to resize and JPEG-encode one sampled frame",
            buckets=_DECODE_BUCKETS,
            registry=r,
        )
        self.publish_seconds = Histogram(
            "vigil_ingest_publish_seconds",
            "Time to hand one frame to the Kafka producer",
            buckets=_PUBLISH_BUCKETS,
            registry=r,
        )
        self.camera_up = Gauge(
            "vigil_ingest_camera_up", "1 while the camera streams frames, else 0", ["camera"], registry=r
        )
        self.camera_state = Gauge(
            "vigil_ingest_camera_state",
            f"1 for the camera's current state ({', '.join(CAMERA_STATES)}), 0 for the others",
            ["camera", "state"],
            registry=r,
        )
        self.camera_info = Gauge(
            "vigil_ingest_camera_info", "Camera source (credentials redacted)", ["camera", "url"], registry=r
        )
        self.queue_depth = Gauge(
            "vigil_ingest_queue_frames", "Frames waiting for the publisher", ["camera"], registry=r
        )

    def register_camera(self, camera_id: str, redacted_url: str) -> None:
        """Create the camera's series at zero so that dashboards see it before its first frame."""
        self.camera_info.labels(camera_id, redacted_url).set(1)
        counters = (
            self.frames_decoded,
            self.frames_sampled,
            self.frames_published,
            self.packets_undecodable,
            self.reconnects,
        )
        for counter in counters:
            counter.labels(camera_id)
        for reason in DROP_REASONS:
            self.frames_dropped.labels(camera_id, reason)
        self.queue_depth.labels(camera_id).set(0)

    def forget_source(self, camera_id: str, redacted_url: str) -> None:
        """The camera stopped reading this source (deleted, or edited to another URL)."""
        try:
            self.camera_info.remove(camera_id, redacted_url)
        except KeyError:
            pass

    def set_state(self, camera_id: str, state: str) -> None:
        for known in CAMERA_STATES:
            self.camera_state.labels(camera_id, known).set(1 if known == state else 0)
        self.camera_up.labels(camera_id).set(1 if state == "streaming" else 0)
