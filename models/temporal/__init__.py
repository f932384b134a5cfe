"""The GRU temporal scorer: over one (camera, query)'s last frames of calibration features
(pipelines/temporal.py) it gives the probability that the queried event is on now.

A 1-layer GRU (trained by vigil/model_tools/temporal/train.py on real footage with real photos
pasted in; figures in TRAINING.md) exported to ONNX and run with onnxruntime. It is stateless:
every call scores whole windows, nothing is carried between calls, so a detector replaying
frames after a crash gets the same outputs. Scoring a batch of every query's window of one
camera costs microseconds.

    scorer = TemporalScorer.load()            # the committed models/temporal/gru.onnx
    probabilities = scorer.score(windows)     # (batch, TEMPORAL_WINDOW, len(FEATURE_NAMES)) -> (batch,)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.errors import ModelUnavailableError
from vigil.models.encoder import sha256_file
from vigil.models.temporal.inputs import FEATURE_NAMES, TEMPORAL_WINDOW

if TYPE_CHECKING:
    import onnxruntime as ort

    from vigil.models.onnx_session import Device

MODEL_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = MODEL_DIR / "gru.onnx"
TRAINING_REPORT = "models/temporal/TRAINING.md"

__all__ = ["DEFAULT_MODEL", "FEATURE_NAMES", "TEMPORAL_WINDOW", "TemporalScorer"]


class TemporalScorer:
    """The exported GRU in an onnxruntime session; see the module docstring.

    info: name, sha256 of the ONNX file, window, features, training report path, providers.
    """

    def __init__(self, session: ort.InferenceSession, path: Path, info: dict[str, Any]) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self.path = path
        self.info = info
        self.window = int(info["window"])
        self.features = tuple(info["features"])

    @classmethod
    def load(
        cls, path: Path | None = None, device: Device = "cpu", threads: int | None = 1
    ) -> TemporalScorer:
        """Open the model (default: the committed gru.onnx); its window and features must be the
        ones of its input contract (inputs.py), which pipelines/temporal.py builds, or the windows
        would be misread.

        threads: onnxruntime intra-op threads. One by default: for a model this small a second
        thread only adds hand-over cost (BENCHMARKS.md: batch 512 takes 1.2 ms on one thread,
        2.2 ms on two), and the encoder needs the cores. None: onnxruntime's default."""
        # onnxruntime is imported here, not with the package: pipelines/temporal.py imports the
        # input contract (vigil.models.temporal.inputs) and must stay free of a model runtime.
        from vigil.models.onnx_session import active_providers, create_session

        path = Path(path) if path is not None else DEFAULT_MODEL
        if not path.is_file():
            raise ModelUnavailableError(
                f"temporal scorer: {path} is missing; it is committed with the repository, or "
                "`make models` (python -m vigil.model_tools.temporal.train) trains it"
            )
        try:
            session = create_session(path, device=device, threads=threads)
        except Exception as error:  # onnxruntime raises its own types for a corrupt file
            raise ModelUnavailableError(f"temporal scorer: cannot load {path}: {error}") from None
        meta = session.get_modelmeta().custom_metadata_map
        window = int(meta.get("window", -1))
        features = tuple(meta.get("features", "").split(","))
        if window != TEMPORAL_WINDOW or features != FEATURE_NAMES:
            raise ModelUnavailableError(
                f"temporal scorer: {path.name} was trained on windows of {window} frames with features "
                f"{features}, but pipelines/temporal.py builds {TEMPORAL_WINDOW} frames with "
                f"{FEATURE_NAMES}: retrain it (python -m vigil.model_tools.temporal.train)"
            )
        info = {
            "name": meta.get("name", path.stem),
            "sha256": sha256_file(path),
            "window": window,
            "features": list(features),
            "hidden": int(meta.get("hidden", 0)),
            "training_report": meta.get("training_report", TRAINING_REPORT),
            "providers": active_providers(session),
            "path": str(path),
        }
        return cls(session, path, info)

    def score(self, windows: np.ndarray) -> np.ndarray:
        """(batch, window, features) float32 windows -> (batch,) float32 probabilities in [0, 1]."""
        array = np.asarray(windows)
        expected = (self.window, len(self.features))
        if array.ndim != 3 or array.shape[1:] != expected:
            raise ValueError(
                f"windows must have shape (batch, {expected[0]}, {expected[1]}) "
                f"(frames x features {', '.join(self.features)}), got {array.shape}"
            )
        if array.shape[0] == 0:
            return np.zeros(0, np.float32)
        array = np.ascontiguousarray(array, np.float32)
        if not np.isfinite(array).all():
            raise ValueError("windows contain NaN or infinite values")
        probabilities: np.ndarray = self._session.run(None, {self._input: array})[0]
        return probabilities.astype(np.float32, copy=False)
