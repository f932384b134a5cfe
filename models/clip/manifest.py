"""The manifest of a CLIP export: the one file that says what an export directory holds.

Read by the runtime (no torch needed) and written by the exporter. It is written last and
atomically, so a directory with a readable manifest is a complete export.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vigil.errors import ModelUnavailableError
from vigil.models.clip.int8 import INT8_RECIPE_VERSION

MANIFEST_NAME = "manifest.json"
# Bumped when a field changes meaning; older exports are then refused with "re-export it".
MANIFEST_FORMAT = 1
TOWERS = ("image", "text")
# The version of the recipe that derives each precision from fp32, recorded under "recipes" when the
# files are derived; a precision whose recorded version is older is re-derived by add_precisions.
# Manifests written before recipes were versioned have no "recipes": version 1.
RECIPE_VERSIONS = {"int8": INT8_RECIPE_VERSION, "fp16": 1}


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise ModelUnavailableError(f"{directory} holds no CLIP export ({MANIFEST_NAME} missing)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split())
        raise ModelUnavailableError(f"{path} is unreadable ({reason}); re-export it") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelUnavailableError(
            f"{path} has manifest format {found!r}, this Vigil reads {MANIFEST_FORMAT}; re-export it"
        )
    return manifest


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def stale_precisions(manifest: dict[str, Any]) -> list[str]:
    """The derived precisions of `manifest` whose files an older recipe made (they need re-deriving)."""
    recorded = manifest.get("recipes", {})
    return [
        precision
        for precision, version in RECIPE_VERSIONS.items()
        if precision in manifest["files"] and recorded.get(precision, {}).get("version", 1) < version
    ]
