"""Detector bench: one case (`bench/detector.py --cameras N`): the local broker, N real RTSP
cameras, `vigil ingest` (one process for every camera, or one per camera 1/N s apart), the
detector (`bench/detector.py --role detector`) and a follower of "hits", each a process of its
own but the follower; then the detector's latency, CPU and RSS over the measured window
(bench/detector.py's docstring says what is timed); detector_stack.py starts and stops them.

`measure_case` runs it in named steps: publish the standing queries, start the cameras, write
the config, start ingest and the detector, wait until every camera is scored, sample /proc over
the window, then turn the samples into the case's row.
"""

from __future__ import annotations

import bisect
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from detector_footage import CAMERA_FPS, HEIGHT, WIDTH, camera_clip
from detector_readings import machine_busy_s, percentiles, proc_cpu_s, proc_rss_mib
from detector_stack import (
    INGEST_FPS,
    HitsFollower,
    Stack,
    publish_queries,
    start_cameras,
    start_detector,
    start_ingests,
    stop_process,
    wait_for_line,
    write_configs,
)

SAMPLE_EVERY_S = 2.0


# --- measuring -----------------------------------------------------------------------------


@dataclass
class _Observed:
    """What a case's run gave: the detector's READY facts, its RSS once loaded, how long until
    every camera was scored, the /proc samples of the window and the detector's exact samples."""

    ready: dict
    rss_loaded: float
    scoring_after_s: float
    series: list[dict]
    recorded: dict


def _sample_window(stack: Stack, broker, seconds: float) -> list[dict]:
    """/proc readings every SAMPLE_EVERY_S over `seconds`, the first at once."""
    detector = stack.detector
    assert detector is not None

    def snapshot() -> dict:
        return {
            "t": time.time(),
            "detector_cpu": proc_cpu_s(detector.pid),
            "detector_rss": proc_rss_mib(detector.pid),
            "ingest_cpu": sum(proc_cpu_s(ingest.pid) for ingest in stack.ingests),
            "cameras_cpu": sum(proc_cpu_s(s.process.pid) for s in stack.servers),
            "broker_cpu": proc_cpu_s(broker.pid or 0),
            "machine_busy": machine_busy_s(),
        }

    series = [snapshot()]
    end = series[0]["t"] + seconds
    while time.time() < end:
        time.sleep(min(SAMPLE_EVERY_S, max(0.0, end - time.time())))
        series.append(snapshot())
        if detector.poll() is not None or any(ingest.poll() is not None for ingest in stack.ingests):
            raise SystemExit("the detector or ingest died during the measurement")
    return series


def _observe(
    stack: Stack, broker, samples_path: Path, detector_log, seconds: float, warmup_s: float
) -> _Observed:
    """Waits for the detector to load and score every camera, lets `warmup_s` pass, samples the
    window, then stops the detector for its exact samples."""
    detector = stack.detector
    assert detector is not None
    started = time.time()
    ready = json.loads(wait_for_line(detector, "READY", 180))
    rss_loaded = proc_rss_mib(detector.pid)
    wait_for_line(detector, "SCORING", 120)
    scoring_after_s = time.time() - started
    time.sleep(warmup_s)
    series = _sample_window(stack, broker, seconds)
    stop_process(detector)
    if detector.returncode != 0:
        raise SystemExit(f"the detector exited with code {detector.returncode}; log: {detector_log.name}")
    recorded = json.loads(samples_path.read_text())
    return _Observed(ready, rss_loaded, scoring_after_s, series, recorded)


def _print_logs(tmp: Path) -> None:
    for name in ("detector.log", "ingest.log"):
        path = tmp / name
        if path.exists():
            sys.stderr.write(f"--- {name} (last 3000 characters)\n{path.read_text()[-3000:]}\n")


def _busiest_100ms(received: list[tuple[float, float]]) -> tuple[int, int]:
    """Where in the second frames were captured: the frames in the busiest 100 ms of it, and all
    frames (1/N of them when N cameras are evenly spread over it, all when they are aligned).
    `received` holds (receive time, seconds since capture) of each frame."""
    offsets = sorted((at - v) % 1.0 for at, v in received)
    wrapped = offsets + [offset + 1.0 for offset in offsets]
    busiest = max((bisect.bisect_right(wrapped, o + 0.1) - i for i, o in enumerate(offsets)), default=0)
    return busiest, len(offsets)


def _case_row(
    cameras: int,
    phases: str,
    encoder_name: str,
    warmup_s: float,
    observed: _Observed,
    follower: HitsFollower,
) -> dict:
    series, samples = observed.series, observed.recorded["samples"]
    first, last = series[0], series[-1]
    t0, t1 = first["t"], last["t"]
    wall = t1 - t0

    def window(name: str) -> list[float]:
        return [value for kind, at, value in samples if kind == name and t0 <= at <= t1]

    scored, received, embedded = window("scored"), window("received"), window("embedded")
    hits, batches = window("glass_to_hit"), window("batch")
    detector_cpu = last["detector_cpu"] - first["detector_cpu"]
    busiest, frames = _busiest_100ms(
        [(at, v) for kind, at, v in samples if kind == "received" and t0 <= at <= t1]
    )

    def cores(key: str) -> float:
        return (last[key] - first[key]) / wall

    rss = [s["detector_rss"] for s in series]
    return {
        "cameras": cameras,
        "phases": phases,
        "ingest": "one process, every camera"
        if phases == "aligned"
        else "one process per camera, 1/N s apart",
        "ingest_fps": INGEST_FPS,
        "camera": f"{WIDTH}x{HEIGHT} H.264 at {CAMERA_FPS} frames/s over RTSP/TCP, GOP 1 s",
        "temporal": observed.ready["temporal"],
        "encoder_kind": encoder_name,
        "encoder": observed.ready["encoder"],
        "warmup_s": round(observed.scoring_after_s + warmup_s, 1),
        "seconds": round(wall, 1),
        "frames_scored": len(scored),
        "frames_scored_per_s": len(scored) / wall,
        "frames_skipped": {reason: len(window(f"skipped_{reason}")) for reason in ("behind", "replayed")},
        "mean_batch_frames": statistics.fmean(batches) if batches else 0.0,
        "busiest_100ms_share": busiest / max(1, frames),
        "glass_to_hit": percentiles(hits),
        "hits_received": sum(1 for at, _ in follower.received if t0 <= at <= t1),
        "hits_received_whole_run": {
            "confirmed": sum(1 for _, confirmed in follower.received if confirmed),
            "closed": sum(1 for _, confirmed in follower.received if not confirmed),
        },
        "scored": percentiles(scored),
        "received": percentiles(received),
        "embedded": percentiles(embedded),
        "detector_cpu_s": detector_cpu,
        "detector_cores": detector_cpu / wall,
        "frames_per_cpu_s": len(scored) / detector_cpu if detector_cpu else None,
        "rss_mib": {"loaded": observed.rss_loaded, "start": rss[0], "peak": max(rss), "end": rss[-1]},
        "rss_series_mib": [[round(s["t"] - t0, 1), round(s["detector_rss"], 1)] for s in series],
        "other_cores": {
            "ingest": cores("ingest_cpu"),
            "rtsp_cameras": cores("cameras_cpu"),
            "broker": cores("broker_cpu"),
            "machine_busy": cores("machine_busy"),
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }


def measure_case(
    cameras: int, phases: str, encoder_name: str, seconds: float, warmup_s: float, temporal: str | None
) -> dict:
    from vigil.services.broker.local import LocalBroker
    from vigil.services.common.kafka import KafkaSettings, ensure_topics

    clips = [camera_clip(i, cameras) for i in range(cameras)]  # made (and cached) before timing
    camera_ids = [f"cam-{i}" for i in range(cameras)]
    with tempfile.TemporaryDirectory(prefix="vigil-bench-detector-") as tmp_name:
        tmp = Path(tmp_name)
        stack = Stack()
        with LocalBroker(0, log_dir=tmp) as broker:
            try:
                settings = KafkaSettings(bootstrap=broker.bootstrap)  # the embedded default's topics
                ensure_topics(settings)
                publish_queries(settings)
                start_cameras(clips, stack.servers)
                config, ingest_configs = write_configs(tmp, phases, camera_ids, stack.servers, temporal)
                environment = {
                    **os.environ,
                    "VIGIL_KAFKA_BOOTSTRAP": broker.bootstrap,
                    "VIGIL_MILVUS_URI": str(tmp / "milvus"),
                    "VIGIL_MILVUS_THUMBNAILS_DIR": str(tmp / "thumbnails"),
                }
                follower = stack.follower = HitsFollower(settings)
                follower.start()
                ingest_log = (tmp / "ingest.log").open("w")
                detector_log = (tmp / "detector.log").open("w")
                start_ingests(ingest_configs, environment, ingest_log, stack.ingests)
                samples_path = tmp / "samples.json"
                stack.detector = start_detector(
                    config, samples_path, camera_ids, encoder_name, environment, detector_log
                )
                observed = _observe(stack, broker, samples_path, detector_log, seconds, warmup_s)
            except BaseException:
                _print_logs(tmp)
                raise
            finally:
                stack.close()
    return _case_row(cameras, phases, encoder_name, warmup_s, observed, follower)
