"""Cameras over the API with real parts: real RTSP cameras (gst-rtsp-server), the real broker,
a real ingest service following the "cameras" topic and a real alerter serving the API.

An admin adds, edits and deletes a camera; ingest applies each change without a restart (the
same service object, the other cameras' readers untouched); credentials never come back in an
answer nor reach a log; the snapshot is the camera's latest frame; a new API over the same
broker lists the same cameras.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests
from alerter_support import RunningApi, api_settings_for
from api_fuzzing import run_schemathesis
from ingest_helpers import TopicReader, wait_for
from PIL import Image
from prometheus_client import CollectorRegistry

from vigil.services.alerter.config import AlerterSettings
from vigil.services.common.auth import ApiToken
from vigil.services.common.kafka import KafkaSettings
from vigil.services.ingest.config import IngestServiceSettings, parse_config
from vigil.services.ingest.service import IngestService

ADMIN, VIEWER = "admin-token-cameras-0123456789", "viewer-token-cameras-0123456789"
PASSWORD = "hunter2-Zq9x"  # must never come back, nor reach a log
FAST = {"resize": {"max_width": 160}, "open_timeout_s": 3, "read_timeout_s": 3, "stall_after_s": 2}
# An added camera publishes its first frame within this (RTSP handshake, first keyframe).
FIRST_FRAME_S = 10.0


@dataclass
class Stack:
    settings: KafkaSettings
    ingest: IngestService
    reader: TopicReader
    api: RunningApi
    http: requests.Session
    base_url: str

    def call(self, method: str, path: str, token: str | None = ADMIN, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, self.base_url + path, headers=headers, timeout=15, **kwargs)


def start_api(settings: KafkaSettings, tmp_path) -> RunningApi:
    """The API service alone: cameras need no alerter."""
    config = AlerterSettings(group_id=f"alerter-cameras-{uuid.uuid4().hex[:8]}")
    api = api_settings_for(
        config,
        tmp_path,
        signing_key="link-signing-key-cameras-0123456789",
        tokens=[
            ApiToken(name="ada", role="admin", token=ADMIN),
            ApiToken(name="vera", role="viewer", token=VIEWER),
        ],
    )
    return RunningApi(api, settings)


@contextmanager
def running_stack(settings: KafkaSettings, yaml_cameras: list[dict], tmp_path) -> Iterator[Stack]:
    config = parse_config({"metrics_port": 0, "defaults": FAST, "cameras": yaml_cameras}, environ={})
    ingest = IngestService(
        IngestServiceSettings(ingest=config, kafka=settings), metrics_registry=CollectorRegistry()
    ).start()
    reader = TopicReader(settings)
    api = start_api(settings, tmp_path)
    try:
        with requests.Session() as http:
            yield Stack(settings, ingest, reader, api, http, api.url)
    finally:
        api.stop()
        ingest.stop()
        reader.close()


@pytest.fixture
def logs(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="vigil")
    caplog.set_level(logging.INFO)
    return caplog


def listed(stack: Stack) -> dict[str, dict]:
    response = stack.call("GET", "/api/v1/cameras", VIEWER)
    assert response.status_code == 200, response.text
    return {camera["camera_id"]: camera for camera in response.json()["cameras"]}


def test_an_admin_adds_edits_and_deletes_a_camera_and_ingest_follows_without_a_restart(
    kafka_settings, rtsp_camera, vtest_media, tmp_path, logs
):
    gate, moved = rtsp_camera("/gate"), rtsp_camera("/gate-moved")
    yaml_cameras = [{"id": "lobby", "url": str(vtest_media), "loop": True, "fps": 2}]
    with running_stack(kafka_settings, yaml_cameras, tmp_path) as stack:
        # The file's camera seeded the topic and is listed; ingest reads it.
        wait_for(lambda: "lobby" in listed(stack), 10, what="the seeded camera listed")
        lobby_reader = stack.ingest.workers["lobby"]

        # Add: credentials in the URL; frames within FIRST_FRAME_S, without restarting ingest.
        url = gate.url.replace("rtsp://", f"rtsp://op:{PASSWORD}@")
        added_at = time.time()
        created = stack.call(
            "POST", "/api/v1/cameras", json={"camera_id": "gate", "name": "Gate", "url": url}
        )
        assert created.status_code == 201, created.text
        camera = created.json()
        assert camera["url"] == gate.url.replace("rtsp://", "rtsp://***@")
        assert (camera["name"], camera["enabled"], camera["updated_by"]) == ("Gate", True, "ada")
        took = stack.reader.wait_for_frames("gate", 2, timeout_s=FIRST_FRAME_S)
        print(
            f"first frames of an added camera after {time.time() - added_at:.1f} s ({took:.1f} s of waiting)"
        )
        wait_for(
            lambda: listed(stack)["gate"]["status"] == "streaming", 10, what="gate streaming in the list"
        )
        assert listed(stack)["gate"]["status_ts_ms"] >= round(added_at * 1000) - 1000

        # The snapshot: its signed link needs no token, and it is a JPEG of the camera.
        snapshot_url = listed(stack)["gate"]["snapshot_url"]
        snapshot = stack.http.get(snapshot_url, timeout=15)
        assert snapshot.status_code == 200, snapshot.text
        assert snapshot.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(snapshot.content)).size == (160, 120)
        assert int(snapshot.headers["x-frame-ts-ms"]) >= round(added_at * 1000)
        assert (
            stack.http.get(snapshot_url.replace("/gate/", "/lobby/"), timeout=15).status_code == 403
        )  # another path
        assert stack.call("GET", "/api/v1/cameras/nowhere/snapshot", VIEWER).status_code == 404

        # Edit: another mount, the credentials kept by sending the URL back masked.
        masked = moved.url.replace("rtsp://", "rtsp://***@")
        edited = stack.call("PUT", "/api/v1/cameras/gate", json={"name": "Gate (moved)", "url": masked})
        assert edited.status_code == 200, edited.text
        assert edited.json()["url"] == masked and edited.json()["name"] == "Gate (moved)"
        wait_for(
            lambda: (
                stack.ingest.workers["gate"].camera.url
                == moved.url.replace("rtsp://", f"rtsp://op:{PASSWORD}@")
            ),
            5,
            what="ingest reading the edited URL",
        )
        edited_ms = round(time.time() * 1000)
        stack.reader.wait_for_frames("gate", 2, timeout_s=FIRST_FRAME_S, after_ts_ms=edited_ms)
        assert stack.ingest.workers["lobby"] is lobby_reader  # the other camera was left alone

        # Delete: frames stop, its status says so, it is no longer listed.
        assert stack.call("DELETE", "/api/v1/cameras/gate").status_code == 204
        wait_for(lambda: "gate" not in stack.ingest.workers, 5, what="ingest stopping the deleted camera")
        stopped_ms = round(time.time() * 1000)
        stack.reader.poll_for(3)
        assert stack.reader.frames_of("gate", after_ts_ms=stopped_ms) == []
        assert stack.reader.frames_of("lobby", after_ts_ms=stopped_ms)  # the others go on
        assert [s.reason for s in stack.reader.statuses if s.camera_id == "gate"][-1] == "camera deleted"
        assert "gate" not in listed(stack)
        assert stack.call("GET", "/api/v1/cameras/gate", VIEWER).status_code == 404
        assert stack.ingest.workers["lobby"] is lobby_reader

    # The password never reached a log line (ingest's, the API's, Kafka's).
    assert PASSWORD not in logs.text
    assert logs.text  # there was something to look at


def test_bad_input_gets_a_4xx_naming_the_field_and_never_quoting_a_password(
    kafka_settings, vtest_media, tmp_path
):
    yaml_cameras = [{"id": "lobby", "url": str(vtest_media), "loop": True}]
    with running_stack(kafka_settings, yaml_cameras, tmp_path) as stack:
        wait_for(lambda: "lobby" in listed(stack), 10, what="the seeded camera listed")
        bad = {
            f"ftp://op:{PASSWORD}@10.0.0.5/s": "scheme 'ftp'",
            f"rtsp://op:{PASSWORD}@:554/s": "needs a host",
            "videos/gate.mp4": "absolute path",
            "rtsp://${VIGIL_KAFKA_SASL_PASSWORD}@evil.example/s": "Vigil's own settings",
            "rtsp://***@10.0.0.5/s": "none to keep",
        }
        for url, says in bad.items():
            answer = stack.call("POST", "/api/v1/cameras", json={"camera_id": "gate", "url": url})
            assert answer.status_code == 422, (url, answer.text)
            (problem,) = answer.json()["detail"]
            assert problem["loc"] == ["body", "url"] and says in problem["msg"], answer.text
            assert PASSWORD not in answer.text
        # A missing url: FastAPI's 422 would quote the whole body, password included; not ours.
        answer = stack.call(
            "POST", "/api/v1/cameras", json={"camera_id": "gate", "username": "op", "password": PASSWORD}
        )
        assert answer.status_code == 422 and PASSWORD not in answer.text
        assert answer.json()["detail"][0]["loc"] == ["body", "url"]
        answer = stack.call(
            "POST",
            "/api/v1/cameras",
            json={"camera_id": "gate", "url": "rtsp://op:x@h/s", "password": PASSWORD},
        )
        assert answer.status_code == 422 and "not both" in answer.text and PASSWORD not in answer.text

        # Separate credential fields go into the URL and are masked like the URL's own.
        created = stack.call(
            "POST",
            "/api/v1/cameras",
            json={"camera_id": "gate", "url": "rtsp://10.0.0.5/s", "username": "op", "password": PASSWORD},
        )
        assert created.status_code == 201 and created.json()["url"] == "rtsp://***@10.0.0.5/s"
        assert PASSWORD not in stack.call("GET", "/api/v1/cameras", VIEWER).text
        assert (
            stack.call("POST", "/api/v1/cameras", json={"camera_id": "gate", "url": "rtsp://h/s"}).status_code
            == 409
        )
        assert stack.call("PUT", "/api/v1/cameras/nowhere", json={"url": "rtsp://h/s"}).status_code == 404

        # A viewer reads but never writes; no token, no answer.
        new = {"camera_id": "dock", "url": "rtsp://h/s"}
        assert stack.call("POST", "/api/v1/cameras", VIEWER, json=new).status_code == 403
        assert (
            stack.call("PUT", "/api/v1/cameras/gate", VIEWER, json={"url": "rtsp://h/s"}).status_code == 403
        )
        assert stack.call("DELETE", "/api/v1/cameras/gate", VIEWER).status_code == 403
        assert stack.call("GET", "/api/v1/cameras", None).status_code == 401
        assert stack.call("GET", "/api/v1/cameras/gate/snapshot", None).status_code == 401


def test_the_cameras_survive_a_restart_and_the_topic_wins_over_the_file(
    kafka_settings, vtest_media, tmp_path
):
    yaml_cameras = [
        {"id": "lobby", "url": str(vtest_media), "loop": True},
        {"id": "yard", "url": str(vtest_media), "loop": True},
    ]
    with running_stack(kafka_settings, yaml_cameras, tmp_path / "first") as stack:
        wait_for(lambda: {"lobby", "yard"} <= set(listed(stack)), 10, what="the seeded cameras listed")
        assert (
            stack.call(
                "POST", "/api/v1/cameras", json={"camera_id": "gate", "url": "rtsp://10.0.0.9/s"}
            ).status_code
            == 201
        )
        assert (
            stack.call(
                "PUT", "/api/v1/cameras/lobby", json={"url": str(vtest_media), "name": "Lobby"}
            ).status_code
            == 200
        )
        assert stack.call("DELETE", "/api/v1/cameras/yard").status_code == 204
        before = listed(stack)

    # The same file again, over the same broker: the API's add, edit and delete stand.
    with running_stack(kafka_settings, yaml_cameras, tmp_path / "second") as stack:
        after = listed(stack)
        assert set(after) == set(before) == {"gate", "lobby"}
        for camera_id in after:
            fields = ("name", "url", "enabled", "updated_by", "updated_ts_ms")
            assert {f: after[camera_id][f] for f in fields} == {f: before[camera_id][f] for f in fields}
        assert after["lobby"]["name"] == "Lobby"
        assert "yard" not in stack.ingest.workers and {"gate", "lobby"} <= set(stack.ingest.workers)


def test_an_admin_fuzzing_the_camera_routes_gets_only_documented_answers(
    kafka_settings, vtest_media, tmp_path
):
    """schemathesis (as tests/alerter/test_api_conformance.py runs it, there without the admin
    role) on the camera routes with an admin token: every write past its 403; no 5xx."""
    yaml_cameras = [{"id": "lobby", "url": str(vtest_media), "loop": True}]
    with running_stack(kafka_settings, yaml_cameras, tmp_path) as stack:
        report = run_schemathesis(
            stack.base_url,
            tmp_path,
            token=ADMIN,
            max_examples=15,
            request_timeout_s=20,
            selection=("--include-path-regex", "^/api/v1/cameras"),
        )
        assert "Tested: 6" in report, report  # the six camera operations
