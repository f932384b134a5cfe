"""The dev set's guarantees: real backgrounds, enough small events, standing queries with
distractors in both languages, a two-event query, a held-out side that shares nothing with the
tune side, measured on rendered frames, and the same set from the same seed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from vigil.evaluation import dataset
from vigil.model_tools.temporal import data
from vigil.pipelines.prompts import resolve_language
from vigil.services.detector.config import DetectorSettings

ALL = [s for split in dataset.SPLITS for s in dataset.dev_streams(split)]


def test_at_least_three_real_backgrounds_and_24_events_in_2000_to_3000_frames():
    assert len({s.background.clip for s in ALL}) >= 3
    for split in dataset.SPLITS:
        assert len({s.background.clip for s in dataset.dev_streams(split)}) >= 3
    assert sum(len(s.events) for s in ALL) >= 24
    assert 2_000 <= sum(s.frames for s in ALL) <= 3_000
    assert all(s.background.clip in data.CLIPS for s in ALL)
    assert {s.sequence.fps for s in ALL} == {2.0}
    for s in ALL:
        assert np.all(np.diff(s.ts_ms()) == 500)


def test_every_stream_registers_six_queries_with_two_distractors_and_a_two_event_query():
    for s in ALL:
        shown = {obj for e in s.events for obj in data.PHOTOS[e.photo].shows}
        open_ = {obj for e in s.events for obj in data.PHOTOS[e.photo].ambiguous}
        assert len(s.objects) >= 6 and len(set(s.objects)) == len(s.objects)
        assert len(s.distractors) >= 2
        assert not set(s.distractors) & (shown | open_), s.name
        # no registered query is answered by a photo that is not its event's
        for e in s.events:
            assert set(data.PHOTOS[e.photo].shows) & set(s.objects) == {e.object}
            assert not set(data.PHOTOS[e.photo].ambiguous) & set(s.objects)
        counts = Counter(e.object for e in s.events)
        assert counts[s.two_event_object] == 2
        first, second = sorted(
            (e for e in s.events if e.object == s.two_event_object), key=lambda e: e.start_ms
        )
        assert (first.ordinal, second.ordinal) == (1, 2)
    for split in dataset.SPLITS:
        assert any(
            Counter(e.object for e in s.events).most_common(1)[0][1] == 2 for s in dataset.dev_streams(split)
        )


def test_queries_come_in_english_and_vietnamese_for_every_stream():
    for s in ALL:
        english, vietnamese = s.query_texts("en"), s.query_texts("vi")
        assert list(english) == list(vietnamese) == list(s.objects)
        assert all(resolve_language(text, "auto") == "en" for text in english.values())
        assert all(resolve_language(text, "auto") == "vi" for text in vietnamese.values())
        assert all(english[q] != vietnamese[q] for q in s.objects)


def test_events_last_4_to_12_s_start_after_warm_up_and_are_further_apart_than_the_cooldown():
    cooldown = DetectorSettings().match.cooldown_ms
    for s in ALL:
        events = sorted(s.events, key=lambda e: e.start_ms)
        first_ts = s.ts_ms()[0]
        assert events[0].start_ms - first_ts >= 15_000  # the calibrator's 30 frames at 2 frames/s
        for e in events:
            assert 4_000 <= e.end_ms - e.start_ms <= 12_000
            assert e.start_ms in s.ts_ms()  # the first frame showing it
            assert e.end_ms <= s.ts_ms()[-1]
        for a, b in zip(events, events[1:], strict=False):
            assert b.start_ms - a.end_ms > cooldown
        # not the demo's setup (hall, a cat at 12-20 s, a motorcycle at 34-42 s)
        assert not (s.background.clip == "hall" and any(e.start_ms - first_ts == 12_000 for e in events))


def test_boxes_and_areas_measured_on_rendered_frames_are_2_to_15_percent():
    photos = data.PhotoCache()
    by_clip: dict[str, list] = {}
    for s in ALL:
        recipes = s.recipes()
        ts = s.ts_ms()
        for e in s.events:
            k = ts.index(e.start_ms)
            assert recipes[k].photo == e.photo and (k == 0 or recipes[k - 1].photo is None)
            by_clip.setdefault(s.background.clip, []).append((e, recipes[k]))
    measured_buckets = Counter()
    for clip, items in by_clip.items():
        frames = dict(data.decode_frames(data.CLIPS[clip], {r.index for _, r in items}))
        for e, recipe in items:
            background = frames[recipe.index]
            rendered = data.render(background, recipe, photos)
            changed = np.any(rendered != background, axis=-1)
            ys, xs = np.nonzero(changed)
            h, w = changed.shape
            x0, y0, x1, y1 = e.box
            # the changed pixels lie inside the recorded box and reach (nearly) all its edges
            assert xs.min() >= round(x0 * w) and xs.max() < round(x1 * w)
            assert ys.min() >= round(y0 * h) and ys.max() < round(y1 * h)
            assert abs(xs.min() - x0 * w) <= 2 and abs(xs.max() + 1 - x1 * w) <= 2
            assert abs(ys.min() - y0 * h) <= 2 and abs(ys.max() + 1 - y1 * h) <= 2
            area = (xs.max() + 1 - xs.min()) * (ys.max() + 1 - ys.min()) / (w * h)
            assert 0.02 <= area <= 0.15, (e.event_id, area)
            assert abs(area - e.area) < 0.005
            measured_buckets[dataset.size_bucket(area)] += 1
    assert set(measured_buckets) == set(dataset.SIZE_BUCKETS)
    positions = {(round(e.box[0], 1), round(e.box[1], 1)) for s in ALL for e in s.events}
    assert len(positions) >= 20  # varied positions


def test_the_held_out_split_shares_no_photo_and_no_footage_with_the_tune_split():
    tune, heldout = dataset.dev_streams("tune"), dataset.dev_streams("heldout")
    tune_photos = {e.photo for s in tune for e in s.events}
    heldout_photos = {e.photo for s in heldout for e in s.events}
    assert tune_photos and heldout_photos and not tune_photos & heldout_photos
    tune_frames = set().union(*(dataset.footage_spans(s) for s in tune))
    heldout_frames = set().union(*(dataset.footage_spans(s) for s in heldout))
    assert not tune_frames & heldout_frames
    # the same source split as the temporal scorer's held-out side
    assert heldout_photos <= set(data.SPLITS["heldout"].photos)
    assert {s.split for s in heldout} == {"heldout"} and {s.split for s in tune} == {"tune"}


def test_the_same_seed_draws_the_same_dev_set():
    for split in dataset.SPLITS:
        again = dataset.dev_streams.__wrapped__(split)
        assert [s.describe() for s in again] == [s.describe() for s in dataset.dev_streams(split)]
        assert [r.key() for s in again for r in s.recipes()] == [
            r.key() for s in dataset.dev_streams(split) for r in s.recipes()
        ]


def test_rendering_follows_the_recipes_in_capture_order():
    stream = min(ALL, key=lambda s: dataset.clip_size(s.background.clip))  # the smallest frames
    timing: dict = {}
    frames = list(dataset.render_frames(stream, timing))
    assert [ts for ts, _ in frames] == stream.ts_ms()
    assert {f.shape for _, f in frames} == {(stream.frame_size[1], stream.frame_size[0], 3)}
    assert timing["render_s"] > 0
    with pytest.raises(ValueError, match="unknown split"):
        dataset.dev_streams("train")
