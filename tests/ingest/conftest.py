"""Fixtures for the ingest tests: real video and real RTSP cameras (see ingest_helpers for the rest).

RTSP cameras are tests/ingest/rtsp_server.py (gst-rtsp-server) run by the system python3,
which has the GStreamer bindings; Debian packages python3-gi gir1.2-gst-rtsp-server-1.0
gstreamer1.0-plugins-{base,good,ugly} gstreamer1.0-libav (`make setup` installs them).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from vigil.media import h264_clip, vtest_avi  # noqa: E402
from vigil.services.broker.local import free_loopback_port  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER_SCRIPT = Path(__file__).parent / "rtsp_server.py"


@pytest.fixture(scope="session")
def vtest_media() -> Path:
    """OpenCV's vtest.avi (real pedestrians, 768x576, 10 frames/s, 79.5 s)."""
    return vtest_avi()


@pytest.fixture(scope="session")
def h264_gop1_clip(vtest_media) -> Path:
    """20 s of vtest as a camera sends it: H.264 320x240, 10 frames/s, a keyframe every 1 s."""
    return h264_clip(320, 240, fps=10, gop_s=1.0, seconds=20)


@dataclass
class RtspCamera:
    """A real RTSP camera (gst-rtsp-server in a subprocess) on a loopback port.

    start() returns once the server accepts clients; kill() is a crash (SIGKILL), freeze()
    and thaw() stop and resume the process (SIGSTOP/SIGCONT), as a hung camera would.
    """

    media: Path
    port: int
    mount: str = "/cam"
    width: int = 320
    height: int = 240
    fps: int = 10
    gop_s: float = 1.0
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self, timeout_s: float = 15.0) -> RtspCamera:
        command = [
            SYSTEM_PYTHON,
            str(RTSP_SERVER_SCRIPT),
            f"--media={self.media}",
            f"--port={self.port}",
            f"--mount={self.mount}",
            f"--width={self.width}",
            f"--height={self.height}",
            f"--fps={self.fps}",
            f"--gop-s={self.gop_s}",
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        seen: list[str] = []
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                seen.append(line)
                if line.startswith("READY"):
                    return self
        output = "".join(seen) + (self.process.stdout.read() if self.process.poll() is not None else "")
        self.kill()
        raise RuntimeError(
            f"RTSP server on port {self.port} did not start (needs {SYSTEM_PYTHON} with gi and "
            f"gst-rtsp-server: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
            f"gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly "
            f"gstreamer1.0-libav):\n{output}"
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a frozen process must run to die cleanly
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


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
