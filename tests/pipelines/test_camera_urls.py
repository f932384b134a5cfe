"""Camera URLs: which ingest reads, how they are shown, and masks sent back keeping the secrets."""

from __future__ import annotations

import pytest

from vigil.pipelines.camera_urls import camera_url_problem, mask_url, unmask_url


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://10.0.0.5:554/stream1",
        "rtsps://user:p%40ss@cam.example/live",
        "http://cam/mjpeg",
        "https://cam/hls.m3u8",
        "srt://cam:9000",
        "/videos/gate.mp4",
        "file:///videos/gate.mp4",
        "rtsp://${CAM_USER}:${CAM_PASSWORD}@10.0.0.5/s",
    ],
)
def test_sources_ingest_reads_are_accepted(url):
    assert camera_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://secret-user:hunter2@h/x", "scheme 'ftp' is not one ingest reads"),
        ("rtsp:///stream", "needs a host"),
        ("rtsp://h:99999/s", "port"),
        ("videos/gate.mp4", "absolute path"),
        ("file://nas/videos/gate.mp4", "names no host"),
        ("rtsp://h/a b", "spaces"),
        ("rtsp://${BROKEN@h/s", "malformed ${NAME}"),
        ("rtsp://[::1/s", "not a well-formed URL"),
    ],
)
def test_a_bad_url_is_refused_naming_the_problem_but_quoting_none_of_it(url, says):
    problem = camera_url_problem(url)
    assert problem is not None and says in problem
    assert "hunter2" not in problem and "secret-user" not in problem


def test_the_mask_hides_user_info_and_credential_query_values():
    masked = mask_url("rtsp://admin:hunter2@10.0.0.5:554/s?channel=1&password=hunter3&Token=t0k3n")
    assert masked == "rtsp://***@10.0.0.5:554/s?channel=1&password=***&Token=***"


def test_a_masked_url_sent_back_keeps_the_stored_secrets():
    stored = "rtsp://admin:hunter2@10.0.0.5/s?token=t0k3n&channel=1"
    assert unmask_url(mask_url(stored), stored) == (stored, None)
    # Another path, the same credentials.
    assert unmask_url("rtsp://***@10.0.0.5/other?token=***", stored) == (
        "rtsp://admin:hunter2@10.0.0.5/other?token=t0k3n",
        None,
    )
    _, problem = unmask_url("rtsp://***@10.0.0.5/s", None)
    assert problem is not None and "none to keep" in problem
