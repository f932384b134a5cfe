"""Detector: glass-to-hit latency, frames scored per CPU-second and memory, on the embedded default.

One case runs what `vigil up` runs, each part a process of its own: the local tansu broker,
`vigil ingest` reading N real RTSP cameras (gst-rtsp-server, vigil/fixtures/rtsp.py `RtspCamera`, one
server process per camera) at 1 frame/s, and the detector (`DetectorService` on the same config
file, Milvus lite in a temporary directory); the parent follows "hits" as
`vigil up` does. Camera phases (see CASES): "aligned" runs one ingest process for every camera,
as `vigil up` does; "independent" runs one per camera, started 1/N s apart.

Each camera streams OpenCV's vtest.avi (real pedestrians) at 1280x720 with a real photo pasted
in for 5 s every 10 s (vigil/fixtures/media.py `event_clip`, 60 s, looped: cat, coffee, astronaut, cat,
coffee, rocket), camera i shifted by (i + 0.5) * 10 / N s so that cameras do not all confirm at
the same instant; five standing queries (cat, cup of coffee, astronaut, rocket, and a motorcycle,
never shown). Latency needs hits; whether they are right is not measured here.

Encoders: "offline" (the embedded default here, real weights) and "clip-int8" (ViT-B-32 int8 with
random weights, bench/encoders.py's export): the CLIP case measures speed and memory only, since
random weights give no meaningful hits; it is how the int8 encoder's cameras per core is
measured end to end on a machine without CLIP weights.

The detector is `bench/detector.py --role detector`: `vigil detector`'s own code path
(DetectorServiceSettings.load, DetectorService.run), with its latency histograms wrapped so that each
value they observe is also kept exactly (the Prometheus buckets are too coarse for p99):

    glass to hit   vigil_detector_glass_to_hit_seconds: capture time of the frame that confirmed
                   a hit (FrameHeaders.ts_ms, ingest's receive time of that frame) -> the hit
                   upserted in Milvus lite and acknowledged on "hits" (durable)
    scored         vigil_detector_stage_seconds{stage="scored"}: capture -> the frame scored

After every camera's first frame is scored and `--warmup-s` more, the parent measures for
`--seconds`: the detector's CPU time (utime + stime from /proc/<pid>/stat, every thread,
Milvus lite included: it runs in the detector's process) and its VmRSS every 2 s; frames scored
per CPU-second is the figure that, at 1 frame/s a camera, reads as cameras per core.

    python bench/detector.py                      # encoder + every case, JSON lines
    python bench/detector.py --cameras 8 --phases aligned   # one case (this process + children)
    python bench/detector.py --role encoder --encoder offline --batch 8   # encoder alone
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

# (cameras, phases) and measured seconds. "independent": one ingest process per camera, started
# 1/N s apart (plus each process's own start-up time), so each camera's kept frames fall in a
# part of the second of their own, roughly at random, as real cameras' do (their GOPs run on their
# own clocks). "aligned": one ingest process for every camera (`vigil up`'s), which connects to
# every test camera at once; each RTSP session starts its GOP when it connects, so every camera's
# kept frames come within a few tens of ms of each other: the worst case for latency.
CASES = (
    (1, "independent", "offline"),
    (4, "independent", "offline"),
    (8, "independent", "offline"),
    (8, "aligned", "offline"),
    (8, "independent", "clip-int8"),
)
CASE_SECONDS = {
    (1, "independent", "offline"): 75.0,
    (4, "independent", "offline"): 60.0,
    (8, "independent", "offline"): 90.0,
    (8, "aligned", "offline"): 60.0,
    (8, "independent", "clip-int8"): 60.0,
}
WIDTH, HEIGHT, CAMERA_FPS = 1280, 720, 10
INGEST_FPS = 1.0
# A photo for EVENT_S every PERIOD_S, in this order, in a CLIP_S clip that loops.
CLIP_S, PERIOD_S, EVENT_S = 60.0, 10.0, 5.0
PHOTO_CYCLE = ("cat", "coffee", "astronaut", "cat", "coffee", "rocket")
QUERIES = {
    "cat": "a cat",
    "coffee": "a cup of coffee",
    "astronaut": "an astronaut",
    "rocket": "a rocket",
    "motorcycle": "a motorcycle",  # never shown: a standing query that only costs
}
ENCODER_BATCHES = (1, 4, 8)
ENCODERS = ("offline", "clip-int8")  # clip-int8: random weights, speed only
SAMPLE_EVERY_S = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# --- /proc ----------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """utime + stime of one process (every thread), seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MIB
    except OSError:
        pass
    return 0.0


def machine_busy_s() -> float:
    """CPU-seconds every core of the machine has been busy (all processes, anyone's)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def percentiles(values: list[float]) -> dict:
    import numpy as np

    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.asarray(values) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"n": len(values), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "max_ms": float(ms.max())}


# --- footage --------------------------------------------------------------------------------


def camera_events(shift_s: float) -> tuple[tuple[str, float, float], ...]:
    """A photo of PHOTO_CYCLE for EVENT_S every PERIOD_S from shift_s on, wrapping round the end
    of the looped clip."""
    events = []
    for k in range(round(CLIP_S / PERIOD_S)):
        name = PHOTO_CYCLE[k % len(PHOTO_CYCLE)]
        start, end = k * PERIOD_S + shift_s, k * PERIOD_S + shift_s + EVENT_S
        if end <= CLIP_S:
            events.append((name, round(start, 3), round(end, 3)))
        else:
            if start < CLIP_S:
                events.append((name, round(start, 3), CLIP_S))
            events.insert(0, (name, 0.0, round(end - CLIP_S, 3)))
    return tuple(events)


def camera_clip(index: int, cameras: int) -> Path:
    from vigil.fixtures.media import event_clip

    return event_clip(camera_events((index + 0.5) * PERIOD_S / cameras), seconds=CLIP_S)


# --- the detector process -------------------------------------------------------------------


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


def run_detector_role(config_path: Path, samples_path: Path, cameras: list[str], encoder_name: str) -> None:
    """`vigil detector --config config_path`, its latency histograms recorded; prints READY and
    then SCORING once every camera in `cameras` has had a frame scored."""
    from vigil.logs import configure_logging
    from vigil.services.detector.config import DetectorServiceSettings
    from vigil.services.detector.service import DetectorService

    configure_logging(service=True)
    settings = DetectorServiceSettings.load(config_path)
    config = settings.detector
    temporal_note = config.temporal
    if config.temporal == "gru":
        try:
            from vigil.models.temporal import TemporalScorer

            TemporalScorer.load()
        except Exception as error:  # the model is being retrained: measure without it, say so
            temporal_note = f"off (the GRU failed to load: {str(error).splitlines()[0][:200]})"
            config = config.model_copy(update={"temporal": "off"})
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    encoder = None
    if encoder_name == "clip-int8":
        from encoders import RANDOM_EXPORT_DIR

        from vigil.models.clip.runtime import ClipEncoder

        encoder = ClipEncoder(RANDOM_EXPORT_DIR, precision="int8", device="cpu")
    service = DetectorService(settings, encoder=encoder)
    sink: list = []
    metrics = service.metrics
    metrics.stage_seconds = _Recorded(metrics.stage_seconds, sink, "stage")
    metrics.glass_to_hit_seconds = _Recorded(metrics.glass_to_hit_seconds, sink, "glass_to_hit")
    metrics.batch_frames = _Recorded(metrics.batch_frames, sink, "batch")
    metrics.frames_skipped = _Recorded(
        metrics.frames_skipped, sink, "skipped", pick=lambda values: f"skipped_{values[1]}"
    )
    print(f"READY {json.dumps({'temporal': temporal_note, 'encoder': service.encoder_name})}", flush=True)

    def announce_scoring() -> None:
        registry = metrics.registry
        while not stop.wait(0.5):
            counts = [
                registry.get_sample_value("vigil_detector_frames_total", {"camera": c}) for c in cameras
            ]
            if all(counts):
                print("SCORING", flush=True)
                return

    threading.Thread(target=announce_scoring, daemon=True).start()
    try:
        service.run(stop)
    finally:
        service.close()
    samples_path.write_text(json.dumps({"samples": sink}))


# --- one case: N cameras --------------------------------------------------------------------


class _HitsFollower(threading.Thread):
    """What `vigil up` does with "hits": follow them from the end (here: count them)."""

    def __init__(self, settings) -> None:
        super().__init__(daemon=True)
        from vigil.services.common.kafka import assign_all_partitions, make_consumer

        self.consumer = make_consumer(settings, group_id=None)
        self.consumer.seek_to_end(*assign_all_partitions(self.consumer, settings.topics.hits))
        self.received: list[tuple[float, bool]] = []  # (receive time, confirmed)
        self.halt = threading.Event()

    def run(self) -> None:
        from vigil.services.common.contract import HitMessage

        while not self.halt.is_set():
            for records in self.consumer.poll(timeout_ms=250).values():
                for record in records:
                    hit = HitMessage.model_validate_json(record.value)
                    self.received.append((time.time(), hit.end_ts_ms is None))
        self.consumer.close(autocommit=False)


def _wait_for_line(process: subprocess.Popen, prefix: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the detector exited with code {process.returncode} before {prefix}")
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
    raise SystemExit(f"the detector did not print {prefix} within {timeout_s:.0f} s")


def _stop(process: subprocess.Popen | None, timeout_s: float = 30.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure_case(
    cameras: int, phases: str, encoder_name: str, seconds: float, warmup_s: float, temporal: str | None
) -> dict:
    import yaml

    from vigil.fixtures.rtsp import RtspCamera
    from vigil.services.broker.local import LocalBroker, free_loopback_port
    from vigil.services.common.contract import QueryMessage
    from vigil.services.common.kafka import KafkaSettings, ResilientProducer, ensure_topics, publish_query

    clips = [camera_clip(i, cameras) for i in range(cameras)]  # made (and cached) before timing
    camera_ids = [f"cam-{i}" for i in range(cameras)]
    with tempfile.TemporaryDirectory(prefix="vigil-bench-detector-") as tmp_name:
        tmp = Path(tmp_name)
        servers: list[RtspCamera] = []
        ingests: list[subprocess.Popen] = []
        detector = follower = None
        with LocalBroker(0, log_dir=tmp) as broker:
            try:
                settings = KafkaSettings(bootstrap=broker.bootstrap)  # the embedded default's topics
                ensure_topics(settings)
                with ResilientProducer(settings) as producer:
                    for query_id, text in QUERIES.items():
                        publish_query(
                            producer,
                            settings.topics,
                            QueryMessage(
                                query_id=query_id,
                                text=text,
                                created_by="bench",
                                updated_ts_ms=int(time.time() * 1000),
                            ),
                        )
                for i, clip in enumerate(clips):
                    servers.append(
                        RtspCamera(
                            media=clip,
                            port=free_loopback_port(),
                            mount=f"/cam{i}",
                            width=WIDTH,
                            height=HEIGHT,
                            fps=CAMERA_FPS,
                            gop_s=1.0,
                            loop=True,
                        ).start()
                    )
                config = tmp / "vigil.yaml"
                config.write_text(
                    yaml.safe_dump(
                        {
                            "metrics_port": 0,
                            "cameras": [
                                {"id": cid, "url": server.url, "fps": INGEST_FPS}
                                for cid, server in zip(camera_ids, servers, strict=True)
                            ],
                            "detector": {"metrics_port": 0} | ({"temporal": temporal} if temporal else {}),
                        }
                    )
                )
                environment = {
                    **os.environ,
                    "VIGIL_KAFKA_BOOTSTRAP": broker.bootstrap,
                    "VIGIL_MILVUS_URI": str(tmp / "milvus"),
                    "VIGIL_MILVUS_THUMBNAILS_DIR": str(tmp / "thumbnails"),
                }
                follower = _HitsFollower(settings)
                follower.start()
                vigil = str(Path(sys.executable).with_name("vigil"))
                ingest_log = (tmp / "ingest.log").open("w")
                detector_log = (tmp / "detector.log").open("w")
                if phases == "aligned":
                    ingest_configs = [config]
                else:
                    ingest_configs = []
                    for i, (cid, server) in enumerate(zip(camera_ids, servers, strict=True)):
                        ingest_configs.append(tmp / f"ingest-{i}.yaml")
                        ingest_configs[-1].write_text(
                            yaml.safe_dump(
                                {
                                    "metrics_port": 0,
                                    "cameras": [{"id": cid, "url": server.url, "fps": INGEST_FPS}],
                                }
                            )
                        )
                first_start = time.monotonic()
                for i, ingest_config in enumerate(ingest_configs):
                    time.sleep(max(0.0, first_start + i / len(ingest_configs) - time.monotonic()))
                    ingests.append(
                        subprocess.Popen(
                            [vigil, "ingest", "--config", str(ingest_config)],
                            env=environment,
                            stdout=ingest_log,
                            stderr=subprocess.STDOUT,
                        )
                    )
                samples_path = tmp / "samples.json"
                detector = subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--role=detector",
                        f"--config={config}",
                        f"--samples={samples_path}",
                        f"--camera-ids={','.join(camera_ids)}",
                        f"--encoder={encoder_name}",
                    ],
                    env=environment,
                    stdout=subprocess.PIPE,
                    stderr=detector_log,
                    text=True,
                )
                started = time.time()
                ready = json.loads(_wait_for_line(detector, "READY", 180))
                rss_loaded = proc_rss_mib(detector.pid)
                _wait_for_line(detector, "SCORING", 120)
                scoring_after_s = time.time() - started
                time.sleep(warmup_s)

                def snapshot() -> dict:
                    return {
                        "t": time.time(),
                        "detector_cpu": proc_cpu_s(detector.pid),
                        "detector_rss": proc_rss_mib(detector.pid),
                        "ingest_cpu": sum(proc_cpu_s(ingest.pid) for ingest in ingests),
                        "cameras_cpu": sum(proc_cpu_s(s.process.pid) for s in servers),
                        "broker_cpu": proc_cpu_s(broker.pid or 0),
                        "machine_busy": machine_busy_s(),
                    }

                series = [snapshot()]
                end = series[0]["t"] + seconds
                while time.time() < end:
                    time.sleep(min(SAMPLE_EVERY_S, max(0.0, end - time.time())))
                    series.append(snapshot())
                    if detector.poll() is not None or any(ingest.poll() is not None for ingest in ingests):
                        raise SystemExit("the detector or ingest died during the measurement")
                _stop(detector)
                if detector.returncode != 0:
                    raise SystemExit(
                        f"the detector exited with code {detector.returncode}; log: {detector_log.name}"
                    )
                recorded = json.loads(samples_path.read_text())
            except BaseException:
                for name in ("detector.log", "ingest.log"):
                    path = tmp / name
                    if path.exists():
                        sys.stderr.write(f"--- {name} (last 3000 characters)\n{path.read_text()[-3000:]}\n")
                raise
            finally:
                _stop(detector)
                for ingest in ingests:
                    _stop(ingest)
                if follower is not None:
                    follower.halt.set()
                    follower.join(timeout=5)
                for server in servers:
                    server.stop()
    first, last = series[0], series[-1]
    t0, t1 = first["t"], last["t"]
    wall = t1 - t0

    def window(name: str) -> list[float]:
        return [value for kind, at, value in recorded["samples"] if kind == name and t0 <= at <= t1]

    scored, received, embedded = window("scored"), window("received"), window("embedded")
    hits, batches = window("glass_to_hit"), window("batch")
    detector_cpu = last["detector_cpu"] - first["detector_cpu"]
    # Where in the second frames were captured: the share of frames in the busiest 100 ms of it
    # (1/N when N cameras are evenly spread over it, 1 when they are aligned).
    offsets = sorted(
        (at - v) % 1.0 for kind, at, v in recorded["samples"] if kind == "received" and t0 <= at <= t1
    )
    wrapped = offsets + [offset + 1.0 for offset in offsets]
    busiest = max((bisect.bisect_right(wrapped, o + 0.1) - i for i, o in enumerate(offsets)), default=0)

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
        "temporal": ready["temporal"],
        "encoder_kind": encoder_name,
        "encoder": ready["encoder"],
        "warmup_s": round(scoring_after_s + warmup_s, 1),
        "seconds": round(wall, 1),
        "frames_scored": len(scored),
        "frames_scored_per_s": len(scored) / wall,
        "frames_skipped": {reason: len(window(f"skipped_{reason}")) for reason in ("behind", "replayed")},
        "mean_batch_frames": statistics.fmean(batches) if batches else 0.0,
        "busiest_100ms_share": busiest / max(1, len(offsets)),
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
        "rss_mib": {"loaded": rss_loaded, "start": rss[0], "peak": max(rss), "end": rss[-1]},
        "rss_series_mib": [[round(s["t"] - t0, 1), round(s["detector_rss"], 1)] for s in series],
        "other_cores": {
            "ingest": cores("ingest_cpu"),
            "rtsp_cameras": cores("cameras_cpu"),
            "broker": cores("broker_cpu"),
            "machine_busy": cores("machine_busy"),
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }


# --- the encoder alone ----------------------------------------------------------------------


def sample_frames(batch: int) -> list:
    """Real camera frames: the event clip's, 1280x720 (the cameras' size), photos included."""
    import av
    import numpy as np

    clip = camera_clip(0, 1)
    frames = []
    with av.open(str(clip)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % 25 == 0:
                frames.append(frame.to_ndarray(format="rgb24", width=WIDTH, height=HEIGHT))
            if len(frames) == 16:
                break
    return [np.ascontiguousarray(frames[i % len(frames)]) for i in range(batch)]


def measure_encoder(encoder_name: str, batch: int, min_repeats: int, min_seconds: float) -> dict:
    from encoders import RANDOM_EXPORT_DIR, timed_runs

    if encoder_name == "offline":
        from vigil.models.offline.encoder import OfflineEncoder

        encoder = OfflineEncoder.load(device="cpu")
    else:
        from vigil.models.clip.runtime import ClipEncoder

        encoder = ClipEncoder(RANDOM_EXPORT_DIR, precision="int8", device="cpu")
    frames = sample_frames(batch)
    encoder.embed_images(frames)  # warm-up outside the CPU count
    cpu_started = time.process_time()
    times = timed_runs(lambda: encoder.embed_images(frames), min_repeats, min_seconds)
    cpu_s = time.process_time() - cpu_started
    median = statistics.median(times)
    images = batch * (len(times) + 1)  # timed_runs runs one more warm-up call inside
    return {
        "encoder": encoder_name,
        "batch": batch,
        "frame": f"{WIDTH}x{HEIGHT}",
        "threads": os.cpu_count(),
        "repeats": len(times),
        "images_per_s": batch / median,
        "ms_per_image": 1000 * median / batch,
        "images_per_cpu_s": images / cpu_s,
    }


def clip_int8_available() -> bool:
    from encoders import RANDOM_EXPORT_DIR

    return (RANDOM_EXPORT_DIR / "manifest.json").is_file()


# --- the part's result and table (bench/run.py) -----------------------------------------------

P95_GOAL_MS, CAMERAS_PER_CORE_GOAL = 500.0, 20.0


def describe(row: dict) -> str:
    """One progress line for bench/run.py."""
    if row["part"] == "encoder":
        return (
            f"  encoder {row['encoder']:9s} batch {row['batch']}: {row['images_per_s']:6.1f} images/s, "
            f"{row['images_per_cpu_s']:6.1f} images per CPU-s"
        )
    hit = row["glass_to_hit"]
    p95 = "-" if hit["p95_ms"] is None else f"{hit['p95_ms']:.0f} ms"
    return (
        f"  {row['cameras']} cameras, {row['phases']}, {row['encoder_kind']}: glass-to-hit p95 {p95} "
        f"({hit['n']} hits), scored p95 {row['scored']['p95_ms']:.0f} ms, "
        f"{row['frames_per_cpu_s']:.1f} frames per CPU-s, RSS peak {row['rss_mib']['peak']:.0f} MiB"
    )


def summarize(rows: list[dict]) -> dict:
    """bench/detector.py's JSON lines -> bench/results/detector.json (goals judged here)."""
    cases = [row for row in rows if row["part"] == "case"]
    encoders = [row for row in rows if row["part"] == "encoder"]
    result: dict = {"cases": cases, "encoder": encoders, "goals": {}}
    if not cases:
        return result
    most = max(row["cameras"] for row in cases)
    tops = [row for row in cases if row["cameras"] == most]
    # Latency needs real hits: only the offline encoder (real weights) gives them here.
    result["goals"]["glass_to_hit_p95"] = [
        {
            "cameras": row["cameras"],
            "phases": row["phases"],
            "encoder": row["encoder_kind"],
            "goal_ms": P95_GOAL_MS,
            "p95_ms": row["glass_to_hit"]["p95_ms"],
            "hits": row["glass_to_hit"]["n"],
            "met": None
            if row["glass_to_hit"]["p95_ms"] is None
            else row["glass_to_hit"]["p95_ms"] <= P95_GOAL_MS,
        }
        for row in tops
        if row["encoder_kind"] == "offline"
    ]
    result["goals"]["cameras_per_core"] = [
        {
            "cameras": row["cameras"],
            "phases": row["phases"],
            "encoder": row["encoder_kind"],
            "goal": CAMERAS_PER_CORE_GOAL,
            "frames_per_cpu_s": row["frames_per_cpu_s"],
            "met": row["frames_per_cpu_s"] >= CAMERAS_PER_CORE_GOAL,
        }
        for row in tops
    ]
    return result


def _ms(stats: dict) -> str:
    if not stats["n"]:
        return "- | - | - | 0"
    return f"{stats['p50_ms']:.0f} | {stats['p95_ms']:.0f} | {stats['p99_ms']:.0f} | {stats['n']}"


def _verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "**not measured**"}[met]


def _encoder_cell(row: dict) -> str:
    return "clip-int8 (random weights: speed only)" if row["encoder_kind"] == "clip-int8" else "offline"


def table(result: dict) -> str:
    lines = [
        "Latency (ms, exact samples from the capture of a frame):",
        "",
        "| cameras | camera phases | encoder | measured s | temporal | frames scored/s | skipped (behind) "
        "| mean batch | frames in the busiest 100 ms of the second "
        "| glass-to-hit p50 | p95 | p99 | hits | scored p50 | p95 | p99 | frames |",
        "|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["cases"]:
        temporal = "off (the GRU did not load)" if row["temporal"].startswith("off (") else row["temporal"]
        lines.append(
            f"| {row['cameras']} | {row['phases']} | {_encoder_cell(row)} | {row['seconds']:.0f} "
            f"| {temporal} "
            f"| {row['frames_scored_per_s']:.2f} "
            f"| {row['frames_skipped']['behind']:.0f} | {row['mean_batch_frames']:.1f} "
            f"| {100 * row['busiest_100ms_share']:.0f} % "
            f"| {_ms(row['glass_to_hit'])} | {_ms(row['scored'])} |"
        )
    lines += [
        "",
        "Cost (cores = CPU-seconds per second over the measured window):",
        "",
        "| cameras | camera phases | encoder | detector cores | frames per detector CPU-s "
        "| detector RSS loaded / start / peak / end (MiB) "
        "| RTSP camera servers cores | ingest cores | broker cores | other processes' cores |",
        "|---:|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in result["cases"]:
        rss, others = row["rss_mib"], row["other_cores"]
        harness = others["ingest"] + others["rtsp_cameras"] + others["broker"]
        lines.append(
            f"| {row['cameras']} | {row['phases']} | {_encoder_cell(row)} | {row['detector_cores']:.2f} "
            f"| {row['frames_per_cpu_s']:.1f} "
            f"| {rss['loaded']:.0f} / {rss['start']:.0f} / {rss['peak']:.0f} / {rss['end']:.0f} "
            f"| {others['rtsp_cameras']:.2f} | {others['ingest']:.3f} | {others['broker']:.3f} "
            f"| {max(0.0, others['machine_busy'] - row['detector_cores'] - harness):.2f} |"
        )
    lines += [
        "",
        "Encoder alone (`embed_images` on real 1280x720 camera frames, preprocessing included, "
        "2 onnxruntime threads; clip-int8 = ViT-B-32 int8 with random weights: speed only):",
        "",
        "| encoder | batch | images/s | ms/image | images per CPU-s |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["encoder"]:
        lines.append(
            f"| {row['encoder']} | {row['batch']} | {row['images_per_s']:.1f} | {row['ms_per_image']:.1f} "
            f"| {row['images_per_cpu_s']:.1f} |"
        )
    goals = result.get("goals", {})
    verdicts = []
    for g in goals.get("glass_to_hit_p95", []):
        value = "no hit" if g["p95_ms"] is None else f"{g['p95_ms']:.0f} ms over {g['hits']} hits"
        verdicts.append(
            f"- Glass-to-hit p95 <= {g['goal_ms']:.0f} ms at {g['cameras']} cameras ({g['phases']}, "
            f"{g['encoder']} encoder): {_verdict(g['met'])} ({value})."
        )
    for g in goals.get("cameras_per_core", []):
        what = (
            "CLIP int8 encoder (the issue's goal; random weights, so speed only)"
            if g["encoder"] == "clip-int8"
            else "offline encoder (not int8; for comparison)"
        )
        verdicts.append(
            f"- >= {g['goal']:.0f} cameras per core at 1 frame/s, {what}, end to end "
            f"({g['cameras']} cameras, {g['phases']}): {_verdict(g['met'])} ({g['frames_per_cpu_s']:.1f} "
            f"frames per detector CPU-second)."
        )
    if verdicts:
        lines += ["", "Goals (issue), judged from the figures above:", "", *verdicts]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", choices=("all", "case", "detector", "encoder"), default=None)
    parser.add_argument("--cameras", type=int, help="one case: this many cameras")
    parser.add_argument(
        "--phases", choices=("independent", "aligned"), default="independent", help="one case"
    )
    parser.add_argument(
        "--cases",
        default=",".join(":".join(map(str, case)) for case in CASES),
        help="every case: cameras:phases:encoder, comma-separated",
    )
    parser.add_argument("--seconds", type=float, help="measured seconds per case (default: CASE_SECONDS)")
    parser.add_argument(
        "--warmup-s", type=float, default=5.0, help="after every camera's first frame is scored"
    )
    parser.add_argument(
        "--temporal",
        choices=("gru", "off"),
        default=None,
        help="the detector's temporal stage (default: the detector's own default)",
    )
    parser.add_argument("--encoder", choices=ENCODERS, default="offline")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--encoder-seconds", type=float, default=2.0)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--samples", type=Path)
    parser.add_argument("--camera-ids", default="")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    role = args.role or ("case" if args.cameras else "all")
    if role == "detector":
        cameras = [c for c in args.camera_ids.split(",") if c]
        run_detector_role(args.config, args.samples, cameras, args.encoder)
        return
    if role == "encoder":
        print(json.dumps(measure_encoder(args.encoder, args.batch, 5, args.encoder_seconds)))
        return
    if role == "case":
        seconds = args.seconds or CASE_SECONDS.get((args.cameras, args.phases, args.encoder), 60.0)
        row = measure_case(args.cameras, args.phases, args.encoder, seconds, args.warmup_s, args.temporal)
        print(json.dumps({"part": "case", **row}))
        return
    cases = [(int(n), phases, enc) for n, phases, enc in (c.split(":") for c in args.cases.split(",") if c)]
    for cameras in sorted({n for n, _, _ in cases}):
        for i in range(cameras):
            camera_clip(i, cameras)  # make every clip once, outside any measurement
    encoders = [e for e in ENCODERS if e == "offline" or clip_int8_available()]
    for encoder_name in encoders:
        for batch in ENCODER_BATCHES:
            command = [sys.executable, __file__, "--role=encoder", f"--encoder={encoder_name}"]
            command += [f"--batch={batch}", f"--encoder-seconds={args.encoder_seconds}"]
            output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
            print(json.dumps({"part": "encoder", **json.loads(output.strip().splitlines()[-1])}), flush=True)
    for cameras, phases, encoder_name in cases:
        if encoder_name == "clip-int8" and not clip_int8_available():
            print(f"skipping {cameras}:{phases}:clip-int8: no random-weights export", file=sys.stderr)
            continue
        seconds = args.seconds or CASE_SECONDS.get((cameras, phases, encoder_name), 60.0)
        command = [sys.executable, __file__, "--role=case", f"--cameras={cameras}", f"--phases={phases}"]
        command += [f"--encoder={encoder_name}", f"--seconds={seconds}", f"--warmup-s={args.warmup_s}"]
        command += [f"--temporal={args.temporal}"] if args.temporal else []
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
        print(output.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
