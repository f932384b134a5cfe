"""Read one camera connection with PyAV: open with timeouts, demux, decode, time-stamp, encode.

Capture time is the wall clock when a live stream's packet arrived (the camera's own clock
is not trusted), and for a file the frame's presentation time mapped onto the wall clock at
the moment the file started (paced in real time when `realtime`).

Every network wait is bounded: FFmpeg's socket `timeout` and PyAV's open/read timeouts (an
interrupt callback) together make a camera that accepts a connection and never sends fail
with an error instead of hanging the thread for good (PyAV #584).

What a camera sends is bounded before it costs memory or CPU:

- **Frame size.** FFmpeg's own decoders refuse to allocate a frame over MAX_FRAME_PIXELS (the
  contract's 8K bound, via `max_pixels`, on the probe's decoders and the reader's alike, whatever
  the camera's options), and a stream that declares a larger size (container header, RTSP SDP) is
  refused at open, before a single frame is decoded: `FrameTooLarge`, "frame 8660x5774 is over
  the 33.2 MP limit". Refusing, not decoding and scaling down: decoding a 50 MP stream costs
  ~75 MB per frame held (times the decoder's reference frames and threads) and a core or more,
  for an encoder that looks at a few hundred pixels a side, and nothing would bound a larger
  one. Cameras offer lower-resolution streams; the camera is retried (with the worker's
  backoff), so one switched to such a stream streams again.
- **Garbage.** A corrupt packet is skipped (the decoder resumes at the next keyframe) and counted
  (`vigil_ingest_packets_undecodable`). A stream whose packets keep failing (at least
  _MIN_FAILED_PACKETS in a row, over read_timeout_s: bytes that never decode are as good as no
  bytes) or that ends with none decoded (or no keyframe) is `UndecodableStream`, "undecodable
  stream: ...", and so is a source FFmpeg cannot even open as a stream (camera.py): the
  camera goes down with that reason and is retried, instead of sitting in "connecting" with a
  busy thread, or, for a looping file, re-reading it without pause.
- **CPU.** One decoding thread per camera by default (FFmpeg's probe decodes on one thread too),
  so whatever it sends a camera costs about one core; `decoder_threads` is the operator's
  choice to spend more on large frames.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import av.error

from vigil.pipelines.frame_size import fit_to_pixels
from vigil.pipelines.sampling import KeyframeOnlyPolicy
from vigil.services.common.contract import MAX_FRAME_PIXELS
from vigil.services.ingest.config import CameraSettings, ResizeSettings
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
# Set on every decoder, after the camera's own options so that no configuration lifts the bound.
_DECODER_BOUNDS = {"max_pixels": str(MAX_FRAME_PIXELS)}
_LIMIT_TEXT = f"{MAX_FRAME_PIXELS / 1e6:.1f} MP limit (7680x4320)"
# A stream is undecodable once this many packets in a row (and read_timeout_s) failed: one lost
# RTP packet costs the rest of its GOP, never the connection.
_MIN_FAILED_PACKETS = 3


class CameraSourceError(Exception):
    """The source opened but cannot be used (e.g. it has no video stream); the message says why."""


class FrameTooLarge(CameraSourceError):
    """The stream's frames are over MAX_FRAME_PIXELS."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(
            f"frame {width}x{height} is over the {_LIMIT_TEXT}: use a lower-resolution stream of the camera"
        )


class UndecodableStream(CameraSourceError):
    """Packets arrive but do not decode (garbage, or a codec's data this FFmpeg cannot read)."""


def check_frame_size(width: int, height: int) -> None:
    """Raise FrameTooLarge when a width x height frame is over MAX_FRAME_PIXELS (0: unknown)."""
    if width * height > MAX_FRAME_PIXELS:
        raise FrameTooLarge(width, height)


def _decode_error_text(error: av.error.FFmpegError) -> str:
    text = f"{type(error).__name__}: {error.strerror}"
    if isinstance(error, av.error.ArgumentError):
        # What FFmpeg's decoders answer to a frame over max_pixels when the stream did not
        # declare its size beforehand (and to an impossible size).
        text += f" (a frame over the {_LIMIT_TEXT}, or of an invalid size)"
    return text


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


def ffmpeg_options(camera: CameraSettings) -> dict[str, str]:
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


def open_source(camera: CameraSettings) -> av.container.InputContainer:
    """Open the camera's URL or file; raises av.error.FFmpegError / OSError on failure, and
    CameraSourceError when it has no video or declares frames over MAX_FRAME_PIXELS (the
    probe's decoders are bounded too, so a larger frame is never decoded to find that out)."""
    container = av.open(
        camera.url,
        options={**ffmpeg_options(camera), **_DECODER_BOUNDS},
        timeout=(camera.open_timeout_s, camera.read_timeout_s),
    )
    try:
        if not container.streams.video:
            raise CameraSourceError("the source has no video stream")
        context = container.streams.video[0].codec_context
        if context is not None:
            check_frame_size(context.width, context.height)
    except CameraSourceError:
        container.close()
        raise
    return container


class FrameReader:
    """Decoded frames of one open connection, with their capture times.

    wanted(capture_time) tells the reader, in keyframe-only mode, whether a keyframe is worth
    decoding at all (the sampler's peek); in full mode every frame is decoded, because later
    frames depend on it. `last_activity` (time.monotonic) is updated while the source
    delivers, for stall detection by another thread. `undecodable` counts the packets that
    failed to decode.
    """

    def __init__(
        self,
        camera: CameraSettings,
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
        self.undecodable = 0
        # The current run of packets that failed to decode: how many, since when, the last error.
        self._failures = 0
        self._failing_since = 0.0
        self._last_failure = ""
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
        # Applied when the decoder opens; the bound last, so that it wins.
        context.options = {**camera.decoder_options, **_DECODER_BOUNDS}

    def frames(self) -> Iterator[DecodedFrame]:
        """Frames until the source ends (returns) or fails (raises av.error.FFmpegError, or
        CameraSourceError: frames over the bound, an undecodable stream)."""
        time_base = self.stream.time_base
        context = self.stream.codec_context
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
            except (av.error.InvalidDataError, av.error.ArgumentError) as error:
                # A stream that switched to a size over the bound fails this way, the decoder
                # having read the new size: say so at once rather than as garbage.
                check_frame_size(context.width, context.height)
                self._failed(error)
                self._synced = False  # a corrupt packet: wait for the next keyframe
                continue
            if self.metrics is not None:
                self.metrics.decode_seconds.observe(time.perf_counter() - started)
            if packet.is_keyframe:
                self._synced = True
            if decoded:
                self._failures = 0
            for frame in decoded:
                self.decoded += 1
                capture_time = received if self.live else self._file_capture_time(frame.time, received)
                if self.paced:
                    self._sleep_until(capture_time)
                    if self.stop.is_set():
                        return
                self.last_capture_time = capture_time
                yield DecodedFrame(frame, capture_time)
        if self.decoded == 0 and not self.stop.is_set():  # a file (or a stream that ended) of garbage
            if self.undecodable:
                raise UndecodableStream(
                    f"undecodable stream: none of its {self.packets} packets decoded ({self._last_failure})"
                )
            if self.packets and not self._keyframe_seen:
                raise UndecodableStream(f"undecodable stream: no keyframe in its {self.packets} packets")

    def _failed(self, error: av.error.FFmpegError) -> None:
        """Count a packet that failed to decode; raise UndecodableStream when they keep failing."""
        now = time.monotonic()
        self.undecodable += 1
        if self.metrics is not None:
            self.metrics.packets_undecodable.labels(self.camera.id).inc()
        if self._failures == 0:
            self._failing_since = now
        self._failures += 1
        self._last_failure = _decode_error_text(error)
        failing_for = now - self._failing_since
        if self._failures >= _MIN_FAILED_PACKETS and failing_for >= self.camera.read_timeout_s:
            raise UndecodableStream(
                f"undecodable stream: the last {self._failures} packets ({failing_for:.0f} s) failed "
                f"to decode ({self._last_failure})"
            )

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


def encode_jpeg(frame: av.VideoFrame, resize: ResizeSettings | None, quality: int) -> tuple[bytes, int, int]:
    """Resize (never enlarge) then JPEG-encode; returns (jpeg, width, height). Whatever the
    config, a frame over MAX_FRAME_PIXELS is scaled down to fit (aspect kept), since the
    detector would refuse a larger JPEG: FrameReader never yields one, this bounds any other
    caller's."""
    width, height = resize.target_size(frame.width, frame.height) if resize else (frame.width, frame.height)
    width, height = fit_to_pixels(width, height, MAX_FRAME_PIXELS)
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    buffer = io.BytesIO()
    rgb.to_image().save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue(), width, height
