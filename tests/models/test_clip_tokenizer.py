"""Our pure-Python CLIP tokenizer against open_clip's, token for token."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vigil.models.clip.export import import_open_clip
from vigil.models.clip.tokenizer import CONTEXT_LENGTH, ClipTokenizer, clean_text

open_clip = import_open_clip()

ENGLISH = (
    "a photo of the red car parked near gate person walking running dog cat bicycle motorbike "
    "truck bus night rain smoke fire man woman child carrying bag backpack umbrella crowd "
    "street corner door window fence climbing falling fight police camera warehouse shop "
    "don't it's they're we've I'm you'll he'd CCTV 4K HD 12:30 2024-05-01 #3 @home"
).split()
VIETNAMESE = (
    "một xe máy màu đỏ người đàn ông phụ nữ trẻ em đang đi bộ chạy trên đường phố cổng "
    "ban đêm trời mưa khói lửa cháy nhà kho cửa hàng mang túi ba lô ô dù đám đông leo "
    "hàng rào ngã đánh nhau cảnh sát xe tải xe buýt xe đạp chó mèo đứng trước Hà Nội "
    "Sài Gòn Đà Nẵng quận phường ngõ hẻm bảo vệ trộm cắp"
).split()
SYMBOLS = ["🚗", "🔥", "👮‍♂️", "🇻🇳", "😀", "!!!", "...", "—", "&", "%", "$5", "€", "°C", "№"]
SPACES = [" ", "  ", "\t", "\n", " \r\n ", "\u00a0", "\u3000", "\u2003", " \t "]
ENTITIES = ["&amp;", "&lt;b&gt;", "&quot;", "&#39;", "&amp;amp;", "&nbsp;", "&eacute;", "&#x1F600;"]

EDGE_CASES = [
    "",
    " ",
    "a",
    "A",
    "ALL CAPS SHOUTING",
    "Một Xe Máy Màu Đỏ",
    "mo\u0323\u0302t xe ma\u0301y",  # decomposed Vietnamese diacritics (NFD)
    "cafÃ© mojibake that ftfy repairs",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&amp;lt;double escaped&amp;gt;",
    "<start_of_text> literal special tokens <end_of_text>",
    "<START_OF_TEXT>",
    "zero\u200bwidth\u200djoiner",
    "中文 日本語 한국어 العربية हिन्दी ไทย",
    "tab\tseparated\tvalues\nand\nnewlines",
    "   leading and trailing   ",
    "numbers 1234567890 3.14159 1,000,000",
    "emoji only 🚗🚗🚗🔥🔥",
    "x" * 500,  # one enormous word
    "word " * 100,  # truncated: more than 77 tokens
    "xe máy " * 60,
    "🔥" * 100,
    "a" + "\u0301" * 50,
]


def _corpus(count: int = 1200, seed: int = 1234) -> list[str]:
    """Deterministic mixed strings: English and Vietnamese words, symbols, entities, odd spacing."""
    rng = random.Random(seed)
    pools = [ENGLISH, VIETNAMESE, ENGLISH + VIETNAMESE, SYMBOLS + ENTITIES + ENGLISH]
    texts = list(EDGE_CASES)
    while len(texts) < count:
        pool = rng.choice(pools)
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 90])
        parts = []
        for _ in range(length):
            token = rng.choice(pool)
            roll = rng.random()
            if roll < 0.1:
                token = token.upper()
            elif roll < 0.15:
                token = token.capitalize()
            elif roll < 0.2:
                token += rng.choice(SYMBOLS + ENTITIES)
            parts.append(token)
            parts.append(rng.choice(SPACES) if rng.random() < 0.2 else " ")
        texts.append("".join(parts))
    return texts


@pytest.fixture(scope="module")
def ours() -> ClipTokenizer:
    return ClipTokenizer()


def test_corpus_is_varied():
    corpus = _corpus()
    assert len(corpus) >= 1000
    assert len(set(corpus)) >= 1000
    assert any("ạ" in text or "ộ" in text for text in corpus)
    assert sum(len(text.split()) > 77 for text in corpus) >= 50  # plenty of truncation


def test_tokens_identical_to_open_clip(ours):
    theirs = open_clip.get_tokenizer("ViT-B-32")
    corpus = _corpus()
    expected = theirs(corpus).numpy()
    actual = ours(corpus)
    assert actual.dtype == np.int64 and actual.shape == (len(corpus), CONTEXT_LENGTH)
    mismatched = [corpus[i] for i in np.flatnonzero((actual != expected).any(axis=1))]
    assert not mismatched, f"{len(mismatched)} texts tokenize differently, e.g. {mismatched[:3]!r}"


def test_vocabulary_and_special_tokens_match_open_clip(ours):
    from open_clip.tokenizer import SimpleTokenizer

    theirs = SimpleTokenizer()
    assert ours.vocab_size == theirs.vocab_size == 49408
    assert ours.encoder == theirs.encoder
    assert (ours.sot_token_id, ours.eot_token_id) == (theirs.sot_token_id, theirs.eot_token_id)


def test_cleaning_matches_open_clip():
    from open_clip.tokenizer import _clean_lower

    for text in _corpus(300):
        assert clean_text(text) == _clean_lower(text)


def test_truncation_is_reported_and_keeps_eot_last(ours):
    result = ours.tokenize(["a short text", "word " * 100, "word " * 75, "word " * 76])
    assert result.truncated == [False, True, False, True]  # sot + 75 words + eot fits exactly
    long_row = result.ids[1]
    assert long_row[0] == ours.sot_token_id
    assert long_row[-1] == ours.eot_token_id
    assert (long_row != 0).all()
    assert result.ids[2][CONTEXT_LENGTH - 1] == ours.eot_token_id


def test_word_cache_is_bounded(monkeypatch):
    from vigil.models.clip import tokenizer as module

    monkeypatch.setattr(module, "_MAX_CACHED_WORDS", 10)
    small = ClipTokenizer()
    reference = ClipTokenizer()
    # Letters only: the regex splits digits off into single-character words, which are never cached.
    words = ["".join(chr(ord("a") + (n // 26**k) % 26) for k in range(3)) + "zq" for n in range(50)]
    for word in words:
        small.encode(word)
    assert len(small._cache) <= 10
    assert [small.encode(w) for w in words] == [reference.encode(w) for w in words]
