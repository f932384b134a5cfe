"""Frames in, what the encoder makes of them out: regions planned per camera, embedded in one
batch across cameras.

    embedded, cost = embed_frames(encoder, [FrameWork(changes, ts_ms, pixels, views), ...], settings)

For each frame, its camera's change detector (`ChangeDetector`, pipelines/regions/: a live
camera's is its `CameraPipeline.changes`) says what changed. A still frame costs no model at
all: its last embeddings stand. For the others, in one batch over every camera:

1. the encoder's own object detector, when it has one (the offline encoder's COCO detector),
   runs on the frames that moved. What it finds inside a crop goes into that crop's
   embedding (`Encoder.embed_crops`); with `use_proposals` its boxes inside the motion are
   also regions of their own (`select_regions` merges and caps them with the motion boxes);
2. each region is cut out as a crop (`crop_box_pixels`: square, with context), and so is each
   region of the camera's view book where the motion stopped (views.py: what stayed, or the
   empty spot, replaces the last crop of what moved); all crops go through one
   `Encoder.embed_crops` call; the whole frames that are due (the low-rate full view, a
   global change) through one `Encoder.embed_images` call.

The live detector service and `replay_camera` both call this, so a replay measures the live
detector. Callers feed each camera's frames in capture order (the change detector is a state
machine), and only frames its pipeline will take (a redelivered frame must not move it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from vigil.models.encoder import Encoder, RegionProposal
from vigil.pipelines.detector import FrameEmbeddings
from vigil.pipelines.regions import (
    Box,
    ChangeDetector,
    RegionPlan,
    RegionSettings,
    crop_box_pixels,
    select_regions,
    small_grey,
)
from vigil.pipelines.views import ViewBook

# A crop is resized to the encoder's input anyway; below this it is mostly upscaled noise.
MIN_CROP_PX = 32
# A proposal belongs to a crop when at least this much of its box lies inside the crop.
PROPOSAL_INSIDE = 0.5
# When motion settles the whole frame is embedded again, at most this often per camera.
SETTLE_FULL_MS = 2_000


@dataclass(frozen=True)
class FrameWork:
    """One frame to embed: its camera's change detector, capture time and RGB uint8 pixels, and
    its camera's view book (whose regions where motion stopped are cut once more)."""

    changes: ChangeDetector
    ts_ms: int
    pixels: np.ndarray
    views: ViewBook | None = None


@dataclass
class EmbeddingCost:
    """What a batch cost: frames seen, still frames (no model), frames that ran a model at all
    (the "encoder calls" of the benchmarks), whole frames and crops embedded, and frames the
    object detector ran on."""

    frames: int = 0
    still: int = 0
    encoded_frames: int = 0
    full_views: int = 0
    crops: int = 0
    proposals: int = 0
    global_changes: int = 0
    crops_per_frame: list[int] = field(default_factory=list)

    def add(self, other: EmbeddingCost) -> None:
        for name in (
            "frames",
            "still",
            "encoded_frames",
            "full_views",
            "crops",
            "proposals",
            "global_changes",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.crops_per_frame.extend(other.crops_per_frame)


def plan_frames(work: Sequence[FrameWork]) -> list[RegionPlan]:
    """Each frame's plan from its camera's change detector (which moves on by one frame)."""
    return [item.changes.observe(item.ts_ms, small_grey(item.pixels)) for item in work]


def embed_frames(
    encoder: Encoder,
    work: Sequence[FrameWork],
    settings: RegionSettings,
    *,
    use_proposals: bool = False,
    plans: Sequence[RegionPlan] | None = None,
    regions: bool = True,
) -> tuple[list[FrameEmbeddings], EmbeddingCost]:
    """What the encoder makes of each frame of `work` (in its order); see the module docstring.

    plans: the frames' plans when the caller made them already (`plan_frames`, e.g. to shed
    load between planning and embedding); else they are made here.
    regions: False embeds every frame that is not still whole, as the detector did before
    regions (still frames still cost nothing)."""
    cost = EmbeddingCost(frames=len(work))
    plans = list(plans) if plans is not None else plan_frames(work)
    if not regions:
        plans = [
            plan
            if plan.still
            else replace(plan, motion=(), embed_full=True, global_change=plan.global_change)
            for plan in plans
        ]
    moving = [i for i, plan in enumerate(plans) if plan.motion]
    proposals: dict[int, list[RegionProposal]] = {}
    if encoder.proposes_regions and moving:
        found = encoder.propose_regions([work[i].pixels for i in moving])
        proposals = dict(zip(moving, found, strict=True))
        cost.proposals = len(moving)
    crops: list[np.ndarray] = []
    inside: list[list[RegionProposal]] = []  # per crop, the proposals it holds
    owners: list[tuple[int, Box, bool]] = []  # (frame, region, a settling crop)

    def cut(i: int, box: Box, settling: bool) -> None:
        height, width = work[i].pixels.shape[:2]
        x0, y0, x1, y1 = crop_box_pixels(box, width, height, MIN_CROP_PX)
        crops.append(work[i].pixels[y0:y1, x0:x1])
        crop = Box.from_pixels(x0, y0, x1, y1, width, height)
        inside.append(
            [p for p in proposals.get(i, ()) if Box(*p.box).fraction_inside(crop) >= PROPOSAL_INSIDE]
        )
        owners.append((i, box, settling))

    for i in moving:
        height, width = work[i].pixels.shape[:2]
        boxes = [Box(*p.box) for p in proposals.get(i, ())] if use_proposals else []
        for box in select_regions(plans[i].motion, boxes, settings, frame_aspect=width / height):
            cut(i, box, False)
    # Regions whose motion stopped are cut once more, as they look now (views.py), on their
    # camera's first frame of the batch where nothing moves there any more (a later frame of
    # the same batch would cut them again: its book has not taken the first frame's yet).
    settling: dict[int, set[Box]] = {}
    full = [i for i, plan in enumerate(plans) if plan.embed_full]
    refreshed: dict[int, int] = {}  # view book -> capture time of a full view asked for here
    for i, item in enumerate(work):
        if item.views is None or plans[i].global_change or not regions:
            continue
        done = settling.setdefault(id(item.views), set())
        settles = False
        for box in item.views.unsettled(plans[i].motion):
            if box not in done:
                done.add(box)
                cut(i, box, True)
                settles = True
        # The whole frame taken while the motion was on may show what has gone now (a large
        # object leaving): when motion settles, the full view is refreshed too, at most once
        # every SETTLE_FULL_MS per camera.
        last_full = refreshed.get(
            id(item.views), item.views.full.ts_ms if item.views.full is not None else None
        )
        if settles and i not in full and (last_full is None or item.ts_ms - last_full >= SETTLE_FULL_MS):
            full.append(i)
            refreshed[id(item.views)] = item.ts_ms
    full.sort()
    full_vectors = encoder.embed_images([work[i].pixels for i in full]) if full else None
    crop_vectors = encoder.embed_crops(crops, inside) if crops else None
    regions: list[list[tuple[Box, np.ndarray]]] = [[] for _ in work]
    settled: list[list[tuple[Box, np.ndarray]]] = [[] for _ in work]
    for (i, box, settling_crop), vector in zip(
        owners, crop_vectors if crop_vectors is not None else [], strict=True
    ):
        (settled if settling_crop else regions)[i].append((box, vector))
    full_of = dict(zip(full, full_vectors if full_vectors is not None else [], strict=True))
    embedded = [
        FrameEmbeddings(
            full=full_of.get(i),
            regions=tuple(regions[i]),
            global_change=plan.global_change,
            settled=tuple(settled[i]),
        )
        for i, plan in enumerate(plans)
    ]
    cost.still = sum(plan.still for plan in plans)
    cost.encoded_frames = sum(1 for i in range(len(work)) if i in full_of or regions[i] or settled[i])
    cost.full_views = len(full)
    cost.crops = len(crops)
    cost.global_changes = sum(plan.global_change for plan in plans)
    cost.crops_per_frame = [len(r) for r in regions]
    return embedded, cost
