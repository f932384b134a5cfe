"""The text embedding cache: the same vectors as the encoder's, each text embedded once per
encoder fingerprint, and a cache that cannot be read is only a slower start."""

from __future__ import annotations

import numpy as np

from vigil.models.text_cache import embed_texts_cached, encoder_fingerprint

TEXTS = ["a person climbing the fence", "một xe máy màu đỏ", "a parked car"]


def counting(encoder, monkeypatch) -> list[list[str]]:
    """Record which texts reach the encoder's own model (it still embeds them)."""
    calls: list[list[str]] = []
    original = encoder._embed_texts

    def embed(texts):
        calls.append(list(texts))
        return original(texts)

    monkeypatch.setattr(encoder, "_embed_texts", embed)
    return calls


def test_cached_vectors_are_the_encoders_and_each_text_is_embedded_once(
    offline_encoder, tmp_path, monkeypatch
):
    calls = counting(offline_encoder, monkeypatch)
    first = embed_texts_cached(offline_encoder, TEXTS, tmp_path)
    np.testing.assert_allclose(first, offline_encoder.embed_texts(TEXTS), atol=1e-6)
    calls.clear()

    again = embed_texts_cached(offline_encoder, [*TEXTS[::-1], "a cat"], tmp_path)
    assert calls == [["a cat"]]  # only the new text was embedded
    np.testing.assert_array_equal(again[:3], first[::-1])
    assert (tmp_path / f"texts-{encoder_fingerprint(offline_encoder)}.npz").is_file()


def test_a_damaged_cache_is_embedded_again_and_replaced(offline_encoder, tmp_path, monkeypatch):
    path = tmp_path / f"texts-{encoder_fingerprint(offline_encoder)}.npz"
    path.write_bytes(b"not an npz file")
    calls = counting(offline_encoder, monkeypatch)
    vectors = embed_texts_cached(offline_encoder, TEXTS, tmp_path)
    assert calls == [TEXTS]
    calls.clear()
    np.testing.assert_array_equal(embed_texts_cached(offline_encoder, TEXTS, tmp_path), vectors)
    assert calls == []
