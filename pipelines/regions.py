"""Which parts of a camera's frame changed, and which crops of it to embed (no I/O).

Embedding every frame whole is wasteful twice over: a still camera costs an encoder call per
frame for nothing, and a small object (a person at the far end of a hall) is a few pixels of
CLIP's 224 px input. So each frame is first looked at small and grey, and only what changed
is embedded, as square crops with some context around it; the whole frame at a low rate.

    grey = small_grey(rgb)                         # ~100 px high, float32, any camera size
    plan = detector.observe(ts_ms, grey)           # one ChangeDetector per camera
    plan.still                                     # nothing to embed: the last embeddings stand
    plan.motion                                    # regions that changed (Box, frame fractions)
    plan.embed_full                                # the whole frame is due
    regions = select_regions(plan.motion, detector_boxes, settings, frame_aspect=w / h)
    x0, y0, x1, y1 = crop_box_pixels(region, w, h, min_side_px=224)

The method follows Frigate's motion detector (docs: /work/shared/ANCHORS-regions.md) where it
is sound and departs from it where Frigate is fragile:

1. **Small grey frame** (`small_grey`): about 100 px high, so every later step costs the same
   for a 4K camera as for a VGA one. Each output pixel averages a fixed 4x4 grid of samples of
   its cell: an area average (sensor noise drops 4x) whose cost does not grow with the camera's
   resolution (~2 ms for 1080p and for 4K alike; a full area average of a 1080p frame reads
   all 6 MB and took ~35 ms).
2. **Light blur** (3x3 binomial): what the averaging left of sensor noise and JPEG blocks.
3. **Exposure compensation** instead of Frigate's contrast stretch. Frigate stretches each
   frame between rolling means of its 4th/96th percentiles over 50 frames: the percentiles are
   of the frame's *content* (a bright object entering moves them) and the rolling mean lags
   (a +0.5 %/frame drift leaves the stretch ~12 % behind, which then reads as motion). Here the
   frame is fitted against the background, pixel by pixel: frame ~= gain * background +
   offset, by least squares over the pixels that agree (iterated from gain 1, offset 0, so a
   moving object, an outlier, does not pull the fit). The fit is applied to the background,
   so drift, dusk and auto-exposure are absorbed on the frame they happen, whatever is
   moving. A step larger than `max_exposure_step` in one frame is not drift but an event
   (lights switched, IR cut filter): a global change.
4. **Threshold**, adaptive in two ways: relative to the scene's contrast (`threshold_fraction`
   of the background's 4th-96th percentile range: what Frigate's stretch + fixed 30/255 does,
   so a dim scene is as sensitive as a bright one) and to its noise (`noise_sigmas` times a
   robust global noise estimate, 1.4826 * median |frame - background|, smoothed): a noisy,
   low-contrast night camera raises its own threshold instead of storming. A global estimate,
   not a per-pixel variance: per-pixel variance learns busy walkways as "noisy" and goes
   blind exactly where people walk. `threshold_floor` keeps a flat synthetic scene sane.
5. **Regions**: the changed pixels are dilated once, labelled (8-connected components, in
   numpy: run-length union-find), and components with at least `min_area_fraction` of the
   small frame *changed* (not dilated) become boxes. Boxes are clustered: two clusters merge
   when their context-padded boxes touch and the box around both is at most
   `cluster_max_growth` times their areas together (two people side by side make one crop,
   two groups across a hall stay two; Frigate's rule, each member at least 5 % of the merged
   box, chains a busy hall into one crop of most of the frame). Each cluster becomes a
   region: padded by `context_scale`, square in pixels where the frame allows (shifted, not
   cut, at the edges), never smaller than `min_region_fraction` of the shorter side.
   **The cap**: clusters are ranked by changed pixels. Beyond 2 x `max_regions` of them, the
   smallest join one catch-all cluster (scatter); then, while more than `max_regions`
   remain, the two whose merged box wastes least area (its area minus theirs) merge. So
   every changed pixel stays inside some region (nothing is silently dropped), neighbours
   join before strangers, and a frame never costs more than `max_regions` crops. Scattered
   flicker (heavy rain, snow, insects at an IR lamp) costs at most that, never a storm.
6. **Background**: a running average updated only where nothing changed, so a moving object
   leaves no trail, at `background_alpha` (faster while the exposure moves: pixels that do
   not follow the global fit, such as those near saturation, must not fall behind). A pixel
   that stays changed for `absorb_after_frames` consecutive frames is copied into the
   background: a parked car stops being motion after exactly that many frames (Frigate
   absorbs it through the average, after a time that depends on its contrast).
7. **Global changes**: when more than `global_fraction` of the small frame changed, or the
   exposure jumped, the frame is reported as a `global_change` (a full-frame view, no
   regions) and becomes the background; the detector then calibrates: it learns fast
   (`calibrating_alpha`) and everywhere for at least `calibration_frames` frames, so what
   stood in that frame fades instead of staying as a ghost, and until a frame changes less
   than `calibrated_fraction` (Frigate's rule; a scene that stays busy ends it after 5 x
   `calibration_frames`). Regions are still reported meanwhile: a person walking in right
   after the lights came on is not missed. The first frame of a camera, or a new frame size,
   starts the same way.
8. **Full-frame views** (`embed_full`): on the first frame, at each global change, and every
   `full_frame_interval_ms` of capture time (a clock that goes backwards refreshes too), so
   context that no region shows, and slow changes absorbed into the background, still
   reach the encoder.

`select_regions` then joins the motion regions with an object detector's boxes (when the
encoder has one): a detector box counts only where it lies in motion (a parked car's box is
not re-embedded every frame), duplicates merge, detector boxes come first in the cap.

`ChangeDetector.to_state()` / `restore()` snapshot the background (float32, zlib + base64:
~70 KB for 100x178) and the counters, so a restarted detector continues exactly.

This file is over 400 lines because the change detector, its labelling and the region
geometry are one contract that the detector service, the scan and the view book import from
one place; the connected-components labelling (`_label_components`) is the part that could
move out if anything else needs it.
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

# ITU-R BT.601 luma weights: what "grey" means for JPEG and for OpenCV's cvtColor.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_VOID3 = np.dtype((np.void, 3))  # one RGB pixel as one element: a 3x faster column gather
_MAD_TO_SIGMA = 1.4826  # median |x| of a normal distribution is 0.6745 sigma
_SATURATED = 250.0  # pixels at or above this may be clipped: they do not inform the exposure fit
_DRIFT_LEARNING = 20.0  # background rate per unit of exposure step (see ChangeDetector.observe)
_CALIBRATION_LIMIT = 5  # calibration ends by 5 x calibration_frames even if the scene stays busy
_MAX_CLUSTERED = 48  # clustering is quadratic; past this many components the rest is scatter


# --- geometry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A rectangle in fractions of the frame: x to the right, y down, both in [0, 1].

    Coordinates are clipped to [0, 1] (a detector's box may stick out by a rounding error);
    an inverted or non-finite box is an error."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        values = (self.x0, self.y0, self.x1, self.y1)
        if not all(math.isfinite(float(v)) for v in values):
            raise ValueError(f"Box needs finite coordinates, got {values!r}")
        x0, y0, x1, y1 = (min(1.0, max(0.0, float(v))) for v in values)
        if x1 < x0 or y1 < y0:
            raise ValueError(f"Box needs x0 <= x1 and y0 <= y1, got {values!r}")
        for name, value in zip(("x0", "y0", "x1", "y1"), (x0, y0, x1, y1), strict=True):
            object.__setattr__(self, name, value)

    @classmethod
    def from_pixels(cls, x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box:
        return cls(x0 / width, y0 / height, x1 / width, y1 / height)

    @classmethod
    def enclosing(cls, boxes: Sequence[Box]) -> Box:
        """The smallest box around all of `boxes` (at least one)."""
        return cls(
            min(b.x0 for b in boxes),
            min(b.y0 for b in boxes),
            max(b.x1 for b in boxes),
            max(b.y1 for b in boxes),
        )

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def intersection(self, other: Box) -> float:
        """Area (in frame fractions) that both boxes cover."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0.0

    def touches(self, other: Box) -> bool:
        """Whether the boxes overlap or share an edge."""
        return self.x0 <= other.x1 and other.x0 <= self.x1 and self.y0 <= other.y1 and other.y0 <= self.y1

    def iou(self, other: Box) -> float:
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def overlap_of_smaller(self, other: Box) -> float:
        """Intersection over the smaller box's area: 1.0 when one contains the other."""
        smaller = min(self.area, other.area)
        return self.intersection(other) / smaller if smaller > 0 else 0.0

    def fraction_inside(self, other: Box) -> float:
        """How much of this box lies inside `other` (0..1)."""
        return self.intersection(other) / self.area if self.area > 0 else 0.0

    def union(self, other: Box) -> Box:
        """The smallest box around both (what merging two boxes makes)."""
        return Box.enclosing((self, other))

    def scaled(self, factor: float) -> Box:
        """This box grown (or shrunk) by `factor` around its centre, clipped to the frame."""
        cx, cy = self.centre
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return Box(cx - hw, cy - hh, cx + hw, cy + hh)

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in pixels of a width x height frame, rounded outwards, in bounds, so
        that `frame[y0:y1, x0:x1]` holds the whole box (at least one pixel)."""
        x0 = min(width - 1, math.floor(self.x0 * width + 1e-9))
        y0 = min(height - 1, math.floor(self.y0 * height + 1e-9))
        x1 = max(x0 + 1, min(width, math.ceil(self.x1 * width - 1e-9)))
        y1 = max(y0 + 1, min(height, math.ceil(self.y1 * height - 1e-9)))
        return x0, y0, x1, y1


def square_region(
    box: Box, frame_aspect: float | None, context_scale: float, min_side_fraction: float
) -> Box:
    """The region to embed for `box`: grown by `context_scale`, square in pixels, at least
    `min_side_fraction` of the frame's shorter side, shifted (not cut) to stay in the frame.

    Square where the frame allows: the square is at most the frame's shorter side (the
    context is what gives way), and a box longer than that keeps its own length on that axis
    (the object itself is never cut).

    frame_aspect: width / height of the frame; None treats the frame as square (fractions),
    which keeps the box in the frame but square in pixels only for a square frame."""
    aspect = 1.0 if frame_aspect is None else float(frame_aspect)
    # Work in units of the frame's height: the frame is [0, aspect] x [0, 1].
    cx, cy = box.centre[0] * aspect, box.centre[1]
    box_w, box_h = box.width * aspect, box.height
    shorter = min(aspect, 1.0)
    side = min(max(box_w * context_scale, box_h * context_scale, min_side_fraction * shorter), shorter)
    side_x, side_y = min(max(side, box_w), aspect), min(max(side, box_h), 1.0)
    x0 = min(max(cx - side_x / 2, 0.0), aspect - side_x)
    y0 = min(max(cy - side_y / 2, 0.0), 1.0 - side_y)
    return Box(x0 / aspect, y0, (x0 + side_x) / aspect, y0 + side_y)


def crop_box_pixels(box: Box, width: int, height: int, min_side_px: int = 224) -> tuple[int, int, int, int]:
    """The square pixel crop (x0, y0, x1, y1) to cut for `box` from a width x height frame, for
    an encoder whose input is `min_side_px` square (224 for CLIP): around the box's centre, as
    large as the box's longer side and never smaller than `min_side_px` (upscaling a small crop
    adds no detail), shifted into the frame. Square where the frame allows: at most the
    frame's shorter side, except along a box longer than that, which is never cut."""
    if width <= 0 or height <= 0:
        raise ValueError(f"need a frame of positive size, got {width}x{height}")
    x0, y0, x1, y1 = box.x0 * width, box.y0 * height, box.x1 * width, box.y1 * height
    side = min(max(x1 - x0, y1 - y0, float(min_side_px), 1.0), min(width, height))
    side_x = min(round(max(side, x1 - x0)), width)
    side_y = min(round(max(side, y1 - y0)), height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(round(cx - side_x / 2), 0), width - side_x)
    top = min(max(round(cy - side_y / 2), 0), height - side_y)
    return left, top, left + side_x, top + side_y


# --- the small grey frame ---------------------------------------------------------------


@lru_cache(maxsize=64)
def _sample_positions(size: int, cells: int, samples: int) -> np.ndarray:
    """`samples` evenly spaced positions in each of `cells` equal cells of `size` pixels."""
    positions = (np.arange(cells * samples) + 0.5) * (size / (cells * samples))
    out = np.minimum(positions.astype(np.intp), size - 1)
    out.flags.writeable = False
    return out


def small_grey(rgb: np.ndarray, height: int = 100, samples: int = 4) -> np.ndarray:
    """A small grey copy of an RGB uint8 frame (H, W, 3), `height` rows high (float32, 0..255,
    the frame's aspect ratio), for the change detector. A 2-D array is taken as grey already.

    Each output pixel is the mean of a samples x samples grid spread evenly over its cell of
    the frame: an area average in effect (noise falls by `samples`), at a cost that depends on
    the output size only, not the camera's resolution. A frame lower than `height` keeps its
    own height."""
    frame = np.asarray(rgb)
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise ValueError(f"small_grey needs an (H, W, 3) RGB or (H, W) grey frame, got {frame.shape}")
    if height < 1 or not 1 <= samples <= 16:  # 16 samples of 255 still sum within uint16
        raise ValueError("small_grey needs height >= 1 and 1 <= samples <= 16")
    frame_h, frame_w = frame.shape[:2]
    out_h = min(height, frame_h)
    out_w = max(1, round(frame_w * out_h / frame_h))
    rows = _sample_positions(frame_h, out_h, samples)
    cols = _sample_positions(frame_w, out_w, samples)
    picked_rows = np.take(frame, rows, axis=0)
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
        # Gather whole RGB pixels (3-byte elements) rather than bytes, then sum the samples in
        # uint16 (16 x 255 fits) before any float: few, small temporaries are what make it fast.
        pixels = np.take(picked_rows.view(_VOID3).reshape(len(rows), frame_w), cols, axis=1)
        cells = pixels.view(np.uint8).reshape(out_h, samples, out_w * samples * 3)
        row_sums = cells[:, 0].astype(np.uint16)
        for i in range(1, samples):
            row_sums += cells[:, i]
        row_sums = row_sums.reshape(out_h, out_w, samples, 3)
        sums = row_sums[:, :, 0].astype(np.float32)
        for i in range(1, samples):
            sums += row_sums[:, :, i]
        grey: np.ndarray = sums @ (_LUMA / np.float32(samples * samples))
        return grey
    picked = np.take(picked_rows, cols, axis=1).astype(np.float32)
    grey = picked[..., :3] @ _LUMA if picked.ndim == 3 else picked
    downsampled: np.ndarray = grey.reshape(out_h, samples, out_w, samples).mean(axis=(1, 3), dtype=np.float32)
    return downsampled


# --- the change detector ----------------------------------------------------------------


@dataclass(frozen=True)
class RegionSettings:
    """The change detector's and region selection's settings (see the module docstring).

    grey_height: rows of the small grey frame (`small_grey(rgb, grey_height)`); Frigate's 100:
        a 16:9 frame is 100x178 = 17,800 pixels, 1-2 ms of numpy per frame.
    background_alpha: the calibrated background's running-average rate: lighting it has not
        compensated is learnt over ~1/alpha = 50 frames.
    calibrating_alpha: the rate while calibrating (Frigate's 0.2), after the first frames since
        the restart, which are averaged (1/2, 1/3, 1/4): a settling scene is learnt in ~5
        frames, and the restart frame keeps 8 % of its weight after calibration_frames.
    threshold_fraction: a pixel changed when it differs from the background by this fraction
        of the background's 4th-96th percentile range (Frigate's 30/255 of a stretched frame).
    threshold_floor: ... and by at least this many grey levels (a flat scene has no range).
    noise_sigmas: ... and by this many robust noise sigmas: 4 sigma flips ~1 pixel in 16,000
        of pure Gaussian noise, and a noisy camera's threshold rises with its noise.
    noise_alpha: how fast the noise estimate follows (~10 frames).
    max_exposure_step: the largest brightness change in one frame (relative, at the
        background's mean) compensated as exposure; more is a global change. Auto-exposure
        moves a few % per frame, a light switched on moves 50 % or more.
    min_area_fraction: a component counts when this fraction of the small frame changed in it
        (9 pixels of 17,800: a 3x3 patch, ~3 % of the frame's height across).
    absorb_after_frames: a pixel changed for this many consecutive frames joins the background
        (a parked car stops being motion): 20 frames is 10 s at 2 frames/s, long enough for
        a person pausing to stay visible, short enough that a parked car costs little.
    global_fraction: more than this fraction changed at once is a global change. Lower than
        Frigate's 0.8: an object filling 40 % of the view is better seen whole anyway, and a
        global change gives it a full-frame view.
    calibration_frames: after a restart (first frame, new size, global change) the background
        learns fast, everywhere, for at least this many frames, so what stood in the restart
        frame fades instead of lingering as a ghost (8 % of its contrast remains).
    calibrated_fraction: after those, calibrating ends on the first frame with less than this
        changed (Frigate's 5 %), or after 5 x calibration_frames in a scene that stays busy.
    max_regions: regions per frame, at most (encoder crops per frame, before any full view).
    context_scale: a region is its box grown this much (Frigate's 1.35), for context.
    min_region_fraction: a region's side is at least this fraction of the frame's shorter
        side: 216 px of a 1080p frame, about CLIP's 224 input, so a small object is
        zoomed in but not upscaled into blur.
    cluster_max_growth: two touching clusters merge only if the box around both is at most
        this many times their two boxes' areas: two people side by side make one crop (~1.2x),
        two groups across the hall stay two (Frigate's rule, each member >= 5 % of the merged
        box, let vtest's groups chain into one crop of most of the frame).
    full_frame_interval_ms: a full-frame view is due at least this often (capture time): 10 s
        is 5 % of frames at 2 frames/s, within the budget of a still hall.
    merge_iou: select_regions merges regions overlapping at least this much (IoU).
    proposal_min_overlap: a detector box counts when at least this fraction of it lies in a
        motion region (a parked car next to a walking person does not come along).
    """

    grey_height: int = 100
    background_alpha: float = 0.02
    calibrating_alpha: float = 0.2
    threshold_fraction: float = 0.12
    threshold_floor: float = 6.0
    noise_sigmas: float = 4.0
    noise_alpha: float = 0.1
    max_exposure_step: float = 0.25
    min_area_fraction: float = 0.0005
    absorb_after_frames: int = 20
    global_fraction: float = 0.4
    calibration_frames: int = 8
    calibrated_fraction: float = 0.05
    max_regions: int = 4
    context_scale: float = 1.35
    min_region_fraction: float = 0.2
    cluster_max_growth: float = 1.2
    full_frame_interval_ms: int = 10_000
    merge_iou: float = 0.5
    proposal_min_overlap: float = 0.5

    def __post_init__(self) -> None:
        fractions = {
            "background_alpha": self.background_alpha,
            "calibrating_alpha": self.calibrating_alpha,
            "threshold_fraction": self.threshold_fraction,
            "noise_alpha": self.noise_alpha,
            "min_area_fraction": self.min_area_fraction,
            "global_fraction": self.global_fraction,
            "calibrated_fraction": self.calibrated_fraction,
            "min_region_fraction": self.min_region_fraction,
            "merge_iou": self.merge_iou,
            "proposal_min_overlap": self.proposal_min_overlap,
        }
        for name, value in fractions.items():
            if not 0 < value <= 1:
                raise ValueError(f"RegionSettings.{name} must be in (0, 1], got {value!r}")
        if not self.calibrated_fraction < self.global_fraction:
            raise ValueError("RegionSettings: need calibrated_fraction < global_fraction")
        if self.grey_height < 8 or self.max_regions < 1 or self.calibration_frames < 1:
            raise ValueError(
                "RegionSettings: need grey_height >= 8, max_regions >= 1, calibration_frames >= 1"
            )
        if not 1 <= self.absorb_after_frames <= 255:  # counted in uint8
            raise ValueError("RegionSettings: need 1 <= absorb_after_frames <= 255")
        if self.threshold_floor <= 0 or self.noise_sigmas <= 0 or self.max_exposure_step <= 0:
            raise ValueError("RegionSettings: threshold_floor, noise_sigmas, max_exposure_step must be > 0")
        if self.context_scale < 1 or self.cluster_max_growth < 1 or self.full_frame_interval_ms <= 0:
            raise ValueError(
                "RegionSettings: need context_scale >= 1, cluster_max_growth >= 1, full_frame_interval_ms > 0"
            )


@dataclass(frozen=True)
class RegionPlan:
    """What to embed of one frame.

    still: nothing to embed (no motion, no full view due): the camera's last embeddings stand.
    global_change: the scene changed as a whole (lights, shake, IR cut, PTZ): every older
        region embedding is of another picture; `embed_full` is set and `motion` is empty.
    motion: regions that changed, ready to embed (square, padded), largest change first.
    embed_full: a full-frame view is due (first frame or new size, global change, and every
        `full_frame_interval_ms`).
    changed_fraction: the fraction of the small frame that differed from the background.
    calibrating: the background is being relearnt after a global change (or a new camera);
        regions are still reported meanwhile.
    """

    still: bool
    global_change: bool
    motion: tuple[Box, ...]
    embed_full: bool
    changed_fraction: float
    calibrating: bool = False


class ChangeDetector:
    """One camera's background model and change detection; see the module docstring.

    Feed `observe` each frame's small grey copy in capture order."""

    _STATE_VERSION = 1

    def __init__(self, settings: RegionSettings | None = None) -> None:
        self.settings = settings or RegionSettings()
        self._background: np.ndarray | None = None  # float32, blurred, in the latest exposure
        self._persist: np.ndarray | None = None  # uint8: consecutive frames each pixel changed
        self._noise: float | None = None  # robust sigma of frame - background, grey levels
        self._calibrating = True
        self._calibration_age = 0  # frames since the last restart, while calibrating
        self._last_full_ts: int | None = None

    @property
    def frame_aspect(self) -> float | None:
        """Width / height of the frames seen (of the small grey copy), None before the first."""
        if self._background is None:
            return None
        return float(self._background.shape[1] / self._background.shape[0])

    @property
    def calibrating(self) -> bool:
        return self._calibrating

    def observe(self, ts_ms: int, grey: np.ndarray) -> RegionPlan:
        """Take one frame's small grey copy (`small_grey`) at capture time `ts_ms`; say what
        to embed of it. A frame of another size than the last restarts the model."""
        ts = int(ts_ms)
        image = np.asarray(grey, dtype=np.float32)
        if image.ndim != 2 or min(image.shape) < 3:
            raise ValueError(f"observe needs a 2-D grey frame of at least 3x3, got {image.shape}")
        frame = _blur(image)
        if self._background is None or self._background.shape != frame.shape:
            self._restart(frame, ts)
            return RegionPlan(False, False, (), True, 0.0, calibrating=True)
        s = self.settings
        background = self._background
        low, high = _percentiles(background, 4, 96)
        band = self._threshold(high - low, self._noise)
        gain, offset = _fit_exposure(background, frame, band)
        expected = np.clip(gain * background + offset, 0.0, 255.0)
        residual = frame - expected
        frame_noise = _MAD_TO_SIGMA * float(np.median(np.abs(residual)))
        noise = (
            frame_noise if self._noise is None else self._noise + s.noise_alpha * (frame_noise - self._noise)
        )
        changed = np.abs(residual) > self._threshold(gain * (high - low), noise)
        changed_fraction = float(np.count_nonzero(changed)) / changed.size
        mean_level = max(float(background.mean()), 1.0)
        exposure_step = abs((gain - 1.0) * mean_level + offset) / mean_level
        if changed_fraction > s.global_fraction or exposure_step > s.max_exposure_step:
            self._restart(frame, ts)
            return RegionPlan(False, True, (), True, changed_fraction, calibrating=True)
        self._noise = noise
        if self._calibrating:
            # Learn fast and everywhere: what stood in the restart frame (a person walking)
            # fades from the background within a few frames instead of staying as a ghost.
            self._calibration_age += 1
            # The mean of the frames since the restart (1/2, 1/3, ...) until that is slower
            # than calibrating_alpha: the restart frame's weight falls fastest at first.
            alpha = max(s.calibrating_alpha, 1.0 / (self._calibration_age + 1))
            self._background = expected + alpha * (frame - expected)
            settled = changed_fraction < s.calibrated_fraction
            if self._calibration_age >= s.calibration_frames and (
                settled or self._calibration_age >= _CALIBRATION_LIMIT * s.calibration_frames
            ):
                self._calibrating = False
        else:
            assert self._persist is not None  # set together with the background (_restart, restore)
            persist = np.where(changed, np.minimum(self._persist.astype(np.int16) + 1, 255), 0)
            persist = persist.astype(np.uint8)
            absorbed = persist >= s.absorb_after_frames
            if absorbed.any():
                expected[absorbed] = frame[absorbed]
                persist[absorbed] = 0
                changed &= ~absorbed
            self._persist = persist
            # Only unchanged pixels learn, so a moving object leaves no trail in the background.
            # While the exposure moves, pixels that do not follow the global fit (near
            # saturation, light sources) drift from it at up to `exposure_step` of their level
            # per frame; learning ~20x that keeps their lag under a few grey levels.
            alpha = min(s.calibrating_alpha, max(s.background_alpha, _DRIFT_LEARNING * exposure_step))
            self._background = np.where(changed, expected, expected + alpha * (frame - expected))
        motion = self._motion_regions(changed)
        embed_full = self._last_full_ts is None or not 0 <= ts - self._last_full_ts < s.full_frame_interval_ms
        if embed_full:  # a clock that went backwards also refreshes
            self._last_full_ts = ts
        still = not motion and not embed_full
        return RegionPlan(still, False, motion, embed_full, changed_fraction, self._calibrating)

    def _threshold(self, contrast_range: float, noise: float | None) -> float:
        s = self.settings
        noise_term = 0.0 if noise is None else s.noise_sigmas * noise
        return max(s.threshold_floor, s.threshold_fraction * contrast_range, noise_term)

    def _restart(self, frame: np.ndarray, ts: int) -> None:
        """The frame becomes the background; calibrate from it (first frame, new size, global
        change). The noise estimate is kept: it is the camera's, not the scene's."""
        self._background = frame.copy()
        self._persist = np.zeros(frame.shape, np.uint8)
        self._calibrating = True
        self._calibration_age = 0
        self._last_full_ts = ts

    def _motion_regions(self, changed: np.ndarray) -> tuple[Box, ...]:
        s = self.settings
        height, width = changed.shape
        min_changed = max(1, math.ceil(s.min_area_fraction * changed.size))
        blobs = [
            _Blob(Box.from_pixels(x0, y0, x1, y1, width, height), count)
            for count, y0, x0, y1, x1 in _label_components(_dilate(changed), changed)
            if count >= min_changed
        ]
        if not blobs:
            return ()
        blobs.sort(key=lambda blob: -blob.changed)
        # Clustering is quadratic: past a few dozen components the rest are scatter anyway.
        clusters = (
            _cluster(blobs[:_MAX_CLUSTERED], s.context_scale, s.cluster_max_growth) + blobs[_MAX_CLUSTERED:]
        )
        clusters = _cap(sorted(clusters, key=lambda blob: -blob.changed), s.max_regions)
        aspect = width / height
        return tuple(square_region(b.box, aspect, s.context_scale, s.min_region_fraction) for b in clusters)

    # --- snapshots -------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot: restored into a detector with the same settings, it
        continues exactly (the arrays travel as zlib-compressed base64 of their bytes)."""
        return {
            "version": self._STATE_VERSION,
            "background": None if self._background is None else _encode_array(self._background),
            "persist": None if self._persist is None else _encode_array(self._persist),
            "noise": self._noise,
            "calibrating": self._calibrating,
            "calibration_age": self._calibration_age,
            "last_full_ts": self._last_full_ts,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from `to_state()`'s snapshot (the settings stay this detector's own)."""
        try:
            if state["version"] != self._STATE_VERSION:
                raise ValueError(f"version {state['version']!r}")
            background = None if state["background"] is None else _decode_array(state["background"])
            persist = None if state["persist"] is None else _decode_array(state["persist"])
            if (background is None) != (persist is None) or (
                background is not None
                and persist is not None
                and (background.shape != persist.shape or background.dtype != np.float32)
            ):
                raise ValueError("background and persist do not match")
            noise = None if state["noise"] is None else float(state["noise"])
            calibrating = bool(state["calibrating"])
            calibration_age = int(state["calibration_age"])
            last_full_ts = None if state["last_full_ts"] is None else int(state["last_full_ts"])
        except (KeyError, ValueError, TypeError, zlib.error) as error:
            raise ValueError(f"not a ChangeDetector snapshot: {error}") from None
        self._background, self._persist, self._noise = background, persist, noise
        self._calibrating, self._calibration_age = calibrating, calibration_age
        self._last_full_ts = last_full_ts


def _encode_array(array: np.ndarray) -> dict[str, Any]:
    data = base64.b64encode(zlib.compress(np.ascontiguousarray(array).tobytes(), 1)).decode("ascii")
    return {"dtype": array.dtype.str, "shape": list(array.shape), "data": data}


def _decode_array(state: dict[str, Any]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(state["data"], validate=True))
    return np.frombuffer(raw, dtype=np.dtype(state["dtype"])).reshape(state["shape"]).copy()


# --- image steps --------------------------------------------------------------------------


def _blur(image: np.ndarray) -> np.ndarray:
    """3x3 binomial blur ([1, 2, 1] / 4 each way), edges replicated."""
    padded = np.pad(image, 1, mode="edge")
    rows = (padded[:, :-2] + padded[:, 2:]) * 0.25 + padded[:, 1:-1] * 0.5
    blurred: np.ndarray = (rows[:-2] + rows[2:]) * 0.25 + rows[1:-1] * 0.5
    return blurred


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 dilation of a boolean mask (once, as Frigate): joins the pieces of one object."""
    across = mask.copy()
    across[:, 1:] |= mask[:, :-1]
    across[:, :-1] |= mask[:, 1:]
    out = across.copy()
    out[1:] |= across[:-1]
    out[:-1] |= across[1:]
    return out


def _percentiles(image: np.ndarray, low: float, high: float) -> tuple[float, float]:
    flat = image.ravel()
    k_low = int(round(low / 100 * (flat.size - 1)))
    k_high = int(round(high / 100 * (flat.size - 1)))
    part = np.partition(flat, (k_low, k_high))
    return float(part[k_low]), float(part[k_high])


def _fit_exposure(background: np.ndarray, frame: np.ndarray, band: float) -> tuple[float, float]:
    """(gain, offset) with frame ~= gain * background + offset over the pixels that agree.

    Starts from the identity (no exposure change, the usual case) and refits three times on
    the pixels within `band` of the current fit: a moving object is an outlier from the start
    and never pulls the fit. Too few agreeing pixels (< 20 %): no compensation, the frame
    shows what changed. A background with little contrast fits an offset only."""
    gain, offset = 1.0, 0.0
    usable = (frame < _SATURATED) & (background < _SATURATED)
    for _ in range(3):
        inliers = usable & (np.abs(frame - (gain * background + offset)) < band)
        if np.count_nonzero(inliers) < 0.2 * frame.size:
            break
        x, y = background[inliers].astype(np.float64), frame[inliers].astype(np.float64)
        mean_x, mean_y = x.mean(), y.mean()
        var_x = float(np.mean((x - mean_x) ** 2))
        if var_x < 25.0:  # a std of under 5 grey levels says nothing reliable about gain
            gain, offset = 1.0, float(mean_y - mean_x)
        else:
            gain = float(np.mean((x - mean_x) * (y - mean_y)) / var_x)
            offset = float(mean_y - gain * mean_x)
    return gain, offset


# --- components and clusters ------------------------------------------------------------


@dataclass(frozen=True)
class _Blob:
    """A box of changed pixels (a component or a cluster of them)."""

    box: Box
    changed: int  # changed (undilated) pixels in it


def _label_components(mask: np.ndarray, weight: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """8-connected components of `mask`: (pixels of `weight` in it, y0, x0, y1, x1) each,
    with exclusive ends, in pixels.

    Run-length labelling: each row's runs of set pixels are found with numpy, runs of
    adjacent rows that touch (8-connectivity: they overlap or meet at a corner) are joined
    by a vectorised union-find (hook to the smaller root, then compress, until stable)."""
    height, width = mask.shape
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    run_rows, run_starts = np.nonzero(edges == 1)
    _, run_ends = np.nonzero(edges == -1)  # exclusive; np.nonzero is row-major, so they pair up
    n = run_rows.size
    if n == 0:
        return []
    # Runs touching run r in the next row form a contiguous range of the (row-major sorted)
    # runs: those with end >= start(r) and start <= end(r), in row + 1.
    stride = width + 2
    start_keys = run_rows * stride + run_starts
    end_keys = run_rows * stride + run_ends
    next_row = (run_rows + 1) * stride
    first = np.searchsorted(end_keys, next_row + run_starts, side="left")
    last = np.searchsorted(start_keys, next_row + run_ends, side="right")
    counts = np.maximum(last - first, 0)
    source = np.repeat(np.arange(n), counts)
    target = (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(first, counts)
    )
    parent = np.arange(n)
    while source.size:
        root_s, root_t = parent[source], parent[target]
        joined = root_s != root_t
        if not joined.any():
            break
        low, high = np.minimum(root_s, root_t)[joined], np.maximum(root_s, root_t)[joined]
        np.minimum.at(parent, high, low)
        while True:
            compressed = parent[parent]
            if np.array_equal(compressed, parent):
                break
            parent = compressed
    labels, run_label = np.unique(parent, return_inverse=True)
    cumulative = np.concatenate([np.zeros((height, 1), np.int64), np.cumsum(weight, axis=1)], axis=1)
    run_weight = cumulative[run_rows, run_ends] - cumulative[run_rows, run_starts]
    k = labels.size
    weights = np.bincount(run_label, weights=run_weight, minlength=k).astype(np.int64)
    y0 = np.full(k, height)
    x0 = np.full(k, width)
    y1 = np.zeros(k, np.intp)
    x1 = np.zeros(k, np.intp)
    np.minimum.at(y0, run_label, run_rows)
    np.minimum.at(x0, run_label, run_starts)
    np.maximum.at(y1, run_label, run_rows + 1)
    np.maximum.at(x1, run_label, run_ends)
    return list(zip(weights.tolist(), y0.tolist(), x0.tolist(), y1.tolist(), x1.tolist(), strict=True))


def _cluster(blobs: list[_Blob], context_scale: float, max_growth: float) -> list[_Blob]:
    """Merge blobs whose context-padded boxes touch, as long as the merged box is at most
    `max_growth` times their two boxes' areas together, until nothing merges."""
    clusters = list(blobs)
    merged = True
    while merged:
        merged = False
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                a, b = clusters[i], clusters[j]
                if not a.box.scaled(context_scale).touches(b.box.scaled(context_scale)):
                    continue
                box = a.box.union(b.box)
                if box.area > max_growth * (a.box.area + b.box.area):
                    continue
                clusters[i] = _Blob(box, a.changed + b.changed)
                del clusters[j]
                merged = True
                break
            if merged:
                break
    return clusters


def _cap(clusters: list[_Blob], max_regions: int) -> list[_Blob]:
    """At most `max_regions` blobs covering every one of `clusters` (ranked by changed pixels).

    Beyond 2 x max_regions, the smallest join one catch-all blob (scatter: rain, snow). Then,
    while too many remain, the two whose merged box wastes least area (its area minus theirs)
    merge: neighbours join first, and no changed pixel is left out of every region."""
    if len(clusters) <= max_regions:
        return clusters
    keep = 2 * max_regions
    if len(clusters) > keep:
        rest = clusters[keep - 1 :]
        catch_all = _Blob(Box.enclosing([b.box for b in rest]), sum(b.changed for b in rest))
        clusters = clusters[: keep - 1] + [catch_all]
    clusters = list(clusters)
    while len(clusters) > max_regions:
        best: tuple[float, int, int] | None = None
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                box_a, box_b = clusters[i].box, clusters[j].box
                waste = box_a.union(box_b).area - box_a.area - box_b.area
                if best is None or waste < best[0]:
                    best = (waste, i, j)
        assert best is not None  # more than max_regions >= 1 clusters: at least one pair
        _, i, j = best
        a, b = clusters[i], clusters[j]
        clusters[i] = _Blob(a.box.union(b.box), a.changed + b.changed)
        del clusters[j]
    return sorted(clusters, key=lambda blob: -blob.changed)


# --- final regions ----------------------------------------------------------------------


def select_regions(
    motion: Sequence[Box],
    proposals: Sequence[Box],
    settings: RegionSettings | None = None,
    *,
    frame_aspect: float | None = None,
) -> tuple[Box, ...]:
    """The regions to embed for one frame, from its motion regions (`RegionPlan.motion`) and an
    object detector's boxes on it (tight boxes, in frame fractions; may be empty).

    1. a detector box counts when at least `proposal_min_overlap` of it lies inside one motion
       region (a still parked car's box is not re-embedded every frame);
    2. each counted box becomes a region (`square_region`: padded by `context_scale`, square
       where the frame allows, at least `min_region_fraction` of the shorter side); detector
       regions overlapping at least `merge_iou` (IoU) merge into one around both;
    3. a motion region that duplicates a detector region (IoU >= `merge_iou`, or inside it)
       is dropped: the detector's is tighter on the object;
    4. the cap: detector regions first (most inside motion, then largest), then the motion
       regions in their order (largest change first), `max_regions` in all.

    frame_aspect: the frame's width / height, for squares in pixels; None sizes regions in
    frame fractions (`crop_box_pixels` still cuts square pixel crops)."""
    s = settings or RegionSettings()
    motion = tuple(motion)

    def in_motion(box: Box) -> float:
        return max((box.fraction_inside(region) for region in motion), default=0.0)

    def region(box: Box) -> Box:
        return square_region(box, frame_aspect, s.context_scale, s.min_region_fraction)

    counted = [(in_motion(box), box) for box in proposals if box.area > 0]
    counted = [(overlap, box) for overlap, box in counted if overlap >= s.proposal_min_overlap]
    counted.sort(key=lambda item: (-item[0], -item[1].area))
    detected: list[tuple[Box, Box]] = []  # (tight box or merged tight boxes, its region)
    for _, box in counted:
        candidate = region(box)
        for k, (tight, existing) in enumerate(detected):
            if candidate.iou(existing) >= s.merge_iou:
                merged = tight.union(box)
                detected[k] = (merged, region(merged))
                break
        else:
            detected.append((box, candidate))
    chosen = [existing for _, existing in detected]
    for box in motion:
        if any(box.iou(other) >= s.merge_iou or box.fraction_inside(other) >= 0.9 for other in chosen):
            continue
        chosen.append(box)
    return tuple(chosen[: s.max_regions])
