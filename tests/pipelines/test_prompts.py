"""Query languages, prompt ensembles and background prompts, embedded by the real offline encoder."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.models.encoder import Encoder, EncoderInfo
from vigil.pipelines.prompts import (
    QueryVectors,
    background_prompts,
    detect_language,
    embed_queries,
    prompt_ensemble,
    query_scores,
    resolve_language,
    shared_prompts,
)


class CountingEncoder(Encoder):
    """The real offline encoder, counting how often its text tower is asked for."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.text_calls: list[list[str]] = []

    @property
    def info(self) -> EncoderInfo:
        return self.inner.info

    def _embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        return self.inner.embed_images(images)

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        self.text_calls.append(list(texts))
        return self.inner.embed_texts(texts)


@pytest.fixture(scope="module")
def offline():
    from vigil.models.offline.encoder import OfflineEncoder

    return OfflineEncoder.load()


@pytest.fixture(scope="module")
def photos(offline) -> np.ndarray:
    """Embeddings of two real photos: a cat (row 0) and a motorcycle (row 1)."""
    from skimage import data

    return offline.embed_images([data.chelsea(), data.stereo_motorcycle()[1]])


# --- languages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["một con mèo", "một chiếc xe máy", "người đàn ông mặc áo đỏ", "cháy", "Đà Nẵng", "con mèo", "cầu"],
)
def test_vietnamese_with_diacritics_is_vietnamese(text):
    assert detect_language(text) == "vi"


@pytest.mark.parametrize("text", ["mot con meo", "xe may", "nguoi dan ong chay", "mot chiec o to mau do"])
def test_vietnamese_typed_without_diacritics_is_vietnamese(text):
    assert detect_language(text) == "vi"


@pytest.mark.parametrize(
    "text",
    ["a cat", "A MAN IN A RED SHIRT", "fire", "a person running near the car", "a con man", "a fox den"],
)
def test_english_is_english(text):
    assert detect_language(text) == "en"


def test_auto_detects_and_an_explicit_language_is_kept():
    assert resolve_language("một con mèo", "auto") == "vi"
    assert resolve_language("a cat", "auto") == "en"
    assert resolve_language("a cat", "vi") == "vi"  # the operator said so
    with pytest.raises(ValueError, match="language"):
        resolve_language("a cat", "fr")


# --- prompts --------------------------------------------------------------------------------------


def test_an_ensemble_holds_the_bare_text_and_templates_in_the_querys_language():
    english = prompt_ensemble("a  cat ", "en")
    assert english[0] == "a cat" and "a photo of a cat" in english and "CCTV footage of a cat" in english
    assert len(set(english)) == len(english) >= 4
    vietnamese = prompt_ensemble("một con mèo", "vi")
    assert vietnamese[0] == "một con mèo" and len(vietnamese) >= 4
    assert all("một con mèo" in prompt for prompt in vietnamese)
    # The templates themselves are Vietnamese, not English wrapped around a Vietnamese query.
    assert all(detect_language(prompt.replace("một con mèo", "")) == "vi" for prompt in vietnamese[1:])
    assert not any("photo" in prompt or "footage" in prompt for prompt in vietnamese)
    with pytest.raises(ValueError):
        prompt_ensemble("   ", "en")


def test_background_prompts_are_in_the_language_and_name_no_event():
    for language in ("en", "vi"):
        prompts = background_prompts(language)
        assert len(prompts) >= 4 and len(set(prompts)) == len(prompts)
        assert all(detect_language(prompt) == language for prompt in prompts)
    assert set(background_prompts("en")).isdisjoint(background_prompts("vi"))


# --- embedding --------------------------------------------------------------------------------------


def test_all_prompts_of_all_queries_are_embedded_in_one_call(offline):
    encoder = CountingEncoder(offline)
    texts = ["a cat", "một chiếc xe máy", "a motorcycle", "mot con meo"]
    vectors = embed_queries(encoder, texts)
    assert len(encoder.text_calls) == 1
    [prompts] = encoder.text_calls
    assert len(prompts) == len(set(prompts))  # each distinct prompt once
    assert {v.language for v in vectors} == {"en", "vi"}
    assert [v.language for v in vectors] == ["en", "vi", "en", "vi"]
    dim = offline.info.dim
    for vector in vectors:
        assert isinstance(vector, QueryVectors)
        assert vector.text.shape == (dim,)
        assert vector.background.shape == (len(background_prompts(vector.language)), dim)
        assert np.linalg.norm(vector.text) == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(np.linalg.norm(vector.background, axis=1), 1.0, atol=1e-5)
    # The ensemble's vector is the normalised mean of its prompts' embeddings.
    ensemble = offline.embed_texts(prompt_ensemble("a cat", "en")).mean(axis=0)
    assert np.allclose(vectors[0].text, ensemble / np.linalg.norm(ensemble), atol=1e-5)
    # Queries of one language share its background prompts.
    assert np.array_equal(vectors[0].background, vectors[2].background)
    assert embed_queries(encoder, []) == [] and len(encoder.text_calls) == 1


def test_a_prompt_cache_embeds_a_language_s_shared_prompts_once(offline):
    encoder = CountingEncoder(offline)
    cache: dict[str, np.ndarray] = {}
    [first] = embed_queries(encoder, ["a cat"], prompt_cache=cache)
    shared = len(encoder.text_calls[0]) - len(prompt_ensemble("a cat", "en"))
    assert shared >= len(background_prompts("en"))  # backgrounds and negatives came along
    [second] = embed_queries(encoder, ["a motorcycle"], prompt_cache=cache)
    assert encoder.text_calls[1] == prompt_ensemble("a motorcycle", "en")  # only its own prompts
    assert np.array_equal(second.negatives, first.negatives)
    [uncached] = embed_queries(offline, ["a motorcycle"])
    assert np.allclose(second.text, uncached.text, atol=1e-5)
    assert np.allclose(second.negatives, uncached.negatives, atol=1e-5)
    embed_queries(encoder, ["a cat"], prompt_cache=cache)
    assert len(encoder.text_calls) == 2  # everything known: no encoder call at all


def test_a_cache_warmed_with_the_shared_prompts_leaves_each_query_only_its_own_ensemble(offline):
    # What the detector does at start: then an operator's first query in either language is
    # embedded without the 140 negatives of its language holding the camera's frames.
    encoder = CountingEncoder(offline)
    shared = shared_prompts()
    cache = dict(zip(shared, offline.embed_texts(shared), strict=True))
    vectors = embed_queries(encoder, ["một con mèo", "a motorcycle"], prompt_cache=cache)
    [prompts] = encoder.text_calls
    assert sorted(prompts) == sorted(
        prompt_ensemble("một con mèo", "vi") + prompt_ensemble("a motorcycle", "en")
    )
    [uncached] = embed_queries(offline, ["một con mèo"])
    assert np.allclose(vectors[0].negatives, uncached.negatives, atol=1e-5)
    assert np.allclose(vectors[0].background, uncached.background, atol=1e-5)
    assert set(shared_prompts(negatives=False)) < set(shared)


def test_languages_can_be_given_per_query(offline):
    encoder = CountingEncoder(offline)
    vectors = embed_queries(encoder, ["a cat", "a cat"], ["en", "vi"])
    assert [v.language for v in vectors] == ["en", "vi"]
    assert "ảnh chụp a cat" in encoder.text_calls[0]
    with pytest.raises(ValueError, match="one language per query"):
        embed_queries(encoder, ["a cat"], ["en", "vi"])


def test_query_scores_are_the_cosines_with_the_query_and_the_best_background_prompt(offline, photos):
    [vectors] = embed_queries(offline, ["một con mèo"])
    raw, background = query_scores(photos, vectors)
    assert raw.shape == background.shape == (2,)
    for i, frame in enumerate(photos):
        assert raw[i] == pytest.approx(float(np.dot(frame, vectors.text)), abs=1e-6)
        assert background[i] == pytest.approx(
            max(float(np.dot(frame, b)) for b in vectors.background), abs=1e-6
        )
    with pytest.raises(ValueError):
        query_scores(photos[:, :10], vectors)


def test_the_margin_picks_the_right_photo_in_both_languages(offline, photos):
    queries = ["a cat", "một con mèo", "a motorcycle", "một chiếc xe máy"]
    margins = [np.subtract(*query_scores(photos, v)) for v in embed_queries(offline, queries)]
    assert margins[0][0] > margins[0][1] and margins[1][0] > margins[1][1]  # the cat photo
    assert margins[2][1] > margins[2][0] and margins[3][1] > margins[3][0]  # the motorcycle photo
