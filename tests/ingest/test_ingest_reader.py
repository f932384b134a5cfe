"""The PyAV reader on real video: capture times, pacing, keyframe-only decoding, resize before
JPEG, RTSP over TCP and UDP, and a camera that accepts and never sends."""

from __future__ import annotations

import io
import itertools
import socket
import threading
import time

import av.error
import pytest
from PIL import Image

from vigil.pipelines.sampling import FrameSampler, KeyframeOnlyPolicy
from vigil.services.ingest.config import ResizeSettings, parse_config
from vigil.services.ingest.reader import FrameReader, encode_jpeg, open_source


def camera_config(url: str, **settings):
    return parse_config({"cameras": [{"id": "cam", "url": url, **settings}]}, environ={}).cameras[0]


def read(camera, limit: int | None = None, sampler: FrameSampler | None = None):
    """(frames, reader) for up to `limit` frames (sampler: keyframe-only skips what it drops)."""
    container = open_source(camera)
    wanted = sampler.peek if sampler else (lambda capture_time: True)
    reader = FrameReader(
        camera,
        container,
        KeyframeOnlyPolicy(camera.keyframes_only, 1 / camera.fps),
        wanted=wanted,
        stop=threading.Event(),
    )
    try:
        frames = []
        for decoded in itertools.islice(reader.frames(), limit):
            if sampler is None or sampler.offer(decoded.capture_time):
                frames.append(decoded)
        return frames, reader
    finally:
        container.close()


def test_file_capture_times_follow_the_video_clock_from_the_start(vtest_media):
    started = time.time()
    frames, _ = read(camera_config(str(vtest_media), realtime=False), limit=30)
    times = [f.capture_time for f in frames]
    assert started <= times[0] <= time.time()
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [0.1] * 29  # 10 frames/s


def test_realtime_file_is_paced_like_a_camera_and_fast_file_is_not(vtest_media):
    began = time.monotonic()
    read(camera_config(str(vtest_media), realtime=True), limit=16)  # 1.5 s of video
    paced = time.monotonic() - began
    began = time.monotonic()
    read(camera_config(str(vtest_media), realtime=False), limit=16)
    fast = time.monotonic() - began
    assert 1.4 <= paced <= 2.5
    assert fast < 0.7


def test_keyframe_only_decodes_nothing_but_keyframes(h264_gop1_clip):
    frames, reader = read(camera_config(str(h264_gop1_clip), realtime=False, keyframes_only=True))
    assert reader.packets == 200
    assert len(frames) == reader.decoded == 20  # one keyframe per second of a 20 s clip
    assert all(f.frame.key_frame for f in frames)


def test_keyframe_only_skips_even_the_keyframes_the_sampler_would_drop(h264_gop1_clip):
    camera = camera_config(str(h264_gop1_clip), realtime=False, keyframes_only=True, fps=0.5)
    frames, reader = read(camera, sampler=FrameSampler(fps=0.5))
    assert len(frames) == 10
    assert reader.decoded == 10  # the other ten keyframes were never decoded


def test_auto_decodes_keyframes_only_once_the_gop_fits_the_rate(h264_gop1_clip):
    frames, reader = read(camera_config(str(h264_gop1_clip), realtime=False, fps=1), sampler=FrameSampler(1))
    # Full decoding until the second keyframe has shown the GOP is 1 s, then keyframes only.
    assert reader.decoded == 10 + 19
    assert len(frames) == 20
    _, full = read(camera_config(str(h264_gop1_clip), realtime=False, fps=2), sampler=FrameSampler(2))
    assert full.decoded == 200  # at 2 frames/s, keyframes (1/s) are too few: every frame decoded


def test_jpeg_is_resized_before_encoding(vtest_media):
    (decoded,), _ = read(camera_config(str(vtest_media), realtime=False), limit=1)
    full, width, height = encode_jpeg(decoded.frame, None, quality=85)
    assert (width, height) == (768, 576)
    small, width, height = encode_jpeg(decoded.frame, ResizeSettings(max_width=320), quality=85)
    assert (width, height) == (320, 240)
    assert Image.open(io.BytesIO(small)).size == (320, 240)
    assert len(small) < len(full) / 3
    shorter, *size = encode_jpeg(decoded.frame, ResizeSettings(shorter_side=224), quality=85)
    assert tuple(size) == (299, 224) == Image.open(io.BytesIO(shorter)).size


def test_a_frame_over_the_pixel_bound_is_scaled_to_fit_even_without_a_resize():
    # A 50 MP camera (8660 x 5774) with `resize: null`: the JPEG is bounded all the same.
    import av
    import numpy as np

    from vigil.services.common.contract import MAX_FRAME_PIXELS

    pixels = np.random.default_rng(0).integers(0, 256, (5774, 8660, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
    jpeg, width, height = encode_jpeg(frame, None, quality=85)
    assert width * height <= MAX_FRAME_PIXELS and width * height > 0.99 * MAX_FRAME_PIXELS
    assert abs(width / height - 8660 / 5774) < 0.01  # the aspect is kept
    assert Image.open(io.BytesIO(jpeg)).size == (width, height)


def test_rtsp_frames_are_stamped_with_the_wall_clock_at_receipt(rtsp_camera):
    server = rtsp_camera()
    opened = time.time()
    frames, _ = read(camera_config(server.url), limit=20)
    times = [f.capture_time for f in frames]
    assert opened <= times[0] and times[-1] <= time.time()
    assert all(b >= a for a, b in itertools.pairwise(times))
    # Live pace: 20 frames of a 10 frames/s camera span ~1.9 s (the first few arrive together).
    assert 1.2 <= times[-1] - times[0] <= 2.5
    assert (frames[0].frame.width, frames[0].frame.height) == (320, 240)


def test_rtsp_over_udp(rtsp_camera):
    server = rtsp_camera()
    frames, _ = read(camera_config(server.url, transport="udp"), limit=5)
    assert len(frames) == 5


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never sends a byte (a hung camera)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_camera_that_accepts_and_never_sends_times_out_instead_of_hanging(silent_server):
    camera = camera_config(f"rtsp://127.0.0.1:{silent_server}/cam", open_timeout_s=1, read_timeout_s=1)
    outcome: list[BaseException | str] = []

    def attempt() -> None:
        try:
            open_source(camera).close()
            outcome.append("opened")
        except (av.error.FFmpegError, OSError) as error:
            outcome.append(error)

    began = time.monotonic()
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "av.open hung on a camera that never answers"
    assert time.monotonic() - began < 5
    assert isinstance(outcome[0], av.error.FFmpegError | OSError), outcome
