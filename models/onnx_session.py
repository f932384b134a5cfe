"""onnxruntime sessions with honest provider reporting.

onnxruntime-gpu silently falls back to CPU when CUDA is missing, so we always ask the
session which providers it really uses and report that, never what we asked for.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

import onnxruntime as ort

log = logging.getLogger("vigil.models")

Device = Literal["auto", "cpu", "cuda"]


def create_session(path: Path, device: Device = "auto", threads: int | None = None) -> ort.InferenceSession:
    """Open an ONNX model on CUDA when asked/available and really active, else on CPU."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = threads or int(os.environ.get("VIGIL_ORT_THREADS", "0")) or None
    if threads:
        options.intra_op_num_threads = threads
    # Spinning threads burn a core between micro-batches; the detector shares cores with ingest.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    active = session.get_providers()
    if device == "cuda" and active[0] != "CUDAExecutionProvider":
        log.warning("CUDA was requested for %s but onnxruntime runs it on %s", path.name, active[0])
    return session


def active_providers(session: ort.InferenceSession) -> list[str]:
    return list(session.get_providers())
