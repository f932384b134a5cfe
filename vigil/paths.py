"""Where Vigil keeps what it builds at run time (ONNX exports, caches). Never committed."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def var_dir() -> Path:
    """`VIGIL_HOME`, else `var/` in the checkout (created on demand)."""
    return Path(os.environ.get("VIGIL_HOME") or REPO_ROOT / "var")


def models_dir() -> Path:
    """`VIGIL_MODELS_DIR`, else `<VIGIL_HOME>/models`: exported ONNX models and embedding caches."""
    return Path(os.environ.get("VIGIL_MODELS_DIR") or var_dir() / "models")
