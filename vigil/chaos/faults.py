"""The faults of a chaos run: kill -9 of a service, poison frames, an acknowledgement, a query."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from vigil.chaos.model import ADMIN_TOKEN, DAY_MS, OPERATOR_QUERY, POISON_SEQ_FROM, ChaosRun, Fault


def apply_fault(fault: Fault, run: ChaosRun, config: Path, ports: dict[str, int]) -> float | None:
    """Apply one fault; returns how long until the service it hit was back (None: not measured)."""
    if fault.action == "ack":
        run.acknowledged = acknowledge_first_alert(run, ports["api"])
        return None
    if fault.action == "query":
        publish_operator_query(f"127.0.0.1:{ports['broker']}")
        return None
    if fault.action == "poison":
        send_poison(f"127.0.0.1:{ports['broker']}")
        # The stall is the detector's: counted from when the broker has all four frames, not
        # while this client uploads 15 MB into the broker's object store (2.4 s in one CI run).
        return _until_scoring(ports["detector"], time.monotonic())
    started = time.monotonic()
    if fault.action == "kill:broker":
        pids = _pids(f"tansu broker --listener-url tcp://127.0.0.1:{ports['broker']}")
    else:
        pids = _pids(f"vigil {fault.action.split(':')[1]} --config {config}")
    if not pids:
        raise RuntimeError(f"{fault.action}: no such process is running")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    if fault.action == "kill:alerter":
        # Back once the restarted alerter serves its metrics: it has loaded its state and joined.
        return _until(lambda: answers(f"http://127.0.0.1:{ports['alerter']}/metrics"), started, 60)
    return _until_scoring(ports["detector"], started)


def _pids(command_line: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", command_line], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def detector_counts(port: int, metric: str, label: str) -> dict[str, float] | None:
    """A counter of the detector's /metrics summed by one label (None: it did not answer)."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=0.5).text
    except requests.RequestException:
        return None
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{metric}_total":
                key = sample.labels.get(label, "")
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def _frames_scored(port: int) -> float | None:
    counts = detector_counts(port, "vigil_detector_frames", "camera")
    return None if counts is None else sum(counts.values())


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


def answers(url: str) -> bool:
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
        timeout=30,
    )
    # 503: the alerter did not apply it in time (killed by another fault): the command stays
    # queued on "alert-commands" and applies once it is back, which the restart check reads.
    if response.status_code != 503:
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
    # Each frame is stamped as it is sent: the 15 MB one takes seconds to reach the broker's
    # object store, and a stamp taken before it would no longer be ahead of the camera's frames.
    frames = [
        (os.urandom(15 * 1024 * 1024), 0),  # too large
        (jpeg, DAY_MS),  # from the future
        (jpeg, -DAY_MS),  # from the past
        # No image, stamped just ahead of the camera's own frames: one stamped no later than the
        # camera's last scored frame is skipped as replayed before it is decoded.
        (os.urandom(4096), 1_000),
    ]
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, max_request_size=20 * 1024 * 1024
    )
    try:
        for seq, (value, offset_ms) in enumerate(frames, start=POISON_SEQ_FROM):
            ts_ms = int(time.time() * 1000) + offset_ms
            headers = FrameHeaders(camera_id="hall", ts_ms=ts_ms, seq=seq, width=64, height=48)
            producer.send("frames", value, key=b"hall", headers=headers.to_kafka()).get(timeout=10)
    finally:
        producer.close()


def publish_operator_query(bootstrap: str) -> None:
    """A query an operator registers at run time (as `vigil queries add` does)."""
    from vigil.services.common.contract import QueryMessage
    from vigil.services.common.kafka import KafkaSettings, ResilientProducer, publish_query

    query = QueryMessage.model_validate({**OPERATOR_QUERY, "updated_ts_ms": int(time.time() * 1000)})
    with ResilientProducer(KafkaSettings(bootstrap=bootstrap)) as producer:
        publish_query(producer, KafkaSettings(bootstrap=bootstrap).topics, query)
