"""Frames to embeddings with the real offline encoder on real footage: what each frame costs
(nothing when still), where the crops are, and the settling crop when motion stops."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.pipelines.detector import CameraPipeline
from vigil.pipelines.regions import Box, RegionSettings
from vigil.services.common.framing import FrameWork, embed_frames

SETTINGS = RegionSettings()


@pytest.fixture(scope="module")
def encoder():
    from vigil.models.offline import OfflineEncoder

    return OfflineEncoder.load(device="cpu")


@pytest.fixture(scope="module")
def hall() -> np.ndarray:
    import av

    from vigil.fixtures.media import MediaUnavailableError, vtest_avi

    try:
        with av.open(str(vtest_avi())) as container:
            return next(iter(container.decode(video=0))).to_ndarray(format="rgb24")
    except MediaUnavailableError as error:
        pytest.skip(str(error))


def noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(frame.astype(np.int16) + rng.integers(-3, 4, frame.shape), 0, 255).astype(np.uint8)


def with_cat(frame: np.ndarray, left: int) -> np.ndarray:
    from PIL import Image
    from skimage import data

    cat = np.asarray(Image.fromarray(data.chelsea()).resize((150, 100)))
    out = frame.copy()
    out[300:400, left : left + 150] = cat
    return out


def run(encoder, pipeline, frames, regions=True):
    costs, embedded = [], []
    for ts, pixels in frames:
        work = [FrameWork(pipeline.changes, ts, pixels, pipeline.views)]
        (embeddings,), cost = embed_frames(encoder, work, SETTINGS, regions=regions)
        pipeline.step(ts, embeddings, ts)
        costs.append(cost)
        embedded.append(embeddings)
    return costs, embedded


def test_a_still_hall_costs_nothing_after_its_first_frames(encoder, hall):
    rng = np.random.default_rng(0)
    pipeline = CameraPipeline("hall", encoder.info.dim, regions=SETTINGS)
    frames = [(t * 500, noisy(hall, rng)) for t in range(20)]  # 10 s at 2 frames/s
    costs, _ = run(encoder, pipeline, frames)
    encoded = [cost.encoded_frames for cost in costs]
    assert encoded[0] == 1 and sum(encoded[5:]) == 0, encoded  # the first full view, then nothing
    assert len(pipeline.views) == 1  # the full view stands


def test_a_moving_cat_is_cropped_where_it_is_and_its_spot_is_settled_when_it_leaves(encoder, hall):
    rng = np.random.default_rng(1)
    pipeline = CameraPipeline("hall", encoder.info.dim, regions=SETTINGS)
    frames = [(t * 500, noisy(hall, rng)) for t in range(10)]
    frames += [(5_000 + t * 500, noisy(with_cat(hall, 100 + 20 * t), rng)) for t in range(6)]
    frames += [(8_000 + t * 500, noisy(hall, rng)) for t in range(4)]
    _, embedded = run(encoder, pipeline, frames)
    height, width = hall.shape[:2]
    for t in range(1, 6):  # the cat moves: a region overlaps it on every frame
        cat = Box.from_pixels(100 + 20 * t, 300, 250 + 20 * t, 400, width, height)
        regions = [box for box, _ in embedded[10 + t].regions]
        assert any(box.intersection(cat) > 0.5 * cat.area for box in regions), (t, regions)
    gone = embedded[16]  # the cat left: its last spot is embedded once more, and the whole frame
    assert gone.settled and gone.full is not None
    assert all(view.settled for view in pipeline.views.regions)


def test_whole_frames_mode_embeds_every_frame_that_is_not_still_whole(encoder, hall):
    rng = np.random.default_rng(2)
    pipeline = CameraPipeline("hall", encoder.info.dim, regions=SETTINGS)
    frames = [(t * 500, noisy(hall, rng)) for t in range(10)]
    frames += [(5_000 + t * 500, noisy(with_cat(hall, 100 + 20 * t), rng)) for t in range(4)]
    costs, embedded = run(encoder, pipeline, frames, regions=False)
    assert all(e.full is not None and not e.regions for e in embedded[10:])
    assert sum(cost.crops for cost in costs) == 0
