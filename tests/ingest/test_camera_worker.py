"""A camera thread on real video, without Kafka: backpressure, end of file, disabled cameras."""

from __future__ import annotations

from ingest_helpers import make_worker, sample


def test_backpressure_drops_the_oldest_frames_and_counts_them(h264_gop1_clip):
    # Nobody drains the queue (the publisher is stuck): only the newest frames may survive.
    worker, queue, registry, _ = make_worker(
        str(h264_gop1_clip), queue_size=4, fps=5, realtime=False, resize={"max_width": 160}
    )
    worker.start()
    assert worker.join(timeout=30)
    sampled = sample(registry, "vigil_ingest_frames_sampled_total")
    assert sampled == 100  # 20 s at 5 frames/s
    kept = queue.drain()
    assert len(kept) == 4
    assert sample(registry, "vigil_ingest_frames_dropped_total", reason="queue_full") == sampled - 4
    # The survivors are the last four frames of the clip, in order.
    times = [frame.capture_time for frame in kept]
    assert times == sorted(times)
    assert round(times[-1] - times[0], 3) == 0.6
    assert all((frame.width, frame.height) == (160, 120) for frame in kept)


def test_a_file_that_ends_leaves_the_camera_down_with_the_reason(h264_gop1_clip):
    worker, _, registry, statuses = make_worker(str(h264_gop1_clip), queue_size=1, realtime=False)
    worker.start()
    assert worker.join(timeout=30)
    assert [s.state for s in statuses] == ["connecting", "streaming", "down"]
    assert "file ended" in statuses[-1].reason
    assert sample(registry, "vigil_ingest_camera_up") == 0
    assert sample(registry, "vigil_ingest_camera_state", state="down") == 1


def test_a_looping_file_keeps_capture_time_moving_forward(h264_gop1_clip):
    worker, queue, _, _ = make_worker(str(h264_gop1_clip), queue_size=100, realtime=False, loop=True, fps=1)
    worker.start()
    try:
        deadline_frames = 45  # more than two passes over the 20 s clip
        while len(queue) < deadline_frames and worker._thread.is_alive():
            worker.join(timeout=0.05)
    finally:
        worker.request_stop()
        assert worker.join(timeout=10)
    times = [frame.capture_time for frame in queue.drain()]
    assert len(times) >= 45
    assert all(later > earlier for earlier, later in zip(times, times[1:], strict=False))


def test_a_disabled_camera_is_never_opened(tmp_path):
    worker, _, registry, statuses = make_worker(str(tmp_path / "absent.mp4"), queue_size=1, enabled=False)
    worker.start()
    assert worker.join(timeout=5)
    assert [s.state for s in statuses] == ["disabled"]
    assert sample(registry, "vigil_ingest_camera_state", state="disabled") == 1
    assert sample(registry, "vigil_ingest_reconnects_total") == 0
