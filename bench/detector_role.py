"""Detector bench: the detector process of a case (`bench/detector.py --role detector`), which is
`vigil detector`'s own code path (DetectorServiceSettings.load, DetectorService.run) with its
latency histograms wrapped so that each value they observe is also kept exactly (the Prometheus
buckets are too coarse for p99), written to a file when it stops.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path


class _Recorded:
    """A Prometheus histogram or counter (or a labelled child) that also keeps every value, as
    (name, time.time(), value); a child's name is `pick(label values)`."""

    def __init__(self, metric, sink: list, name: str, pick=lambda values: values[0]) -> None:
        self.metric, self.sink, self.name, self.pick = metric, sink, name, pick

    def labels(self, *values):
        return _Recorded(self.metric.labels(*values), self.sink, self.pick(values))

    def observe(self, value: float) -> None:
        self.metric.observe(value)
        self.sink.append((self.name, time.time(), value))

    def inc(self, amount: float = 1) -> None:
        self.metric.inc(amount)
        self.sink.append((self.name, time.time(), amount))


def _without_broken_temporal(config):
    """The detector config, with the GRU turned off if it fails to load (it is being retrained:
    measure without it, say so), and what the temporal stage is."""
    temporal_note = config.temporal
    if config.temporal == "gru":
        try:
            from vigil.models.temporal import TemporalScorer

            TemporalScorer.load()
        except Exception as error:
            temporal_note = f"off (the GRU failed to load: {str(error).splitlines()[0][:200]})"
            config = config.model_copy(update={"temporal": "off"})
    return config, temporal_note


def _bench_encoder(encoder_name: str):
    """The encoder to run instead of the config's: clip-int8 is ViT-B-32 int8 with random weights
    (bench/encoders.py's export); None keeps the config's."""
    if encoder_name != "clip-int8":
        return None
    from encoders import RANDOM_EXPORT_DIR

    from vigil.models.clip.runtime import ClipEncoder

    return ClipEncoder(RANDOM_EXPORT_DIR, precision="int8", device="cpu")


def _record_metrics(metrics, sink: list) -> None:
    metrics.stage_seconds = _Recorded(metrics.stage_seconds, sink, "stage")
    metrics.glass_to_hit_seconds = _Recorded(metrics.glass_to_hit_seconds, sink, "glass_to_hit")
    metrics.batch_frames = _Recorded(metrics.batch_frames, sink, "batch")
    metrics.frames_skipped = _Recorded(
        metrics.frames_skipped, sink, "skipped", pick=lambda values: f"skipped_{values[1]}"
    )


def _announce_scoring(registry, cameras: list[str], stop: threading.Event) -> None:
    """Prints SCORING once every camera in `cameras` has had a frame scored."""
    while not stop.wait(0.5):
        counts = [registry.get_sample_value("vigil_detector_frames_total", {"camera": c}) for c in cameras]
        if all(counts):
            print("SCORING", flush=True)
            return


def run_detector_role(config_path: Path, samples_path: Path, cameras: list[str], encoder_name: str) -> None:
    """`vigil detector --config config_path`, its latency histograms recorded; prints READY and
    then SCORING once every camera in `cameras` has had a frame scored."""
    from vigil.logs import configure_logging
    from vigil.services.detector.config import DetectorServiceSettings
    from vigil.services.detector.service import DetectorService

    configure_logging(service=True)
    settings = DetectorServiceSettings.load(config_path)
    config, temporal_note = _without_broken_temporal(settings.detector)
    # The GRU's fallback goes to the service, not only to the results' label.
    settings = settings.model_copy(update={"detector": config})
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    service = DetectorService(settings, encoder=_bench_encoder(encoder_name))
    sink: list = []
    metrics = service.metrics
    _record_metrics(metrics, sink)
    print(f"READY {json.dumps({'temporal': temporal_note, 'encoder': service.encoder_name})}", flush=True)
    threading.Thread(target=_announce_scoring, args=(metrics.registry, cameras, stop), daemon=True).start()
    try:
        service.run(stop)
    finally:
        service.close()
    samples_path.write_text(json.dumps({"samples": sink}))
