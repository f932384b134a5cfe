"""Text embeddings kept on disk per encoder, so a restarted detector does not embed them again.

A detector embeds its shared prompts (both languages' background prompts and negatives, some
360 texts) at every start: 3.3 s of a 2-core machine, a third of the 10 s in which a killed
detector must be back. The vectors depend on the encoder's weights and settings only, so they
are kept in one file per encoder fingerprint (a hash of its EncoderInfo: weight checksums and
details); new weights or settings mean a new file, never a stale vector.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vigil.models.encoder import Encoder

log = logging.getLogger(__name__)


def encoder_fingerprint(encoder: Encoder) -> str:
    """What the encoder's vectors depend on: its info, less how it runs (providers)."""
    document = encoder.info.model_dump(exclude={"providers"})
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


def embed_texts_cached(encoder: Encoder, texts: Sequence[str], cache_dir: Path) -> np.ndarray:
    """`encoder.embed_texts(texts)`, reading the texts embedded before from `cache_dir` and
    adding the others to it. A cache that cannot be read or written is only a slower start."""
    path = cache_dir / f"texts-{encoder_fingerprint(encoder)}.npz"
    known: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as stored:
            known = dict(zip(stored["texts"].tolist(), stored["vectors"], strict=True))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError) as error:
        log.warning("ignoring the text embedding cache %s: %s", path, error)
    missing = list(dict.fromkeys(text for text in texts if text not in known))
    if missing:
        known.update(zip(missing, np.asarray(encoder.embed_texts(missing), np.float32), strict=True))
        _save(path, known)
    dim = encoder.info.dim
    return np.asarray([known[text] for text in texts], np.float32).reshape(len(texts), dim)


def _save(path: Path, vectors: dict[str, np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a detector killed mid-write leaves the old file whole.
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        with os.fdopen(handle, "wb") as file:
            np.savez(
                file, texts=np.asarray(list(vectors), dtype=str), vectors=np.stack(list(vectors.values()))
            )
        os.replace(temporary, path)
    except OSError as error:
        log.warning("cannot write the text embedding cache %s: %s", path, error)
