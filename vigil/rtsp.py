"""A real RTSP camera on a loopback port: gst-rtsp-server (vigil/rtsp_server.py) in a subprocess.

It runs under the system interpreter, which has the GStreamer bindings (`gi`); Debian packages
python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,ugly} gstreamer1.0-libav
(`make setup` installs them). The tests, `vigil demo` and the benchmarks serve real footage
through it, so ingest reads RTSP exactly as it would from an IP camera.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")


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
    loop: bool = False
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
            *(["--loop"] if self.loop else []),
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
