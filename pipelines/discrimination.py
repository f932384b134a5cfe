"""The discriminative decision: a region counts for a query only when the query explains it
better than anything else it could be (no I/O).

Judging a query only against its own camera's background turns any novelty into a hit for
every query: a cat walking into a hall is unusual for "a cat", but also for "a motorcycle",
whose score rises a little on anything that is not an empty hall. So each frame is judged
twice:

- **Novelty** (the calibrated evidence, as before): the query's *margin* on a view (a region
  crop or the whole frame; rows of L2-normalised embeddings) is its cosine minus the highest
  cosine of its language's background prompts ("an empty corridor", ...: prompts.py); the
  detector calibrates that margin against the camera's running background (calibration.py:
  "standard deviations above normal for this camera and query") and the state machine
  thresholds it. This is the signal the temporal model was trained on.
- **The gate** (the discriminative evidence): did this view lift the query more than it lifted
  anything else it could be? A text's *lift* on a view is its cosine there minus its usual
  cosine on this camera (`RawBaseline`: running means over the views that taught the
  background). The gate margin is the query's lift minus the highest lift of its *rivals*:
  the camera's other standing queries, whatever their language, and the negative vocabulary
  of the query's language (generic objects and scene parts a camera sees: "a person", "a car",
  "a shadow", ...; prompts.NEGATIVE_PROMPTS). A view whose gate margin is not above
  `min_margin` may neither open nor confirm the query's event (an open event is held by its
  novelty alone).

Lifts, not raw cosines: an encoder's text side gives each phrase its own offset. Under the
offline encoder a Vietnamese phrase's cosines run higher on everything ("một chiếc xe máy"
out-scored "một con mèo" on a cat), and "a person" or "a car" sit high on every frame of a
hall. Each text's own camera baseline removes the offset and keeps cosine units, so one
`min_margin` serves every pair of texts, in one language or two. And rivals in the gate, not in
the calibrated margin: a rival that rises with the query ("a car" on a motorcycle) would
otherwise flatten the query's novelty below the threshold, although the motorcycle lifted "a
motorcycle" three times as much as "a car".

Measured on the evaluation's tune split (offline encoder, docs/EVALUATION.md; the held-out
split played no part), events found in English / Vietnamese and false events per hour per
query: no discrimination 13 / 9 of 24 at 22.1 / 22.1; rivals in the calibrated margin and a
raw-cosine gate against the other queries 8 / 9 at 2.3 / 3.8; that margin with a lift gate
against the other queries 11 / 12 at 3.8 / 3.0; this design 11 / 8 at 0.0 / 1.5.

A rival that *means* the query is not a rival: "một con mèo" must not be beaten by "a cat"
registered on the same camera, nor "a person walking" by the negative "a person". Texts whose
embeddings are at least `synonym_cosine` close to the query's are dropped for that query. The
value is a property of the encoder's text space (how close paraphrases and translations land),
so an encoder may carry its own measured value in `info.details["synonym_cosine"]`; 0.7 is the
offline encoder's (measured: translations of one noun phrase meet at 0.72-0.87, different
objects at 0.4-0.65).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.models.encoder import EncoderInfo
from vigil.pipelines.prompts import QueryVectors

DEFAULT_SYNONYM_COSINE = 0.7


@dataclass(frozen=True)
class DiscriminationSettings:
    """enabled: gate each query against its rivals (False: novelty alone, the detector before
        discrimination, kept for comparison in the evaluation).
    min_margin: how much more a view must lift the query than any rival (cosine units).
    synonym_cosine: rival texts at least this close to the query mean the same thing.
    other_queries / negatives: which rivals take part (the evaluation switches them)."""

    enabled: bool = True
    min_margin: float = 0.0
    synonym_cosine: float = DEFAULT_SYNONYM_COSINE
    other_queries: bool = True
    negatives: bool = True

    def __post_init__(self) -> None:
        if not -1.0 < self.synonym_cosine <= 1.0:
            raise ValueError(f"synonym_cosine must be in (-1, 1], got {self.synonym_cosine!r}")
        if not -1.0 < self.min_margin < 1.0:
            raise ValueError(f"min_margin must be in (-1, 1), got {self.min_margin!r}")

    @classmethod
    def for_encoder(cls, info: EncoderInfo, **overrides: Any) -> DiscriminationSettings:
        """The defaults, with the encoder's measured `synonym_cosine` when it carries one."""
        measured = info.details.get("synonym_cosine")
        if measured is not None and "synonym_cosine" not in overrides:
            overrides["synonym_cosine"] = float(measured)
        return cls(**overrides)


def rivals_for(
    query: QueryVectors, others: Mapping[str, QueryVectors], settings: DiscriminationSettings
) -> tuple[str, ...]:
    """The ids of the other standing queries (`others`, by id; `query` itself may be among
    them) that a region must lift `query` more than (the gate "queries"), less those that mean
    the query, in whatever language; () when discrimination or other queries are off."""
    if not settings.enabled or not settings.other_queries:
        return ()
    return tuple(
        query_id
        for query_id, other in others.items()
        if other is not query and float(other.text @ query.text) < settings.synonym_cosine
    )


@dataclass
class RawBaseline:
    """A query's usual cosines on one camera, with its own text and each of its negatives (one
    column each): running means over the views that taught the background, as the
    calibrator's statistics are (the first `halflife_frames / ln 2` views are averaged equally,
    later ones weigh that much). None until the first view."""

    halflife_frames: float = 300.0
    mean: np.ndarray | None = None
    count: int = 0

    def learn(self, cosines: np.ndarray | Sequence[float] | float) -> None:
        cosines = np.atleast_1d(np.asarray(cosines, np.float64))
        if not np.all(np.isfinite(cosines)):
            return
        self.count += 1
        if self.mean is None:
            self.mean = cosines.copy()
            return
        weight = 1.0 / min(self.count, max(1.0, self.halflife_frames / math.log(2)))
        self.mean += weight * (cosines - self.mean)

    def lifts(self, cosines: np.ndarray) -> np.ndarray:
        """The cosines less the usual ones (zeros before anything was learnt: no evidence)."""
        cosines = np.asarray(cosines, np.float32)
        return np.zeros_like(cosines) if self.mean is None else cosines - self.mean.astype(np.float32)

    def to_state(self) -> dict[str, Any]:
        return {"mean": None if self.mean is None else self.mean.tolist(), "count": self.count}

    def restore(self, state: dict[str, Any] | None) -> None:
        """From `to_state()`; None (a snapshot from before baselines) starts afresh."""
        if state is None or state["mean"] is None:
            self.mean, self.count = None, 0
        else:
            self.mean, self.count = np.asarray(state["mean"], np.float64), int(state["count"])


def gate_margins(lifts: np.ndarray, rival_lifts: Sequence[np.ndarray]) -> np.ndarray:
    """Per view: the query's lift minus the highest lift of its rivals (+inf with no rival)."""
    lifts = np.asarray(lifts, np.float32)
    if not len(rival_lifts):
        return np.full(lifts.shape, np.inf, np.float32)
    margins: np.ndarray = lifts - np.max(np.stack(rival_lifts), axis=0)
    return margins


def gate_negatives(query: QueryVectors, settings: DiscriminationSettings) -> np.ndarray:
    """(n, dim) the negatives of the query's language that its gate counts, less those that
    mean the query; (0, dim) when discrimination or negatives are off."""
    dim = query.text.shape[0]
    negatives = query.negatives
    if not settings.enabled or not settings.negatives or negatives is None or not len(negatives):
        return np.zeros((0, dim), np.float32)
    negatives = np.asarray(negatives, np.float32)
    counted: np.ndarray = negatives[negatives @ query.text < settings.synonym_cosine]
    return counted


@dataclass(frozen=True)
class ViewMargins:
    """One query's region on one frame: the view, its cosine with the query, its highest
    cosine with the query's background prompts (the calibrator's raw and background cosines),
    and its gate margin (`gate_margins`; +inf with no rival)."""

    view: int
    raw_cosine: float
    competitor_cosine: float
    gate_margin: float = math.inf


def view_cosines(
    views: np.ndarray, texts: np.ndarray, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per view (rows of `views`, (v, dim)): its cosines with `texts` ((k, dim): the query's text
    first, then the negatives its gate counts), (v, k), and its highest cosine with the query's
    `background` prompts, (v,). The query's margin is column 0 less the latter."""
    views = np.asarray(views, np.float32)
    if views.ndim != 2 or views.shape[0] == 0:
        raise ValueError(f"views must be a non-empty (v, dim) array, got shape {views.shape}")
    return views @ texts.T, (views @ background.T).max(axis=1)
