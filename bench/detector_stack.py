"""Detector bench: what one case starts besides the broker, each a process of its own but the
follower: the standing queries, N real RTSP cameras (vigil/fixtures/rtsp.py `RtspCamera`), the
config, `vigil ingest` (one process for every camera, or one per camera 1/N s apart), the
detector (`bench/detector.py --role detector`) and a follower of "hits"; and stopping them.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from detector_footage import CAMERA_FPS, HEIGHT, WIDTH

# The entry point that runs the detector role (it runs this module's cases too).
DRIVER = Path(__file__).with_name("detector.py")
INGEST_FPS = 1.0
QUERIES = {
    "cat": "a cat",
    "coffee": "a cup of coffee",
    "astronaut": "an astronaut",
    "rocket": "a rocket",
    "motorcycle": "a motorcycle",  # never shown: a standing query that only costs
}


class HitsFollower(threading.Thread):
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


def wait_for_line(process: subprocess.Popen, prefix: str, timeout_s: float) -> str:
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


def stop_process(process: subprocess.Popen | None, timeout_s: float = 30.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Stack:
    """What one case starts besides the broker; `close` stops whatever of it did start."""

    def __init__(self) -> None:
        self.servers: list = []  # RtspCamera
        self.ingests: list[subprocess.Popen] = []
        self.detector: subprocess.Popen | None = None
        self.follower: HitsFollower | None = None

    def close(self) -> None:
        stop_process(self.detector)
        for ingest in self.ingests:
            stop_process(ingest)
        if self.follower is not None:
            self.follower.halt.set()
            self.follower.join(timeout=5)
        for server in self.servers:
            server.stop()


# --- starting the case ---------------------------------------------------------------------


def publish_queries(settings) -> None:
    from vigil.services.common.contract import QueryMessage
    from vigil.services.common.kafka import ResilientProducer, publish_query

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


def start_cameras(clips: list[Path], servers: list) -> None:
    """An RTSP server per clip, each appended to `servers` once started."""
    from vigil.fixtures.rtsp import RtspCamera
    from vigil.services.broker.local import free_loopback_port

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


def write_configs(tmp: Path, phases: str, camera_ids: list[str], servers: list, temporal: str | None):
    """The config of every camera (the detector's, and ingest's when aligned), and the configs
    the ingest processes run: (config, ingest configs)."""
    import yaml

    cameras = [
        {"id": cid, "url": server.url, "fps": INGEST_FPS}
        for cid, server in zip(camera_ids, servers, strict=True)
    ]
    config = tmp / "vigil.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "metrics_port": 0,
                "cameras": cameras,
                "detector": {"metrics_port": 0} | ({"temporal": temporal} if temporal else {}),
            }
        )
    )
    if phases == "aligned":
        return config, [config]
    ingest_configs = []
    for i, camera in enumerate(cameras):
        ingest_configs.append(tmp / f"ingest-{i}.yaml")
        ingest_configs[-1].write_text(yaml.safe_dump({"metrics_port": 0, "cameras": [camera]}))
    return config, ingest_configs


def start_ingests(ingest_configs: list[Path], environment: dict, log, ingests: list) -> None:
    """`vigil ingest` per config, started 1/len(ingest_configs) s apart, each appended to `ingests`."""
    vigil = str(Path(sys.executable).with_name("vigil"))
    first_start = time.monotonic()
    for i, ingest_config in enumerate(ingest_configs):
        time.sleep(max(0.0, first_start + i / len(ingest_configs) - time.monotonic()))
        ingests.append(
            subprocess.Popen(
                [vigil, "ingest", "--config", str(ingest_config)],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )


def start_detector(
    config: Path, samples_path: Path, camera_ids: list[str], encoder_name: str, environment: dict, log
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            str(DRIVER),
            "--role=detector",
            f"--config={config}",
            f"--samples={samples_path}",
            f"--camera-ids={','.join(camera_ids)}",
            f"--encoder={encoder_name}",
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
