"""CLIP's byte-level BPE tokenizer in pure Python, token-for-token identical to open_clip's.

This is a port of open_clip's `SimpleTokenizer` (itself from OpenAI CLIP; both MIT, see
LICENSE-open_clip.txt) without its torch dependency, so that the runtime needs no torch. Every
step that changes which tokens come out is kept exactly: ftfy + double html.unescape cleaning,
whitespace collapsing, lower-casing, the same regex, the same vocabulary file, sot/eot tokens,
and truncation that overwrites the last kept token with eot. tests/models/test_clip_tokenizer.py
checks the equality on over a thousand strings. Two deliberate differences that cannot change the
tokens: the result is a NumPy int64 array, and truncation is reported instead of silent.
"""

from __future__ import annotations

import gzip
import html
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ftfy
import numpy as np
import regex

VOCAB_PATH = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
CONTEXT_LENGTH = 77  # every OpenAI-style CLIP text tower has 77 positions
SOT_TOKEN = "<start_of_text>"
EOT_TOKEN = "<end_of_text>"
# The vocabulary file holds more merges than CLIP uses; CLIP's 49408-token vocabulary is
# 256 bytes x 2 (plain and word-final) + these merges + 2 special tokens.
_MERGES_USED = 49152 - 256 - 2
# open_clip caches every word it has ever seen; a long-running service must not grow without
# bound, so the cache is cleared when it reaches this many words (cheap to refill).
_MAX_CACHED_WORDS = 100_000


@dataclass(frozen=True)
class Tokenized:
    """Token ids, shape (n, context_length) int64, zero-padded; `truncated[i]` says text i was cut."""

    ids: np.ndarray
    truncated: list[bool]


@lru_cache
def bytes_to_unicode() -> dict[int, str]:
    """Map each of the 256 byte values to a printable unicode character (OpenAI's reversible mapping).

    Printable Latin-1 bytes map to themselves; the rest are shifted above 255, so that BPE never
    has to handle whitespace or control characters.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    byte_values = printable[:]
    code_points = printable[:]
    shift = 0
    for byte in range(256):
        if byte not in printable:
            byte_values.append(byte)
            code_points.append(256 + shift)
            shift += 1
    return dict(zip(byte_values, (chr(c) for c in code_points), strict=True))


def clean_text(text: str) -> str:
    """open_clip's 'lower' cleaning: fix mojibake, unescape HTML twice, collapse whitespace, lower-case."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).strip().lower()


def _pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(zip(word, word[1:], strict=False))


class ClipTokenizer:
    """Text -> CLIP token ids, identical to `open_clip.get_tokenizer("ViT-B-32")`."""

    def __init__(self, vocab_path: Path = VOCAB_PATH, context_length: int = CONTEXT_LENGTH):
        if context_length < 2:
            raise ValueError(f"context_length must leave room for sot and eot tokens, got {context_length}")
        self.context_length = context_length
        self.byte_encoder = bytes_to_unicode()
        with gzip.open(vocab_path) as handle:
            lines = handle.read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : _MERGES_USED + 1]]  # line 0 is a header
        vocab = list(self.byte_encoder.values())
        vocab += [symbol + "</w>" for symbol in vocab]
        vocab += ["".join(merge) for merge in merges]
        vocab += [SOT_TOKEN, EOT_TOKEN]
        self.encoder = {token: index for index, token in enumerate(vocab)}
        self.bpe_ranks = {merge: rank for rank, merge in enumerate(merges)}
        self.sot_token_id = self.encoder[SOT_TOKEN]
        self.eot_token_id = self.encoder[EOT_TOKEN]
        self._special_words = {SOT_TOKEN: SOT_TOKEN, EOT_TOKEN: EOT_TOKEN}
        self._cache: dict[str, str] = dict(self._special_words)
        # Same pattern and flags as open_clip. The special tokens come first so that a literal
        # "<start_of_text>" in a text becomes that token, exactly as open_clip does.
        self.pattern = regex.compile(
            rf"{SOT_TOKEN}|{EOT_TOKEN}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
            regex.IGNORECASE,
        )

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def _bpe(self, word: str) -> str:
        """Merge the byte symbols of one word by rank; return the space-separated BPE symbols."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        symbols = (*word[:-1], word[-1] + "</w>")
        pairs = _pairs(symbols)
        if not pairs:
            return word + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                try:
                    j = symbols.index(first, i)
                except ValueError:
                    merged.extend(symbols[i:])
                    break
                merged.extend(symbols[i:j])
                i = j
                if i < len(symbols) - 1 and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(first)
                    i += 1
            symbols = tuple(merged)
            if len(symbols) == 1:
                break
            pairs = _pairs(symbols)
        result = " ".join(symbols)
        if len(self._cache) >= _MAX_CACHED_WORDS:
            self._cache = dict(self._special_words)
        self._cache[word] = result
        return result

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` without sot/eot and without truncation."""
        ids: list[int] = []
        for word in self.pattern.findall(clean_text(text)):
            as_symbols = "".join(self.byte_encoder[b] for b in word.encode("utf-8"))
            ids.extend(self.encoder[symbol] for symbol in self._bpe(as_symbols).split(" "))
        return ids

    def tokenize(self, texts: list[str]) -> Tokenized:
        """Token ids of `texts`, padded to the context length; too-long texts keep eot as last token."""
        ids = np.zeros((len(texts), self.context_length), dtype=np.int64)
        truncated = []
        for row, text in enumerate(texts):
            tokens = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            cut = len(tokens) > self.context_length
            if cut:
                # Exactly open_clip: keep the first context_length tokens, then overwrite the last
                # with eot, because the text tower pools the embedding at the eot position.
                tokens = tokens[: self.context_length]
                tokens[-1] = self.eot_token_id
            ids[row, : len(tokens)] = tokens
            truncated.append(cut)
        return Tokenized(ids=ids, truncated=truncated)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.tokenize(texts).ids


@lru_cache(maxsize=4)
def default_tokenizer(context_length: int = CONTEXT_LENGTH) -> ClipTokenizer:
    """A shared tokenizer: reading the 49k-merge vocabulary takes a noticeable fraction of a second."""
    return ClipTokenizer(context_length=context_length)
