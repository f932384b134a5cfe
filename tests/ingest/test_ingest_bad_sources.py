"""Cameras that send what ingest must not take: 50 MP frames and garbage, from real files, a real
RTSP camera and a real TCP stream. Each is refused with a reason that says what was wrong, costs
bounded memory, and is retried until the source is good again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from bad_sources import (
    TcpSource,
    as_ts,
    damaged_copy,
    growing_ts,
    huge_h264_mp4,
    huge_mjpeg_mkv,
    random_bytes,
)
from ingest_helpers import make_worker, sample, wait_for

TOO_LARGE = (
    "frame 8660x5774 is over the 33.2 MP limit (7680x4320): use a lower-resolution stream of the camera"
)
FAST_RETRY = {"reconnect": {"initial_delay_s": 0.1, "max_delay_s": 0.5, "jitter_s": 0.1}}


@pytest.fixture(scope="session")
def bad_media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-media")


@pytest.fixture(scope="session")
def huge_mp4(bad_media) -> Path:
    return huge_h264_mp4(bad_media / "huge-8660x5774.mp4")


@contextmanager
def running(worker):
    worker.start()
    try:
        yield
    finally:
        worker.request_stop()
        assert worker.join(timeout=10), "the camera thread did not stop"


def downs(statuses) -> list[str]:
    return [status.reason for status in statuses if status.state == "down"]


def replace_with(target: Path, good: Path) -> None:
    """Make `target` a copy of `good` in one step (the camera never reads half a file)."""
    staged = target.with_name("staged" + good.suffix)
    shutil.copy(good, staged)
    os.replace(staged, target)


def test_a_50_megapixel_file_is_refused_unread_retried_and_streams_once_replaced(
    huge_mp4, h264_gop1_clip, tmp_path
):
    camera_file = tmp_path / "camera.mp4"
    shutil.copy(huge_mp4, camera_file)
    worker, queue, registry, statuses = make_worker(
        str(camera_file), queue_size=4, realtime=False, **FAST_RETRY
    )
    with running(worker):
        wait_for(lambda: sample(registry, "vigil_ingest_reconnects_total") >= 3, 10, what="three retries")
        assert [s.state for s in statuses] == ["connecting", "down"]  # down once, not once per retry
        assert statuses[-1].reason == TOO_LARGE
        assert sample(registry, "vigil_ingest_frames_decoded_total") == 0  # refused from its header
        assert sample(registry, "vigil_ingest_packets_undecodable_total") == 0
        assert len(queue) == 0 and not worker.join(0)  # nothing published, the thread lives on
        replace_with(camera_file, h264_gop1_clip)  # the camera is switched to a smaller stream
        assert worker.join(timeout=15)  # it streams the file to its end
    assert [s.state for s in statuses] == ["connecting", "down", "streaming", "down"]
    assert "file ended" in statuses[-1].reason
    assert [(frame.width, frame.height) for frame in queue.drain()] == [(320, 240)] * 4


def test_a_50_megapixel_rtsp_camera_is_refused_from_its_sdp_before_any_frame(rtsp_camera):
    server = rtsp_camera(width=8660, height=5774)  # gst-rtsp-server encodes 50 MP H.264
    # Every attempt costs the server seconds of 50 MP encoding: the retry (what the file tests
    # check) is kept beyond the test's end.
    slow_retry = {"reconnect": {"initial_delay_s": 2.0, "max_delay_s": 2.5, "jitter_s": 0.1}}
    worker, queue, registry, statuses = make_worker(server.url, queue_size=4, open_timeout_s=30, **slow_retry)
    with running(worker):
        wait_for(lambda: downs(statuses), 40, what="the camera to go down")
        assert downs(statuses) == [TOO_LARGE]
        assert sample(registry, "vigil_ingest_frames_decoded_total") == 0
        assert sample(registry, "vigil_ingest_packets_undecodable_total") == 0
        assert sample(registry, "vigil_ingest_camera_state", state="down") == 1
        assert len(queue) == 0 and not worker.join(0)  # waiting to retry


def test_a_stream_that_grows_to_50_megapixels_is_refused_at_that_frame(bad_media):
    stream = growing_ts(bad_media / "grows.ts")
    worker, queue, registry, statuses = make_worker(
        str(stream), queue_size=8, realtime=False, fps=10, **FAST_RETRY
    )
    with running(worker):
        wait_for(lambda: downs(statuses), 10, what="the camera to go down")
        assert [s.state for s in statuses[:3]] == ["connecting", "streaming", "down"]
        assert downs(statuses)[0] == TOO_LARGE
        assert sample(registry, "vigil_ingest_frames_decoded_total") >= 20  # the 2 s before it
        assert sample(registry, "vigil_ingest_packets_undecodable_total") == 0  # not called garbage
        assert all((frame.width, frame.height) == (320, 240) for frame in queue.drain())


# A 50 MP frame is 75 MB decoded (4:2:0), 150 MB as RGB; refused, it must cost neither.
_MEMORY_PROBE = """
import json, re, sys, threading
from vigil.pipelines.sampling import KeyframeOnlyPolicy
from vigil.services.ingest.config import parse_config
from vigil.services.ingest.reader import CameraSourceError, FrameReader, open_source

def read(path):
    camera = parse_config({"cameras": [{"id": "cam", "url": path, "realtime": False}]}, environ={}).cameras[0]
    try:
        container = open_source(camera)
        try:
            policy = KeyframeOnlyPolicy(False, 1.0)
            reader = FrameReader(camera, container, policy, lambda t: True, threading.Event())
            return [f"{d.frame.width}x{d.frame.height}" for d in reader.frames()]
        finally:
            container.close()
    except CameraSourceError as error:
        return str(error)

def peak_mb():  # this process's peak resident memory (ru_maxrss would count the parent's too)
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s*(\\d+) kB", status.read()).group(1)) / 1024

read(sys.argv[1])  # FFmpeg's own first-use allocations are not the frame's
before = peak_mb()
outcomes = [read(path) for path in sys.argv[2:]]
print(json.dumps({"grown_mb": peak_mb() - before, "outcomes": outcomes}))
"""


def test_a_50_megapixel_stream_never_costs_a_50_megapixel_frame_of_memory(
    huge_mp4, bad_media, h264_gop1_clip
):
    # In a process of its own, whose peak memory is the reader's: the H.264 MP4 would be decoded
    # by FFmpeg's probe at open, the MJPEG (whose size the probe cannot tell) by the decoder, the
    # growing stream at its 50 MP keyframe.
    sources = [huge_mp4, huge_mjpeg_mkv(bad_media / "huge.mkv"), growing_ts(bad_media / "grows-mem.ts")]
    run = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(h264_gop1_clip), *map(str, sources)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    mp4, mjpeg, growing = report["outcomes"]
    assert mp4 == TOO_LARGE and growing == TOO_LARGE
    assert isinstance(mjpeg, str) and "over the 33.2 MP limit" in mjpeg, mjpeg  # refused, not decoded
    assert report["grown_mb"] < 50, report


def test_random_bytes_are_an_undecodable_stream_retried_until_the_file_is_a_video(h264_gop1_clip, tmp_path):
    camera_file = random_bytes(tmp_path / "camera.mp4")
    worker, queue, registry, statuses = make_worker(
        str(camera_file), queue_size=4, realtime=False, **FAST_RETRY
    )
    with running(worker):
        wait_for(lambda: sample(registry, "vigil_ingest_reconnects_total") >= 3, 10, what="three retries")
        assert downs(statuses) == [
            "undecodable stream: cannot open: InvalidDataError: Invalid data found when processing input"
        ]
        assert not worker.join(0)
        replace_with(camera_file, h264_gop1_clip)
        assert worker.join(timeout=15)
    assert [s.state for s in statuses] == ["connecting", "down", "streaming", "down"]
    assert len(queue) == 4


@pytest.mark.parametrize(
    ("damage", "reason", "counted"),
    [
        # Its media data overwritten: FFmpeg's parser finds no keyframe in it, nothing to decode.
        (
            lambda clip, path: damaged_copy(clip, path),
            "undecodable stream: no keyframe in its 200 packets",
            False,
        ),
        # Garbage behind H.264 start codes: every packet is tried, and fails.
        (
            lambda clip, path: as_ts(clip, path.with_suffix(".ts"), garbage=True),
            "undecodable stream: none of its 200 packets decoded "
            "(InvalidDataError: Invalid data found when processing input)",
            True,
        ),
    ],
    ids=["overwritten-mp4", "garbage-packets-ts"],
)
def test_a_recording_of_garbage_is_an_undecodable_stream_not_an_ended_file(
    damage, reason, counted, h264_gop1_clip, tmp_path
):
    recording = damage(h264_gop1_clip, tmp_path / "camera.mp4")
    worker, queue, registry, statuses = make_worker(
        str(recording), queue_size=4, realtime=False, **FAST_RETRY
    )
    with running(worker):
        wait_for(lambda: sample(registry, "vigil_ingest_reconnects_total") >= 2, 10, what="two retries")
        assert downs(statuses) == [reason]
        assert sample(registry, "vigil_ingest_frames_decoded_total") == 0
        assert (sample(registry, "vigil_ingest_packets_undecodable_total") > 0) == counted
        assert len(queue) == 0 and not worker.join(0)


def test_corrupt_packets_are_skipped_and_counted_while_the_camera_streams_on(h264_gop1_clip, tmp_path):
    recording = damaged_copy(h264_gop1_clip, tmp_path / "camera.mp4", start=0.4, end=0.45)
    worker, queue, registry, statuses = make_worker(str(recording), queue_size=100, realtime=False)
    worker.start()
    assert worker.join(timeout=15)
    assert [s.state for s in statuses] == ["connecting", "streaming", "down"]
    assert "file ended" in statuses[-1].reason
    assert sample(registry, "vigil_ingest_packets_undecodable_total") >= 1
    assert sample(registry, "vigil_ingest_reconnects_total") == 0
    # Frames from before and after the damage (20 s at 1 frame/s, less the damaged stretch).
    times = [frame.capture_time for frame in queue.drain()]
    assert 12 <= len(times) < 20 and times[-1] - times[0] > 15


def test_a_live_source_sending_garbage_goes_down_as_undecodable_and_recovers(h264_gop1_clip, tmp_path):
    garbage = as_ts(h264_gop1_clip, tmp_path / "garbage.ts", garbage=True)
    source = TcpSource(garbage)
    try:
        worker, queue, registry, statuses = make_worker(
            source.url, queue_size=4, read_timeout_s=1, open_timeout_s=3, **FAST_RETRY
        )
        with running(worker):
            # Packets keep arriving (no read timeout, never stalled) but none decodes for 1 s.
            wait_for(lambda: downs(statuses), 8, what="the camera to go down")
            reason = downs(statuses)[0]
            assert reason.startswith("undecodable stream: the last "), reason
            assert reason.endswith(
                "failed to decode (InvalidDataError: Invalid data found when processing input)"
            )
            assert sample(registry, "vigil_ingest_packets_undecodable_total") >= 3
            assert sample(registry, "vigil_ingest_frames_decoded_total") == 0 and not worker.join(0)
            source.path = as_ts(h264_gop1_clip, tmp_path / "good.ts")  # the encoder is fixed
            wait_for(lambda: len(queue) >= 2, 10, what="frames once the source is good")
            assert statuses[-1].state == "streaming"
            assert sample(registry, "vigil_ingest_reconnects_total") >= 1
    finally:
        source.close()
