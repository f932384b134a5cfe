"""Real bad camera sources for the ingest tests: 50 MP streams, garbage, and a live TCP source.

Every file is made here with PyAV (libx264, FFmpeg's MJPEG encoder and muxers) or is real
footage with its bytes damaged, so the reader meets what FFmpeg would meet from a camera.
`TcpSource` streams a file over a real TCP socket (tcp://, a live source for ingest, as an
encoder pushing MPEG-TS would) and can be switched to another file while it serves.
"""

from __future__ import annotations

import socket
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HUGE = (8660, 5774)  # 50 MP, a 50 MP camera's full-resolution stream


def grey_frame(width: int, height: int, pix_fmt: str = "yuv420p") -> av.VideoFrame:
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane in frame.planes:
        plane.update(bytes([128]) * plane.buffer_size)
    return frame


def _packets(codec: str, width: int, height: int, frames: int, options: dict[str, str], pix_fmt: str):
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, 10)
    context.options = options
    frame = grey_frame(width, height, pix_fmt)
    packets = []
    for index in range(frames):
        frame.pts = index
        packets += context.encode(frame)
    return packets + context.encode(None)


def huge_h264_mp4(path: Path, frames: int = 2) -> Path:
    """An H.264 MP4 of 8660x5774 frames: its size is in the file's header."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = *HUGE, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = grey_frame(*HUGE)
        for index in range(frames):
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def huge_mjpeg_mkv(path: Path, frames: int = 2) -> Path:
    """Motion JPEG of 8660x5774 frames in Matroska (FFmpeg's probe cannot size it under the bound,
    so only the decoder itself can refuse it)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = *HUGE, "yuvj420p"
        frame = grey_frame(*HUGE, "yuvj420p")
        for index in range(frames):
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def growing_ts(path: Path) -> Path:
    """MPEG-TS H.264: 2 s of 320x240 (a keyframe every 1 s), then a 50 MP keyframe, then 320x240
    again: a camera that switches to its full resolution mid-stream."""
    small = _packets("libx264", 320, 240, 20, {"preset": "ultrafast", "g": "10"}, "yuv420p")
    huge = _packets("libx264", *HUGE, 1, {"preset": "ultrafast"}, "yuv420p")
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("h264", rate=10)
        stream.width, stream.height = 320, 240
        for index, packet in enumerate(small + huge + small):
            packet.pts = packet.dts = index
            packet.time_base = Fraction(1, 10)
            packet.stream = stream
            out.mux(packet)
    return path


def random_bytes(path: Path, size: int = 1_000_000) -> Path:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def damaged_copy(source: Path, target: Path, start: float = 0.0, end: float = 1.0) -> Path:
    """`source` (an MP4) with the bytes of its media data between fractions `start` and `end`
    replaced by random ones, its header and index intact: a damaged recording."""
    data = bytearray(source.read_bytes())
    at = data.find(b"mdat")
    assert at > 0, f"{source} has no mdat box"
    size = int.from_bytes(data[at - 4 : at], "big")
    body_start, body_end = at + 4, at - 4 + size
    first = body_start + int((body_end - body_start) * start)
    last = body_start + int((body_end - body_start) * end)
    data[first:last] = np.random.default_rng(2).integers(0, 256, last - first, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def as_ts(source: Path, target: Path, garbage: bool = False) -> Path:
    """`source`'s H.264 stream remuxed to MPEG-TS; `garbage`: every packet's data replaced by
    random bytes behind an IDR start code (so the demuxer still sees H.264 access units)."""
    rng = np.random.default_rng(3)
    with av.open(str(source)) as reader, av.open(str(target), "w", format="mpegts") as out:
        video = reader.streams.video[0]
        if not garbage:
            stream = out.add_stream_from_template(video)
        else:
            stream = out.add_stream("h264", rate=10)
            stream.width, stream.height = video.width, video.height
        for packet in reader.demux(video):
            if packet.size == 0:
                continue
            if garbage:
                body = b"\x00\x00\x00\x01\x65" + rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes()
                replaced = av.Packet(body)
                replaced.pts, replaced.dts, replaced.time_base = packet.pts, packet.dts, packet.time_base
                replaced.is_keyframe = packet.is_keyframe
                packet = replaced
            packet.stream = stream
            out.mux(packet)
    return target


class TcpSource:
    """Serves `path`'s bytes to each client of a loopback TCP port, again and again, at
    `bytes_per_s`; `path` may be changed while it serves (the next chunk comes from the new file)."""

    def __init__(self, path: Path, bytes_per_s: int = 400_000, chunk: int = 188 * 40) -> None:
        self.path = path
        self.bytes_per_s = bytes_per_s
        self.chunk = chunk
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            served, offset = self.path, 0
            data = served.read_bytes()
            while not self._stop.is_set():
                if self.path != served:
                    served, offset = self.path, 0
                    data = served.read_bytes()
                piece = data[offset : offset + self.chunk]
                offset += self.chunk
                if offset >= len(data):  # the file again from its start (chunks keep TS packets whole)
                    offset = 0
                try:
                    client.sendall(piece)
                except OSError:  # the camera hung up (ingest gave up on it, or stopped)
                    return
                time.sleep(len(piece) / self.bytes_per_s)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()
