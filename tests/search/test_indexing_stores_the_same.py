"""index_video's pipeline (decoding only the needed packets in a thread, embedding chunks on every
core with single-threaded onnxruntime sessions, writing in order) stores what the plain path
stores: every sampled frame decoded and embedded one after another, by the detector's encoder.
Checked through the real Milvus lite store: the same timestamps, and each stored vector is its
reference's nearest row at cosine >= 1 - 1e-5."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vigil.models.offline import OfflineEncoder
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.detector.store import HitStore, StoreSettings
from vigil.services.scan.video import sampled_frames
from vigil.services.search import index_video

START_MS = 1_796_637_600_000
COSINE_BOUND = 1e-5


@pytest.fixture(scope="module")
def clip() -> Path:
    from vigil.fixtures.media import MediaUnavailableError, event_clip

    try:  # the shortest of the real clips: vtest.avi's hall with a cat and a motorcycle pasted in
        return event_clip((("cat", 8.0, 13.0), ("motorcycle", 17.0, 22.0), ("cat", 26.0, 31.0)), 36.0)
    except MediaUnavailableError as error:
        pytest.skip(str(error))


def reference(clip: Path) -> dict[int, np.ndarray]:
    """ts_ms -> embedding, the plain way: every frame decoded, each sampled frame embedded alone."""
    encoder = OfflineEncoder.load(device="cpu")
    with av.open(str(clip)) as container:
        frames = list(sampled_frames(container, 1.0))
    return {START_MS + round(t * 1000): encoder.embed_images([pixels])[0] for t, pixels in frames}


def test_the_index_holds_the_plain_paths_frames_and_vectors(clip, tmp_path, monkeypatch):
    expected = reference(clip)
    monkeypatch.setenv("VIGIL_ORT_THREADS", "1")  # as `vigil index` opens its encoder on 2 cores
    encoder = OfflineEncoder.load(device="cpu")
    reports = []
    settings = StoreSettings(uri=str(tmp_path / "milvus"), dim=encoder.info.dim)
    with HitStore(settings) as store:
        done = index_video(
            clip,
            "gate",
            START_MS,
            store,
            encoder,
            ThumbnailStore(tmp_path / "thumbnails"),
            progress=reports.append,
            workers=2,
        )
        stored = store.frames_between("gate", START_MS, START_MS + 3_600_000)
        matches = store.search_frames(np.stack(list(expected.values())), top_k=1, camera_ids=["gate"])
    assert done.frames == len(expected) == 36
    assert [frame.ts_ms for frame in stored] == sorted(expected)
    assert all(
        (tmp_path / "thumbnails" / frame.thumbnail).read_bytes()[:2] == b"\xff\xd8" for frame in stored
    )
    for ts_ms, found in zip(expected, matches, strict=True):
        assert found[0].ts_ms == ts_ms and found[0].score >= 1 - COSINE_BOUND, (ts_ms, found[0])
    assert [r.frames for r in reports] == [16, 32, 36]  # every 16 frames, then the end
