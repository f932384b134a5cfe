"""A sequence's frames: the `FrameRecipe` that decides each frame's pixels, the background frames
decoded from the real clip, and the photo rendered onto them (cropped, scaled, faded, half
hidden, under a gain). Rendering is deterministic, so a recipe's hash names its embedding.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from vigil.model_tools.temporal.data.sequences import Sequence
from vigil.model_tools.temporal.data.sources import CLIPS, PHOTOS, Clip, DataUnavailableError


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
