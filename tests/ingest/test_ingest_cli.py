"""`vigil ingest --config cameras.yaml` as an operator runs it: a real RTSP camera, the real
broker, the console script in a subprocess, credentials from the environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ingest_helpers import TopicReader

VIGIL = str(Path(sys.executable).with_name("vigil"))


def test_vigil_ingest_streams_a_real_rtsp_camera_into_the_broker(rtsp_camera, kafka_settings, tmp_path):
    camera = rtsp_camera("/gate")
    # The camera accepts any credentials; they must reach the URL and never the output.
    url = camera.url.replace("rtsp://", "rtsp://${GATE_USER}:${GATE_PASSWORD}@")
    config = tmp_path / "cameras.yaml"
    config.write_text(f'metrics_port: 0\ncameras:\n  - id: gate\n    url: "{url}"\n    fps: 2\n')
    env = {
        **os.environ,
        "VIGIL_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "VIGIL_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "VIGIL_KAFKA_FRAME_PARTITIONS": str(kafka_settings.frame_partitions),
        "VIGIL_KAFKA_EVENT_PARTITIONS": str(kafka_settings.event_partitions),
        "GATE_USER": "operator",
        "GATE_PASSWORD": "s3cret-Pa55",
    }
    process = subprocess.Popen(
        [VIGIL, "ingest", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = TopicReader(kafka_settings)
    try:
        reader.wait_for_frames("gate", 4, timeout_s=30)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        reader.close()
    frames = reader.frames_of("gate")
    assert process.returncode == 0, output
    assert all(frame.jpeg[:2] == b"\xff\xd8" for frame in frames)  # JPEG start-of-image
    times = [frame.headers.ts_ms for frame in frames]
    assert times == sorted(times)
    assert "s3cret-Pa55" not in output and "operator" not in output
    # Service logs are JSON lines carrying the camera's id and state as fields.
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert {"camera_id": "gate", "state": "streaming"}.items() <= next(
        r for r in records if r.get("state") == "streaming"
    ).items()
