"""A standing query's text, embedded once as a prompt ensemble, plus background prompts (no I/O
beyond the encoder it is given).

- Language: English and Vietnamese are both first-class. A query is written in one of them;
  `detect_language` tells which from its letters (Vietnamese has letters and tone marks
  English never uses) or, for Vietnamese typed without diacritics ("mot con meo"), from
  common Vietnamese words that are not English words.
- Prompt ensemble (Radford et al. 2021, CLIP section 3.1.4): the query is embedded inside
  several templates in its own language ("a photo of {}", "CCTV footage of {}", ... and
  the bare text), and the L2-normalised mean of those embeddings is the query's vector. It
  averages away what any one phrasing adds and tells the encoder these are camera frames.
  The templates say nothing about any event, so they cannot favour one query over another.
- Background prompts: descriptions of ordinary scenes in which nothing happens ("an empty
  corridor", ...). The calibrator's signal is then a frame's cosine with the query minus
  its best cosine with any background prompt (see calibration.py): what the query shares
  with every scene (lighting, "a camera image of ...") cancels out. Each background prompt
  is embedded through the same templates as the queries (its vector is the mean of "an
  empty corridor", "a photo of an empty corridor", "CCTV footage of an empty corridor",
  ...), so that what a template means by itself is on both sides of the margin and cancels.
  That matters for the offline encoder, where a template's words mean something of their
  own that scores differently on different frames ("cảnh quay camera an ninh" alone favours
  a frame with a cat over one with a motorcycle): with bare background prompts the
  Vietnamese "một chiếc xe máy" rose as much on a cat as on a motorcycle; with ensembled
  ones it did not (docs/ZEROSHOT.md, "Prompt ensembles and background prompts").

`embed_queries` embeds every prompt of every query (and each language's background prompts
and negative vocabulary, once) in a single `Encoder.embed_texts` call: an encoder batches what
it gets in one call, and a text tower run per prompt would cost a query dozens of runs.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from vigil.models.encoder import Encoder, l2_normalise

Language = Literal["en", "vi"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

# Templates per language; "{}" is the query text. The bare text is always one of them: a
# template can only add to it, never replace it.
TEMPLATES: dict[Language, tuple[str, ...]] = {
    "en": (
        "{}",
        "a photo of {}",
        "CCTV footage of {}",
        "a security camera image of {}",
        "a surveillance camera frame showing {}",
    ),
    "vi": (
        "{}",
        "ảnh chụp {}",
        "cảnh quay camera an ninh có {}",
        "hình ảnh camera an ninh có {}",
        "khung hình camera giám sát cho thấy {}",
    ),
}

# Ordinary scenes a surveillance camera sees when nothing happens; no people, vehicles or
# animals named, since those are what queries ask about.
BACKGROUND_PROMPTS: dict[Language, tuple[str, ...]] = {
    "en": (
        "an empty corridor",
        "an empty room",
        "a street with nothing happening",
        "an empty parking lot",
        "a quiet hallway",
        "an empty shop",
        "a building entrance with nothing happening",
        "a security camera view of an ordinary scene",
    ),
    "vi": (
        "một hành lang trống",
        "một căn phòng trống",
        "một con phố không có gì xảy ra",
        "một bãi đỗ xe trống",
        "một hành lang yên tĩnh",
        "một cửa hàng trống",
        "lối vào tòa nhà không có gì xảy ra",
        "cảnh camera an ninh bình thường",
    ),
}

# The negative vocabulary (the discriminative decision, pipelines/discrimination.py): what
# else a region of a surveillance frame usually is. A query fires only when its region is
# better explained by the query than by any of these (and by the other standing queries and
# the background prompts). Concrete, common things only, no hypernyms ("an animal", "a
# vehicle" would out-score "a cat" or "a motorcycle" on their own objects); a negative that
# means what the query means is left out for that query (`competitors_for`).
NEGATIVE_PROMPTS: dict[Language, tuple[str, ...]] = {
    "en": (
        "a person",
        "a group of people",
        "a man",
        "a woman",
        "a child",
        "a car",
        "a bicycle",
        "a bag",
        "a chair",
        "a table",
        "a door",
        "a window",
        "a wall",
        "a floor",
        "stairs",
        "a sign",
        "a poster",
        "a potted plant",
        "a tree",
        "a lamp",
        "a shadow",
        "a reflection",
        "a screen",
        "a box",
        "clothes",
        "a building",
        "the sky",
        "a road",
    ),
    "vi": (
        "một người",
        "một nhóm người",
        "một người đàn ông",
        "một người phụ nữ",
        "một đứa trẻ",
        "một chiếc ô tô",
        "một chiếc xe đạp",
        "một cái túi",
        "một cái ghế",
        "một cái bàn",
        "một cánh cửa",
        "một cửa sổ",
        "một bức tường",
        "sàn nhà",
        "cầu thang",
        "một tấm biển",
        "một tấm áp phích",
        "một chậu cây",
        "một cái cây",
        "một cái đèn",
        "một cái bóng",
        "hình phản chiếu",
        "một màn hình",
        "một cái hộp",
        "quần áo",
        "một tòa nhà",
        "bầu trời",
        "một con đường",
    ),
}

# Combining marks (after NFD) only Vietnamese uses on Latin letters among the languages a
# query is likely to come in: hook above (ả), dot below (ạ), horn (ơ, ư), breve (ă).
_VIETNAMESE_MARKS = {"\u0309", "\u0323", "\u031b", "\u0306"}
# Marks Vietnamese shares with French, Spanish, Portuguese... (à á â ã): a hint, not proof.
_SHARED_MARKS = {"\u0300", "\u0301", "\u0302", "\u0303"}
_VOWELS = set("aeiouy")
# Common Vietnamese words as typed without diacritics that are not also English words, so
# that "mot con meo" is Vietnamese and "a con man" is not.
_UNACCENTED_VIETNAMESE = frozenset(
    "mot nguoi chiec meo cho xe khong trong cua voi dang nhung nhieu duoc cai dan ong ba tre nha "
    "duong pho chay lua khoi oto cay va la co mau trang xanh vang nu nhom dua tren duoi ngoai "
    "canh quay anh hinh bao ve cuop trom danh nhau nga".split()
)
_ENGLISH_WORDS = frozenset(
    "a an the of on in at to with without by for from near into onto is are was were be and or "
    "not no someone somebody person people man woman men women child car cat dog bike".split()
)
_WORD = re.compile(r"[^\W\d_]+")
_STACKED_MARKS = re.compile("[\u0300-\u036f]{2}")


def detect_language(text: str) -> Language:
    """The language of a query: "vi" for Vietnamese letters and tone marks, or for common Vietnamese
    words typed without them ("mot con meo"); "en" otherwise."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    if "đ" in decomposed or any(mark in _VIETNAMESE_MARKS for mark in decomposed):
        return "vi"
    if _STACKED_MARKS.search(decomposed):  # a vowel with two marks (ầ, ế): only Vietnamese has those
        return "vi"
    vietnamese = english = 0
    for word in _WORD.findall(unicodedata.normalize("NFC", text.lower())):
        letters = unicodedata.normalize("NFD", word)
        bare = "".join(c for c in letters if not unicodedata.combining(c))
        pairs = zip(letters, letters[1:], strict=False)  # (letter, what follows it)
        if any(base in _VOWELS and mark in _SHARED_MARKS for base, mark in pairs):
            vietnamese += 1  # "mèo", "cá": Vietnamese unless the English words outnumber it
        elif bare in _UNACCENTED_VIETNAMESE:
            vietnamese += 1
        elif bare in _ENGLISH_WORDS:
            english += 1
    return "vi" if vietnamese > english else "en"


def resolve_language(text: str, language: str) -> Language:
    """A query's language: "en" or "vi" as given, or detected from the text for "auto"."""
    if language == "auto":
        return detect_language(text)
    if language not in LANGUAGES:
        raise ValueError(f"language must be 'auto' or one of {', '.join(LANGUAGES)}, got {language!r}")
    return language


def prompt_ensemble(text: str, language: Language) -> list[str]:
    """The texts whose mean embedding stands for the query: its templates in `language`."""
    query = " ".join(text.split())
    if not query:
        raise ValueError("a query needs some text")
    return [template.format(query) for template in TEMPLATES[_known(language)]]


def background_prompts(language: Language) -> list[str]:
    """Ordinary scenes with no event in them, in `language`."""
    return list(BACKGROUND_PROMPTS[_known(language)])


def prompts_fingerprint() -> str:
    """A short hash of every template and background prompt: a score prior measured with other
    prompts describes another signal, and is refused by its reader."""
    document = repr((sorted(TEMPLATES.items()), sorted(BACKGROUND_PROMPTS.items())))
    return hashlib.sha256(document.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class QueryVectors:
    """One query, embedded: its ensemble vector, its language's background prompt vectors."""

    text: np.ndarray  # (dim,) L2-normalised mean of the ensemble's embeddings
    background: np.ndarray  # (k, dim) L2-normalised background prompt embeddings (each an ensemble too)
    language: Language
    # (n, dim) the language's negative vocabulary, each an ensemble too (discrimination.py)
    negatives: np.ndarray | None = None


def _shared_ensembles(language: Language, negatives: bool) -> tuple[list[list[str]], list[list[str]]]:
    """A language's background prompts' ensembles and (with `negatives`) its negatives': what
    every query of that language shares."""
    background = [prompt_ensemble(scene, language) for scene in background_prompts(language)]
    negative = [prompt_ensemble(thing, language) for thing in NEGATIVE_PROMPTS[language]] if negatives else []
    return background, negative


def shared_prompts(languages: Sequence[Language] = LANGUAGES, *, negatives: bool = True) -> list[str]:
    """Every prompt the queries of these languages share (their background prompts' and
    negatives' ensembles), each once: what a detector embeds into `embed_queries`'s
    `prompt_cache` at start, so that an operator's first query in a language is scored at once
    instead of holding the camera's frames while 140 negatives are embedded."""
    groups = [_shared_ensembles(language, negatives) for language in languages]
    return list(dict.fromkeys(p for pair in groups for group in pair for ensemble in group for p in ensemble))


def embed_queries(
    encoder: Encoder,
    texts: Sequence[str],
    languages: Sequence[str] | None = None,
    *,
    negatives: bool = True,
    prompt_cache: MutableMapping[str, np.ndarray] | None = None,
) -> list[QueryVectors]:
    """Embed each query's ensemble and its language's background prompts in ONE encoder call.

    languages: per query "en", "vi" or "auto" (the default for every query).
    negatives: also embed the language's negative vocabulary (discrimination.py); 140 more
        prompts a language, about 2-4 s on two cores with the offline encoder, so a detector
        that does not use them does not wait for them.
    prompt_cache: prompt -> embedding of this encoder, read and filled: a detector that keeps
        one embeds a language's background and negative prompts once, not again with every
        query an operator adds (which would hold its frames for seconds)."""
    texts = list(texts)
    languages = ["auto"] * len(texts) if languages is None else list(languages)
    if len(languages) != len(texts):
        raise ValueError(f"need one language per query: {len(texts)} queries, {len(languages)} languages")
    if not texts:
        return []
    resolved = [resolve_language(text, language) for text, language in zip(texts, languages, strict=True)]
    ensembles = [prompt_ensemble(text, language) for text, language in zip(texts, resolved, strict=True)]
    # Background prompts and negatives are shared by every query of a language: each once.
    shared = {language: _shared_ensembles(language, negatives) for language in dict.fromkeys(resolved)}
    background_ensembles = {language: pair[0] for language, pair in shared.items()}
    negative_ensembles = {language: pair[1] for language, pair in shared.items()}
    every_ensemble = ensembles + [
        e for groups in (background_ensembles, negative_ensembles) for group in groups.values() for e in group
    ]
    cache = prompt_cache if prompt_cache is not None else {}
    todo = list(dict.fromkeys(p for ensemble in every_ensemble for p in ensemble if p not in cache))
    if todo:  # each distinct prompt once
        cache.update(zip(todo, np.asarray(encoder.embed_texts(todo), np.float32), strict=True))

    def mean_vector(ensemble: list[str]) -> np.ndarray:
        return l2_normalise(np.stack([cache[prompt] for prompt in ensemble]).mean(axis=0))

    def stacked(groups: dict[Language, list[list[str]]]) -> dict[Language, np.ndarray]:
        return {language: np.stack([mean_vector(e) for e in group]) for language, group in groups.items()}

    backgrounds = stacked(background_ensembles)
    negative_vectors = stacked(negative_ensembles) if negatives else {}
    return [
        QueryVectors(
            text=mean_vector(ensemble),
            background=backgrounds[language],
            language=language,
            negatives=negative_vectors.get(language),
        )
        for ensemble, language in zip(ensembles, resolved, strict=True)
    ]


def query_scores(frame_embeddings: np.ndarray, vectors: QueryVectors) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of (n, dim) L2-normalised embeddings: (cosine with the query, highest cosine with
    any background prompt), the calibrator's (raw_cosine, background_cosine)."""
    frames = np.asarray(frame_embeddings, np.float32)
    if frames.ndim != 2 or frames.shape[1] != vectors.text.shape[0]:
        raise ValueError(f"frame embeddings must be (n, {vectors.text.shape[0]}), got {frames.shape}")
    return frames @ vectors.text, (frames @ vectors.background.T).max(axis=-1)


def _known(language: str) -> Language:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return language
