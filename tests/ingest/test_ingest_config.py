"""Cameras YAML: defaults and per-camera overrides, credentials from the environment, errors
that name the file, the camera and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.services.ingest.config import IngestConfigError, ResizeSettings, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    return path


def test_cameras_inherit_defaults_and_override_them(tmp_path):
    path = write(
        tmp_path,
        """
defaults:
  fps: 2
  jpeg_quality: 70
  resize: {max_width: 640, max_height: 480}
  ffmpeg_options: {probesize: "100000"}
  reconnect: {max_delay_s: 3}
cameras:
  - id: lobby
    url: rtsp://10.0.0.5/stream1
  - id: dock
    url: rtsp://10.0.0.6/stream1
    fps: 0.5
    resize: {shorter_side: 224}
    ffmpeg_options: {analyzeduration: "0"}
    reconnect: {initial_delay_s: 1}
""",
    )
    lobby, dock = load_config(path, environ={}).cameras
    assert (lobby.fps, lobby.jpeg_quality, lobby.resize.max_width) == (2, 70, 640)
    assert (dock.fps, dock.jpeg_quality) == (0.5, 70)
    assert dock.resize == ResizeSettings(shorter_side=224)  # a resize replaces the default's whole
    assert dock.ffmpeg_options == {"probesize": "100000", "analyzeduration": "0"}  # merged key by key
    assert (dock.reconnect.initial_delay_s, dock.reconnect.max_delay_s) == (1, 3)
    assert lobby.transport == "tcp" and lobby.keyframes_only == "auto" and lobby.enabled


def test_credentials_come_from_the_environment_and_are_redacted_for_display(tmp_path):
    path = write(
        tmp_path,
        """
cameras:
  - id: lobby
    url: "rtsp://${CAM_USER}:${CAM_PASSWORD}@10.0.0.5:554/stream1?token=${CAM_TOKEN}"
""",
    )
    environ = {"CAM_USER": "operator", "CAM_PASSWORD": "hunter2-secret", "CAM_TOKEN": "tok-98765"}
    (camera,) = load_config(path, environ=environ).cameras
    assert camera.url == "rtsp://operator:hunter2-secret@10.0.0.5:554/stream1?token=tok-98765"
    assert camera.redacted_url == "rtsp://***@10.0.0.5:554/stream1?token=${CAM_TOKEN}"
    for secret in environ.values():
        assert secret not in camera.redacted_url
        assert secret not in repr(camera)
    error_text = f"[Errno 111] Connection refused: '{camera.url}' (auth operator:hunter2-secret)"
    redacted = camera.redact(error_text)
    assert all(secret not in redacted for secret in environ.values())
    assert "rtsp://***@10.0.0.5:554/stream1" in redacted


def test_literal_credentials_in_the_file_are_redacted_too(tmp_path):
    path = write(tmp_path, "cameras:\n  - id: a\n    url: rtsp://admin:pass1234@10.0.0.5/s\n")
    (camera,) = load_config(path, environ={}).cameras
    assert camera.redacted_url == "rtsp://***@10.0.0.5/s"
    assert "pass1234" not in camera.redact("failed: admin:pass1234")


def test_missing_environment_variable_names_file_camera_field_and_variable(tmp_path):
    path = write(tmp_path, 'cameras:\n  - id: lobby\n    url: "rtsp://${CAM_USER}:${NOT_SET_ANYWHERE}@h/s"\n')
    with pytest.raises(IngestConfigError) as raised:
        load_config(path, environ={"CAM_USER": "operator"})
    message = str(raised.value)
    assert str(path) in message and "camera 'lobby'" in message and "url" in message
    assert "NOT_SET_ANYWHERE" in message and "operator" not in message


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("fps: -1", "fps"),
        ("transport: http", "transport"),
        ("keyframes_only: sometimes", "keyframes_only"),
        ("jpeg_quality: 101", "jpeg_quality"),
        ("fsp: 2", "fsp"),  # a typo is an error, not a silently ignored key
        ("resize: {max_width: 640, shorter_side: 224}", "resize"),
        ("reconnect: {max_delay_s: 1, jitter_s: 2}", "reconnect"),
    ],
)
def test_invalid_camera_field_is_named_with_file_and_camera(tmp_path, entry, field):
    path = write(tmp_path, f"cameras:\n  - id: dock\n    url: rtsp://h/s\n    {entry}\n")
    with pytest.raises(IngestConfigError) as raised:
        load_config(path, environ={})
    message = str(raised.value)
    assert message.startswith(f"{path}: camera 'dock': {field}"), message


def test_invalid_default_is_named_as_a_default(tmp_path):
    path = write(tmp_path, "defaults:\n  fps: 0\ncameras:\n  - id: a\n    url: rtsp://h/s\n")
    with pytest.raises(IngestConfigError, match=r"cameras.yaml: defaults: fps"):
        load_config(path, environ={})


def test_camera_without_url_is_named_by_its_id(tmp_path):
    path = write(tmp_path, "cameras:\n  - id: dock\n")
    with pytest.raises(IngestConfigError, match=r"camera 'dock': url: Field required"):
        load_config(path, environ={})


def test_bad_camera_id_is_rejected(tmp_path):
    path = write(tmp_path, "cameras:\n  - id: 'front door'\n    url: rtsp://h/s\n")
    with pytest.raises(IngestConfigError, match=r"camera 'front door': id"):
        load_config(path, environ={})


def test_duplicate_camera_ids_are_rejected(tmp_path):
    path = write(tmp_path, "cameras:\n  - {id: a, url: 'rtsp://h/1'}\n  - {id: a, url: 'rtsp://h/2'}\n")
    with pytest.raises(IngestConfigError, match=r"camera 'a': id: used by more than one camera"):
        load_config(path, environ={})


def test_no_cameras_is_an_error(tmp_path):
    with pytest.raises(IngestConfigError, match=r"cameras: expected a non-empty list"):
        load_config(write(tmp_path, "cameras: []\n"), environ={})


def test_unreadable_and_malformed_files_are_named(tmp_path):
    with pytest.raises(IngestConfigError, match=r"cannot read cameras file .*missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(IngestConfigError, match=r"cameras.yaml: not valid YAML"):
        load_config(write(tmp_path, "cameras: [\n"))


def test_file_sources_are_relative_to_the_yaml_folder(tmp_path):
    path = write(
        tmp_path, "cameras:\n  - {id: rec, url: clips/parking.mp4}\n  - {id: abs, url: /data/x.mp4}\n"
    )
    relative, absolute = load_config(path, environ={}).cameras
    assert relative.url == str(tmp_path / "clips" / "parking.mp4")
    assert absolute.url == "/data/x.mp4"
    assert not relative.is_live


def test_the_other_services_sections_of_a_vigil_up_file_are_left_to_them(tmp_path):
    path = write(
        tmp_path,
        "cameras:\n  - {id: hall, url: 'rtsp://h/1'}\n"
        "detector: {max_lag_s: 5}\n"
        "alerter: {cameras: {hall: 'sảnh chính'}, policy: {cooldown_s: 30}}\n"
        "queries:\n  - {id: cat, text: a cat}\n",
    )
    assert [camera.id for camera in load_config(path, environ={}).cameras] == ["hall"]
    with pytest.raises(IngestConfigError, match=r"unknown top-level key\(s\) 'alerters'"):
        load_config(write(tmp_path, "cameras:\n  - {id: hall, url: 'rtsp://h/1'}\nalerters: {}\n"))


def test_the_example_vigil_up_file_loads():
    config = load_config(REPO_ROOT / "examples" / "vigil.yaml", environ={})
    assert [camera.id for camera in config.cameras] == ["hall"]


def test_disabled_cameras_are_kept_but_not_enabled(tmp_path):
    path = write(
        tmp_path, "cameras:\n  - {id: a, url: 'rtsp://h/1'}\n  - {id: b, url: 'rtsp://h/2', enabled: false}\n"
    )
    config = load_config(path, environ={})
    assert [c.id for c in config.cameras] == ["a", "b"]
    assert [c.id for c in config.enabled_cameras] == ["a"]


@pytest.mark.parametrize(
    ("resize", "size", "expected"),
    [
        (ResizeSettings(max_width=640, max_height=480), (1920, 1080), (640, 360)),
        (ResizeSettings(max_width=640, max_height=480), (320, 240), (320, 240)),  # never enlarged
        (ResizeSettings(max_height=480), (1280, 960), (640, 480)),
        (ResizeSettings(shorter_side=224), (1280, 720), (398, 224)),
        (ResizeSettings(shorter_side=224), (576, 768), (224, 299)),
    ],
)
def test_resize_keeps_the_aspect_ratio(resize, size, expected):
    assert resize.target_size(*size) == expected


def test_the_example_cameras_file_loads(monkeypatch):
    for name in ("LOBBY_USER", "LOBBY_PASSWORD", "DOCK_USER", "DOCK_PASSWORD"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    config = load_config(REPO_ROOT / "examples" / "cameras.yaml")
    assert len(config.cameras) >= 2
    assert all("value-of" not in camera.redacted_url for camera in config.cameras)
