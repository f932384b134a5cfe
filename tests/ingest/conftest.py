"""Fixtures for the ingest tests: real video and real RTSP cameras (see ingest_helpers for the rest).

RTSP cameras are vigil/fixtures/rtsp_server.py (gst-rtsp-server, see vigil/fixtures/rtsp.py) run by
the system python3, which has the GStreamer bindings; Debian packages python3-gi
gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,ugly} gstreamer1.0-libav (`make setup`
installs them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from vigil.fixtures.media import h264_clip, vtest_avi  # noqa: E402
from vigil.fixtures.rtsp import RtspCamera  # noqa: E402
from vigil.services.broker.local import free_loopback_port  # noqa: E402


@pytest.fixture(scope="session")
def vtest_media() -> Path:
    """OpenCV's vtest.avi (real pedestrians, 768x576, 10 frames/s, 79.5 s)."""
    return vtest_avi()


@pytest.fixture(scope="session")
def h264_gop1_clip(vtest_media) -> Path:
    """20 s of vtest as a camera sends it: H.264 320x240, 10 frames/s, a keyframe every 1 s."""
    return h264_clip(320, 240, fps=10, gop_s=1.0, seconds=20)


@pytest.fixture
def rtsp_camera(vtest_media) -> Iterator[Callable[..., RtspCamera]]:
    """Factory: rtsp_camera(mount="/cam", **options) starts a camera on a free port."""
    cameras: list[RtspCamera] = []

    def start(mount: str = "/cam", **options) -> RtspCamera:
        camera = RtspCamera(media=vtest_media, port=free_loopback_port(), mount=mount, **options)
        cameras.append(camera)
        return camera.start()

    yield start
    for camera in cameras:
        camera.stop()
