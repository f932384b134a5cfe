"""The detector's temporal stage: the GRU scorer (models/temporal) with its feature windows
(pipelines/temporal.py), as the live detector and `replay` (hence `vigil eval`) both load it."""

from __future__ import annotations

import logging

from vigil.pipelines.detector import TemporalStage

log = logging.getLogger("vigil.detector")


def load_temporal_stage() -> TemporalStage:
    from vigil.models.temporal import TemporalScorer
    from vigil.pipelines.temporal import FeatureWindow

    scorer = TemporalScorer.load()
    log.info("temporal model: %s", scorer.info.get("name", "gru"))
    return TemporalStage(scorer.score, FeatureWindow, FeatureWindow.from_state)
