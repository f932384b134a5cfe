"""The frames' embeddings by the offline encoder, cached by recipe hash in one file per encoder
fingerprint under var/temporal/, so a rerun embeds only the frames it has not seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from vigil.model_tools.temporal.data.frames import FrameRecipe, PhotoCache, decode_frames, render
from vigil.model_tools.temporal.data.sources import CLIPS, cache_dir

log = logging.getLogger("vigil.models.temporal")


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
