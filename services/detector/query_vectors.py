"""The detector's standing queries as its camera pipelines need them: each text embedded once,
with its prompt ensemble, and turned into each camera's `StandingQuery` list.

Embedding is the expensive part, so it is shared and cached: every prompt embedded so far
(query ensembles, background prompts, negatives) is kept by text, so a new query embeds its own
prompts only (its language's 140 negatives once per language), and both first-class languages'
background prompts and negatives are embedded at start, from the on-disk text cache when it has
them. Vectors are kept by (text, language), so two queries with one text share them, and
dropped with the last query that used them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vigil.models.encoder import Encoder
from vigil.models.text_cache import embed_texts_cached
from vigil.paths import models_dir
from vigil.pipelines.detector import StandingQuery
from vigil.pipelines.discrimination import DiscriminationSettings
from vigil.pipelines.matching import MatchSettings
from vigil.pipelines.prompts import QueryVectors, embed_queries, resolve_language, shared_prompts
from vigil.pipelines.query_table import QueryTable
from vigil.services.common.contract import QueryMessage


class StandingQueryVectors:
    """`refresh(table)` after the query table may have changed; `specs_for(table, camera_id)`."""

    def __init__(
        self,
        encoder: Encoder,
        discrimination: DiscriminationSettings,
        match_for: Callable[[str], Callable[[float | str], MatchSettings]],
    ) -> None:
        """`match_for(camera_id)(threshold)`: the camera's match settings at a query's threshold."""
        self.encoder = encoder
        self.negatives = discrimination.enabled and discrimination.negatives
        self.match_for = match_for
        self.version = -1  # of the query table the vectors were made for
        self._vectors: dict[tuple[str, str], QueryVectors] = {}
        shared = shared_prompts(negatives=self.negatives)
        self._prompt_vectors: dict[str, np.ndarray] = dict(
            zip(shared, embed_texts_cached(encoder, shared, models_dir() / "text-cache"), strict=True)
        )

    def refresh(self, table: QueryTable[QueryMessage]) -> list[str] | None:
        """Embed what the table's enabled queries need and forget what none needs any more;
        the enabled query ids, or None when the table has not changed since the last call."""
        if table.version == self.version:
            return None
        self.version = table.version
        enabled = [query for query in table.snapshot().values() if query.enabled]
        keys = {query.query_id: _vectors_key(query) for query in enabled}
        missing = sorted({key for key in keys.values() if key not in self._vectors})
        if missing:
            vectors = embed_queries(
                self.encoder,
                [text for text, _ in missing],
                [language for _, language in missing],
                negatives=self.negatives,
                prompt_cache=self._prompt_vectors,
            )
            self._vectors.update(zip(missing, vectors, strict=True))
        self._vectors = {key: self._vectors[key] for key in set(keys.values())}
        return sorted(keys)

    def specs_for(self, table: QueryTable[QueryMessage], camera_id: str) -> list[StandingQuery]:
        """The camera's standing queries with their vectors; a query that arrived after the
        last refresh is left out until the next one."""
        match = self.match_for(camera_id)
        specs = []
        for query in table.for_camera(camera_id):
            key = _vectors_key(query)
            vectors = self._vectors.get(key)
            if vectors is not None:
                specs.append(StandingQuery(query.query_id, "\x1f".join(key), vectors, match(query.threshold)))
        return specs


def _vectors_key(query: QueryMessage) -> tuple[str, str]:
    return query.text, resolve_language(query.text, query.language)
