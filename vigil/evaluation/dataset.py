"""The evaluation's dev set: long camera streams of real footage with small real photos pasted in
for known spans, and the standing queries each camera registers (deterministic, from a seed).

It is built from the temporal scorer's material (vigil/model_tools/temporal/data/): the same real clips,
played forwards and backwards as one camera; the same real photos; the same split of footage
and photos into two sides that share nothing; the same `FrameRecipe` rendering. What differs is
what is measured: here every photo covers only 2-15 % of the frame's *area* (small objects, at
varied positions), events last 4-12 s with more than the detector's 10 s cooldown between them,
and each camera registers several standing queries at once, some of whose objects never appear.

Splits (data.SPLITS, renamed: "train" is the side tuning may look at):
    tune      hall 0-50 s, megamind 0-5.6 s, tree; photos chelsea, coffee, orange, kiwi,
              butterfly, astronaut, rocket, baboon
    heldout   hall 50-79.5 s, megamind 5.6-11.3 s, city; photos faust, motorcycle, apple,
              fruits, squirrel, messi (kept out of all tuning)

Each split has `STREAMS_PER_SPLIT` streams, two per background, sampled at 2 frames/s. A stream
shows three different objects, one of them twice (the two-event query), and registers the
three objects' queries plus `DISTRACTORS` queries whose objects never appear in it: up to two
objects pasted elsewhere in the same split, the rest never pasted anywhere ("a fire", ...). A
query whose truth one of the stream's photos leaves open (the apple photo is also "fruit") is
not registered on that stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np

from vigil.model_tools.temporal import data

FPS = 2.0  # examples/vigil.yaml samples every camera at 2 frames/s
STREAMS_PER_SPLIT = 6
EVENTS_PER_STREAM = 4  # three objects, one of them twice
DISTRACTORS = 4  # queries per stream: 3 present + 4 absent = 7
HARD_DISTRACTORS = 2  # of which this many are objects pasted in other streams of the split
WARMUP_S = (18.0, 24.0)  # first event: after the calibrator's 30-frame warm-up (15 s at 2 frames/s)
EVENT_S = (4.0, 12.0)
GAP_S = (13.0, 20.0)  # event end to next start: more than the 10 s cooldown
TAIL_S = 8.0
# Area of the frame a photo covers, in three buckets (the figures are reported per bucket).
SIZE_BUCKETS: dict[str, tuple[float, float]] = {
    "small": (0.02, 0.05),
    "medium": (0.05, 0.09),
    "large": (0.09, 0.15),
}
AREA_MARGIN = 0.003  # drawn this far inside a bucket, so pixel rounding never leaves it
CROP = ((0.0, 0.12), (0.88, 1.0))  # photo crop: corners drawn within these fractions
SPLITS: dict[str, tuple[str, int]] = {"tune": ("train", 20250301), "heldout": ("heldout", 20250302)}
LANGUAGES = ("en", "vi")
NEVER_PASTED = tuple(obj for obj in data.QUERIES if not any(obj in p.shows for p in data.PHOTOS.values()))


@dataclass(frozen=True)
class TruthEvent:
    """One pasted photo: which stream, which query object, when (capture ms; start = the first
    frame showing it, end = exclusive) and where (box: x0, y0, x1, y1 fractions of the frame)."""

    event_id: str
    stream: str
    split: str
    object: str
    photo: str
    start_ms: int
    end_ms: int
    box: tuple[float, float, float, float]
    area: float
    ordinal: int  # 1 or 2: which event of its object in the stream

    @property
    def size_bucket(self) -> str:
        return size_bucket(self.area)


@dataclass(frozen=True)
class DevStream:
    """One camera: its footage (a data.Sequence: one background piece, the events) and queries."""

    name: str
    split: str
    sequence: data.Sequence
    frame_size: tuple[int, int]  # width, height
    events: tuple[TruthEvent, ...]
    present: tuple[str, ...]  # objects shown
    distractors: tuple[str, ...]  # objects registered but never shown in this stream

    @property
    def background(self) -> data.Segment:
        return self.sequence.pieces[0].segment

    @property
    def objects(self) -> tuple[str, ...]:
        """The registered queries' objects (query ids), present ones first."""
        return self.present + self.distractors

    @property
    def two_event_object(self) -> str | None:
        return next((obj for obj in self.present if sum(e.object == obj for e in self.events) == 2), None)

    @property
    def frames(self) -> int:
        return len(self.sequence.times_s)

    @property
    def duration_ms(self) -> int:
        """Footage time: one frame period per frame."""
        return round(self.frames * 1000 / FPS)

    def ts_ms(self) -> list[int]:
        return [int(t) for t in self.sequence.ts_ms()]

    def query_texts(self, language: str) -> dict[str, str]:
        """Query id (the object) -> the text an operator registers in `language`."""
        column = LANGUAGES.index(language)
        return {obj: data.QUERIES[obj][column] for obj in self.objects}

    def recipes(self) -> list[data.FrameRecipe]:
        return data.frame_recipes(self.sequence)

    def describe(self) -> dict:
        segment = self.background
        return {
            "stream": self.name,
            "split": self.split,
            "background": {
                "clip": segment.clip,
                "span_s": [segment.start_s, segment.end_s],
                "offset_s": self.sequence.pieces[0].offset_s,
            },
            "frame_size": list(self.frame_size),
            "fps": FPS,
            "frames": self.frames,
            "duration_s": self.duration_ms / 1000,
            "first_ts_ms": self.ts_ms()[0],
            "queries": {lang: self.query_texts(lang) for lang in LANGUAGES},
            "present": list(self.present),
            "distractors": list(self.distractors),
            "two_event_query": self.two_event_object,
            "events": [event_json(e) for e in self.events],
        }


def event_json(event: TruthEvent) -> dict:
    return {
        "event_id": event.event_id,
        "object": event.object,
        "photo": event.photo,
        "start_ms": event.start_ms,
        "end_ms": event.end_ms,
        "box": [round(v, 4) for v in event.box],
        "area": round(event.area, 4),
        "size_bucket": event.size_bucket,
        "ordinal": event.ordinal,
    }


def size_bucket(area: float) -> str:
    for name, (low, high) in SIZE_BUCKETS.items():
        if low <= area < high or (name == "large" and area == high):
            return name
    raise ValueError(f"area {area:.4f} is outside every size bucket")


def photo_object(photo: str) -> str:
    """The query object a photo's event counts for: the first thing it shows."""
    return data.PHOTOS[photo].shows[0]


def claimed(photo: str) -> set[str]:
    """Every query object a photo could answer: what it shows and what it leaves open."""
    p = data.PHOTOS[photo]
    return set(p.shows) | set(p.ambiguous)


@cache
def clip_size(clip: str) -> tuple[int, int]:
    import av

    with av.open(str(data.CLIPS[clip].locate())) as container:
        stream = container.streams.video[0]
        return int(stream.width), int(stream.height)


@cache
def photo_shape(photo: str) -> tuple[int, int]:
    pixels = data.PhotoCache()(photo)
    return int(pixels.shape[0]), int(pixels.shape[1])


def pasted_box(
    frame_size: tuple[int, int], photo: str, crop, width: float, position
) -> tuple[tuple[float, float, float, float], float]:
    """Where data.render puts the photo (its geometry, in pixels), as fractions of the frame, and
    the area fraction it covers. Tests check this against rendered frames."""
    frame_w, frame_h = frame_size
    h, w = photo_shape(photo)
    crop_w = round(crop[2] * w) - round(crop[0] * w)
    crop_h = round(crop[3] * h) - round(crop[1] * h)
    pw = max(16, round(width * frame_w))
    ph = round(crop_h * pw / crop_w)
    if ph > 0.9 * frame_h:
        ph = round(0.9 * frame_h)
        pw = round(crop_w * ph / crop_h)
    top = round(position[1] * (frame_h - ph))
    left = round(position[0] * (frame_w - pw))
    box = (left / frame_w, top / frame_h, (left + pw) / frame_w, (top + ph) / frame_h)
    return box, pw * ph / (frame_w * frame_h)


def width_for_area(frame_size: tuple[int, int], photo: str, crop, area: float) -> float:
    """The width fraction (data.Event.width) at which the cropped photo covers `area`."""
    frame_w, frame_h = frame_size
    h, w = photo_shape(photo)
    aspect = ((crop[2] - crop[0]) * w) / ((crop[3] - crop[1]) * h)
    return math.sqrt(area * frame_w * frame_h * aspect) / frame_w


def _pick_photos(rng: np.random.Generator, photos: tuple[str, ...], used: dict[str, int], count: int):
    """`count` photos of different objects that leave each other's objects unclaimed, the least
    used so far first (so the split's photos are used about equally)."""
    order = sorted(photos, key=lambda p: (used[p], rng.random()))
    chosen: list[str] = []
    for photo in order:
        if all(
            photo_object(photo) not in claimed(other) and photo_object(other) not in claimed(photo)
            for other in chosen
        ):
            chosen.append(photo)
        if len(chosen) == count:
            break
    if len(chosen) < count:
        raise ValueError(f"cannot find {count} compatible photos among {photos}")
    for photo in chosen:
        used[photo] += 1
    return chosen


def _half(x: float) -> float:
    """Seconds on the 2 frames/s grid, so an event starts and ends on a frame."""
    return round(x * FPS) / FPS


@dataclass(frozen=True)
class Placement:
    """One photo pasted from t0_s to t1_s (stream seconds, on the frame grid)."""

    photo: str
    t0_s: float
    t1_s: float
    crop: tuple[float, float, float, float]
    area: float  # target area fraction (the recorded one is measured after pixel rounding)
    position: tuple[float, float]  # top-left corner, as fractions of the free room


def build_stream(
    name: str,
    split: str,
    segment: data.Segment,
    offset_s: float,
    placements: list[Placement],
    present: tuple[str, ...],
    distractors: tuple[str, ...],
    duration_s: float,
) -> DevStream:
    """A stream from explicit placements (the dev set's are drawn by `dev_streams`)."""
    frame_size = clip_size(segment.clip)
    events: list[data.Event] = []
    truth: list[TruthEvent] = []
    seen: dict[str, int] = {}
    for k, p in enumerate(sorted(placements, key=lambda p: p.t0_s)):
        width = round(width_for_area(frame_size, p.photo, p.crop, p.area), 4)
        events.append(data.Event(p.t0_s, p.t1_s, p.photo, p.crop, width, p.position, False, None))
        box, measured = pasted_box(frame_size, p.photo, p.crop, width, p.position)
        obj = photo_object(p.photo)
        seen[obj] = seen.get(obj, 0) + 1
        truth.append(
            TruthEvent(
                event_id=f"{name}-e{k + 1}",
                stream=name,
                split=split,
                object=obj,
                photo=p.photo,
                start_ms=data.START_EPOCH_MS + round(p.t0_s * 1000),
                end_ms=data.START_EPOCH_MS + round(p.t1_s * 1000),
                box=box,
                area=measured,
                ordinal=seen[obj],
            )
        )
    sequence = data.Sequence(
        name=name,
        split=split,
        fps=FPS,
        duration_s=duration_s,
        pieces=(data.Piece(0.0, segment, offset_s),),
        lights=(),
        stalls=(),
        events=tuple(events),
        times_s=tuple(k / FPS for k in range(int(round(duration_s * FPS)))),
    )
    return DevStream(name, split, sequence, frame_size, tuple(truth), present, distractors)


def _draw_stream(rng: np.random.Generator, split: str, index: int, used: dict[str, int]) -> DevStream:
    source = data.SPLITS[SPLITS[split][0]]
    backgrounds = (source.base, *source.cuts)
    segment = backgrounds[index % len(backgrounds)]
    name = f"{split}-{index + 1:02d}-{segment.clip}"
    photos = _pick_photos(rng, source.photos, used, EVENTS_PER_STREAM - 1)
    present = tuple(photo_object(p) for p in photos)
    twice = photos[int(rng.integers(len(photos)))]
    order = [*photos, twice]
    rng.shuffle(order)
    excluded = set().union(*(claimed(p) for p in photos))
    split_objects = sorted({photo_object(p) for p in source.photos} - excluded)
    hard = [str(o) for o in rng.permutation(split_objects)[:HARD_DISTRACTORS]] if split_objects else []
    never = [str(o) for o in rng.permutation(sorted(set(NEVER_PASTED) - excluded))]
    distractors = tuple(hard + never[: DISTRACTORS - len(hard)])
    buckets = list(SIZE_BUCKETS)
    t = _half(rng.uniform(*WARMUP_S))
    placements = []
    for k, photo in enumerate(order):
        length = _half(rng.uniform(*EVENT_S))
        corners = (*rng.uniform(*CROP[0], 2), *rng.uniform(*CROP[1], 2))
        crop = tuple(round(float(c), 3) for c in corners)
        low, high = SIZE_BUCKETS[buckets[(index * EVENTS_PER_STREAM + k) % len(buckets)]]
        area = float(np.exp(rng.uniform(math.log(low + AREA_MARGIN), math.log(high - AREA_MARGIN))))
        position = (round(float(rng.uniform()), 3), round(float(rng.uniform()), 3))
        placements.append(Placement(photo, t, t + length, crop, area, position))
        t = t + length + (_half(rng.uniform(*GAP_S)) if k + 1 < len(order) else TAIL_S)
    offset = round(float(rng.uniform(0, segment.end_s - segment.start_s)), 3)
    return build_stream(name, split, segment, offset, placements, present, distractors, t)


@cache
def dev_streams(split: str) -> tuple[DevStream, ...]:
    """The split's streams (deterministic: the same seed draws the same set)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    rng = np.random.default_rng(SPLITS[split][1])
    used = dict.fromkeys(data.SPLITS[SPLITS[split][0]].photos, 0)
    return tuple(_draw_stream(rng, split, i, used) for i in range(STREAMS_PER_SPLIT))


def render_frames(stream: DevStream, timing: dict | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(capture ts_ms, RGB uint8 frame) in capture order: the stream's background frames are
    decoded once (only those it shows), each frame rendered from its recipe (data.render).
    `timing["render_s"]` accumulates the seconds spent here."""
    import time

    started = time.perf_counter()
    recipes = stream.recipes()
    clip = data.CLIPS[stream.background.clip]
    backgrounds = dict(data.decode_frames(clip, {r.index for r in recipes}))
    photos = data.PhotoCache()
    spent = time.perf_counter() - started
    for ts, recipe in zip(stream.ts_ms(), recipes, strict=True):
        started = time.perf_counter()
        frame = data.render(backgrounds[recipe.index], recipe, photos)
        spent += time.perf_counter() - started
        if timing is not None:
            timing["render_s"] = timing.get("render_s", 0.0) + spent
            spent = 0.0
        yield ts, frame
    backgrounds.clear()


def footage_spans(stream: DevStream) -> set[tuple[str, int]]:
    """The (clip, source frame index) pairs a stream shows."""
    return {(r.clip, r.index) for r in stream.recipes()}


def summary(streams: tuple[DevStream, ...] | list[DevStream]) -> dict:
    events = [e for s in streams for e in s.events]
    return {
        "streams": len(streams),
        "frames": sum(s.frames for s in streams),
        "footage_s": sum(s.duration_ms for s in streams) / 1000,
        "events": len(events),
        "backgrounds": sorted({s.background.clip for s in streams}),
        "photos": sorted({e.photo for e in events}),
        "queries_per_stream": sorted({len(s.objects) for s in streams}),
        "size_buckets": {b: sum(e.size_bucket == b for e in events) for b in SIZE_BUCKETS},
    }
