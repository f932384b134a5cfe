"""The Kafka contract every Vigil service shares: topic names, frame headers, message schemas.

"frames": value = JPEG bytes, key = camera_id, headers carry what a consumer needs without
decoding the image (capture time, sequence number, size, schema version). The other topics
carry JSON validated by the pydantic models below (added as the services that write them
arrive). A message that does not decode raises BadMessageError naming what was wrong; the
consumer sends it to the dead-letter topic and carries on.

Past 400 lines because it is one concept, the wire contract: every topic's schema in one module,
so a producer and its consumers can only ever import the same definition.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Set
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from vigil.errors import VigilError, describe_validation_error
from vigil.pipelines.alerting.schedules import WeeklySchedule
from vigil.pipelines.camera_urls import MAX_CAMERA_URL_CHARS, camera_url_problem
from vigil.pipelines.matching import hit_id

FRAME_SCHEMA_VERSION = 1
# The largest frame Vigil handles (8K UHD, 7680 x 4320): ingest's decoders refuse a camera's
# larger frame (and its JPEG encoder scales any down), and the detector refuses to decode a larger
# JPEG (a 50 MP frame would cost 150 MB of pixels, for an encoder that looks at 224-416 pixels a side).
MAX_FRAME_PIXELS = 7680 * 4320
JSON_SCHEMA_VERSION = 1

# Camera and query ids travel as Kafka keys, file names and Milvus primary-key parts: keep
# them to a portable alphabet. No ':' on purpose, so that a hit id built from them with ':'
# separators stays unambiguous.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class Topics(BaseModel):
    """Topic names; a deployment may prefix them to share one Kafka cluster."""

    frames: str = "frames"
    queries: str = "queries"
    hits: str = "hits"
    alerts: str = "alerts"
    camera_status: str = "camera-status"
    dead_letters: str = "dead-letters"
    # The detector's per-camera state snapshots (key = camera_id; last value = current).
    detector_state: str = "detector-state"
    # The alerter's policy memory and alert records (key = "<group>:policy" / "<group>:alert:<id>").
    alert_state: str = "alert-state"
    # Users and API tokens, hashed (key = "user:<name>" / "token:<token_id>"; tombstone deletes).
    identities: str = "identities"
    # Every change of a standing query, who made it and when (key = query_id; append-only).
    query_history: str = "query-history"
    # The cameras ingest reads, as operators manage them (key = camera_id; a tombstone deletes).
    cameras: str = "cameras"
    # Commands to the alerter, sent by the API process (key = alert_id): acknowledgements.
    alert_commands: str = "alert-commands"

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(**{name: f"{prefix}{value}" for name, value in cls().model_dump().items()})


class BadMessageError(VigilError):
    """A message that breaks the contract; `reason` is what the dead-letter record says."""


class FrameHeaders(BaseModel):
    """Headers of one "frames" message (values travel as ASCII strings in Kafka headers)."""

    camera_id: str = Field(min_length=1, max_length=128, pattern=ID_PATTERN)
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


# --- JSON messages ("queries", "hits", "alerts", "camera-status") -------------------------

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ID_PATTERN)]
# Derived ids (hit_id = camera:query:start) may contain ':'.
# Ids derived from others (hit_id = "camera:query:start", alert_id = "alert:<hit_id>").
DERIVED_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
DerivedIdentifier = Annotated[
    str, StringConstraints(min_length=1, max_length=400, pattern=DERIVED_ID_PATTERN)
]
TimestampMs = Annotated[int, Field(ge=0, description="ms since the Unix epoch")]
Severity = Literal["info", "warning", "critical"]
CameraState = Literal["connecting", "streaming", "stalled", "down", "disabled"]


class VigilMessage(BaseModel):
    """Base of every JSON message: unknown fields and silent type coercion are contract breaks.

    strict: a JSON string "0.5" is not a float and "true" is not a bool, so a producer's bug
    surfaces at the first consumer instead of travelling on. schema_version lets a later
    version of a message be told apart from this one.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    schema_version: Literal[1] = JSON_SCHEMA_VERSION


class QueryMessage(VigilMessage):
    """A standing query on "queries" (key = query_id; a tombstone, value None, deletes it)."""

    query_id: Identifier
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    language: Literal["auto", "en", "vi"] = "auto"
    cameras: list[Identifier] = Field(default_factory=list, max_length=1000, description="empty = all")
    threshold: Literal["auto"] | Annotated[float, Field(ge=0.0, le=1.0)] = "auto"
    severity: Severity = "warning"
    enabled: bool = True
    schedule: WeeklySchedule | None = Field(
        None, description="when it may alert (armed windows, quiet hours); None = always armed"
    )
    created_by: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    updated_ts_ms: TimestampMs

    @field_validator("threshold", mode="before")
    @classmethod
    def _auto_or_probability(cls, threshold: object) -> object:
        # One clear message instead of one per branch of the union.
        is_number = isinstance(threshold, int | float) and not isinstance(threshold, bool)
        if threshold == "auto" or (is_number and 0.0 <= threshold <= 1.0):
            return threshold
        raise ValueError(f'threshold must be "auto" or a number from 0 to 1, got {threshold!r}')

    def applies_to(self, camera_id: str) -> bool:
        return self.enabled and (not self.cameras or camera_id in self.cameras)


QueryAction = Literal["created", "updated", "deleted"]


class QueryChangeMessage(VigilMessage):
    """One change of a standing query on "query-history" (key = query_id): who made it, when,
    and the query as it stood after it (None once deleted). "queries" is compacted, so only this
    append-only topic remembers earlier versions."""

    query_id: Identifier
    action: QueryAction
    by: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    ts_ms: TimestampMs
    query: QueryMessage | None = None


# A hit's primary key: one derivation, shared with the matching pipeline that creates hits.
derive_hit_id = hit_id

# A region of a frame: (x0, y0, x1, y1) as fractions of the frame's width and height, origin
# top-left, 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1. Fractions, not pixels, so that the box
# fits the frame at any size (the ingest resolution, a thumbnail, the console's display).
Box = tuple[float, float, float, float]


def validate_box(box: object, name: str = "box") -> Box:
    """`box` as a Box of floats, or ValueError saying what is wrong with it (named `name`).

    Accepts any ordered collection of 4 real numbers: a JSON array, a list, a tuple, a numpy array.
    """
    items: list[object] | None = None
    if isinstance(box, Iterable) and not isinstance(box, str | bytes | Mapping | Set):
        try:
            items = list(box)
        except TypeError:  # e.g. a 0-d numpy array
            items = None
    if items is None:
        raise ValueError(
            f"{name} must be [x0, y0, x1, y1] (4 numbers), got {type(box).__name__} {_clip(repr(box))}"
        )
    box = items
    if len(box) != 4:
        raise ValueError(f"{name} must be [x0, y0, x1, y1] (4 numbers), got {len(box)}: {_clip(repr(box))}")
    values = []
    for axis, value in zip(("x0", "y0", "x1", "y1"), box, strict=True):
        # numbers.Real takes numpy scalars too; a bool is an int to Python but not a coordinate.
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} {axis} must be a number, got {_clip(repr(value))}")
        value = float(value)
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(
                f"{name} {axis} must be a finite fraction of the frame from 0 to 1, got {value!r}"
            )
        values.append(value)
    x0, y0, x1, y1 = values
    if not x0 < x1:
        raise ValueError(f"{name} must have x0 < x1 (left edge before right edge), got x0={x0!r}, x1={x1!r}")
    if not y0 < y1:
        raise ValueError(f"{name} must have y0 < y1 (top edge above bottom edge), got y0={y0!r}, y1={y1!r}")
    return x0, y0, x1, y1


def _clip(text: str, limit: int = 80) -> str:
    """Error messages quote what was sent, but a dead-letter reason must stay short."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


# --- ids and timestamps that go into file paths and Milvus filters -------------------------

_ID_RE = re.compile(ID_PATTERN)


def check_id(name: str, value: str) -> None:
    """ValueError unless `value` is an id of the contract's alphabet, at most 128 characters."""
    # Ids are interpolated into Milvus filter expressions and file paths: only the contract's
    # alphabet gets through.
    if not isinstance(value, str) or len(value) > 128 or not _ID_RE.fullmatch(value):
        raise ValueError(f"{name} {value!r} does not match {ID_PATTERN} (at most 128 characters)")


def check_ts_ms(name: str, ts_ms: int) -> None:
    """ValueError unless `ts_ms` is a non-negative int (ms since the Unix epoch; not a bool)."""
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or ts_ms < 0:
        raise ValueError(f"{name} must be a non-negative integer (ms since the Unix epoch), got {ts_ms!r}")


class HitMessage(VigilMessage):
    """A query matched on a camera ("hits", key = camera_id)."""

    hit_id: DerivedIdentifier
    camera_id: Identifier
    query_id: Identifier
    event_start_ts_ms: TimestampMs
    peak_ts_ms: TimestampMs
    end_ts_ms: TimestampMs | None = Field(default=None, description="None while the event is still on")
    peak_score: float
    thumbnail: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description="where the peak frame's thumbnail is stored (path or URI), not the image itself"
    )
    encoder: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    # Added with region embeddings; defaulted so that hits of older detectors still decode
    # (the contract's rule: a new optional field keeps schema_version 1).
    box: Box | None = Field(
        default=None,
        description="the peak frame's region that matched, [x0, y0, x1, y1] as fractions of the "
        "frame (0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1, origin top-left); None = the whole frame",
    )

    @field_validator("box", mode="before")
    @classmethod
    def _box_in_the_frame(cls, box: object) -> object:
        # One message naming what is wrong instead of pydantic's per-item tuple errors.
        return None if box is None else validate_box(box)

    @field_validator("peak_ts_ms")
    @classmethod
    def _peak_not_before_start(cls, peak_ts_ms: int, info: ValidationInfo) -> int:
        start = info.data.get("event_start_ts_ms")
        if start is not None and peak_ts_ms < start:
            raise ValueError(f"peak_ts_ms {peak_ts_ms} is before event_start_ts_ms {start}")
        return peak_ts_ms

    @field_validator("end_ts_ms")
    @classmethod
    def _end_not_before_peak(cls, end_ts_ms: int | None, info: ValidationInfo) -> int | None:
        peak = info.data.get("peak_ts_ms")
        if end_ts_ms is not None and peak is not None and end_ts_ms < peak:
            raise ValueError(f"end_ts_ms {end_ts_ms} is before peak_ts_ms {peak}")
        return end_ts_ms


class AlertMessage(VigilMessage):
    """An alert raised for a hit ("alerts", key = camera_id)."""

    alert_id: DerivedIdentifier
    hit_id: DerivedIdentifier
    camera_id: Identifier
    query_id: Identifier
    severity: Severity
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    language: Literal["en", "vi"]
    raised_ts_ms: TimestampMs
    # Added with the alerter service; defaulted so that older alerts still decode.
    escalated: bool = False
    muted: bool = Field(default=False, description="recorded but not spoken (quiet hours)")
    event_start_ts_ms: TimestampMs | None = None
    peak_ts_ms: TimestampMs | None = None
    peak_score: float | None = None
    thumbnail: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = Field(
        default=None, description="the hit's peak-frame thumbnail reference, as in HitMessage"
    )
    query_text: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    audio: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        default=None, description="file name of the spoken alert in the speech cache; None = no audio"
    )
    speech_engine: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    box: Box | None = Field(default=None, description="the hit's region of the thumbnail, as in HitMessage")

    @field_validator("box", mode="before")
    @classmethod
    def _box_in_the_frame(cls, box: object) -> object:
        return None if box is None else validate_box(box)


class AcknowledgeCommand(VigilMessage):
    """On "alert-commands" (key = alert_id): acknowledge this alert as `user` at `ts_ms`. The API
    process sends it after checking its mirror of the book; the alerter applies it once (a second
    acknowledgement is logged and changes nothing) and the result reaches "alert-state"."""

    alert_id: str = Field(min_length=1, max_length=400, pattern=DERIVED_ID_PATTERN)
    user: str = Field(min_length=1, max_length=128)
    ts_ms: TimestampMs


class CameraStatusMessage(VigilMessage):
    """A camera's connection state ("camera-status", key = camera_id; last value = current)."""

    camera_id: Identifier
    state: CameraState
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    since_ts_ms: TimestampMs = Field(description="when the camera entered this state")
    ts_ms: TimestampMs = Field(description="when this status was published")
    reconnects: Annotated[int, Field(ge=0)] = 0

    @field_validator("ts_ms")
    @classmethod
    def _not_before_since(cls, ts_ms: int, info: ValidationInfo) -> int:
        since = info.data.get("since_ts_ms")
        if since is not None and ts_ms < since:
            raise ValueError(f"ts_ms {ts_ms} is before since_ts_ms {since}")
        return ts_ms


class CameraMessage(VigilMessage):
    """A camera ingest reads ("cameras", key = camera_id; a tombstone, value None, deletes it).

    `url` is the source as ingest opens it (credentials included, or `${NAME}` references to
    ingest's environment, expanded there as in the YAML file): it is never shown as it is
    (pipelines/camera_urls.py masks it). What the message does not carry (resize, timeouts,
    FFmpeg options) comes from ingest's YAML `defaults` and the camera's own YAML entry.
    """

    camera_id: Identifier
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CAMERA_URL_CHARS)] = Field(repr=False)
    enabled: bool = True
    fps: Annotated[float, Field(gt=0, le=60)] | None = Field(
        default=None, description="None: ingest's default"
    )
    transport: Literal["tcp", "udp"] | None = Field(default=None, description="RTSP; None: ingest's default")
    updated_by: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    updated_ts_ms: TimestampMs

    @field_validator("url")
    @classmethod
    def _a_source_ingest_reads(cls, url: str) -> str:
        problem = camera_url_problem(url)
        if problem is not None:
            raise ValueError(problem)  # the problem names no part of the URL: it may hold a password
        return url


MessageT = TypeVar("MessageT", bound=VigilMessage)


def encode_json(message: VigilMessage) -> bytes:
    """The Kafka value of a JSON message: compact UTF-8 JSON with every field present."""
    return message.model_dump_json().encode("utf-8")


def decode_json(model_cls: type[MessageT], raw: bytes | None) -> MessageT:
    """Validate a Kafka value as `model_cls`; BadMessageError names the field that was wrong."""
    name = model_cls.__name__
    if raw is None:
        raise BadMessageError(f"{name}: value is empty (a tombstone), expected a JSON object")
    try:
        return model_cls.model_validate_json(raw)
    except ValidationError as error:
        version = _schema_version_of(raw)
        if version is not None and version != JSON_SCHEMA_VERSION:
            raise BadMessageError(
                f"{name}: schema_version {version!r} is not supported "
                f"(this Vigil reads {JSON_SCHEMA_VERSION})"
            ) from None
        raise BadMessageError(f"{name}: {describe_validation_error(error)}") from None


def _schema_version_of(raw: bytes) -> object | None:
    """The schema_version a message claims, to tell 'newer than us' from 'broken'."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return document.get("schema_version") if isinstance(document, dict) else None
