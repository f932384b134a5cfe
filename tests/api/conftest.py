"""Fixtures of the API tests: real RTSP cameras (gst-rtsp-server; see tests/ingest/conftest.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The alerter's and ingest's test helpers (a running alerter, a topic reader, wait_for).
sys.path.insert(0, str(Path(__file__).parents[1] / "alerter"))
sys.path.insert(0, str(Path(__file__).parents[1] / "ingest"))

from vigil.fixtures.media import vtest_avi  # noqa: E402
from vigil.fixtures.rtsp import RtspCamera  # noqa: E402
from vigil.services.broker.local import free_loopback_port  # noqa: E402


@pytest.fixture(scope="session")
def vtest_media() -> Path:
    return vtest_avi()


@pytest.fixture
def rtsp_camera(vtest_media) -> Iterator[Callable[..., RtspCamera]]:
    """Factory: rtsp_camera(mount="/cam") starts a looping camera on a free port."""
    cameras: list[RtspCamera] = []

    def start(mount: str = "/cam") -> RtspCamera:
        camera = RtspCamera(media=vtest_media, port=free_loopback_port(), mount=mount, loop=True)
        cameras.append(camera)
        return camera.start()

    yield start
    for camera in cameras:
        camera.stop()
