"""The change detector's and region selection's settings (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegionSettings:
    """The change detector's and region selection's settings (see the package docstring).

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
