"""`vigil up` end to end through the real CLI: the tansu broker, `vigil ingest`, `vigil detector`,
`vigil alerter` and `vigil api` as real child processes on real footage, hits and spoken alerts
on stdout, the alerts at the API."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from vigil.fixtures.media import MediaUnavailableError, event_clip
from vigil.services.alerter.speech import SpeechSettings, SpeechSynthesizer
from vigil.services.broker.local import free_loopback_port

VIGIL = str(Path(sys.executable).with_name("vigil"))
# A cat, then a motorcycle; read as fast as it decodes, so the run is as short as the stages'
# start-up (the detector scores the backlog: max_lag_s and latency_budget_s are large).
EVENTS = (("cat", 8.0, 13.0), ("motorcycle", 19.0, 24.0))
LANGUAGES = {"cat": "en", "xe-may": "vi"}
ALERT_LINE = re.compile(
    r"^ALERT \d\d:\d\d:\d\d (?P<severity>\w+)(?:, \w+)*  camera (?P<camera>\S+)  query (?P<query>\S+)  "
    r'\[(?P<language>\w+)\] "(?P<text>.+)"  audio (?P<audio>\S+) \((?P<engine>[\w-]+)\)$'
)


@pytest.fixture(scope="module")
def clip() -> Path:
    try:
        return event_clip(EVENTS, seconds=30)
    except MediaUnavailableError as error:
        pytest.skip(str(error))


def read_lines_until(process: subprocess.Popen, done, timeout_s: float) -> list[str]:
    """stdout lines of `process` until `done(lines)` or `timeout_s` (or the process ends)."""
    lines: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while not done(lines) and time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            continue
        line = process.stdout.readline()
        if not line:
            break  # exited
        lines.append(line.rstrip("\n"))
    return lines


def test_vigil_up_runs_the_alerter_and_prints_spoken_alerts_with_their_audio(kafka_settings, tmp_path, clip):
    speech_dir = tmp_path / "speech"
    run_id = uuid.uuid4().hex[:8]
    api_port = free_loopback_port()
    config = {
        "metrics_port": 0,
        "defaults": {"fps": 2, "resize": {"max_width": 768, "max_height": 576}},
        "cameras": [{"id": "hall", "url": str(clip), "realtime": False}],
        "detector": {
            "metrics_port": 0,
            "max_lag_s": 3600,
            "latency_budget_s": 3600,
            "group_id": f"up-detector-{run_id}",
        },
        "alerter": {
            "metrics_port": 0,
            "group_id": f"up-alerter-{run_id}",
            "cameras": {"hall": "sảnh chính"},
            # espeak-ng only: a test does not reach out to Google.
            "speech": {"cache_dir": str(speech_dir), "engines": ["espeak-ng"]},
        },
        "api": {
            "port": api_port,
            "metrics_port": 0,
            "alerter_group_id": f"up-alerter-{run_id}",
            "token_file": str(tmp_path / "api-token"),
            "signing_key_file": str(tmp_path / "link-key"),
        },
        "queries": [
            {"id": "cat", "text": "a cat"},
            {"id": "xe-may", "text": "một chiếc xe máy", "severity": "critical"},
        ],
    }
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    environment = {
        **os.environ,
        "VIGIL_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "VIGIL_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "VIGIL_KAFKA_EVENT_PARTITIONS": str(kafka_settings.event_partitions),
        "VIGIL_KAFKA_FRAME_PARTITIONS": str(kafka_settings.frame_partitions),
        "VIGIL_MILVUS_URI": str(tmp_path / "milvus"),
        "VIGIL_MILVUS_THUMBNAILS_DIR": str(tmp_path / "thumbnails"),
        "VIGIL_LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [VIGIL, "up", "--config", str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=tmp_path,
    )
    try:

        def both_alerted(lines: list[str]) -> bool:
            return {m["query"] for line in lines if (m := ALERT_LINE.match(line))} >= set(LANGUAGES)

        lines = read_lines_until(process, both_alerted, timeout_s=90)
        alerted_s = time.monotonic() - started
        # The API child serves the alerter's alerts, read back from "alert-state".
        admin = {"Authorization": f"Bearer {(tmp_path / 'api-token').read_text().strip()}"}
        served: list = []
        deadline = time.monotonic() + 30
        while len(served) < len(LANGUAGES) and time.monotonic() < deadline:
            answer = requests.get(
                f"http://127.0.0.1:{api_port}/api/v1/alerts?status=all", headers=admin, timeout=5
            )
            served = answer.json()["alerts"] if answer.status_code == 200 else []
            time.sleep(0.2)
        assert {alert["alert"]["query_id"] for alert in served} >= set(LANGUAGES), served
        process.send_signal(signal.SIGINT)  # as a Ctrl-C: `vigil up` stops its children in order
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines += rest.splitlines()
    print(f"alerts after {alerted_s:.1f} s, stopped after {time.monotonic() - started:.1f} s:")
    print("\n".join(lines))
    assert process.returncode == 0
    assert f"alerts API http://127.0.0.1:{api_port}/docs" in "\n".join(lines), lines
    # The first admin's token: printed once on stdout (the log is stderr), kept in the token file.
    admin_token = (tmp_path / "api-token").read_text().strip()
    assert sum(admin_token in line for line in lines) == 1, lines
    assert any(line.startswith("HIT   camera hall  query cat") for line in lines), lines
    alerts = [m for line in lines if (m := ALERT_LINE.match(line))]
    assert {m["query"] for m in alerts} == set(LANGUAGES), lines
    assert all(ALERT_LINE.match(line) for line in lines if line.startswith("ALERT")), lines  # all with audio
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=speech_dir, engines=["espeak-ng"]))
    for alert in alerts:
        assert alert["camera"] == "hall" and "sảnh chính" in alert["text"]
        assert alert["language"] == LANGUAGES[alert["query"]]
        assert alert["severity"] == ("critical" if alert["query"] == "xe-may" else "warning")
        audio = Path(alert["audio"])
        # The cache names a file by (engine, language, text, voice): this text in this language.
        assert audio == speech.cache_path(alert["text"], alert["language"], "espeak-ng")
        assert alert["engine"] == "espeak-ng"
        assert decoded_seconds(audio) > 1.0, audio


def decoded_seconds(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.sample_rate


def test_the_example_file_is_valid_for_every_service_its_commented_alerter_settings_too(tmp_path):
    from vigil.services.alerter.config import load_alerter_config
    from vigil.services.common.api_settings import ApiSettings
    from vigil.services.detector.config import load_detector_config
    from vigil.services.embedded import load_standing_queries
    from vigil.services.ingest.config import load_config

    example = Path(__file__).resolve().parents[2] / "examples" / "vigil.yaml"
    load_config(example, environ={})
    load_detector_config(example)
    assert [q.query_id for q in load_standing_queries(example)] == ["cat", "xe-may"]
    assert load_alerter_config(example).camera_name("hall") == "sảnh chính"
    assert ApiSettings.load(example).port == 8110
    # Every commented-out setting of the alerter and API sections, switched on, is a real one.
    lines, inside = [], False
    for line in example.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\S", line):
            inside = line.startswith(("alerter:", "api:"))
        lines.append(re.sub(r"^(\s*)# ", r"\1", line) if inside else line)
    uncommented = tmp_path / "vigil.yaml"
    uncommented.write_text("\n".join(lines), encoding="utf-8")
    alerter = load_alerter_config(uncommented)
    assert alerter.policy.escalate_after == 3 and alerter.policy.schedules[0].name == "night"
    assert [webhook.name for webhook in alerter.webhooks] == ["ops-chat"] and alerter.play_locally
    api = ApiSettings.load(uncommented)
    assert [token.name for token in api.tokens] == ["lan", "wall-screen"] and api.acknowledge_timeout_s == 10


def test_the_demo_config_is_valid_and_speaks_offline_into_its_own_folder(tmp_path):
    from vigil.demo import write_demo_config
    from vigil.services.alerter.config import load_alerter_config
    from vigil.services.detector.config import load_detector_config
    from vigil.services.ingest.config import load_config

    path = write_demo_config(tmp_path, "rtsp://127.0.0.1:8554/hall")
    assert [camera.id for camera in load_config(path, environ={}).cameras] == ["hall"]
    load_detector_config(path)
    alerter = load_alerter_config(path)
    assert alerter.speech.cache_dir == tmp_path / "speech" and alerter.speech.engines == ["espeak-ng"]
    assert alerter.metrics_port == 0 and alerter.camera_name("hall") == "sảnh chính"


def test_the_demo_reports_every_alert_without_playable_audio_in_its_language(tmp_path, capsys):
    from vigil.demo import summarise_alerts, write_demo_config
    from vigil.pipelines.phrases import alert_phrase
    from vigil.services.alerter.config import load_alerter_config
    from vigil.services.common.contract import AlertMessage, HitMessage

    config = load_alerter_config(write_demo_config(tmp_path, "rtsp://127.0.0.1:8554/hall"))
    speech = SpeechSynthesizer(config.speech)
    now_ms = int(time.time() * 1000)

    def hit(query_id: str, start_ms: int) -> HitMessage:
        return HitMessage.model_validate(
            {
                "hit_id": f"hall:{query_id}:{start_ms}",
                "camera_id": "hall",
                "query_id": query_id,
                "event_start_ts_ms": start_ms,
                "peak_ts_ms": start_ms,
                "peak_score": 0.9,
                "thumbnail": "hall/x.jpg",
                "encoder": "offline",
            }
        )

    def alert(hit: HitMessage, text: str, language: str, audio: str | None) -> AlertMessage:
        return AlertMessage(
            alert_id=f"alert:{hit.hit_id}",
            hit_id=hit.hit_id,
            camera_id="hall",
            query_id=hit.query_id,
            severity="warning",
            text=text,
            language=language,
            raised_ts_ms=now_ms,
            audio=audio,
            speech_engine="espeak-ng" if audio else None,
        )

    cat_text = alert_phrase("a cat", "sảnh chính", "en", "warning")
    bike_text = alert_phrase("một chiếc xe máy", "sảnh chính", "vi", "critical")
    cat, bike, late_bike = hit("cat", now_ms), hit("xe-may", now_ms + 1), hit("xe-may", now_ms + 2)
    cat_audio = speech.synthesize(cat_text, "en").path.name
    bike_audio = speech.synthesize(bike_text, "vi").path.name
    good = {
        a.alert_id: a
        for a in (alert(cat, cat_text, "en", cat_audio), alert(bike, bike_text, "vi", bike_audio))
    }
    hits = {h.hit_id: h for h in (cat, bike, late_bike)}
    assert summarise_alerts(good, hits, {"cat", "xe-may"}, config) == []
    printed = capsys.readouterr().out
    assert "s of wav pcm_s16le" in printed and str(tmp_path / "speech" / bike_audio) in printed

    (tmp_path / "speech" / cat_audio).write_bytes(b"RIFF....WAVEjunk")  # no longer plays
    bad = {
        "cat": alert(cat, cat_text, "en", cat_audio),
        "bike": alert(bike, bike_text, "en", bike_audio),  # said to be English, spoken in Vietnamese
        "late": alert(late_bike, bike_text, "vi", None),  # went out without audio
    }
    problems = summarise_alerts(bad, hits, {"cat", "xe-may"}, config)
    assert len(problems) == 4, problems
    assert f"audio {cat_audio} does not play" in problems[0]
    assert "is in 'en', its query in 'vi'" in problems[1] and "is not this text in 'en'" in problems[2]
    assert problems[3] == f"alert alert:{late_bike.hit_id} has no audio"
    # A query whose event was found must have raised an alert.
    assert summarise_alerts({}, hits, {"cat"}, config) == ["the cat (cat) was found but raised no alert"]


def test_the_demo_tells_inserted_events_from_false_ones(capsys, monkeypatch, tmp_path):
    from vigil.demo import summarise

    monkeypatch.setenv("VIGIL_MILVUS_THUMBNAILS_DIR", str(tmp_path))  # where run_demo keeps them
    from vigil.fixtures.media import DEMO_EVENTS
    from vigil.services.common.contract import HitMessage

    start_s = 1_700_000_000.0
    spans = {name: (begin, end) for name, begin, end in DEMO_EVENTS}

    def hit(query_id: str, at_s: float) -> HitMessage:
        ms = round((start_s + at_s) * 1000)
        return HitMessage.model_validate(
            {
                "hit_id": f"hall:{query_id}:{ms}",
                "camera_id": "hall",
                "query_id": query_id,
                "event_start_ts_ms": ms,
                "peak_ts_ms": ms,
                "peak_score": 0.9,
                "thumbnail": "hall/x.jpg",
                "encoder": "offline",
            }
        )

    cat = hit("cat", spans["cat"][0] + 0.5)
    bike_on_the_cat = hit("xe-may", spans["cat"][0] + 0.5)  # the demo's old false alert
    found, false_hits = summarise({h.hit_id: h for h in (cat, bike_on_the_cat)}, start_s)
    assert found == {"cat"} and false_hits == [bike_on_the_cat.hit_id]
    assert "NOT an inserted event" in capsys.readouterr().out


def test_vigil_up_refuses_to_start_on_a_nearly_full_disk_and_starts_nothing(tmp_path):
    from vigil.services.common.kafka import broker_reachable

    port = free_loopback_port()
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("VIGIL_KAFKA_")},
        "VIGIL_HOME": str(tmp_path),
        "VIGIL_KAFKA_LOCAL_PORT": str(port),
        "VIGIL_MIN_FREE_DISK_MIB": str(2**40),  # more than any disk has free
    }
    repo = Path(__file__).resolve().parents[2]
    finished = subprocess.run(
        [VIGIL, "up", "--config", str(repo / "examples" / "vigil.yaml")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert "nearly full" in finished.stderr and str(tmp_path) in finished.stderr, finished.stderr
    assert "VIGIL_MIN_FREE_DISK_MIB" in finished.stderr
    assert not broker_reachable(f"127.0.0.1:{port}", timeout_s=0.5)  # no broker was started
    assert not (tmp_path / "broker").exists()


def test_the_demo_prints_the_admin_token_the_api_will_accept(tmp_path):
    from vigil.demo import demo_admin_token
    from vigil.services.common.api_settings import ApiSettings
    from vigil.services.common.auth import ApiToken, load_or_create_secret

    api = ApiSettings(port=8110, token_file=tmp_path / "api-token")
    token = demo_admin_token(api)
    # The API, started after, reads the same file (services/api/service.py, open_token_authority).
    assert token == load_or_create_secret(api.token_file, "alerter API admin token")
    assert (api.token_file.stat().st_mode & 0o777) == 0o600
    assert demo_admin_token(api) == token  # a second demo reuses it
    assert "console http://127.0.0.1:8110/console/" in api.describe()
    configured = [ApiToken(name="ada", role="admin", token="a-configured-admin-token-0123")]
    assert demo_admin_token(ApiSettings(port=8110, tokens=configured)) is None
