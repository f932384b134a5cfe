"""Faults under a real `vigil up`: the harness of the chaos suite (tests/chaos) and its bench.

`run_scenario` runs `vigil up` as a user would, in a folder of its own (durable broker log,
Milvus lite, thumbnails, speech cache, API token), on a real RTSP camera that plays the demo's
clip (known events: a cat 12-20 s and a motorcycle 34-42 s into the stream), and applies each
Fault at its time into the stream:

- `kill:ingest`, `kill:detector`, `kill:alerter`: kill -9 of that child of `vigil up`;
- `kill:broker`: kill -9 of the local broker (tansu) that `vigil up` started;
- `poison`: four frames that must not hurt, sent to "frames" as a broken camera would: one of
  15 MB (over the topic's limit, which the local broker does not enforce), a JPEG stamped a
  day ahead, one stamped a day behind, and bytes that are no image;
- `ack`: the first alert raised so far is acknowledged through the API;
- `query`: an operator registers a query of their own (OPERATOR_QUERY) on "queries".

It records what came out (`ChaosRun`): every record on "hits", "alerts" and "dead-letters",
the hits stored in Milvus, the stream's start (the camera's first "streaming" status), each
fault's recovery (until the detector scores a new frame, or the alerter's API answers), and
the acknowledgement. `compare` holds a run against a clean one; `restart_keeps` starts
`vigil up` again on the same folder and reads back what an operator set.

Hit ids embed capture times, which differ from one run of a live camera to the next, so runs
are compared by events: (query, start, end) in seconds into the stream.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from vigil.demo import DEMO_QUERIES
from vigil.media import event_clip

ADMIN_TOKEN = "chaos-admin-token-0123456789abcdef"
OPERATOR_QUERY = {"query_id": "operator-query", "text": "a red umbrella", "created_by": "operator"}
FAULTS = ("kill:ingest", "kill:detector", "kill:alerter", "kill:broker", "poison", "ack", "query")
POISON_REASONS = ("too_large", "future", "past", "garbage")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Fault:
    at_s: float  # into the stream
    action: str

    def __post_init__(self) -> None:
        if self.action not in FAULTS:
            raise ValueError(f"unknown fault {self.action!r}; one of {', '.join(FAULTS)}")


@dataclass(frozen=True)
class Event:
    query_id: str
    start_s: float
    end_s: float | None


@dataclass
class ChaosRun:
    home: Path
    stream_start_s: float | None = None
    hits: dict = field(default_factory=dict)  # hit id -> its latest HitMessage on "hits"
    alerts: list = field(default_factory=list)  # every AlertMessage record on "alerts"
    dead_letters: list = field(default_factory=list)  # (dlq.reason, dlq.source_topic)
    stored_hits: list = field(default_factory=list)  # HitMessage rows in Milvus, after the run
    faults: list = field(default_factory=list)  # (action, at_s, recovered_s or None)
    acknowledged: str | None = None  # the alert id acknowledged by an `ack` fault
    exit_code: int | None = None

    def events(self) -> list[Event]:
        """The stored events, in seconds into the stream, oldest first."""
        origin = self.stream_start_s or 0.0
        return sorted(
            (
                Event(
                    hit.query_id,
                    round(hit.event_start_ts_ms / 1000 - origin, 1),
                    None if hit.end_ts_ms is None else round(hit.end_ts_ms / 1000 - origin, 1),
                )
                for hit in self.stored_hits
            ),
            key=lambda event: (event.start_s, event.query_id),
        )

    def recovery(self, action: str) -> list[float | None]:
        return [recovered for done, _, recovered in self.faults if done == action]


def compare(clean: ChaosRun, chaos: ChaosRun, tolerance_s: float = 2.0) -> list[str]:
    """What the faults changed: events missing, added or moved by more than tolerance_s (start
    or end), hits lost between "hits" and Milvus, alerts duplicated or lost. Empty when none."""
    problems = []
    unmatched = list(chaos.events())
    for event in clean.events():
        match = next(
            (
                other
                for other in unmatched
                if other.query_id == event.query_id
                and abs(other.start_s - event.start_s) <= tolerance_s
                and _ends_agree(other.end_s, event.end_s, tolerance_s)
            ),
            None,
        )
        if match is None:
            problems.append(f"event {event} of the clean run has no counterpart within {tolerance_s} s")
        else:
            unmatched.remove(match)
    problems += [f"event {event} is not in the clean run" for event in unmatched]
    stored = {hit.hit_id for hit in chaos.stored_hits}
    if set(chaos.hits) != stored:
        problems.append(
            f"hits on 'hits' and in Milvus differ: lost {sorted(set(chaos.hits) - stored)}, "
            f"only in Milvus {sorted(stored - set(chaos.hits))}"
        )
    alert_ids = [alert.alert_id for alert in chaos.alerts]
    duplicates = sorted({alert_id for alert_id in alert_ids if alert_ids.count(alert_id) > 1})
    if duplicates:
        problems.append(f"alerts raised twice: {duplicates}")
    clean_alerted = sorted(_alerted_events(clean))
    chaos_alerted = _alerted_events(chaos)
    for query_id, start_s in clean_alerted:
        if not any(q == query_id and abs(s - start_s) <= tolerance_s for q, s in chaos_alerted):
            problems.append(f"the alert for {query_id} at {start_s} s of the clean run was lost")
    return problems


def _ends_agree(end: float | None, other: float | None, tolerance_s: float) -> bool:
    if end is None or other is None:
        return end is other
    return abs(end - other) <= tolerance_s


def _alerted_events(run: ChaosRun) -> set[tuple[str, float]]:
    origin = run.stream_start_s or 0.0
    starts = {hit.hit_id: hit.event_start_ts_ms for hit in [*run.hits.values(), *run.stored_hits]}
    return {
        (alert.query_id, round(starts[alert.hit_id] / 1000 - origin, 1))
        for alert in run.alerts
        if alert.hit_id in starts
    }


# --- one run -----------------------------------------------------------------------------


def run_scenario(home: Path, faults: list[Fault], stream_seconds: float = 52.0) -> ChaosRun:
    """`vigil up` on the demo's clip in `home`, with `faults` applied; see the module docstring."""
    from vigil.rtsp import RtspCamera
    from vigil.services.broker.local import free_loopback_port

    home.mkdir(parents=True, exist_ok=True)
    ports = {name: free_loopback_port() for name in ("broker", "detector", "api")}
    camera = RtspCamera(
        media=event_clip(), port=free_loopback_port(), mount="/hall", width=768, height=576, fps=10
    )
    config = write_config(home, camera.url, ports)
    run = ChaosRun(home=home)
    camera.start()
    up = start_up(home, config, ports)
    watcher = _Watcher(f"127.0.0.1:{ports['broker']}", run)
    try:
        watcher.start()
        _wait(lambda: run.stream_start_s is not None, 180, "the camera's first streaming status", up)
        pending = sorted(faults, key=lambda fault: fault.at_s)
        while pending or time.time() - run.stream_start_s < stream_seconds:
            if up.poll() is not None:
                raise RuntimeError(f"vigil up exited early with code {up.returncode}; see {home / 'up.log'}")
            if pending and time.time() - run.stream_start_s >= pending[0].at_s:
                fault = pending.pop(0)
                run.faults.append((fault.action, fault.at_s, _apply(fault, run, config, ports)))
            time.sleep(0.05)
    finally:
        run.exit_code = stop_up(up)
        watcher.stop()
        camera.stop()
    run.stored_hits = stored_hits(home)
    return run


def write_config(home: Path, camera_url: str, ports: dict[str, int]) -> Path:
    config = {
        "defaults": {"fps": 2, "resize": {"max_width": 768, "max_height": 576}},
        "cameras": [{"id": "hall", "url": camera_url, "open_timeout_s": 20}],
        "detector": {"metrics_port": ports["detector"], "max_lag_s": 30},
        "alerter": {
            "speech": {"cache_dir": str(home / "speech"), "engines": ["espeak-ng"]},
            "policy": {"cooldown_s": 10},
            "api": {
                "port": ports["api"],
                "tokens": [{"name": "chaos", "role": "admin", "token": ADMIN_TOKEN}],
            },
        },
        "queries": list(DEMO_QUERIES),
    }
    path = home / "vigil.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def start_up(home: Path, config: Path, ports: dict[str, int]) -> subprocess.Popen:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("VIGIL_KAFKA_", "VIGIL_MILVUS_"))
    }
    environment.update(
        {
            "VIGIL_KAFKA_LOCAL_PORT": str(ports["broker"]),
            "VIGIL_BROKER_DIR": str(home / "broker"),
            "VIGIL_MILVUS_URI": str(home / "milvus"),
            "VIGIL_MILVUS_THUMBNAILS_DIR": str(home / "thumbnails"),
            "VIGIL_HOME": str(home),
        }
    )
    # The models are the checkout's, built once; VIGIL_HOME would otherwise point at none.
    from vigil.paths import models_dir

    environment.setdefault("VIGIL_MODELS_DIR", str(models_dir()))
    vigil = str(Path(sys.executable).with_name("vigil"))
    log = open(home / "up.log", "ab")  # noqa: SIM115 (the child writes to it until it exits)
    return subprocess.Popen([vigil, "up", "--config", str(config)], env=environment, stdout=log, stderr=log)


def stop_up(up: subprocess.Popen, timeout_s: float = 60.0) -> int:
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
    return up.returncode


def stored_hits(home: Path) -> list:
    from vigil.models.registry import create_encoder, resolve_kind
    from vigil.services.detector.config import load_detector_config
    from vigil.services.detector.store import HitStore, StoreSettings

    encoder_settings = load_detector_config(home / "vigil.yaml").encoder  # the detector's choice
    kind, _ = resolve_kind(encoder_settings)
    dim = create_encoder(encoder_settings.model_copy(update={"kind": kind})).info.dim
    store = HitStore(StoreSettings(uri=str(home / "milvus"), thumbnails_dir=home / "thumbnails", dim=dim))
    try:
        return store.hits(limit=1000)
    finally:
        store.close()


# --- faults ------------------------------------------------------------------------------


def _apply(fault: Fault, run: ChaosRun, config: Path, ports: dict[str, int]) -> float | None:
    """Apply one fault; returns how long until the service it hit was back (None: not measured)."""
    if fault.action == "ack":
        run.acknowledged = acknowledge_first_alert(run, ports["api"])
        return None
    if fault.action == "query":
        publish_operator_query(f"127.0.0.1:{ports['broker']}")
        return None
    started = time.monotonic()
    if fault.action == "poison":
        send_poison(f"127.0.0.1:{ports['broker']}")
        return _until_scoring(ports["detector"], started)
    if fault.action == "kill:broker":
        pids = _pids(f"tansu broker --listener-url tcp://127.0.0.1:{ports['broker']}")
    else:
        pids = _pids(f"vigil {fault.action.split(':')[1]} --config {config}")
    if not pids:
        raise RuntimeError(f"{fault.action}: no such process is running")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    if fault.action == "kill:alerter":
        return _until(lambda: _answers(f"http://127.0.0.1:{ports['api']}/healthz"), started, 60)
    return _until_scoring(ports["detector"], started)


def _pids(command_line: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", command_line], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def _frames_scored(port: int) -> float | None:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=0.5).text
    except requests.RequestException:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("vigil_detector_frames_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _until_scoring(port: int, started: float, timeout_s: float = 60.0) -> float | None:
    """Seconds from `started` until the detector scores a frame it had not scored at the first
    reading taken after the fault (a restarted detector's counter starts again from 0)."""
    time.sleep(0.3)
    baseline = None
    while time.monotonic() - started < timeout_s:
        value = _frames_scored(port)
        if value is not None:
            if baseline is not None and value > baseline:
                return round(time.monotonic() - started, 2)
            baseline = value if baseline is None or value < baseline else baseline
        time.sleep(0.1)
    return None


def _until(condition, started: float, timeout_s: float) -> float | None:
    time.sleep(0.3)
    while time.monotonic() - started < timeout_s:
        if condition():
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    return None


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


def acknowledge_first_alert(run: ChaosRun, api_port: int) -> str | None:
    if not run.alerts:
        return None
    alert_id = run.alerts[0].alert_id
    response = requests.post(
        f"http://127.0.0.1:{api_port}/api/v1/alerts/{alert_id}/acknowledge",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return alert_id


def send_poison(bootstrap: str) -> None:
    """The four poison frames of the module docstring, on the camera's own key."""
    from kafka import KafkaProducer
    from PIL import Image

    from vigil.services.common.contract import FrameHeaders

    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture, format="JPEG")
    jpeg = picture.getvalue()
    now_ms = int(time.time() * 1000)
    frames = [
        (os.urandom(15 * 1024 * 1024), now_ms),  # too large
        (jpeg, now_ms + DAY_MS),  # from the future
        (jpeg, now_ms - DAY_MS),  # from the past
        # No image, stamped just ahead of the camera's own frames: one stamped no later than the
        # camera's last scored frame is skipped as replayed before it is decoded.
        (os.urandom(4096), now_ms + 1_000),
    ]
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, max_request_size=20 * 1024 * 1024
    )
    try:
        for seq, (value, ts_ms) in enumerate(frames, start=10**9):
            headers = FrameHeaders(camera_id="hall", ts_ms=ts_ms, seq=seq, width=64, height=48)
            producer.send("frames", value, key=b"hall", headers=headers.to_kafka()).get(timeout=10)
    finally:
        producer.close()


# --- reading what came out ---------------------------------------------------------------


class _Watcher:
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
                wanted = ("hits", "alerts", "camera-status", "dead-letters")
                partitions = []
                for topic in wanted:
                    partitions += [_partition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
                if len(partitions) < len(wanted):
                    raise RuntimeError("topics not created yet")
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


def _wait(condition, timeout_s: float, what: str, up: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if up.poll() is not None:
            raise RuntimeError(f"vigil up exited with code {up.returncode} while waiting for {what}")
        time.sleep(0.1)
    raise TimeoutError(f"no {what} within {timeout_s:.0f} s")


# --- after a restart ---------------------------------------------------------------------


@dataclass
class Restarted:
    alerts: dict  # alert id -> its view from the API (status, acknowledged_by, ...)
    query_ids: set


def restart_keeps(home: Path, seconds: float = 90.0) -> Restarted:
    """`vigil up` again on the run's folder (its config, broker log, Milvus): once its API answers,
    every alert record and the standing queries as they are now. The camera is gone: ingest
    retries it meanwhile, which changes nothing here."""
    from vigil.services.broker.local import free_loopback_port
    from vigil.services.common.kafka import KafkaSettings, QueryTableReader

    config = home / "vigil.yaml"
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    ports = {
        "broker": free_loopback_port(),
        "detector": document["detector"]["metrics_port"],
        "api": document["alerter"]["api"]["port"],
    }
    up = start_up(home, config, ports)
    try:
        url = f"http://127.0.0.1:{ports['api']}"
        _wait(lambda: _answers(f"{url}/healthz"), seconds, "the alerter's API", up)
        listed = requests.get(
            f"{url}/api/v1/alerts",
            params={"status": "all", "limit": 1000},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        listed.raise_for_status()
        alerts = {view["alert_id"]: view for view in listed.json()["alerts"]}
        settings = KafkaSettings(bootstrap=f"127.0.0.1:{ports['broker']}")
        with QueryTableReader(settings) as reader:
            query_ids = set(reader.load(timeout_s=30))
        return Restarted(alerts=alerts, query_ids=query_ids)
    finally:
        stop_up(up)


def publish_operator_query(bootstrap: str) -> None:
    """A query an operator registers at run time (as `vigil queries add` does)."""
    from vigil.services.common.contract import QueryMessage
    from vigil.services.common.kafka import KafkaSettings, ResilientProducer, publish_query

    query = QueryMessage.model_validate({**OPERATOR_QUERY, "updated_ts_ms": int(time.time() * 1000)})
    with ResilientProducer(KafkaSettings(bootstrap=bootstrap)) as producer:
        publish_query(producer, KafkaSettings(bootstrap=bootstrap).topics, query)


def summary(run: ChaosRun) -> str:
    """One JSON line per run, for logs and the bench."""
    return json.dumps(
        {
            "events": [event.__dict__ for event in run.events()],
            "hits": len(run.hits),
            "stored_hits": len(run.stored_hits),
            "alerts": len(run.alerts),
            "dead_letters": run.dead_letters,
            "faults": run.faults,
            "acknowledged": run.acknowledged,
            "exit_code": run.exit_code,
        }
    )
