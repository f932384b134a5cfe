"""The one interface every image-text encoder implements.

An encoder maps RGB uint8 images (any size) and texts into one shared, L2-normalised
float32 space, so that a dot product is a cosine similarity. CLIP is the primary
implementation; the offline label-space encoder is another. Services and pipelines
only ever see this interface.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from vigil.errors import BadImageError, BadTextError

log = logging.getLogger("vigil.models")

# A frame larger than this is a mistake (or an attack), not a camera: 16k x 8k.
MAX_IMAGE_PIXELS = 16384 * 8192


class EncoderInfo(BaseModel):
    """What an encoder is, where its weights came from, and how it runs: `vigil models` prints it."""

    name: str
    dim: int
    source: str = Field(description="where the weights came from (package, hub tag, local path)")
    licence: str
    checksums: dict[str, str] = Field(default_factory=dict, description="file name -> sha256")
    providers: list[str] = Field(default_factory=list, description="onnxruntime providers in use")
    details: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class RegionProposal:
    """An object an encoder's own detector found: box (x0, y0, x1, y1) in fractions of the
    frame, its class (the detector's index and name) and confidence."""

    box: tuple[float, float, float, float]
    label_index: int
    label: str
    confidence: float


class Encoder(ABC):
    """Embed images and texts into one L2-normalised float32 space of `info.dim` dimensions."""

    @property
    @abstractmethod
    def info(self) -> EncoderInfo: ...

    @abstractmethod
    def _embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        """Embed validated (H, W, 3) uint8 RGB arrays; return (n, dim) float32 (any norm)."""

    @abstractmethod
    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        """Embed validated non-empty texts; return (n, dim) float32 (any norm)."""

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        checked = [as_rgb_uint8(image, f"image #{i}") for i, image in enumerate(images)]
        if not checked:
            return np.zeros((0, self.info.dim), np.float32)
        return l2_normalise(self._embed_images(checked))

    def embed_crops(
        self,
        crops: Sequence[np.ndarray],
        proposals: Sequence[Sequence[RegionProposal]] | None = None,
    ) -> np.ndarray:
        """Embed regions cut out of frames (RGB uint8, any size) into the same space.

        proposals: per crop, the encoder's own proposals (`propose_regions` on the whole frame)
        that lie inside it, for an encoder that uses what its detector saw there. The default
        embeds crops as images and ignores them."""
        return self.embed_images(crops)

    def propose_regions(self, images: Sequence[np.ndarray]) -> list[list[RegionProposal]]:
        """What an object detector of the encoder's own finds in each image: candidate regions
        to embed besides what moved. None by default."""
        return [[] for _ in images]

    @property
    def proposes_regions(self) -> bool:
        """Whether `propose_regions` runs a model (so callers skip it when it does not)."""
        return False

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        checked = [check_text(text, f"text #{i}") for i, text in enumerate(texts)]
        if not checked:
            return np.zeros((0, self.info.dim), np.float32)
        return l2_normalise(self._embed_texts(checked))


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    normalised: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return normalised


def as_rgb_uint8(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Return `image` as a contiguous (H, W, 3) uint8 RGB array, or raise BadImageError naming the problem.

    Grey (H, W) / (H, W, 1) is replicated to three channels and RGBA drops its alpha, because
    cameras and files deliver both and the intent is unambiguous. Anything else is refused.
    """
    if not isinstance(image, np.ndarray):
        raise BadImageError(f"{what}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise BadImageError(f"{what}: expected dtype uint8 (0-255 RGB), got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise BadImageError(f"{what}: expected shape (H, W, 3) RGB, got {image.shape}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise BadImageError(f"{what}: image is empty ({height}x{width} pixels)")
    if height * width > MAX_IMAGE_PIXELS:
        raise BadImageError(f"{what}: {width}x{height} pixels exceeds the limit of {MAX_IMAGE_PIXELS} pixels")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def check_text(text: str, what: str = "text") -> str:
    if not isinstance(text, str):
        raise BadTextError(f"{what}: expected a string, got {type(text).__name__}")
    if not text.strip():
        raise BadTextError(f"{what}: text is empty")
    return text


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
