"""One chaos run: `vigil up` on a real RTSP camera, faults applied at times into the stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from vigil.chaos.faults import apply_fault, detector_counts
from vigil.chaos.model import ADMIN_TOKEN, ChaosRun, Fault
from vigil.chaos.watcher import Watcher
from vigil.demo import DEMO_QUERIES
from vigil.fixtures.media import event_clip


def run_scenario(home: Path, faults: list[Fault], stream_seconds: float = 52.0) -> ChaosRun:
    """`vigil up` on the demo's clip in `home`, with `faults` applied; see the module docstring."""
    from vigil.fixtures.rtsp import RtspCamera
    from vigil.services.broker.local import free_loopback_port

    home.mkdir(parents=True, exist_ok=True)
    ports = {name: free_loopback_port() for name in ("broker", "detector", "alerter", "api")}
    camera = RtspCamera(
        media=event_clip(), port=free_loopback_port(), mount="/hall", width=768, height=576, fps=10
    )
    config = write_config(home, camera.url, ports)
    run = ChaosRun(home=home)
    camera.start()
    up = start_up(home, config, ports)
    watcher = Watcher(f"127.0.0.1:{ports['broker']}", run)
    try:
        watcher.start()
        wait_until(lambda: run.stream_start_s is not None, 180, "the camera's first streaming status", up)
        pending = sorted(faults, key=lambda fault: fault.at_s)
        while pending or time.time() - run.stream_start_s < stream_seconds:
            if up.poll() is not None:
                raise RuntimeError(f"vigil up exited early with code {up.returncode}; see {home / 'up.log'}")
            if pending and time.time() - run.stream_start_s >= pending[0].at_s:
                fault = pending.pop(0)
                run.faults.append((fault.action, fault.at_s, apply_fault(fault, run, config, ports)))
            time.sleep(0.05)
    finally:
        run.frames_shed = detector_counts(ports["detector"], "vigil_detector_frames_shed", "reason") or {}
        run.exit_code = stop_up(up)
        watcher.stop()
        camera.stop()
    run.stored_hits = stored_hits(home)
    return run


def write_config(home: Path, camera_url: str, ports: dict[str, int]) -> Path:
    config = {
        "defaults": {"fps": 2, "resize": {"max_width": 768, "max_height": 576}},
        "cameras": [{"id": "hall", "url": camera_url, "open_timeout_s": 20}],
        # Completeness over latency: a frame is scored up to 30 s late rather than shed. On a
        # 2-core machine the restarts' CPU can push the one camera's detector to its capacity,
        # and shedding, lossy by design (pipelines/shedding.py), would then change which frames
        # are scored: in a CI run it shed the motorcycle event's first frame, and the hit id
        # moved with it. What this run measures is faults, not overload.
        "detector": {"metrics_port": ports["detector"], "max_lag_s": 30, "latency_budget_s": 30},
        "alerter": {
            "metrics_port": ports["alerter"],
            "speech": {"cache_dir": str(home / "speech"), "engines": ["espeak-ng"]},
            "policy": {"cooldown_s": 10},
        },
        # The API is a child of its own (`vigil api`): the `ack` fault and the restart probe go
        # through it; the alerter applies the acknowledgement.
        "api": {
            "port": ports["api"],
            "metrics_port": 0,
            "tokens": [{"name": "chaos", "role": "admin", "token": ADMIN_TOKEN}],
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


def run_encoder(home: Path):
    """The encoder the run's detector chose (its config's, resolved as the detector does)."""
    from vigil.models.registry import create_encoder, resolve_kind
    from vigil.services.detector.config import load_detector_config

    settings = load_detector_config(home / "vigil.yaml").encoder
    kind, _ = resolve_kind(settings)
    return create_encoder(settings.model_copy(update={"kind": kind}))


def stored_hits(home: Path) -> list:
    from vigil.services.detector.store import HitStore, StoreSettings

    dim = run_encoder(home).info.dim
    store = HitStore(StoreSettings(uri=str(home / "milvus"), thumbnails_dir=home / "thumbnails", dim=dim))
    try:
        return store.hits(limit=1000)
    finally:
        store.close()


def wait_until(condition, timeout_s: float, what: str, up: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if up.poll() is not None:
            raise RuntimeError(f"vigil up exited with code {up.returncode} while waiting for {what}")
        time.sleep(0.1)
    raise TimeoutError(f"no {what} within {timeout_s:.0f} s")


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
            "frames_shed": run.frames_shed,
            "exit_code": run.exit_code,
        }
    )
