"""The detector's retention on a real Milvus lite and thumbnail folder: hits and frame index rows
past their days are forgotten with their thumbnails; what is younger stays, and a frame's
picture that a kept hit shows stays too."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.services.common.contract import HitMessage, derive_hit_id
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.detector.frame_slices import MINUTE_MS
from vigil.services.detector.retention import DAY_MS, Retention, RetentionSettings
from vigil.services.detector.store import FrameRecord, HitRecord, HitStore, StoreSettings

DIM = 8
JPEG = b"\xff\xd8\xff\xe0" + b"a thumbnail" + b"\xff\xd9"
NOW_MS = 1_800_000_000_000
CAMERA = "gate"
HOUR_MS = 60 * MINUTE_MS


def vector() -> np.ndarray:
    return np.ones(DIM, np.float32) / np.sqrt(DIM)


def hit_at(peak_ms: int, thumbnails: ThumbnailStore) -> HitRecord:
    reference = thumbnails.save(CAMERA, peak_ms, JPEG)
    hit = HitMessage(
        hit_id=derive_hit_id(CAMERA, "fence", peak_ms - 1_000),
        camera_id=CAMERA,
        query_id="fence",
        event_start_ts_ms=peak_ms - 1_000,
        peak_ts_ms=peak_ms,
        end_ts_ms=peak_ms + 1_000,
        peak_score=0.9,
        thumbnail=reference,
        encoder="test",
    )
    return HitRecord(hit, vector())


def frame_at(ts_ms: int, thumbnails: ThumbnailStore) -> FrameRecord:
    return FrameRecord(CAMERA, ts_ms, vector(), thumbnails.save(CAMERA, ts_ms, JPEG))


def test_hits_and_frames_past_their_days_go_with_their_thumbnails_the_rest_stays(tmp_path):
    thumbnails = ThumbnailStore(tmp_path / "thumbnails")
    settings = StoreSettings(uri=str(tmp_path / "milvus"), dim=DIM, thumbnails_dir=tmp_path / "thumbnails")
    with HitStore(settings) as store:
        old_hit = hit_at(NOW_MS - 31 * DAY_MS, thumbnails)
        kept_hit = hit_at(NOW_MS - 8 * DAY_MS, thumbnails)  # over the frames' 7 days, under 30
        store.upsert_hits([old_hit, kept_hit])
        old_frame = frame_at(NOW_MS - 8 * DAY_MS - 5_000, thumbnails)
        shared_frame = frame_at(kept_hit.hit.peak_ts_ms, thumbnails)  # the kept hit's own picture
        new_frame = frame_at(NOW_MS - DAY_MS, thumbnails)
        store.add_frames([old_frame, shared_frame, new_frame])
        store.flush_frames()

        retention = Retention(RetentionSettings(), store, thumbnails)
        assert retention.apply(NOW_MS) == (1, 2)

        assert [hit.hit_id for hit in store.hits(limit=10)] == [kept_hit.hit.hit_id]
        assert store.count_frames() == 1
        root = tmp_path / "thumbnails"
        assert not (root / old_hit.hit.thumbnail).exists()
        assert not (root / old_frame.thumbnail).exists()
        assert (root / kept_hit.hit.thumbnail).exists()  # shown by a kept hit, though its frame row went
        assert (root / new_frame.thumbnail).exists()
        assert not (root / old_hit.hit.thumbnail).parent.exists()  # its day folder was left empty

        assert retention.apply(NOW_MS) == (0, 0)  # nothing more to forget


def test_frame_rows_beyond_the_row_budget_at_the_current_rate_go_by_whole_oldest_slices(tmp_path):
    """The budget is kept as an age, `frames_max_rows` rows at the rate the index is written,
    and forgotten by whole time slices of an eighth of that age: at most one slice more stays."""
    thumbnails = ThumbnailStore(tmp_path / "thumbnails")
    settings = StoreSettings(uri=str(tmp_path / "milvus"), dim=DIM, thumbnails_dir=tmp_path / "thumbnails")
    with HitStore(settings) as store:
        retention = Retention(RetentionSettings(frames_max_rows=40, batch_rows=2), store, thumbnails)
        per_minute = 1 / 60  # one camera indexed once a minute: 40 rows are the last 40 minutes
        assert retention.apply(NOW_MS - HOUR_MS, frame_rows_per_s=per_minute) == (0, 0)
        assert store.frames_slice_minutes == 5  # an eighth of 40 minutes

        frames = [frame_at(NOW_MS - minute * MINUTE_MS, thumbnails) for minute in range(59, -1, -1)]
        store.add_frames(frames)
        store.flush_frames()
        assert len(store.frame_slices()) == 12

        # Slices ending by NOW - 40 min go: those of minutes -59 to -45. A pass forgets 4
        # batches of 2 rows at most, and whole slices: two slices (10 rows), then the third.
        assert retention.apply(NOW_MS, frame_rows_per_s=per_minute) == (0, 10)
        assert retention.apply(NOW_MS, frame_rows_per_s=per_minute) == (0, 5)
        assert retention.apply(NOW_MS, frame_rows_per_s=per_minute) == (0, 0)

        [kept] = store.search_frames([vector()], top_k=100)
        assert sorted(match.ts_ms for match in kept) == [frame.ts_ms for frame in frames[15:]]
        assert len(kept) == 45  # the budget, and the slice straddling its age
        assert len(store.frame_slices()) == 9
        root = tmp_path / "thumbnails"
        assert [(root / frame.thumbnail).exists() for frame in frames] == [False] * 15 + [True] * 45


def test_frame_rows_written_before_the_index_was_sliced_are_forgotten_row_by_row(tmp_path):
    thumbnails = ThumbnailStore(tmp_path / "thumbnails")
    settings = StoreSettings(uri=str(tmp_path / "milvus"), dim=DIM, thumbnails_dir=tmp_path / "thumbnails")
    with HitStore(settings) as store:
        old, young = frame_at(NOW_MS - 8 * DAY_MS, thumbnails), frame_at(NOW_MS - DAY_MS, thumbnails)
        rows = [
            {"frame_id": f.frame_id, "embedding": vector().tolist(), "camera_id": CAMERA, "ts_ms": f.ts_ms}
            | {"thumbnail": f.thumbnail}
            for f in (old, young)
        ]
        # As a Vigil before time slices wrote them: into the collection's default partition.
        store._client.upsert(settings.frames_collection, rows)
        store._client.flush(settings.frames_collection)
        assert store.frame_slices() == []

        assert Retention(RetentionSettings(), store, thumbnails).apply(NOW_MS) == (0, 1)
        [kept] = store.search_frames([vector()], top_k=10)
        assert [match.ts_ms for match in kept] == [young.ts_ms]
        assert not (tmp_path / "thumbnails" / old.thumbnail).exists()


def test_a_pass_comes_at_least_once_per_frame_slice_and_a_failed_one_waits_a_whole_interval(tmp_path):
    thumbnails = ThumbnailStore(tmp_path / "thumbnails")
    settings = StoreSettings(uri=str(tmp_path / "milvus"), dim=DIM, thumbnails_dir=tmp_path / "thumbnails")
    now = [1_000.0]
    with HitStore(settings) as store:
        retention = Retention(RetentionSettings(check_every_s=600), store, thumbnails, clock=lambda: now[0])
        assert retention.maybe_apply() == (0, 0)
        assert store.frames_slice_minutes == 5  # before any rate is known
        now[0] += 299
        assert retention.maybe_apply() is None
        now[0] += 1
        # Many cameras: 40 rows/s keep 100,000 rows for 41 minutes, in 5-minute slices.
        assert retention.maybe_apply(lambda: 40.0) == (0, 0)
        assert store.frames_slice_minutes == 5

        store.close()  # a pass that fails (the store is gone) is not retried on every loop turn
        now[0] += 300
        with pytest.raises(AttributeError):  # a closed store has no client left
            retention.maybe_apply()
        now[0] += 599
        assert retention.maybe_apply() is None


def test_the_frame_rows_age_is_the_budget_over_the_rate_within_the_days():
    retention = Retention(RetentionSettings(frames_days=7, frames_max_rows=100_000), None, None)
    assert retention.frames_kept_ms(0.0) == 7 * DAY_MS
    assert retention.frames_kept_ms(8.0) == 12_500_000  # 8 cameras at 1 row/s: 3.5 h
    assert retention.frames_kept_ms(0.1) == 7 * DAY_MS  # 1,000,000 s would be over 7 days
