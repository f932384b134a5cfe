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

The package, one concept a module:

- `geometry`: `Box`, `square_region`, `crop_box_pixels`;
- `grey`: `small_grey` (step 1);
- `settings`: `RegionSettings`, every step's knobs;
- `change_detector`: `ChangeDetector` and its `RegionPlan` (steps 2-4, 6-8, snapshots);
- `components`: labelling, clustering and the cap, the changed pixels' regions (step 5);
- `selection`: `select_regions`.
"""

from vigil.pipelines.regions.change_detector import ChangeDetector, RegionPlan
from vigil.pipelines.regions.geometry import Box, crop_box_pixels, square_region
from vigil.pipelines.regions.grey import small_grey
from vigil.pipelines.regions.selection import select_regions
from vigil.pipelines.regions.settings import RegionSettings

__all__ = [
    "Box",
    "ChangeDetector",
    "RegionPlan",
    "RegionSettings",
    "crop_box_pixels",
    "select_regions",
    "small_grey",
    "square_region",
]
