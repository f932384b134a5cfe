"""One camera's background model: which parts of its frame changed (no I/O).

`ChangeDetector.observe` takes each frame's small grey copy (`grey.small_grey`) and answers with
a `RegionPlan`; the method (exposure fit, adaptive threshold, background, global changes,
full-frame views) is steps 2-4 and 6-8 of the package docstring, the regions (step 5) are
`components.motion_regions`.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.pipelines.regions.components import motion_regions
from vigil.pipelines.regions.geometry import Box
from vigil.pipelines.regions.settings import RegionSettings

_MAD_TO_SIGMA = 1.4826  # median |x| of a normal distribution is 0.6745 sigma
_SATURATED = 250.0  # pixels at or above this may be clipped: they do not inform the exposure fit
_DRIFT_LEARNING = 20.0  # background rate per unit of exposure step (see ChangeDetector.observe)
_CALIBRATION_LIMIT = 5  # calibration ends by 5 x calibration_frames even if the scene stays busy


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
    """One camera's background model and change detection; see the package docstring.

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
        motion = motion_regions(changed, s)
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
