"""What the temporal scorer sees of one (camera, query): its last frames' calibration features
(no I/O).

The GRU in models/temporal/ is given, for one (camera, query), the `TEMPORAL_WINDOW` most
recent frames as a (window, features) matrix, oldest first, and answers "is the queried event
on at the last frame?" (the window's shape is the model's input contract,
models/temporal/inputs.py). Every feature is computed from what `QueryTrack` has when it
calibrates a frame, so the live detector, `vigil scan` and the training script build exactly
the same rows:

    calibrated  the calibrated score, sigmoid(z - sigma_at_half), in [0, 1] (0.0 during a
                prior-less warm-up, as the calibrator gives it)
    z           the z-score against the running background, clipped to [Z_MIN, Z_MAX] and
                divided by Z_SCALE (so in [-1, 2]); 0.0 when there is none yet
    dz          the change of that clipped z since the previous frame, / Z_SCALE; 0.0 when
                either frame has no z
    gap         seconds since the previous frame, capped at GAP_CAP_S, / GAP_CAP_S (so in
                [0, 1]): a stalled camera's frames are told apart from a steady stream; 0.0
                for the first frame
    z_known     1.0 when the frame has a z-score, 0.0 during a prior-less warm-up
    present     1.0 for a frame, 0.0 for the zero rows that left-pad a window not yet full
    gate        the discriminative evidence (pipelines/discrimination.py): how much more the
                query's chosen view lifted the query over its camera baseline than it lifted
                any rival (the camera's other queries, the language's negatives), in cosine
                units clipped to [GATE_MIN, GATE_MAX] and divided by GATE_SCALE (so in [-1, 1]);
                GATE_MAX with no rival at all (+inf), 0.0 when unknown (no baseline yet)

The window is stateless for the model: it is re-scored whole at each frame, no hidden state is
carried between calls, so a detector replaying frames after a crash (from a `to_state()`
snapshot) gives identical outputs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

# The window's shape is the model's input contract (models/temporal/inputs.py); re-exported here
# beside the code that fills it.
from vigil.models.temporal.inputs import FEATURE_NAMES, TEMPORAL_WINDOW

Z_MIN, Z_MAX, Z_SCALE = -5.0, 10.0, 5.0
GAP_CAP_S = 10.0
# Gate margins are cosine differences; on the offline encoder's training replays about 95 % of
# them lie within +-GATE_SCALE (models/temporal/TRAINING.md), so the clip loses only the tails.
GATE_MIN, GATE_MAX, GATE_SCALE = -0.2, 0.2, 0.2
STATE_VERSION = 2
# Version 1 windows had no gate column: they restore with gate 0.0 (unknown) in every row.
V1_FEATURE_NAMES = FEATURE_NAMES[:-1]


def _clipped_z(z: float | None) -> float | None:
    if z is None or not math.isfinite(z):
        return None
    return min(max(float(z), Z_MIN), Z_MAX)


def _scaled_gate(gate_margin: float | None) -> float:
    if gate_margin is None or math.isnan(gate_margin):
        return 0.0
    return min(max(float(gate_margin), GATE_MIN), GATE_MAX) / GATE_SCALE


def feature_row(
    z_score: float | None,
    calibrated: float,
    gap_s: float | None,
    previous_z: float | None,
    gate_margin: float | None = None,
) -> np.ndarray:
    """One frame's features (see the module docstring), float32.

    z_score: this frame's z (None during a prior-less warm-up or for a non-finite signal);
    gap_s: seconds since the previous frame (None for the first frame);
    previous_z: the previous frame's z, or None;
    gate_margin: the chosen view's gate margin in cosine units (+inf: no rival), or None."""
    z = _clipped_z(z_score)
    before = _clipped_z(previous_z)
    score = float(calibrated)
    score = min(max(score, 0.0), 1.0) if math.isfinite(score) else 0.0
    gap = 0.0 if gap_s is None else min(max(float(gap_s), 0.0), GAP_CAP_S) / GAP_CAP_S
    return np.array(
        [
            score,
            0.0 if z is None else z / Z_SCALE,
            0.0 if z is None or before is None else (z - before) / Z_SCALE,
            gap,
            0.0 if z is None else 1.0,
            1.0,
            _scaled_gate(gate_margin),
        ],
        np.float32,
    )


def stream_rows(
    ts_ms: Sequence[int],
    z_scores: Sequence[float | None],
    calibrated: Sequence[float],
    gate_margins: Sequence[float | None] | None = None,
) -> np.ndarray:
    """The feature rows (n, features) of one (camera, query)'s frames, as `FeatureWindow.push`
    makes them one by one (frames not newer than the previous one are skipped likewise)."""
    window = FeatureWindow(window=1)
    rows = []
    gates: Sequence[float | None] = [None] * len(ts_ms) if gate_margins is None else gate_margins
    for ts, z, score, gate in zip(ts_ms, z_scores, calibrated, gates, strict=True):
        if window.push(int(ts), z, score, gate):
            rows.append(window.last_row)
    return np.stack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)), np.float32)


def sliding_windows(rows: np.ndarray, window: int = TEMPORAL_WINDOW) -> np.ndarray:
    """(n, features) rows of one stream -> (n, window, features): for each frame, the matrix
    `FeatureWindow.matrix()` gives right after that frame was pushed (left-padded with zeros)."""
    rows = np.asarray(rows, np.float32)
    padded = np.concatenate([np.zeros((window - 1, rows.shape[1]), np.float32), rows])
    view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # (n, features, window)
    return np.ascontiguousarray(view.transpose(0, 2, 1))


class FeatureWindow:
    """The last `window` frames' features of one (camera, query); see the module docstring.

    A frame whose capture time is not newer than the last one pushed is ignored (`push` returns
    False), as the match state machine ignores it: a redelivered or late frame changes nothing.
    """

    def __init__(self, window: int = TEMPORAL_WINDOW) -> None:
        if int(window) < 1:
            raise ValueError(f"FeatureWindow window must be >= 1, got {window!r}")
        self.window = int(window)
        self._rows: deque[np.ndarray] = deque(maxlen=self.window)
        self._last_ts: int | None = None
        self._last_z: float | None = None
        self.ignored_out_of_order = 0

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def last_row(self) -> np.ndarray:
        if not self._rows:
            raise IndexError("FeatureWindow is empty")
        return self._rows[-1]

    def push(
        self, ts_ms: int, z_score: float | None, calibrated: float, gate_margin: float | None = None
    ) -> bool:
        """Add one frame (capture time in ms, its z-score or None, its calibrated score, its
        gate margin or None); False when it was ignored for not being newer than the last frame."""
        ts_ms = int(ts_ms)
        if self._last_ts is not None and ts_ms <= self._last_ts:
            self.ignored_out_of_order += 1
            return False
        gap_s = None if self._last_ts is None else (ts_ms - self._last_ts) / 1000.0
        self._rows.append(feature_row(z_score, calibrated, gap_s, self._last_z, gate_margin))
        self._last_ts = ts_ms
        self._last_z = _clipped_z(z_score)
        return True

    def matrix(self) -> np.ndarray:
        """(window, features) float32, oldest frame first, left-padded with zero rows."""
        out = np.zeros((self.window, len(FEATURE_NAMES)), np.float32)
        if self._rows:
            out[self.window - len(self._rows) :] = np.stack(self._rows)
        return out

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot; `from_state` rebuilds an identical window."""
        return {
            "version": STATE_VERSION,
            "window": self.window,
            "features": list(FEATURE_NAMES),
            "rows": [[float(v) for v in row] for row in self._rows],
            "last_ts_ms": self._last_ts,
            "last_z": self._last_z,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureWindow:
        try:
            version, features = state["version"], tuple(state["features"])
            if (version, features) not in ((STATE_VERSION, FEATURE_NAMES), (1, V1_FEATURE_NAMES)):
                raise ValueError("another version or feature set")
            window = cls(int(state["window"]))
            rows = [np.asarray(row, np.float32) for row in state["rows"]]
            if version == 1 and all(row.shape == (len(V1_FEATURE_NAMES),) for row in rows):
                rows = [np.append(row, np.float32(0.0)) for row in rows]  # gate unknown
            if len(rows) > window.window or any(row.shape != (len(FEATURE_NAMES),) for row in rows):
                raise ValueError("rows do not fit the window")
            window._rows.extend(rows)
            window._last_ts = None if state["last_ts_ms"] is None else int(state["last_ts_ms"])
            window._last_z = None if state["last_z"] is None else float(state["last_z"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"not a FeatureWindow snapshot (version {STATE_VERSION} or 1): {error}"
            ) from None
        return window
