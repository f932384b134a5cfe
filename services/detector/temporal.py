"""The detector's temporal stage: the GRU scorer (models/temporal) with its feature windows
(pipelines/temporal.py), as the live detector and `replay` (hence `vigil eval`, once per
stream and language) both load it; loaded once per process."""

from __future__ import annotations

import logging
from functools import cache

from vigil.pipelines.detector import TemporalStage

log = logging.getLogger("vigil.detector")


@cache  # the scorer is stateless (whole windows in, probabilities out): one load serves every camera
def load_temporal_stage() -> TemporalStage:
    from vigil.models.temporal import TemporalScorer
    from vigil.pipelines.temporal import FeatureWindow

    scorer = TemporalScorer.load()
    log.info("temporal model: %s", scorer.info.get("name", "gru"))
    return TemporalStage(scorer.score, FeatureWindow, FeatureWindow.from_state)
