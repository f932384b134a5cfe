"""The ingest service end to end with real parts: RTSP cameras served by gst-rtsp-server, the
tansu broker, and a consumer reading what ingest published on "frames" and "camera-status"."""

from __future__ import annotations

import io
import itertools
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from ingest_helpers import TopicReader, wait_for
from PIL import Image
from prometheus_client import CollectorRegistry, generate_latest

from vigil.services.broker.local import LocalBroker, free_loopback_port
from vigil.services.common.kafka import KafkaSettings, TopicMissingError, ensure_topics
from vigil.services.ingest.config import IngestServiceSettings, parse_config
from vigil.services.ingest.service import IngestService

REPO_ROOT = Path(__file__).resolve().parents[2]
# Small frames and short timeouts where a test is not about them.
FAST_DEFAULTS = {
    "resize": {"max_width": 160},
    "jpeg_quality": 75,
    "open_timeout_s": 2,
    "read_timeout_s": 2,
    "stall_after_s": 1,
}


@contextmanager
def running_ingest(settings: KafkaSettings, cameras: list[dict], defaults=None, **top_level):
    config = parse_config(
        {
            "metrics_port": 0,
            "defaults": {**FAST_DEFAULTS, **(defaults or {})},
            "cameras": cameras,
            **top_level,
        }
    )
    registry = CollectorRegistry()
    service = IngestService(
        IngestServiceSettings(ingest=config, kafka=settings), metrics_registry=registry
    ).start()
    reader = None
    try:
        reader = TopicReader(settings)
        yield service, reader, registry
    finally:
        service.stop()
        if reader is not None:
            reader.close()


def metric(registry: CollectorRegistry, name: str, camera: str, **labels) -> float:
    return registry.get_sample_value(name, {"camera": camera, **labels}) or 0.0


def state_of(service: IngestService, camera: str) -> str:
    return service.status()[camera].state


def test_frames_arrive_in_capture_order_at_the_configured_rate(kafka_settings, rtsp_camera, vtest_media):
    server = rtsp_camera()
    cameras = [
        {"id": "live", "url": server.url, "fps": 2},
        {"id": "recorded", "url": str(vtest_media), "fps": 2, "realtime": True},
    ]
    with running_ingest(kafka_settings, cameras) as (_, reader, registry):
        reader.wait_for_frames("live", 15, timeout_s=20)
        reader.wait_for_frames("recorded", 15, timeout_s=10)
    for camera in ("live", "recorded"):
        frames = sorted(reader.frames_of(camera), key=lambda f: f.headers.seq)
        assert [f.headers.seq for f in frames] == list(range(len(frames)))  # none lost, none twice
        times_s = [f.headers.ts_ms / 1000 for f in frames]
        assert all(later > earlier for earlier, later in itertools.pairwise(times_s)), camera
        rate = (len(frames) - 1) / (times_s[-1] - times_s[0])
        assert 1.8 <= rate <= 2.2, f"{camera}: {rate:.2f} frames/s, configured 2"
        # Resized before encoding: the JPEG itself is 160 wide, and the headers say so.
        assert {(f.headers.width, f.headers.height) for f in frames} == {(160, 120)}
        assert Image.open(io.BytesIO(frames[0].jpeg)).size == (160, 120)
        assert metric(registry, "vigil_ingest_frames_published_total", camera) >= len(frames)
    # Capture to consumer: the live camera's frames reach Kafka well within a second.
    live = reader.frames_of("live")
    assert statistics.median(f.received - f.headers.ts_ms / 1000 for f in live) < 1.0
    # Every decoded frame was counted, and only 2 per second were kept (the camera sends 10).
    decoded = metric(registry, "vigil_ingest_frames_decoded_total", "live")
    sampled = metric(registry, "vigil_ingest_frames_sampled_total", "live")
    assert decoded >= 4 * sampled


def test_killed_camera_goes_down_and_streams_again_within_5s_of_its_return(kafka_settings, rtsp_camera):
    server = rtsp_camera()
    # Default reconnect settings: the promise holds for them, not for tuned ones.
    cameras = [{"id": "cam", "url": server.url, "fps": 2}]
    with running_ingest(kafka_settings, cameras) as (service, reader, registry):
        reader.wait_for_frames("cam", 3, timeout_s=15)
        server.kill()
        wait_for(lambda: state_of(service, "cam") in ("down", "connecting"), 5, what="camera down")
        assert metric(registry, "vigil_ingest_camera_up", "cam") == 0
        reader.poll_for(6)  # long enough for the backoff to reach its cap
        assert state_of(service, "cam") in ("down", "connecting")
        server.start()
        back = time.time()
        wait_for(lambda: state_of(service, "cam") == "streaming", 5, what="streaming again")
        reader.wait_for_frames("cam", 1, timeout_s=5, after_ts_ms=round(back * 1000))
        first_new = min(f.headers.ts_ms for f in reader.frames_of("cam", after_ts_ms=round(back * 1000)))
        assert first_new / 1000 - back <= 5.0
        assert metric(registry, "vigil_ingest_camera_up", "cam") == 1
        assert metric(registry, "vigil_ingest_reconnects_total", "cam") >= 2
        reader.poll_for(0.5)
    states = [s.state for s in reader.statuses if s.camera_id == "cam"]
    assert states[:2] == ["connecting", "streaming"] and "down" in states and states[-1] == "streaming"


def test_frozen_camera_times_out_instead_of_hanging_and_others_stream_on(kafka_settings, rtsp_camera):
    frozen, healthy = rtsp_camera("/frozen"), rtsp_camera("/healthy")
    cameras = [{"id": "frozen", "url": frozen.url, "fps": 2}, {"id": "healthy", "url": healthy.url, "fps": 2}]
    with running_ingest(kafka_settings, cameras) as (service, reader, registry):
        reader.wait_for_frames("frozen", 2, timeout_s=15)
        reader.wait_for_frames("healthy", 2, timeout_s=15)
        frozen.freeze()
        froze_at = time.time()
        wait_for(lambda: state_of(service, "frozen") == "stalled", 3, what="stalled")
        assert metric(registry, "vigil_ingest_camera_state", "frozen", state="stalled") == 1
        # The read times out (read_timeout_s 2) instead of blocking the thread for good.
        wait_for(lambda: state_of(service, "frozen") in ("down", "connecting"), 5, what="down")
        assert service.workers["frozen"]._thread.is_alive()
        # Reconnecting to the frozen server times out too: its kernel accepts, it never answers.
        wait_for(
            lambda: reader.poll() or "no answer within 2 s" in (service.status()["frozen"].reason or ""),
            6,
            what="reconnect timeout",
        )
        during = [
            f for f in reader.frames_of("healthy") if froze_at <= f.headers.ts_ms / 1000 <= froze_at + 5
        ]
        assert len(during) >= 9, "the healthy camera slowed down while the other was frozen"
        frozen.thaw()
        wait_for(lambda: state_of(service, "frozen") == "streaming", 10, what="streaming after thaw")
        reader.poll_for(0.5)
    reasons = [s.reason or "" for s in reader.statuses if s.camera_id == "frozen" and s.state != "streaming"]
    assert any("no data for more than 1 s" in reason for reason in reasons)  # stalled
    assert any("lost: no data for 2 s" in reason for reason in reasons)  # the read timed out
    assert any("no answer within 2 s" in reason for reason in reasons)  # so did reconnecting


def test_bad_urls_give_a_clear_error_state_while_other_cameras_stream(kafka_settings, rtsp_camera, tmp_path):
    good = rtsp_camera("/good")
    cameras = [
        {"id": "good", "url": good.url, "fps": 2},
        {"id": "refused", "url": f"rtsp://127.0.0.1:{free_loopback_port()}/cam"},
        {"id": "no-such-stream", "url": good.url.replace("/good", "/typo")},
        {"id": "no-such-file", "url": str(tmp_path / "absent.mp4")},
    ]
    with running_ingest(kafka_settings, cameras) as (service, reader, registry):
        reader.wait_for_frames("good", 8, timeout_s=15)
        for camera in ("refused", "no-such-stream", "no-such-file"):
            wait_for(lambda c=camera: service.status()[c].reason, 5, what=f"{camera} error")
            assert metric(registry, "vigil_ingest_camera_up", camera) == 0
        status = service.status()
        wait_for(lambda: reader.poll() or {s.camera_id for s in reader.statuses} >= set(status), 5)
    assert "Connection refused" in status["refused"].reason
    assert "404" in status["no-such-stream"].reason or "Not Found" in status["no-such-stream"].reason
    assert "No such file" in status["no-such-file"].reason
    assert status["good"].state == "streaming"
    published = {s.camera_id: s for s in reader.statuses if s.state == "down"}
    assert "Connection refused" in published["refused"].reason
    good_frames = reader.frames_of("good")
    rate = (len(good_frames) - 1) / ((good_frames[-1].headers.ts_ms - good_frames[0].headers.ts_ms) / 1000)
    assert 1.8 <= rate <= 2.2


@pytest.fixture
def own_broker(tmp_path):
    """A broker of this test alone: restarting the session's would empty every test's topics."""
    with LocalBroker(0, log_dir=tmp_path) as broker:
        yield broker


def test_broker_restart_is_survived_and_backpressure_drops_the_oldest(own_broker, rtsp_camera):
    settings = KafkaSettings(
        bootstrap=own_broker.bootstrap, frame_partitions=1, event_partitions=1, connect_timeout_s=10
    )
    ensure_topics(settings)
    server = rtsp_camera()
    cameras = [{"id": "cam", "url": server.url, "fps": 5, "queue_size": 2}]
    with running_ingest(settings, cameras, publisher={"max_in_flight": 2}) as (service, reader, registry):
        reader.wait_for_frames("cam", 5, timeout_s=15)
        reader.close()
        published_before = metric(registry, "vigil_ingest_frames_published_total", "cam")
        # Down for 3 s, then back with empty memory storage: the topics are gone, and ingest
        # must notice and re-create them.
        stopped = time.time()
        own_broker.stop()
        time.sleep(3)
        assert state_of(service, "cam") == "streaming"  # cameras do not care
        own_broker.start()
        back = time.time()

        def reader_after_restart() -> TopicReader | None:
            try:
                return TopicReader(settings)
            except TopicMissingError:
                return None

        readers: list[TopicReader] = []
        wait_for(lambda: readers.append(r) or True if (r := reader_after_restart()) else False, 20)
        fresh = readers[0]
        try:
            fresh.wait_for_frames("cam", 5, timeout_s=20, after_ts_ms=round(back * 1000))
        finally:
            fresh.close()
        assert metric(registry, "vigil_ingest_frames_published_total", "cam") > published_before
        assert state_of(service, "cam") == "streaming"
        dropped = {
            reason: metric(registry, "vigil_ingest_frames_dropped_total", "cam", reason=reason)
            for reason in ("queue_full", "broker_unavailable", "delivery_failed")
        }
    # While the broker was away the camera kept sampling (5 frames/s) into a queue of 2: the
    # oldest frames were dropped and counted. Of the ~15 frames captured during the outage only
    # those in flight (2), queued (2) or in the publisher's hand (1) can have been published.
    assert dropped["queue_full"] >= 5, dropped
    frames = fresh.frames_of("cam")
    during_outage = [f for f in frames if stopped < f.headers.ts_ms / 1000 < back]
    assert len(during_outage) <= 5
    seqs = [f.headers.seq for f in sorted(frames, key=lambda f: f.headers.ts_ms)]
    assert seqs == sorted(seqs)


def test_credentials_never_appear_in_logs_metrics_or_status(kafka_settings, rtsp_camera, monkeypatch, caplog):
    user, password = "vigil-operator", "Pa55-never-shown"
    monkeypatch.setenv("CAM_USER", user)
    monkeypatch.setenv("CAM_PASSWORD", password)
    server = rtsp_camera()
    with_credentials = server.url.replace("rtsp://", "rtsp://${CAM_USER}:${CAM_PASSWORD}@")
    cameras = [
        {"id": "ok", "url": with_credentials, "fps": 2},
        {
            "id": "refused",
            "url": f"rtsp://${{CAM_USER}}:${{CAM_PASSWORD}}@127.0.0.1:{free_loopback_port()}/c",
        },
        {"id": "typo", "url": with_credentials.replace("/cam", "/typo")},
    ]
    caplog.set_level(logging.DEBUG)
    with running_ingest(kafka_settings, cameras) as (service, reader, registry):
        reader.wait_for_frames("ok", 3, timeout_s=15)
        wait_for(lambda: metric(registry, "vigil_ingest_reconnects_total", "refused") >= 2, 10)
        wait_for(lambda: service.status()["typo"].reason, 5)
        reader.poll()
        exposition = generate_latest(registry).decode()
        reasons = [status.reason or "" for status in service.status().values()]
        assert "Connection refused" in service.status()["refused"].reason  # errors are still useful
    published = [status.model_dump_json() for status in reader.statuses]
    everything_logged = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    for secret in (password, user):
        assert secret not in everything_logged
        assert secret not in exposition
        assert not any(secret in reason for reason in reasons)
        assert not any(secret in message for message in published)
    assert f'url="rtsp://***@127.0.0.1:{server.port}/cam"' in exposition


def test_run_ingest_serves_metrics_and_stops_gracefully_on_sigterm(kafka_settings, rtsp_camera, tmp_path):
    server = rtsp_camera()
    metrics_port = free_loopback_port()
    config = tmp_path / "cameras.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "metrics_port": metrics_port,
                "defaults": FAST_DEFAULTS,
                "cameras": [{"id": "cam", "url": server.url}],
            }
        )
    )
    environment = {
        **os.environ,
        "VIGIL_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "VIGIL_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "VIGIL_KAFKA_FRAME_PARTITIONS": str(kafka_settings.frame_partitions),
        "VIGIL_KAFKA_EVENT_PARTITIONS": str(kafka_settings.event_partitions),
    }
    program = (
        "import logging, sys; from pathlib import Path; logging.basicConfig(level=logging.INFO); "
        "from vigil.services.ingest.service import run_ingest; run_ingest(Path(sys.argv[1]), None)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", program, str(config)],
        env=environment,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = TopicReader(kafka_settings)
    try:
        reader.wait_for_frames("cam", 2, timeout_s=20)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            exposition = response.read().decode()
        assert 'vigil_ingest_camera_up{camera="cam"} 1.0' in exposition
        assert 'vigil_ingest_frames_published_total{camera="cam"}' in exposition
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        reader.close()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "ingest stopped" in output
