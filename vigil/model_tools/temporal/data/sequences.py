"""The splits and the sequences drawn from them: what one camera sends for two or three minutes
(its pieces of footage, lighting changes, stalls, pasted-photo events and frame times), drawn
from the split's fixed seed, and the labels of each (sequence, query) stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vigil.model_tools.temporal.data.queries import Query, all_queries
from vigil.model_tools.temporal.data.sources import PHOTOS, Segment


@dataclass(frozen=True)
class Split:
    name: str
    base: Segment  # the camera's own scene
    cuts: tuple[Segment, ...]  # what a cut switches to
    photos: tuple[str, ...]
    sequences: int
    seed: int


SPLITS: dict[str, Split] = {
    "train": Split(
        "train",
        Segment("hall", 0.0, 50.0),
        (Segment("megamind", 0.0, 5.6), Segment("tree", 0.0, 4.6)),
        ("chelsea", "coffee", "orange", "kiwi", "butterfly", "astronaut", "rocket", "baboon"),
        sequences=80,
        seed=20240611,
    ),
    "heldout": Split(
        "heldout",
        Segment("hall", 50.0, 79.5),
        (Segment("megamind", 5.6, 11.3), Segment("city", 0.0, 7.6)),
        ("faust", "motorcycle", "apple", "fruits", "squirrel", "messi"),
        sequences=40,
        seed=20240612,
    ),
}

# How the sequences are drawn (the same for both splits).
FPS_CHOICES = (1.0, 1.0, 2.0)
DURATION_S = (100.0, 160.0)
EVENT_S = (2.0, 15.0)
LONG_EVENT = (0.2, 15.0, 40.0)  # probability, shortest and longest of a long event (s)
EVENT_GAP_S = 12.0  # between events: more than the 10 s cooldown, so each can alert
WARMUP_FRAMES = 30  # events start once a prior-less calibrator has warmed up
JITTER_S = 0.04
DROP_P = 0.03
STALL = (0.15, 4.0, 9.0)  # probability, shortest and longest stall (s)
CUT = (0.35, 10.0, 40.0)  # probability, shortest and longest visit of the cut-to clip (s)
LIGHT = (0.3, 15.0, 40.0, (0.55, 1.6))  # probability, span (s), gains
PHOTO_WIDTH = (0.3, 0.6)  # of the frame's width
FADE_P = 0.3
OCCLUDE_P = 0.3
START_EPOCH_MS = 1_700_000_000_000


@dataclass(frozen=True)
class Piece:
    """From t0_s on (sequence time) the camera shows `segment`, starting `offset_s` into it."""

    t0_s: float
    segment: Segment
    offset_s: float


@dataclass(frozen=True)
class Event:
    t0_s: float
    t1_s: float
    photo: str
    crop: tuple[float, float, float, float]  # fractions of the photo: x0, y0, x1, y1
    width: float  # fraction of the frame's width
    position: tuple[float, float]  # top-left corner, as fractions of the free room
    fade: bool
    occlusion: tuple[float, float, float, float] | None  # t0_s, t1_s, band x0, x1 (photo fractions)


@dataclass(frozen=True)
class Sequence:
    name: str
    split: str
    fps: float
    duration_s: float
    pieces: tuple[Piece, ...]
    lights: tuple[tuple[float, float, float], ...]  # (t0_s, t1_s, gain)
    stalls: tuple[tuple[float, float], ...]
    events: tuple[Event, ...]
    times_s: tuple[float, ...] = field(repr=False)

    def piece_at(self, t: float) -> Piece:
        current = self.pieces[0]
        for piece in self.pieces:
            if piece.t0_s <= t:
                current = piece
        return current

    def gain_at(self, t: float) -> float:
        gain = 1.0
        for t0, t1, g in self.lights:
            if t0 <= t < t1:
                gain *= g
        return gain

    def event_at(self, t: float) -> Event | None:
        return next((e for e in self.events if e.t0_s <= t < e.t1_s), None)

    def objects(self) -> set[str]:
        return {obj for e in self.events for obj in PHOTOS[e.photo].shows}

    def queries(self) -> list[Query]:
        """The queries this sequence is judged on: all but those a pasted photo leaves open."""
        open_ = {obj for e in self.events for obj in PHOTOS[e.photo].ambiguous} - self.objects()
        return [q for q in all_queries() if q.obj not in open_]

    def labels(self, query: Query) -> np.ndarray:
        return np.array(
            [
                (e := self.event_at(t)) is not None and query.obj in PHOTOS[e.photo].shows
                for t in self.times_s
            ],
            np.int8,
        )

    def ts_ms(self) -> np.ndarray:
        return np.array([START_EPOCH_MS + round(t * 1000) for t in self.times_s], np.int64)


def _round(x: float) -> float:
    return round(float(x), 3)


def draw_sequence(rng: np.random.Generator, split: Split, index: int) -> Sequence:
    fps = float(rng.choice(FPS_CHOICES))
    duration = _round(rng.uniform(*DURATION_S))
    base = split.base
    pieces = [Piece(0.0, base, _round(rng.uniform(0, base.end_s - base.start_s)))]
    warm_s = WARMUP_FRAMES / fps + 3.0
    if rng.random() < CUT[0]:
        at = _round(rng.uniform(warm_s, duration - 20))
        to = split.cuts[int(rng.integers(len(split.cuts)))]
        pieces.append(Piece(at, to, _round(rng.uniform(0, to.end_s - to.start_s))))
        back = _round(at + rng.uniform(CUT[1], CUT[2]))
        if back < duration and rng.random() < 0.7:
            pieces.append(Piece(back, base, _round(rng.uniform(0, base.end_s - base.start_s))))
    lights = []
    if rng.random() < LIGHT[0]:
        t0 = _round(rng.uniform(warm_s, duration - 15))
        t1 = duration + 1 if rng.random() < 0.5 else _round(t0 + rng.uniform(LIGHT[1], LIGHT[2]))
        lights.append((t0, t1, float(rng.choice(LIGHT[3]))))
    stalls = []
    if rng.random() < STALL[0]:
        t0 = _round(rng.uniform(warm_s, duration - 15))
        stalls.append((t0, _round(t0 + rng.uniform(STALL[1], STALL[2]))))
    events: list[Event] = []
    t = warm_s + rng.uniform(0, 20)
    for _ in range(int(rng.integers(1, 4))):
        length = rng.uniform(*EVENT_S) if rng.random() >= LONG_EVENT[0] else rng.uniform(*LONG_EVENT[1:])
        if t + length > duration - 3:
            break
        photo = split.photos[int(rng.integers(len(split.photos)))]
        x0, y0 = rng.uniform(0, 0.25, 2)
        x1, y1 = rng.uniform(0.75, 1.0, 2)
        occlusion = None
        if length >= 4 and rng.random() < OCCLUDE_P:
            o0 = rng.uniform(t + 1, t + length - 2)
            b0 = rng.uniform(0, 0.5)
            occlusion = (
                _round(o0),
                _round(o0 + rng.uniform(1, 3)),
                _round(b0),
                _round(b0 + rng.uniform(0.35, 0.6)),
            )
        events.append(
            Event(
                t0_s=_round(t),
                t1_s=_round(t + length),
                photo=photo,
                crop=(_round(x0), _round(y0), _round(x1), _round(y1)),
                width=_round(rng.uniform(*PHOTO_WIDTH)),
                position=(_round(rng.uniform()), _round(rng.uniform())),
                fade=bool(rng.random() < FADE_P),
                occlusion=occlusion,
            )
        )
        t += length + EVENT_GAP_S + rng.uniform(0, 30)
    times = []
    for k in range(int(duration * fps)):
        at = k / fps + (rng.uniform(-JITTER_S, JITTER_S) if k else 0.0)
        dropped = rng.random() < DROP_P
        if dropped or any(s0 <= at < s1 for s0, s1 in stalls):
            continue
        times.append(_round(at))
    return Sequence(
        name=f"{split.name}-{index:03d}",
        split=split.name,
        fps=fps,
        duration_s=duration,
        pieces=tuple(pieces),
        lights=tuple(lights),
        stalls=tuple(stalls),
        events=tuple(events),
        times_s=tuple(times),
    )


def draw_sequences(split: Split) -> list[Sequence]:
    rng = np.random.default_rng(split.seed)
    return [draw_sequence(rng, split, i) for i in range(split.sequences)]
