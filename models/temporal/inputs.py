"""The temporal scorer's input contract: what one window it scores is made of.

A window is `TEMPORAL_WINDOW` frames (oldest first) by `FEATURE_NAMES` features. The exported
GRU records both in its ONNX metadata and `TemporalScorer.load` refuses a model trained on other
ones; pipelines/temporal.py builds its windows to this contract (it says what each feature
means and computes it). Changing either is retraining the model (`make models`).
"""

from __future__ import annotations

TEMPORAL_WINDOW = 16
FEATURE_NAMES: tuple[str, ...] = ("calibrated", "z", "dz", "gap", "z_known", "present", "gate")
