"""`vigil scan` over a real clip with real photos pasted in for known spans, and `ScanPipeline`
frame by frame on synthetic embeddings (raw cosines, and margins over background prompts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vigil.pipelines.prompts import QueryVectors
from vigil.pipelines.scan import ScanPipeline, ScanSettings, robust_background

VIGIL = str(Path(sys.executable).with_name("vigil"))
CLIP_SECONDS = 30
# (photo, first second shown, first second no longer shown): the ground truth of the clip.
SPANS = {"cat": (8.0, 13.0), "motorcycle": (19.0, 24.0)}
TOLERANCE_S = 1.0


def vigil(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([VIGIL, *args], capture_output=True, text=True, timeout=timeout)


# --- ScanPipeline on synthetic embeddings -------------------------------------------------------

DIM = 8


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


def _frames(times_s, on_spans, seed=0) -> tuple[list[int], np.ndarray]:
    """Embeddings near a background direction, turned towards the query inside `on_spans`."""
    rng = np.random.default_rng(seed)
    background, query = np.eye(DIM, dtype=np.float32)[0], np.eye(DIM, dtype=np.float32)[1]
    rows = []
    for t in times_s:
        on = any(start <= t < end for start, end in on_spans)
        base = background + (1.5 * query if on else 0.0)
        rows.append(_unit(base + rng.normal(0, 0.03, DIM)))
    return [round(t * 1000) for t in times_s], np.stack(rows)


def test_an_event_is_found_at_its_first_and_last_frame():
    times = np.arange(0, 30, 0.5)
    ts, embeddings = _frames(times, [(8.0, 13.0)])
    pipeline = ScanPipeline(["q"], np.eye(DIM, dtype=np.float32)[1:2])
    for start in range(0, len(ts), 7):  # uneven batches, in order
        pipeline.feed(ts[start : start + 7], embeddings[start : start + 7])
    events = pipeline.finish()
    assert [(e.start_ms, e.end_ms) for e in events] == [(8000, 12500)]
    assert 8000 <= events[0].peak_ms <= 12500 and events[0].score > 0.9
    assert events[0].as_json()["start_s"] == 8.0 and events[0].as_json()["end_s"] == 12.5


def test_an_event_still_on_at_the_end_of_the_file_is_closed_at_the_last_frame():
    times = np.arange(0, 20, 0.5)
    ts, embeddings = _frames(times, [(16.0, 99.0)])
    pipeline = ScanPipeline(["q"], np.eye(DIM, dtype=np.float32)[1:2])
    pipeline.feed(ts, embeddings)
    events = pipeline.finish()
    assert [(e.start_ms, e.end_ms) for e in events] == [(16000, 19500)]


def test_a_blip_shorter_than_the_minimum_duration_is_not_an_event_and_two_events_stay_apart():
    times = np.arange(0, 40, 0.5)
    ts, embeddings = _frames(times, [(5.0, 5.5), (10.0, 14.0), (25.0, 30.0)])
    pipeline = ScanPipeline(["q"], np.eye(DIM, dtype=np.float32)[1:2], ScanSettings(min_duration_ms=1000))
    pipeline.feed(ts, embeddings)
    assert [(e.start_ms, e.end_ms) for e in pipeline.finish()] == [(10000, 13500), (25000, 29500)]


def test_the_background_is_the_files_own_and_robust_to_its_events():
    values = np.r_[np.full(80, 0.1), np.full(20, 0.9)] + np.random.default_rng(1).normal(0, 0.01, 100)
    median, std = robust_background(values, min_std=1e-3)
    assert abs(median - 0.1) < 0.01 and std < 0.03  # the event frames barely moved it


# With background prompts: the query and a background prompt share a direction (what "a photo
# of ..." means to every prompt, or the light in the room); the query adds its own.
AXES = np.eye(DIM, dtype=np.float32)
QUERY_VECTORS = QueryVectors(_unit(AXES[1] + AXES[3]), _unit(AXES[2] + AXES[3])[None, :], "en")


def _scene(times_s, changes, seed=0) -> tuple[list[int], np.ndarray]:
    """Embeddings near the background direction plus `vector` during each (start, end, vector)."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in times_s:
        base = AXES[0] + sum((vector for start, end, vector in changes if start <= t < end), np.zeros(DIM))
        rows.append(_unit(base + rng.normal(0, 0.03, DIM)))
    return [round(t * 1000) for t in times_s], np.stack(rows)


def test_with_background_prompts_a_change_every_prompt_shares_is_no_event():
    # The lights come on at 32 s and stay on: the query's cosine and the background prompt's
    # rise together. Judged on the raw cosine that is an event; on the margin it is not.
    ts, embeddings = _scene(np.arange(0, 40, 0.5), [(8.0, 13.0, 0.8 * AXES[1]), (32.0, 99.0, 0.5 * AXES[3])])
    margin = ScanPipeline(["q"], [QUERY_VECTORS])
    raw = ScanPipeline(["q"], QUERY_VECTORS.text[None, :])
    for pipeline in (margin, raw):
        pipeline.feed(ts, embeddings)
    assert margin.uses_background and not raw.uses_background
    assert [(e.start_ms, e.end_ms) for e in margin.finish()] == [(8000, 12500)]
    assert [(e.start_ms, e.end_ms) for e in raw.finish()] == [(8000, 12500), (32000, 39500)]


def test_a_span_far_below_normal_does_not_hide_a_later_event():
    # At 5-10 s the view looks like the background prompt itself (another query's object in
    # front of the camera does this to the offline encoder): the margin drops by ~20 standard
    # deviations. Learnt unclipped, that spread would swallow the modest event at 25-30 s.
    ts, embeddings = _scene(np.arange(0, 40, 0.5), [(5.0, 10.0, 2.0 * AXES[2]), (25.0, 30.0, 0.5 * AXES[1])])
    pipeline = ScanPipeline(["q"], [QUERY_VECTORS])
    pipeline.feed(ts, embeddings)
    assert [(e.start_ms, e.end_ms) for e in pipeline.finish()] == [(25000, 29500)]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        ScanSettings(threshold=1.5).match_settings()
    with pytest.raises(ValueError):
        ScanPipeline(["a", "b"], np.eye(DIM, dtype=np.float32)[:1])
    with pytest.raises(ValueError):
        ScanPipeline(["a", "b"], [QUERY_VECTORS])
    with pytest.raises(TypeError):
        ScanPipeline(["a"], [QUERY_VECTORS.text])


# --- the real clip --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_clip() -> Path:
    """30 s of vtest.avi (a real hall with people walking), a real photo of a cat at 8-13 s and of
    a motorcycle at 19-24 s pasted over the right part (45 % of the frame's width), H.264."""
    from vigil.fixtures.media import MediaUnavailableError, event_clip

    try:
        return event_clip(
            tuple((name, start, end) for name, (start, end) in SPANS.items()),
            CLIP_SECONDS,
            keyframe_every_s=None,
        )
    except MediaUnavailableError as error:
        pytest.skip(str(error))


@pytest.mark.parametrize(
    "queries",
    [
        {"cat": "a cat", "motorcycle": "a motorcycle"},
        {"cat": "một con mèo", "motorcycle": "một chiếc xe máy"},
    ],
    ids=["english", "vietnamese"],
)
def test_scan_finds_the_inserted_events_at_the_right_times(real_clip, queries):
    args = ["scan", str(real_clip), "--json", "--model", "offline", "--fps", "2"]
    for text in queries.values():
        args += ["-q", text]
    result = vigil(*args)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(e) == {"query", "start_s", "end_s", "peak_s", "score"} for e in events), events
    for name, text in queries.items():
        found = [e for e in events if e["query"] == text]
        assert len(found) == 1, (text, events)  # the inserted span, and nothing in the real hall
        event, (start, end) = found[0], SPANS[name]
        print(f"{text}: start {event['start_s'] - start:+.1f} s, end {event['end_s'] - end:+.1f} s")
        assert abs(event["start_s"] - start) <= TOLERANCE_S, (text, event)
        assert abs(event["end_s"] - end) <= TOLERANCE_S, (text, event)
        assert event["start_s"] <= event["peak_s"] <= event["end_s"] and 0 < event["score"] <= 1
    assert len(events) == len(queries)


def test_scan_prints_a_table_without_json(real_clip):
    result = vigil("scan", str(real_clip), "-q", "a cat", "--model", "offline")
    assert result.returncode == 0, result.stderr
    assert "1 event(s)" in result.stdout and "a cat" in result.stdout


def test_a_file_that_is_not_a_video_is_one_clear_line(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_bytes(b"this is not a video at all" * 100)
    result = vigil("scan", str(bad), "-q", "a cat")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"vigil: error: {bad}") and result.stderr.count("\n") == 1
    assert result.stdout == ""
    missing = vigil("scan", str(tmp_path / "missing.mp4"), "-q", "a cat")
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_on_a_terminal_the_progress_bar_goes_to_stderr_and_stdout_keeps_only_results(real_clip):
    import os
    import pty
    import threading

    controller, terminal = pty.openpty()
    shown = bytearray()

    def drain() -> None:  # read while it runs, so a long stderr can never block the child
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        result = subprocess.run(
            [VIGIL, "scan", str(real_clip), "-q", "a cat", "--json", "--model", "offline"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=120,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
        )
    finally:
        os.close(terminal)
        reader.join(timeout=5)
        os.close(controller)
    assert result.returncode == 0, bytes(shown).decode(errors="replace")[-2000:]
    assert b"scanning" in shown and b"100%" in shown and b"Traceback" not in shown
    assert [json.loads(line)["query"] for line in result.stdout.splitlines()] == ["a cat"]
