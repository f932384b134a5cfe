"""The change detector and region selection, frame by frame, on synthetic and real frames.

Synthetic frames are 640x360 RGB (a blocky textured scene with a bright and a dark panel, and
Gaussian sensor noise of 4 grey levels), sampled at 2 frames/s of capture time, and go through
`small_grey` like a camera's frames do. Real frames are OpenCV's vtest.avi (pedestrians in a
hall, 768x576, 10 frames/s), decoded with PyAV and taken at 2 frames/s.

Over 400 lines: it is the one test file of pipelines/regions/, and its footage helpers
(scene, camera noise, shake, rain, vtest) serve every test in it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from functools import lru_cache

import av
import numpy as np
import pytest

from vigil.pipelines.regions import (
    Box,
    ChangeDetector,
    RegionPlan,
    RegionSettings,
    crop_box_pixels,
    select_regions,
    small_grey,
    square_region,
)

WIDTH, HEIGHT = 640, 360
ASPECT = WIDTH / HEIGHT
STEP_MS = 500  # 2 frames/s: what the detector typically samples per camera
SETTINGS = RegionSettings()


# --- synthetic footage ------------------------------------------------------------------


def scene(seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A still scene (float32 RGB, 0..255): 40 px blocks of random grey in 50..180, a bright
    panel (200, saturates under a brightening exposure) and a dark one (40)."""
    rng = np.random.default_rng(seed)
    blocks = rng.random((height // 40 + 1, width // 40 + 1))
    grey = 50 + 130 * np.kron(blocks, np.ones((40, 40)))[:height, :width]
    grey[height * 5 // 9 : height * 5 // 6, width // 12 : width * 5 // 16] = 200
    grey[height // 7 : height // 3, width * 5 // 8 : width * 15 // 16] = 40
    return np.repeat(grey[..., None], 3, axis=2).astype(np.float32)


@lru_cache(maxsize=4)
def unit_noise(shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """16 fields of unit Gaussian noise: drawing 1.3 M normals per frame would make the noise,
    not the detector, the cost of these tests."""
    rng = np.random.default_rng(99)
    return tuple(rng.standard_normal(shape, dtype=np.float32) for _ in range(16))


def camera(rng: np.random.Generator, image: np.ndarray, noise: float = 4.0) -> np.ndarray:
    """What a camera delivers of `image`: Gaussian sensor noise of `noise` grey levels (one of
    16 fields, with a random sign, so consecutive frames differ), clipped, uint8 RGB."""
    field = unit_noise(image.shape)[int(rng.integers(16))]
    noisy = field * np.float32(noise if rng.random() < 0.5 else -noise)
    noisy += image
    return np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)


def with_object(image: np.ndarray, box_px: tuple[int, int, int, int], value: float = 245.0) -> np.ndarray:
    x0, y0, x1, y1 = box_px
    out = image.copy()
    out[y0:y1, x0:x1] = value
    return out


def shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The scene as a shaken camera sees it: moved by (dx, dy) pixels, edges repeated."""
    out = np.roll(image, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy] = out[dy : dy + 1]
    elif dy < 0:
        out[dy:] = out[dy - 1 : dy]
    if dx > 0:
        out[:, :dx] = out[:, dx : dx + 1]
    elif dx < 0:
        out[:, dx:] = out[:, dx - 1 : dx]
    return out


def rain(rng: np.random.Generator, image: np.ndarray, streaks: int, width_px: int, gain: float) -> np.ndarray:
    """Rain: `streaks` random bright vertical streaks, 15-45 px long, new every frame."""
    out = image.copy()
    height, width = image.shape[:2]
    for _ in range(streaks):
        x, y = int(rng.integers(0, width - width_px)), int(rng.integers(0, height - 45))
        length = int(rng.integers(15, 45))
        out[y : y + length, x : x + width_px] += gain
    return np.clip(out, 0, 255)


def run(
    frames: Iterable[np.ndarray],
    detector: ChangeDetector | None = None,
    start: int = 0,
    rng: np.random.Generator | None = None,
    noise: float = 4.0,
) -> list[RegionPlan]:
    """Feed each frame (float RGB scenes get sensor noise; uint8 ones go as they are) at 2
    frames/s of capture time from frame index `start`; return the plans."""
    detector = detector or ChangeDetector(SETTINGS)
    rng = rng or np.random.default_rng(7)
    plans = []
    for i, image in enumerate(frames, start=start):
        pixels = image if image.dtype == np.uint8 else camera(rng, image, noise)
        plans.append(detector.observe(i * STEP_MS, small_grey(pixels)))
    return plans


def calibrated(image: np.ndarray, frames: int = 12) -> tuple[ChangeDetector, np.random.Generator]:
    """A detector that has watched `image` (with noise) for `frames` frames, and its noise."""
    detector, rng = ChangeDetector(SETTINGS), np.random.default_rng(11)
    plans = run([image] * frames, detector, rng=rng)
    assert not plans[-1].calibrating
    return detector, rng


def summary(plans: list[RegionPlan]) -> str:
    """One character per frame: G global change, F full view only, a digit: regions, . still."""
    return "".join(
        "G" if p.global_change else str(len(p.motion)) if p.motion else "F" if p.embed_full else "."
        for p in plans
    )


def motion_count(plans: list[RegionPlan]) -> int:
    return sum(len(plan.motion) for plan in plans)


# --- real footage -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vtest_frames() -> list[np.ndarray]:
    """vtest.avi's first 30 s at 2 frames/s (every 5th decoded frame): 60 RGB frames."""
    from vigil.fixtures.media import MediaUnavailableError, vtest_avi

    try:
        path = vtest_avi()
    except MediaUnavailableError as error:
        pytest.skip(str(error))
    frames = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % 5 == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 60:
                break
    return frames


def pedestrians(greys: list[np.ndarray]) -> list[np.ndarray]:
    """Where the people are in each small grey frame: pixels more than 25 grey levels from the
    median of all frames (people keep walking, so the median is the empty hall)."""
    hall = np.median(np.stack(greys), axis=0)
    return [np.abs(grey - hall) > 25 for grey in greys]


# --- Box and the region geometry --------------------------------------------------------


def test_box_overlap_measures():
    a, b = Box(0.0, 0.0, 0.5, 0.5), Box(0.25, 0.25, 0.75, 0.75)
    assert a.area == pytest.approx(0.25)
    assert a.intersection(b) == pytest.approx(0.0625)
    assert a.iou(b) == pytest.approx(0.0625 / (0.25 + 0.25 - 0.0625))
    inner = Box(0.1, 0.1, 0.2, 0.2)
    assert inner.overlap_of_smaller(a) == pytest.approx(1.0)  # contained
    assert inner.fraction_inside(a) == pytest.approx(1.0) and a.fraction_inside(inner) == pytest.approx(0.04)
    assert a.union(b) == Box(0.0, 0.0, 0.75, 0.75)
    assert Box(0.6, 0.6, 0.7, 0.7).iou(a) == 0.0


def test_box_is_clipped_to_the_frame_and_rejects_nonsense():
    assert Box(-0.01, 0.2, 1.02, 0.4) == Box(0.0, 0.2, 1.0, 0.4)  # a detector's rounding error
    for bad in ((0.5, 0.0, 0.4, 1.0), (0.0, float("nan"), 1.0, 1.0)):
        with pytest.raises(ValueError):
            Box(*bad)
    assert Box(0.4, 0.3, 0.6, 0.7).scaled(10) == Box(0.0, 0.0, 1.0, 1.0)


def test_box_to_pixels_rounds_outwards_and_stays_in_the_frame():
    assert Box(0.1, 0.1, 0.2, 0.3).to_pixels(640, 360) == (64, 36, 128, 108)
    assert Box(0.101, 0.0, 0.1011, 1.0).to_pixels(640, 360) == (64, 0, 65, 360)  # at least 1 px
    assert Box(0.0, 0.0, 1.0, 1.0).to_pixels(640, 360) == (0, 0, 640, 360)


def test_square_region_is_padded_square_in_pixels_and_shifted_into_the_frame():
    box = Box.from_pixels(300, 150, 340, 250, WIDTH, HEIGHT)  # 40 x 100 px
    x0, y0, x1, y1 = square_region(box, ASPECT, 1.35, 0.2).to_pixels(WIDTH, HEIGHT)
    assert abs((x1 - x0) - (y1 - y0)) <= 1 and y1 - y0 == pytest.approx(135, abs=1)
    assert (x0 + x1) / 2 == pytest.approx(320, abs=1)
    corner = Box.from_pixels(0, 0, 20, 20, WIDTH, HEIGHT)  # small, in a corner: min size, shifted in
    x0, y0, x1, y1 = square_region(corner, ASPECT, 1.35, 0.2).to_pixels(WIDTH, HEIGHT)
    assert (x0, y0) == (0, 0) and x1 == pytest.approx(72, abs=1) and y1 == pytest.approx(72, abs=1)
    wide = Box.from_pixels(0, 100, 640, 200, WIDTH, HEIGHT)  # wider than the frame is high
    assert square_region(wide, ASPECT, 1.35, 0.2) == Box(0.0, 0.0, 1.0, 1.0)  # square where it can


# --- small_grey ---------------------------------------------------------------------------


def test_small_grey_is_a_100_px_high_luma_copy_with_the_frame_aspect():
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 200, 100, 50
    grey = small_grey(frame)
    assert grey.shape == (100, 178) and grey.dtype == np.float32
    assert np.allclose(grey, 0.299 * 200 + 0.587 * 100 + 0.114 * 50, atol=1e-3)
    assert small_grey(np.zeros((576, 768, 3), np.uint8)).shape == (100, 133)
    assert small_grey(np.zeros((60, 80, 3), np.uint8)).shape == (60, 80)  # never upscaled
    assert small_grey(np.full((360, 640), 9, np.uint8)).shape == (100, 178)  # grey input


def test_small_grey_averages_the_whole_cell():
    # Vertical stripes 1 px wide, alternating 0/255: an area average is mid-grey everywhere.
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[:, ::2] = 255
    grey = small_grey(frame)
    # 4 samples across a 10.8 px cell: a 1 px pattern aliases by at most a quarter of its range
    assert np.abs(grey - 127.5).max() <= 64
    assert abs(float(grey.mean()) - 127.5) < 3
    # noise averages down: sigma 20 -> about 20 / 4
    noisy = np.random.default_rng(0).normal(128, 20, (1080, 1920, 3)).clip(0, 255).astype(np.uint8)
    assert 3.0 < float(small_grey(noisy).std()) < 7.0


def test_small_grey_of_a_1080p_frame_takes_a_few_milliseconds():
    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    small_grey(frame)
    started = time.perf_counter()
    for _ in range(20):
        small_grey(frame)
    per_frame_ms = (time.perf_counter() - started) / 20 * 1000
    print(f"small_grey 1920x1080: {per_frame_ms:.2f} ms")
    assert per_frame_ms < 20  # ~1.5-3 ms measured; generous for a loaded test machine


# --- ChangeDetector: still scenes ---------------------------------------------------------


def test_a_still_scene_with_sensor_noise_is_still_after_calibration():
    plans = run([scene()] * 100)  # 50 s
    assert plans[0].embed_full and not plans[0].still
    assert motion_count(plans) == 0  # 0 regions over 100 frames
    refreshes = [i for i, plan in enumerate(plans) if plan.embed_full]
    assert refreshes == [0, 20, 40, 60, 80]  # the first frame, then every 10 s
    assert all(plan.still for i, plan in enumerate(plans) if i not in refreshes)


def test_a_noisy_low_contrast_night_camera_is_still():
    night = 20 + (scene() - 50) * 0.2  # grey levels 20..46
    for noise in (15.0, 40.0):  # full-resolution sensor noise: heavy, and very heavy
        plans = run([night] * 60, noise=noise)
        assert motion_count(plans) == 0, (noise, summary(plans))


def test_slow_exposure_drift_makes_no_regions():
    base = scene()
    drift = [np.clip(base * 1.005**k, 0, 255) for k in range(100)]  # +0.5 %/frame, x1.65 in all
    plans = run([base] * 10 + drift)
    assert motion_count(plans) == 0, summary(plans)
    assert not any(plan.global_change for plan in plans)


def test_auto_exposure_steps_are_compensated_not_reported():
    base = scene()
    levels = [1.0, 1.15, 1.3, 1.3, 1.15, 0.95, 0.8, 0.8, 0.9, 1.0]  # steps of 10-15 % a frame
    plans = run([base] * 10 + [np.clip(base * level, 0, 255) for level in levels])
    assert motion_count(plans) == 0, summary(plans)
    assert not any(plan.global_change for plan in plans)


# --- ChangeDetector: things that move --------------------------------------------------------


def test_a_small_object_moving_across_gets_one_region_covering_it_on_every_frame():
    base = scene()
    detector, rng = calibrated(base)
    truths = [(20 + 24 * k, 130, 20 + 24 * k + 96, 250) for k in range(22)]  # 96x120 px: 5 % of the frame
    plans = run([with_object(base, box) for box in truths], detector, start=12, rng=rng)
    for k, (plan, truth_px) in enumerate(zip(plans, truths, strict=True)):
        truth = Box.from_pixels(*truth_px, WIDTH, HEIGHT)
        assert len(plan.motion) == 1, (k, plan.motion)  # nothing elsewhere (no trail, no ghost)
        region = plan.motion[0]
        assert truth.fraction_inside(region) > 0.95, (k, region)
        assert region.iou(truth) > 0.3, (k, region)  # the truth padded 1.35x and squared: ~0.45


def test_a_light_switched_on_is_one_global_change_then_still():
    base = scene()
    detector, rng = calibrated(base)
    plans = run([np.clip(base * 1.6, 0, 255)] * 10, detector, start=12, rng=rng)
    first = plans[0]
    assert first.global_change and first.embed_full and first.motion == () and not first.still
    assert first.changed_fraction > SETTINGS.global_fraction
    assert [plan.global_change for plan in plans].count(True) == 1
    assert all(plan.still for plan in plans[1:]), summary(plans)  # still from the next frame
    assert not plans[-1].calibrating  # calibrated again after calibration_frames


def test_camera_shake_never_makes_more_than_max_regions_and_calms_after():
    base = scene()
    for amplitude in (2, 6, 16):  # pixels of the 640 px frame
        detector, rng = calibrated(base)
        shakes = [(amplitude, amplitude // 2), (-amplitude, amplitude), (amplitude // 2, -amplitude), (0, 0)]
        frames = [shifted(base, dx, dy) for dx, dy in shakes] + [base] * 20
        plans = run(frames, detector, start=12, rng=rng)
        assert all(len(plan.motion) <= SETTINGS.max_regions for plan in plans)
        calm = plans[-10:]  # still, but for the full-frame refresh every 10 s
        assert not any(plan.motion or plan.global_change for plan in calm), (amplitude, summary(plans))
        print(f"shake of {amplitude} px: {summary(plans)}")


def test_rain_is_never_a_storm_of_regions():
    big = scene(width=1280, height=720)
    rng = np.random.default_rng(3)
    detector, _ = ChangeDetector(SETTINGS), None
    # Real rain on a 720p camera: thin streaks (1-2 px), a few hundred a frame. The small grey
    # frame averages each streak over its 7 px cells: nothing is left to threshold.
    drizzle = [rain(rng, big, streaks=400, width_px=2, gain=60) for _ in range(20)]
    plans = run([big] * 10 + drizzle, detector, rng=rng)
    assert motion_count(plans[10:]) == 0, summary(plans)
    # A storm right at the lens (or insects in an IR lamp): 300 streaks 2 px wide, +80, on a
    # 640x360 frame, 5 % of it covered anew every frame: capped, and calm when it stops.
    base = scene()
    detector, rng = calibrated(base)
    storm = [rain(rng, base, streaks=300, width_px=2, gain=80) for _ in range(20)]
    plans = run(storm + [base] * 12, detector, start=12, rng=rng)
    assert all(len(plan.motion) <= SETTINGS.max_regions for plan in plans)
    assert not any(plan.global_change for plan in plans)
    assert not any(plan.motion for plan in plans[-6:]), summary(plans)
    print(
        f"storm: {summary(plans)}; mean region area {np.mean([b.area for p in plans for b in p.motion]):.2f}"
    )


def test_a_car_that_parks_is_absorbed_after_absorb_after_frames():
    base = scene()
    detector, rng = calibrated(base)
    positions = [min(20 + 40 * k, 300) for k in range(8)] + [300] * 30  # arrives, parks at frame 7
    plans = run(
        [with_object(base, (x, 170, x + 110, 240), 235.0) for x in positions], detector, start=12, rng=rng
    )
    parked_at = positions.index(300)
    n = SETTINGS.absorb_after_frames
    assert all(plan.motion for plan in plans[: parked_at + n - 2])  # moving, then parked < N frames
    assert not any(plan.motion for plan in plans[parked_at + n :])  # absorbed: not motion any more
    # ... and when it leaves, the empty space is motion (until that, too, is absorbed)
    leave = run([base] * 3, detector, start=12 + len(positions), rng=rng)
    car = Box.from_pixels(300, 170, 410, 240, WIDTH, HEIGHT)
    assert all(any(car.fraction_inside(region) > 0.9 for region in plan.motion) for plan in leave)


def test_many_separate_changes_are_capped_and_each_lies_in_a_region():
    base = scene()
    detector, rng = calibrated(base)
    spots = [
        (40 + 140 * (k % 4), 40 + 170 * (k // 4), 70 + 140 * (k % 4), 80 + 170 * (k // 4)) for k in range(8)
    ]
    image = base.copy()
    for spot in spots:
        image = with_object(image, spot, 250.0 if base[spot[1], spot[0], 0] < 150 else 10.0)
    [plan] = run([image], detector, start=12, rng=rng)
    assert len(plan.motion) == SETTINGS.max_regions
    for spot in spots:
        assert any(Box.from_pixels(*spot, WIDTH, HEIGHT).fraction_inside(r) > 0.9 for r in plan.motion), spot


def test_a_new_frame_size_restarts_the_model():
    detector, rng = calibrated(scene())
    plan = detector.observe(20_000, small_grey(camera(rng, scene(width=320, height=320))))
    assert plan.embed_full and plan.calibrating and not plan.global_change and plan.motion == ()
    assert detector.frame_aspect == 1.0


# --- real footage -----------------------------------------------------------------------------


def test_vtest_pedestrians_are_inside_the_regions(vtest_frames):
    greys = [small_grey(frame) for frame in vtest_frames]
    people = pedestrians(greys)
    detector = ChangeDetector(SETTINGS)
    plans = [detector.observe(i * STEP_MS, grey) for i, grey in enumerate(greys)]
    height, width = greys[0].shape
    covered = total = on_people = regions = 0
    for plan, mask in zip(plans[1:], people[1:], strict=True):
        assert len(plan.motion) <= SETTINGS.max_regions
        inside = np.zeros_like(mask)
        for box in plan.motion:
            x0, y0, x1, y1 = box.to_pixels(width, height)
            inside[y0:y1, x0:x1] = True
            regions += 1
            on_people += int(mask[y0:y1, x0:x1].sum() >= 10)
        covered += int((mask & inside).sum())
        total += int(mask.sum())
    print(f"vtest: {covered / total:.1%} of pedestrian pixels in regions; {on_people}/{regions} on people")
    assert covered / total > 0.9  # measured ~0.98
    assert on_people / regions > 0.8  # the rest: a person absorbed or just left (measured ~0.9)


def test_a_still_hall_is_still_at_least_85_percent_of_frames(vtest_frames):
    # A still frame of the real hall with sensor noise (6 grey levels) and a flicker of
    # exposure (+-1 %), 120 frames at 2 frames/s (1 min): full-frame refreshes count as
    # encoder calls.
    hall = vtest_frames[0].astype(np.float32)
    rng = np.random.default_rng(5)
    frames = [np.clip(hall * np.float32(rng.uniform(0.99, 1.01)), 0, 255) for _ in range(120)]
    plans = run(frames, rng=rng, noise=6.0)
    still = sum(plan.still for plan in plans) / len(plans)
    calls_per_s = sum(not plan.still for plan in plans) / (len(plans) * STEP_MS / 1000)
    print(f"still hall: {still:.1%} still, {calls_per_s:.2f} encoder calls per camera-second")
    assert motion_count(plans) == 0
    assert still >= 0.85 and calls_per_s <= 0.3


# --- snapshots ------------------------------------------------------------------------------


def test_a_detector_restored_mid_stream_plans_exactly_like_an_uninterrupted_one(vtest_frames):
    greys = [small_grey(frame) for frame in vtest_frames[:40]]
    uninterrupted = ChangeDetector(SETTINGS)
    expected = [uninterrupted.observe(i * STEP_MS, grey) for i, grey in enumerate(greys)]
    for cut in (3, 17):  # while calibrating, and after
        first = ChangeDetector(SETTINGS)
        for i, grey in enumerate(greys[:cut]):
            first.observe(i * STEP_MS, grey)
        state = json.loads(json.dumps(first.to_state()))  # through JSON, as the detector stores it
        restored = ChangeDetector(SETTINGS)
        restored.restore(state)
        resumed = [restored.observe(i * STEP_MS, grey) for i, grey in enumerate(greys) if i >= cut]
        assert resumed == expected[cut:]


def test_restore_of_a_fresh_detector_and_of_garbage():
    fresh = ChangeDetector(SETTINGS)
    other = ChangeDetector(SETTINGS)
    other.restore(json.loads(json.dumps(fresh.to_state())))
    assert other.observe(0, np.zeros((10, 10), np.float32)).embed_full
    for garbage in ({}, {"version": 1}, {**fresh.to_state(), "version": 99}):
        with pytest.raises(ValueError):
            other.restore(garbage)


def test_settings_are_checked():
    for bad in (
        {"max_regions": 0},
        {"global_fraction": 0.01},
        {"context_scale": 0.5},
        {"absorb_after_frames": 0},
    ):
        with pytest.raises(ValueError):
            RegionSettings(**bad)


def test_observe_takes_a_few_milliseconds():
    detector, rng = calibrated(scene())
    greys = [
        small_grey(camera(rng, with_object(scene(), (100 + 20 * k, 100, 200 + 20 * k, 250))))
        for k in range(20)
    ]
    started = time.perf_counter()
    for i, grey in enumerate(greys):
        detector.observe((12 + i) * STEP_MS, grey)
    per_frame_ms = (time.perf_counter() - started) / len(greys) * 1000
    print(f"observe on 100x178 with motion: {per_frame_ms:.2f} ms")
    assert per_frame_ms < 20  # 1-3.5 ms measured on a loaded 2-core machine


# --- select_regions and crops ----------------------------------------------------------------


def region_of(x0: int, y0: int, x1: int, y1: int) -> Box:
    """The motion region the detector would report around this pixel box."""
    return square_region(Box.from_pixels(x0, y0, x1, y1, WIDTH, HEIGHT), ASPECT, 1.35, 0.2)


def select(motion, proposals, settings: RegionSettings = SETTINGS) -> tuple[Box, ...]:
    return select_regions(motion, proposals, settings, frame_aspect=ASPECT)


def test_detector_boxes_outside_motion_are_dropped():
    person = Box.from_pixels(300, 100, 340, 220, WIDTH, HEIGHT)
    parked_car = Box.from_pixels(420, 250, 600, 340, WIDTH, HEIGHT)
    regions = select([region_of(300, 100, 340, 220)], [person, parked_car])
    assert len(regions) == 1 and person.fraction_inside(regions[0]) == pytest.approx(1.0)
    assert parked_car.fraction_inside(regions[0]) < 0.1


def test_detector_boxes_come_first_and_duplicates_merge():
    motion = [region_of(300, 100, 380, 220)]
    person = Box.from_pixels(305, 100, 345, 220, WIDTH, HEIGHT)
    same_person = Box.from_pixels(300, 104, 342, 224, WIDTH, HEIGHT)  # a second detection of it
    bag = Box.from_pixels(350, 180, 378, 215, WIDTH, HEIGHT)
    regions = select(motion, [bag, person, same_person])
    assert len(regions) == 2  # the person once, the bag; the motion region duplicates them
    assert person.union(same_person).fraction_inside(regions[0]) == pytest.approx(1.0)
    assert bag.fraction_inside(regions[1]) == pytest.approx(1.0)


def test_select_regions_keeps_motion_without_detector_boxes_and_caps():
    motion = [region_of(40 + 120 * k, 40, 80 + 120 * k, 120) for k in range(5)]
    assert select(motion[:3], []) == tuple(motion[:3])
    settings = RegionSettings(max_regions=3)
    proposals = [Box.from_pixels(45 + 120 * k, 45, 75 + 120 * k, 115, WIDTH, HEIGHT) for k in range(5)]
    regions = select(motion, proposals, settings)
    assert len(regions) == 3
    assert all(any(p.fraction_inside(r) == pytest.approx(1.0) for p in proposals) for r in regions)


def test_selected_regions_are_square_and_never_below_the_minimum_size():
    tiny = Box.from_pixels(100, 100, 104, 110, WIDTH, HEIGHT)  # a 4x10 px detection
    tall = Box.from_pixels(500, 20, 540, 340, WIDTH, HEIGHT)
    motion = [region_of(95, 95, 110, 115), region_of(495, 20, 545, 340)]
    for region in select(motion, [tiny, tall]):
        x0, y0, x1, y1 = region.to_pixels(WIDTH, HEIGHT)
        assert abs((x1 - x0) - (y1 - y0)) <= 1  # square in pixels, even for the tall one
        assert y1 - y0 >= 0.2 * HEIGHT - 1  # min_region_fraction of the shorter side
        assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT


def test_crop_box_pixels_is_square_in_bounds_and_at_least_the_encoder_input():
    cases: list[tuple[Box, int, int]] = [
        (Box(0.5, 0.5, 0.52, 0.53), 1920, 1080),  # small: grows to 224
        (Box(0.0, 0.0, 0.05, 0.05), 1920, 1080),  # in a corner: shifted in
        (Box(0.95, 0.9, 1.0, 1.0), 1920, 1080),
        (Box(0.3, 0.1, 0.5, 0.9), 1920, 1080),  # larger than 224: its own size, square
        (Box(0.2, 0.2, 0.3, 0.3), 320, 180),  # a frame lower than 224: the largest square
        (Box(0.0, 0.0, 1.0, 1.0), 200, 150),
    ]
    for box, width, height in cases:
        x0, y0, x1, y1 = crop_box_pixels(box, width, height, 224)
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, (box, width, height)
        side_x, side_y = x1 - x0, y1 - y0
        bx0, by0, bx1, by1 = box.to_pixels(width, height)
        assert min(side_x, side_y) >= min(224, width, height)  # the encoder's input if it fits
        if max(bx1 - bx0, by1 - by0) <= min(width, height):
            assert side_x == side_y, (box, width, height)  # square
            assert x0 <= bx0 + 1 and y0 <= by0 + 1 and x1 >= bx1 - 1 and y1 >= by1 - 1  # holds the box
    assert crop_box_pixels(Box(0.3, 0.1, 0.5, 0.9), 1920, 1080) == (336, 108, 1200, 972)
    # a box wider than the frame is high: as high as the frame, as wide as the box (never cut)
    assert crop_box_pixels(Box(0.1, 0.0, 0.9, 1.0), 1920, 1080) == (192, 0, 1728, 1080)
