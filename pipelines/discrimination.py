"""The discriminative decision: a region counts for a query only when the query explains it
better than anything else it could be (no I/O).

Judging a query only against its own camera's background turns any novelty into a hit for
every query: a cat walking into a hall is unusual for "a cat", but also for "a motorcycle",
whose score rises a little on anything that is not an empty hall. So each query is also judged
against its *competitors*, the other things the same region could be:

- the background prompts of its language ("an empty corridor", ...: prompts.py);
- the negative vocabulary of its language (generic objects and scene parts a camera sees:
  "a person", "a door", "a shadow", ...; prompts.NEGATIVE_PROMPTS);
- the other standing queries of the same camera, whatever their language.

For a view v (a region crop or the whole frame; rows of L2-normalised embeddings) the query's
*margin* is

    margin_q(v) = cos(v, q) - max over competitors c of cos(v, c)

which is positive exactly when the query is the region's best explanation. The frame's
margin is its best view's, and that view is the query's region for the frame (its box goes
with the hit). The detector calibrates that margin against the camera's running background
(the novelty evidence: calibration.py turns it into "standard deviations above normal for this
camera and query") and requires the margin itself to clear `min_margin` (the discriminative
evidence): both must hold for the state machine to see the frame as the query's. A margin is
a difference of cosines in one space, so one `min_margin` means the same for every query.

A competitor that *means* the query is not a competitor: "một con mèo" must not be beaten by
"a cat" registered on the same camera, nor "a person walking" by the negative "a person".
Texts whose embeddings are at least `synonym_cosine` apart from the query's are kept; the
rest are dropped for that query. The value is a property of the encoder's text space (how
close paraphrases and translations land), so an encoder may carry its own measured value in
`info.details["synonym_cosine"]`; 0.7 is the offline encoder's (measured: translations of one
noun phrase meet at 0.72-0.87, different objects at 0.4-0.65).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vigil.models.encoder import EncoderInfo
from vigil.pipelines.prompts import QueryVectors

DEFAULT_SYNONYM_COSINE = 0.7


@dataclass(frozen=True)
class DiscriminationSettings:
    """enabled: judge queries against competitors (False: against background prompts only,
        the detector before regions, kept for comparison in the evaluation).
    min_margin: how much better than its best competitor a query must explain its region.
    synonym_cosine: competitor texts at least this close to the query mean the same thing.
    other_queries / negatives: which competitor sets take part (the evaluation switches them).
    gate: what a region's query must beat outright to open an event: "queries", the other
        standing queries (no query fires on another's object), or "all" competitors. The
        margin that is calibrated is over all of them either way. "all" asks more than the
        offline encoder can give: on pasted real photos in real footage its crops beat every
        negative for the right query only about half the time in English and a third in
        Vietnamese (beating the other queries: 80 % and 45 %), so it would miss most events."""

    enabled: bool = False
    min_margin: float = 0.0
    synonym_cosine: float = DEFAULT_SYNONYM_COSINE
    other_queries: bool = True
    negatives: bool = True
    gate: Literal["queries", "all"] = "queries"

    def __post_init__(self) -> None:
        if not -1.0 < self.synonym_cosine <= 1.0:
            raise ValueError(f"synonym_cosine must be in (-1, 1], got {self.synonym_cosine!r}")
        if not -1.0 < self.min_margin < 1.0:
            raise ValueError(f"min_margin must be in (-1, 1), got {self.min_margin!r}")

    @classmethod
    def for_encoder(cls, info: EncoderInfo, **overrides) -> DiscriminationSettings:
        """The defaults, with the encoder's measured `synonym_cosine` when it carries one."""
        measured = info.details.get("synonym_cosine")
        if measured is not None and "synonym_cosine" not in overrides:
            overrides["synonym_cosine"] = float(measured)
        return cls(**overrides)


def rivals_for(
    query: QueryVectors, others: Sequence[QueryVectors], settings: DiscriminationSettings
) -> np.ndarray:
    """(r, dim) the other standing queries a region must be explained by `query` better than
    (the gate "queries"), less those that mean the query; (0, dim) when there are none."""
    dim = query.text.shape[0]
    if not settings.enabled or not settings.other_queries:
        return np.zeros((0, dim), np.float32)
    rows = [other.text for other in others if other is not query]
    candidates = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    return candidates[candidates @ query.text < settings.synonym_cosine]


def gate_margins(views: np.ndarray, query_text: np.ndarray, rivals: np.ndarray) -> np.ndarray:
    """Per view: the query's cosine minus its best rival's (+inf with no rival)."""
    raw = np.asarray(views, np.float32) @ query_text
    if len(rivals) == 0:
        return np.full(raw.shape, np.inf, np.float32)
    return raw - (np.asarray(views, np.float32) @ rivals.T).max(axis=1)


def competitors_for(
    query: QueryVectors, others: Sequence[QueryVectors], settings: DiscriminationSettings
) -> np.ndarray:
    """(m, dim) competitor vectors of `query`: its background prompts, then (per the settings)
    its language's negative vocabulary and the other queries, less those that mean the query."""
    rows = [query.background]
    if settings.enabled and settings.negatives and query.negatives is not None and len(query.negatives):
        rows.append(query.negatives)
    if settings.enabled and settings.other_queries:
        rows.extend(other.text[None, :] for other in others if other is not query)
    candidates = np.concatenate(rows).astype(np.float32)
    keep = candidates @ query.text < settings.synonym_cosine
    keep[: len(query.background)] = True  # background prompts describe scenes, never the query
    return candidates[keep]


@dataclass(frozen=True)
class ViewMargins:
    """One query over one frame's views: its best view, that view's cosine with the query and
    with its best competitor (the calibrator's raw and background cosines), and the margin."""

    view: int
    raw_cosine: float
    competitor_cosine: float

    @property
    def margin(self) -> float:
        return self.raw_cosine - self.competitor_cosine


def view_cosines(
    views: np.ndarray, query_text: np.ndarray, competitors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per view (rows of `views`, (v, dim)): its cosine with the query and its highest cosine
    with any of the query's competitors ((m, dim)). The margin is their difference."""
    views = np.asarray(views, np.float32)
    if views.ndim != 2 or views.shape[0] == 0:
        raise ValueError(f"views must be a non-empty (v, dim) array, got shape {views.shape}")
    return views @ query_text, (views @ competitors.T).max(axis=1)


def best_view(views: np.ndarray, query_text: np.ndarray, competitors: np.ndarray) -> ViewMargins:
    """The view (row of `views`, (v, dim)) that the query explains best relative to its
    competitors ((m, dim)); ties go to the first view (the whole frame, when it is row 0)."""
    raw, competing = view_cosines(views, query_text, competitors)
    index = int(np.argmax(raw - competing))
    return ViewMargins(index, float(raw[index]), float(competing[index]))
