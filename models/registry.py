"""The encoder factory: configs as data in, an `Encoder` out.

Services and the CLI name an encoder kind ("clip" or "offline") plus its settings; this
module is the only place that knows which class implements which kind. Implementations
are imported lazily so that asking for one never loads the other's dependencies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from vigil.errors import VigilError
from vigil.models.clip.config import ClipSpec
from vigil.models.encoder import Encoder, EncoderInfo
from vigil.models.onnx_session import Device
from vigil.paths import models_dir

EncoderKind = Literal["clip", "offline"]


class EncoderSettings(BaseModel):
    """Which encoder to run and how; embedded in every service's settings.

    kind "auto" (the services' default) runs CLIP when an export made from real weights is
    present for `clip`, else the offline encoder; `resolve_kind` says which and why.
    """

    kind: EncoderKind | Literal["auto"] = "offline"
    device: Device = "auto"
    clip: ClipSpec = Field(default_factory=ClipSpec)


def resolve_kind(settings: EncoderSettings) -> tuple[EncoderKind, str]:
    """The encoder kind `settings` mean on this machine, and a sentence saying why."""
    if settings.kind != "auto":
        return settings.kind, f"{settings.kind} (configured)"
    from vigil.models.clip.config import export_dir
    from vigil.models.clip.manifest import MANIFEST_NAME, read_manifest

    directory = export_dir(settings.clip)
    if (directory / MANIFEST_NAME).is_file():
        if not read_manifest(directory)["random_init"]:
            return "clip", f"clip: found the CLIP export {directory}"
        reason = f"the CLIP export {directory} has random weights"
    else:
        reason = f"no CLIP export at {directory}"
    return "offline", f"offline: {reason} (export one with `vigil models export-clip`)"


def create_encoder(settings: EncoderSettings) -> Encoder:
    if settings.kind == "auto":
        settings = settings.model_copy(update={"kind": resolve_kind(settings)[0]})
    if settings.kind == "clip":
        from vigil.models.clip.runtime import ClipEncoder

        spec = settings.clip.model_copy(update={"device": settings.device})
        return ClipEncoder.from_spec(spec)
    from vigil.models.offline.encoder import OfflineEncoder

    return OfflineEncoder.load(device=settings.device)


class EncoderStatus(BaseModel):
    """One line of `vigil models`: an encoder that is ready, or why it is not."""

    kind: EncoderKind
    available: bool
    info: EncoderInfo | None = None
    problem: str | None = None
    export_dir: str | None = None


def describe_encoders(device: Device = "auto") -> list[EncoderStatus]:
    """Load every encoder this machine has, so what is reported is what really runs."""
    statuses = [*_describe_clip_exports(device)]
    try:
        from vigil.models.offline.encoder import OfflineEncoder

        statuses.append(
            EncoderStatus(kind="offline", available=True, info=OfflineEncoder.load(device=device).info)
        )
    except VigilError as error:
        statuses.append(EncoderStatus(kind="offline", available=False, problem=str(error)))
    return statuses


def _describe_clip_exports(device: Device) -> list[EncoderStatus]:
    from vigil.models.clip.runtime import ClipEncoder

    manifests = sorted((models_dir() / "clip").glob("*/manifest.json"))
    statuses = []
    for manifest in manifests:
        export_dir = manifest.parent
        try:
            precision = _best_precision(manifest)
            encoder = ClipEncoder(export_dir, precision=precision, device=device)
            statuses.append(
                EncoderStatus(kind="clip", available=True, info=encoder.info, export_dir=str(export_dir))
            )
        except VigilError as error:
            statuses.append(
                EncoderStatus(kind="clip", available=False, problem=str(error), export_dir=str(export_dir))
            )
    if not statuses:
        statuses.append(
            EncoderStatus(
                kind="clip",
                available=False,
                problem=(
                    f"no exported CLIP model under {models_dir() / 'clip'}; export one with "
                    "`vigil models export-clip --pretrained openai` (online) or "
                    "`vigil models export-clip --checkpoint PATH` (local weights)"
                ),
            )
        )
    return statuses


def _best_precision(manifest: Path) -> str:
    files = json.loads(manifest.read_text()).get("files", {})
    for precision in ("fp32", "int8", "fp16"):
        if precision in files:
            return precision
    raise VigilError(f"{manifest}: lists no exported ONNX files")
