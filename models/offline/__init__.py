"""Offline zero-shot image-text encoder (ConSE over ImageNet + COCO labels, multilingual-e5).

Runs on models that ship inside packages, for machines that cannot download CLIP weights.
Build its artefacts with `build_offline_models()` (`make models`); see docs/ZEROSHOT.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vigil.models.offline.build import build_offline_models
    from vigil.models.offline.encoder import ConseConfig, OfflineEncoder

__all__ = ["ConseConfig", "OfflineEncoder", "build_offline_models"]


def __getattr__(name: str) -> object:
    # Imported on first use, so `python -m vigil.models.offline.build` (or .evaluate) does not
    # find its own module already imported by the package, and importing the package is cheap.
    if name == "build_offline_models":
        from vigil.models.offline.build import build_offline_models

        return build_offline_models
    if name in ("ConseConfig", "OfflineEncoder"):
        from vigil.models.offline import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
