"""Prometheus metrics of the detector (`vigil_detector_*`).

Latency histograms start from the frame's capture time (the camera's glass), so they include
everything before the detector too: ingest, JPEG encoding, Kafka. `vigil_detector_stage_seconds`
has one series per stage a frame reaches (received, decoded, embedded, scored); a confirmed
hit's `vigil_detector_glass_to_hit_seconds` runs from the capture of the frame that confirmed
it to the moment the hit was durable in Milvus and acknowledged on "hits".
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# From 10 ms (a frame straight from a local broker) to a minute behind.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class DetectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else REGISTRY
        self.frames = Counter("vigil_detector_frames", "Frames scored", ["camera"], registry=r)
        self.frames_skipped = Counter(
            "vigil_detector_frames_skipped",
            "Frames not scored; reason: behind (captured more than max_lag_s ago), replayed (already "
            "in the camera's state, e.g. redelivered after a restart)",
            ["camera", "reason"],
            registry=r,
        )
        self.bad_frames = Counter(
            "vigil_detector_bad_frames",
            "Frames sent to the dead-letter topic; reason: bad_headers, too_large (over "
            "max_message_bytes), clock_skew (capture time too far from now or from the broker's "
            "receive time), bad_jpeg (unreadable, or over the frame's pixel bound)",
            ["reason"],
            registry=r,
        )
        self.snapshots_discarded = Counter(
            "vigil_detector_snapshots_discarded",
            "Camera state snapshots found inconsistent on restore (unusable, or stamped ahead of "
            "the clock) and replaced by a fresh state",
            registry=r,
        )
        self.hits = Counter(
            "vigil_detector_hits", "Hits written (kind: confirmed or closed)", ["camera", "kind"], registry=r
        )
        self.stage_seconds = Histogram(
            "vigil_detector_stage_seconds",
            "Seconds from a frame's capture to the end of each detector stage",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.glass_to_hit_seconds = Histogram(
            "vigil_detector_glass_to_hit_seconds",
            "Seconds from the capture of the frame that confirmed a hit to the hit being durable",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_frames = Histogram(
            "vigil_detector_batch_frames", "Frames per micro-batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.standing_queries = Gauge(
            "vigil_detector_standing_queries", "Enabled standing queries", registry=r
        )
        self.open_events = Gauge("vigil_detector_open_events", "Candidates and events now open", registry=r)
        # What the change detector saves: a still frame runs no model at all.
        self.frames_embedded = Counter(
            "vigil_detector_frames_embedded",
            "Frames by what they cost the encoder: still (nothing), regions, full (whole frame)",
            ["camera", "kind"],
            registry=r,
        )
        self.regions_embedded = Counter(
            "vigil_detector_regions_embedded", "Region crops embedded", ["camera"], registry=r
        )
        self.frames_shed = Counter(
            "vigil_detector_frames_shed",
            "Work shed to stay within the latency budget: still or other frames, whole-frame refreshes",
            ["camera", "reason"],
            registry=r,
        )
        self.utilisation = Gauge(
            "vigil_detector_utilisation",
            "Share of the last 10 s the detector spent working rather than waiting for frames; "
            "it sheds work only from 0.9 on (it cannot keep up)",
            registry=r,
        )
        self.global_changes = Counter(
            "vigil_detector_global_changes",
            "Frames whose scene changed as a whole (lights, shake): re-embedded whole",
            ["camera"],
            registry=r,
        )
        self.lag_seconds = Gauge(
            "vigil_detector_lag_seconds", "Capture age of the newest frame scored", ["camera"], registry=r
        )
