"""The Kafka contract every Vigil service shares: topic names, frame headers, message schemas.

"frames": value = JPEG bytes, key = camera_id, headers carry what a consumer needs without
decoding the image (capture time, sequence number, size, schema version). The other topics
carry JSON validated by the pydantic models below (added as the services that write them
arrive). A message that does not decode raises BadMessageError naming what was wrong; the
consumer sends it to the dead-letter topic and carries on.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError

from vigil.models.errors import VigilError

FRAME_SCHEMA_VERSION = 1


class Topics(BaseModel):
    """Topic names; a deployment may prefix them to share one Kafka cluster."""

    frames: str = "frames"
    queries: str = "queries"
    hits: str = "hits"
    alerts: str = "alerts"
    camera_status: str = "camera-status"
    dead_letters: str = "dead-letters"

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(**{name: f"{prefix}{value}" for name, value in cls().model_dump().items()})


class BadMessageError(VigilError):
    """A message that breaks the contract; `reason` is what the dead-letter record says."""


class FrameHeaders(BaseModel):
    """Headers of one "frames" message (values travel as ASCII strings in Kafka headers)."""

    camera_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    ts_ms: int = Field(ge=0, description="capture time, ms since the Unix epoch")
    seq: int = Field(ge=0, description="per-camera sequence number of published frames")
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    schema_version: int = FRAME_SCHEMA_VERSION
    content_type: str = "image/jpeg"

    def to_kafka(self) -> list[tuple[str, bytes]]:
        return [(name, str(value).encode("ascii")) for name, value in self.model_dump().items()]

    @classmethod
    def from_kafka(cls, headers: list[tuple[str, bytes]] | None) -> FrameHeaders:
        values: dict[str, str] = {}
        for name, raw in headers or []:
            try:
                values[name] = raw.decode("ascii") if raw is not None else ""
            except UnicodeDecodeError:
                raise BadMessageError(f"frame header {name!r} is not ASCII") from None
        version = values.get("schema_version")
        if version is not None and version != str(FRAME_SCHEMA_VERSION):
            raise BadMessageError(
                f"frame schema_version {version!r} is not supported (this Vigil reads {FRAME_SCHEMA_VERSION})"
            )
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise BadMessageError(f"bad frame headers: {describe_validation_error(error)}") from None


def describe_validation_error(error: ValidationError) -> str:
    """One line naming every bad field: 'ts_ms: Field required; width: ...'."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'message'}: {item['msg']}" for item in error.errors()
    )
