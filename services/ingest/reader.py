"""Read one camera connection with PyAV: open with timeouts, demux, decode, time-stamp, encode.

Capture time is the wall clock when a live stream's packet arrived (the camera's own clock
is not trusted), and for a file the frame's presentation time mapped onto the wall clock at
the moment the file started (paced in real time when `realtime`).

Every network wait is bounded: FFmpeg's socket `timeout` and PyAV's open/read timeouts (an
interrupt callback) together make a camera that accepts a connection and never sends fail
with an error instead of hanging the thread for good (PyAV #584).
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import av.error

from vigil.pipelines.sampling import KeyframeOnlyPolicy
from vigil.services.common.contract import MAX_FRAME_PIXELS
from vigil.services.ingest.config import CameraConfig, ResizeConfig
from vigil.services.ingest.metrics import IngestMetrics

# Stream probing reads this much before the first frame is handed out; RTSP cameras describe
# their stream in the SDP, so a short probe is enough and keeps the open fast (~0.1 s vs ~1 s).
_LIVE_PROBE_OPTIONS = {"probesize": "500000", "analyzeduration": "200000"}
# A realtime file sleeps in slices no longer than this, so a stop request and the stall
# watchdog are never kept waiting by a long pause between frames.
_PACING_SLICE_S = 0.25
# A stream that never flags a keyframe (some cameras' recovery-point streams) is decoded from
# wherever it is after this many packets rather than never: a few grey frames beat none.
_PACKETS_BEFORE_GIVING_UP_ON_KEYFRAMES = 250


class CameraSourceError(Exception):
    """The source opened but cannot be used (e.g. it has no video stream)."""


@dataclass(frozen=True)
class DecodedFrame:
    frame: av.VideoFrame
    capture_time: float  # seconds since the Unix epoch


@dataclass(frozen=True)
class EncodedFrame:
    """A sampled frame ready to publish."""

    camera_id: str
    capture_time: float
    jpeg: bytes
    width: int
    height: int

    @property
    def ts_ms(self) -> int:
        return round(self.capture_time * 1000)


def ffmpeg_options(camera: CameraConfig) -> dict[str, str]:
    """Demuxer options for the camera: transport and timeouts for live sources, plus the
    camera's own `ffmpeg_options`, which win."""
    options: dict[str, str] = {}
    if camera.is_live:
        options.update(_LIVE_PROBE_OPTIONS)
        options["timeout"] = str(round(camera.read_timeout_s * 1_000_000))  # microseconds
        if camera.url.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = camera.transport
            options["allowed_media_types"] = "video"  # no audio RTP session to set up and drain
    options.update(camera.ffmpeg_options)
    return options


def open_source(camera: CameraConfig) -> av.container.InputContainer:
    """Open the camera's URL or file; raises av.error.FFmpegError / OSError on failure."""
    container = av.open(
        camera.url,
        options=ffmpeg_options(camera),
        timeout=(camera.open_timeout_s, camera.read_timeout_s),
    )
    if not container.streams.video:
        container.close()
        raise CameraSourceError("the source has no video stream")
    return container


class FrameReader:
    """Decoded frames of one open connection, with their capture times.

    wanted(capture_time) tells the reader, in keyframe-only mode, whether a keyframe is worth
    decoding at all (the sampler's peek); in full mode every frame is decoded, because later
    frames depend on it. `last_activity` (time.monotonic) is updated while the source
    delivers, for stall detection by another thread.
    """

    def __init__(
        self,
        camera: CameraConfig,
        container: av.container.InputContainer,
        keyframes: KeyframeOnlyPolicy,
        wanted: Callable[[float], bool],
        stop: threading.Event,
        metrics: IngestMetrics | None = None,
        not_before: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.camera = camera
        self.container = container
        self.stream = container.streams.video[0]
        self.keyframes = keyframes
        self.wanted = wanted
        self.stop = stop
        self.metrics = metrics
        self.clock = clock
        self.live = camera.is_live
        self.paced = not self.live and camera.realtime
        self.last_activity = time.monotonic()
        self.last_capture_time: float | None = None
        self.packets = 0
        self.decoded = 0
        # Files: wall time at which stream time `_stream_anchor` is shown; `not_before` (the
        # last capture time of the previous pass) keeps a looped file's clock going forwards.
        self._not_before = not_before
        self._wall_anchor: float | None = None
        self._stream_anchor: float | None = None
        # After a skipped packet the decoder may only resume at a keyframe.
        self._synced = False
        self._keyframe_seen = False
        context = self.stream.codec_context
        context.thread_count = camera.decoder_threads
        if camera.decoder_threads != 1:
            context.thread_type = "AUTO"
        if camera.decoder_options:
            context.options = dict(camera.decoder_options)  # applied when the decoder opens

    def frames(self) -> Iterator[DecodedFrame]:
        """Frames until the source ends (returns) or fails (raises av.error.FFmpegError)."""
        time_base = self.stream.time_base
        for packet in self.container.demux(self.stream):
            if self.stop.is_set():
                return
            received = self.clock()
            self.last_activity = time.monotonic()
            flushing = packet.size == 0  # the demuxer's last packet: drain the decoder
            stream_time = float(packet.pts * time_base) if packet.pts is not None and time_base else None
            if not flushing:
                self.packets += 1
                if packet.is_keyframe:
                    self._keyframe_seen = True
                    if stream_time is not None:
                        self.keyframes.observe_keyframe(stream_time)
                elif not self._keyframe_seen and self.packets > _PACKETS_BEFORE_GIVING_UP_ON_KEYFRAMES:
                    self._synced = True
                if not self._should_decode(packet.is_keyframe, received, stream_time):
                    self._synced = False
                    continue
            elif not self._synced:
                continue
            started = time.perf_counter()
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                self._synced = False  # a corrupt packet: wait for the next keyframe
                continue
            if self.metrics is not None:
                self.metrics.decode_seconds.observe(time.perf_counter() - started)
            if packet.is_keyframe:
                self._synced = True
            for frame in decoded:
                self.decoded += 1
                capture_time = received if self.live else self._file_capture_time(frame.time, received)
                if self.paced:
                    self._sleep_until(capture_time)
                    if self.stop.is_set():
                        return
                self.last_capture_time = capture_time
                yield DecodedFrame(frame, capture_time)

    def _should_decode(self, is_keyframe: bool, received: float, stream_time: float | None) -> bool:
        if self.keyframes.keyframes_only:
            if not is_keyframe:
                return False
            estimate = received if self.live else self._file_capture_time(stream_time, received)
            return self.wanted(estimate)
        return is_keyframe or self._synced

    def _file_capture_time(self, stream_time: float | None, received: float) -> float:
        if stream_time is None:
            return received
        if self._wall_anchor is None or self._stream_anchor is None:
            start = received
            if self._not_before is not None:  # one frame after where the last pass ended
                rate = self.stream.average_rate
                start = max(start, self._not_before + (1 / float(rate) if rate else 0.001))
            self._wall_anchor, self._stream_anchor = start, stream_time
        return self._wall_anchor + (stream_time - self._stream_anchor)

    def _sleep_until(self, wall_time: float) -> None:
        while not self.stop.is_set():
            remaining = wall_time - self.clock()
            if remaining <= 0:
                return
            self.stop.wait(min(remaining, _PACING_SLICE_S))
            self.last_activity = time.monotonic()  # pausing on purpose is not a stall


def encode_jpeg(frame: av.VideoFrame, resize: ResizeConfig | None, quality: int) -> tuple[bytes, int, int]:
    """Resize (never enlarge) then JPEG-encode; returns (jpeg, width, height). Whatever the
    config, a frame over MAX_FRAME_PIXELS is scaled down to fit (aspect kept): a camera that
    sends a 50 MP frame costs a bounded JPEG, and the detector would refuse a larger one."""
    width, height = resize.target_size(frame.width, frame.height) if resize else (frame.width, frame.height)
    if width * height > MAX_FRAME_PIXELS:
        scale = math.sqrt(MAX_FRAME_PIXELS / (width * height))
        width, height = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    buffer = io.BytesIO()
    rgb.to_image().save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue(), width, height
