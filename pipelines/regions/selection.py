"""The regions to embed of one frame: its motion regions joined with an object detector's
boxes (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

from vigil.pipelines.regions.geometry import Box, square_region
from vigil.pipelines.regions.settings import RegionSettings


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
