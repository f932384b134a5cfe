"""The search process's frame index cache (services/search/frame_cache.py) on a real Milvus lite
store and real FAISS: it returns what Milvus returns, camera and time filters included; it sees
frames written after it loaded, by this process or another one, within its stated delay; a
dropped slice leaves it; and with the cache off by setting, search is Milvus' as before."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vigil.models.registry import EncoderSettings, create_encoder
from vigil.services.detector.store import FrameRecord, HitStore, StoreSettings
from vigil.services.search import FrameSearch, SearchSettings
from vigil.services.search.frame_cache import FrameCache, FrameCacheSettings
from vigil.services.search.frame_vectors import FrameVectors

START_MS = 1_796_637_600_000  # 2026-12-07T10:00:00Z
CAMERAS = ("hall", "gate", "lobby")
ROWS = 900  # 300 s of 3 cameras at 1 frame/s: one slice of 5 minutes (the default length)
# What the cache states: a frame written is searchable within its refresh period (1 s) plus
# the refresh's own work (tens of ms); 3 s leaves room for a loaded machine.
FRESH_WITHIN_S = 3.0


def frame(i: int, vectors: np.ndarray, ts_offset_ms: int = 0) -> FrameRecord:
    return FrameRecord(
        CAMERAS[i % 3], START_MS + ts_offset_ms + (i // 3) * 1000, vectors[i], thumbnail=f"thumb-{i}"
    )


@pytest.fixture(scope="module")
def encoder():
    return create_encoder(EncoderSettings(kind="offline"))


@pytest.fixture()
def store(tmp_path, encoder):
    settings = StoreSettings(
        uri=str(tmp_path / "milvus"), thumbnails_dir=tmp_path / "t", dim=encoder.info.dim
    )
    vectors = np.random.default_rng(0).normal(0, 1, (ROWS, encoder.info.dim)).astype(np.float32)
    with HitStore(settings) as owner:  # stands in for the detector: it owns the lite directory
        owner.add_frames([frame(i, vectors) for i in range(ROWS)])
        owner.flush_frames()
        yield owner


@pytest.fixture()
def cache(store):
    cache = FrameCache(store, FrameCacheSettings())
    try:
        assert cache.wait_ready(120), "the cache did not load"
        yield cache
    finally:
        cache.close()


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def test_the_cache_returns_what_milvus_returns_with_camera_and_time_filters(store, cache, encoder):
    assert len(cache.vectors) == ROWS
    rng = np.random.default_rng(1)
    for _ in range(5):
        query = unit(rng.normal(0, 1, encoder.info.dim))
        (milvus,) = store.search_frames([query], 10)
        cached = cache.search(query, 10, None, None, None)
        # Below the training size the cache is exhaustive, so exact; Milvus' HNSW is
        # approximate: the cache's k-th best is never worse than Milvus' k-th, and every frame
        # Milvus ranks above the cache's last is among the cache's (with its thumbnail, score).
        assert all(c.score >= m.score - 1e-5 for c, m in zip(cached, milvus, strict=True))
        by_id = {c.frame_id: c for c in cached}
        for m in milvus:
            if m.score > cached[-1].score + 1e-5:
                assert by_id[m.frame_id].thumbnail == m.thumbnail
                assert abs(by_id[m.frame_id].score - m.score) < 1e-5
        assert len(by_id.keys() & {m.frame_id for m in milvus}) >= 8
        # One camera, a minute: 60 frames, all of them asked for. The cache returns all 60 (it is
        # exhaustive over so few); Milvus' filtered HNSW search may miss a few (57 seen), never
        # one the cache lacks.
        filters = (["gate"], START_MS + 60_000, START_MS + 119_000)
        (milvus,) = store.search_frames([query], 100, *filters)
        cached = cache.search(query, 100, *filters)
        assert len(cached) == 60 and len(milvus) >= 50
        assert {m.frame_id for m in cached} >= {m.frame_id for m in milvus}
        assert all(m.camera_id == "gate" and filters[1] <= m.ts_ms <= filters[2] for m in cached)
    assert cache.search(unit(rng.normal(0, 1, encoder.info.dim)), 10, ["nowhere"], None, None) == []


def test_a_frame_search_through_the_cache_finds_the_moments_milvus_finds(store, cache, encoder):
    with_cache, without = FrameSearch(store, encoder, cache), FrameSearch(store, encoder)
    for text in ("a cat", "một chiếc xe máy", "a person carrying a bag"):
        for filters in ({}, {"camera_ids": ["lobby"], "since_ts_ms": START_MS + 120_000}):
            cached = with_cache.search(text, limit=10, **filters)
            milvus = without.search(text, limit=10, **filters)
            assert (cached[0].camera_id, cached[0].ts_ms) == (milvus[0].camera_id, milvus[0].ts_ms)
            # Up to the frames Milvus' approximate filtered search missed (a moment the cache
            # finds one frame longer, and the next moment it then pushes out of the ten).
            overlapping = [
                any(
                    c.camera_id == m.camera_id
                    and c.start_ts_ms <= m.end_ts_ms
                    and m.start_ts_ms <= c.end_ts_ms
                    for c in cached
                )
                for m in milvus
            ]
            assert sum(overlapping) >= 0.8 * len(milvus)


def test_a_frame_written_after_the_cache_loaded_is_found_within_the_stated_delay(store, cache, encoder):
    rng = np.random.default_rng(2)
    live, recorded = unit(rng.normal(0, 1, encoder.info.dim)), unit(rng.normal(0, 1, encoder.info.dim))
    late_ms = START_MS + 10 * 60_000  # the detector's live path: a new slice
    store.add_frames([FrameRecord("hall", late_ms, live)])
    # `vigil index` writes recorded footage through the owner's server from another process.
    with HitStore(store.settings, may_own_lite=False) as other:
        other.add_frames([FrameRecord("archive", START_MS + 5_000, recorded, thumbnail="a.jpg")])
    written = time.monotonic()
    found = set()
    while time.monotonic() - written < FRESH_WITHIN_S and len(found) < 2:
        found |= {m.frame_id for m in cache.search(live, 1, ["hall"], late_ms, late_ms)}
        found |= {m.frame_id for m in cache.search(recorded, 1, ["archive"], None, None)}
        time.sleep(0.05)
    assert found == {f"hall:{late_ms}", f"archive:{START_MS + 5_000}"}


def test_a_dropped_slice_leaves_the_cache(store, cache, encoder):
    query = unit(np.random.default_rng(3).normal(0, 1, encoder.info.dim))
    assert cache.search(query, 5, None, None, None)
    (only,) = store.frame_slices()
    rows, _ = store.drop_frame_slice(only)
    assert rows == ROWS
    deadline = time.monotonic() + FRESH_WITHIN_S
    while len(cache.vectors) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(cache.vectors) == 0 and cache.search(query, 5, None, None, None) == []


def test_with_the_cache_off_by_setting_search_is_milvus_as_before(store, encoder):
    settings = SearchSettings(
        store=store.settings, encoder=EncoderSettings(kind="offline"), cache=FrameCacheSettings(enabled=False)
    )
    with FrameSearch.open(settings, may_own_lite=False, encoder=encoder, with_cache=True) as search:
        assert search.cache is None
        plain = FrameSearch(store, encoder)
        assert [(r.camera_id, r.ts_ms) for r in search.search("a cat", limit=5)] == [
            (r.camera_id, r.ts_ms) for r in plain.search("a cat", limit=5)
        ]


def test_filters_hold_exactly_over_the_trained_inverted_lists():
    dim, rows = 32, 6_000
    rng = np.random.default_rng(4)
    vectors = rng.normal(0, 1, (rows, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cameras = [f"cam-{i % 6}" for i in range(rows)]
    ts = START_MS + (np.arange(rows) // 6) * 1000
    index = FrameVectors(dim, lists=16, probes=4, train_rows=2_000)
    ids = [f"{c}:{t}" for c, t in zip(cameras, ts.tolist(), strict=True)]
    index.upsert(ids, cameras, ts, [""] * rows, ["p"] * rows, vectors)
    assert index.trained and len(index) == rows
    query = vectors[17]
    since, until = int(ts[600]), int(ts[1199])
    selected = np.flatnonzero((np.array(cameras) == "cam-2") & (ts >= since) & (ts <= until))
    exact = selected[np.argsort(-(vectors[selected] @ query))][:20]
    found = index.search(query, 20, ["cam-2"], since, until)
    assert all(m.camera_id == "cam-2" and since <= m.ts_ms <= until for m in found)
    # A filter this selective visits every list: exhaustive over the selected rows (SQ8 codes).
    assert len({m.frame_id for m in found} & {ids[i] for i in exact}) >= 19
    index.forget(ids[:3_000])
    assert len(index) == 3_000 and all(m.ts_ms >= ts[3_000] for m in index.search(query, 50))
