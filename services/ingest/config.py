"""Ingest configuration: the cameras to read, from YAML, validated at start.

```yaml
metrics_port: 9108            # /metrics; 0 = off
defaults:                     # every camera setting, overridable per camera
  fps: 1
  resize: {max_width: 1280, max_height: 720}
cameras:
  - id: lobby
    url: "rtsp://${LOBBY_USER}:${LOBBY_PASSWORD}@10.0.0.5:554/stream1"
  - id: parking
    url: recordings/parking.mp4   # a file: relative to this YAML file's folder
    fps: 2                        # overrides the default
    realtime: false
```

A camera's setting replaces the default's; `ffmpeg_options`, `decoder_options` and
`reconnect` merge key by key. `${NAME}` in a URL is replaced by the environment variable
NAME when the file is loaded, so credentials live in the environment (a Kubernetes Secret),
not in the file. The expanded URL is for the reader alone: logs, metrics and status
messages use `redacted_url`, which shows neither the user info nor any value that came from
the environment.

Every error names the file, the camera and the field.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from vigil.errors import VigilError
from vigil.pipelines.camera_urls import ENV_REFERENCE, LIVE_SCHEMES
from vigil.pipelines.frame_size import resized_size
from vigil.services.common.contract import CameraMessage, Identifier
from vigil.services.common.kafka import KafkaSettings
from vigil.services.common.settings import ServiceSettings

_ENV_REFERENCE = ENV_REFERENCE
_MERGED_KEY_BY_KEY = ("ffmpeg_options", "decoder_options", "reconnect")


OTHER_SERVICES_SECTIONS = ("detector", "alerter", "api", "queries")


class IngestConfigError(VigilError):
    """The cameras file is missing, unreadable or invalid; the message names file, camera and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResizeSettings(_Strict):
    """Shrink frames before JPEG encoding, keeping the aspect ratio; never enlarges.

    Either a bounding box (max_width and/or max_height) or the length of the shorter side.
    """

    max_width: int | None = Field(default=None, gt=0)
    max_height: int | None = Field(default=None, gt=0)
    shorter_side: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_way_to_resize(self) -> ResizeSettings:
        box = self.max_width is not None or self.max_height is not None
        if box and self.shorter_side is not None:
            raise ValueError("give either max_width/max_height or shorter_side, not both")
        if not box and self.shorter_side is None:
            raise ValueError("give max_width/max_height or shorter_side (or `resize: null` for none)")
        return self

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a width x height frame after resizing (pipelines/frame_size.py)."""
        return resized_size(
            width,
            height,
            max_width=self.max_width,
            max_height=self.max_height,
            shorter_side=self.shorter_side,
        )


class ReconnectSettings(_Strict):
    """Backoff between attempts to reach a camera: exponential from `initial_delay_s`, capped
    so that no wait exceeds `max_delay_s`, with up to `jitter_s` of it random so that cameras
    that dropped together do not all retry in the same instant."""

    initial_delay_s: float = Field(default=0.5, gt=0)
    # A camera that comes back streams again within 5 s (tested with these defaults): at most
    # this long until the next attempt, then the RTSP handshake and the first keyframe (up to
    # ~2 s). A 4 s cap missed the promise when the camera returned just after an attempt.
    max_delay_s: float = Field(default=2.5, gt=0)
    jitter_s: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _jitter_fits_under_the_cap(self) -> ReconnectSettings:
        if self.jitter_s >= self.max_delay_s:
            raise ValueError(
                f"jitter_s ({self.jitter_s}) must be smaller than max_delay_s ({self.max_delay_s})"
            )
        return self


class CameraDefaults(_Strict):
    """What a camera inherits from `defaults` and may override."""

    fps: float = Field(default=1.0, gt=0, le=60, description="frames per second to publish")
    resize: ResizeSettings | None = ResizeSettings(max_width=1280, max_height=720)
    jpeg_quality: int = Field(default=85, ge=1, le=100)
    transport: Literal["tcp", "udp"] = Field(default="tcp", description="RTSP transport")
    keyframes_only: Literal["auto"] | bool = Field(
        default="auto",
        description="decode keyframes only; auto: when the camera's keyframe interval is no "
        "longer than the sampling interval (measured on the stream)",
    )
    realtime: bool = Field(
        default=True, description="files: play at the recorded pace (else as fast as decoded)"
    )
    loop: bool = Field(default=False, description="files: start again at the end")
    open_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0, description="no data for this long: the camera is down")
    stall_after_s: float = Field(
        default=2.0, gt=0, description="no frame for this long: the camera is stalled"
    )
    queue_size: int = Field(default=8, ge=1, description="frames held for the publisher; oldest dropped")
    decoder_threads: int = Field(default=1, ge=0, description="0 = FFmpeg decides")
    reconnect: ReconnectSettings = ReconnectSettings()
    ffmpeg_options: dict[str, str] = Field(default_factory=dict, description="extra FFmpeg demuxer options")
    decoder_options: dict[str, str] = Field(
        default_factory=dict,
        description="FFmpeg decoder options, e.g. {skip_loop_filter: all}: ~20 % less CPU for full "
        "H.264 decoding, at the price of slightly blockier frames",
    )


class CameraSettings(CameraDefaults):
    """One camera with the defaults applied; `url` has the environment expanded (secret)."""

    id: Identifier  # the Kafka key and a header of every frame: a portable alphabet
    url: str = Field(min_length=1, repr=False)
    enabled: bool = True
    _redacted_url: str = PrivateAttr(default="")
    _secrets: tuple[str, ...] = PrivateAttr(default=())
    _url_template: str = PrivateAttr(default="")

    @property
    def url_template(self) -> str:
        """The URL as configured, `${NAME}` references unexpanded (a file path made absolute):
        what the "cameras" topic is seeded with, so the environment's secrets stay out of Kafka."""
        return self._url_template

    @property
    def redacted_url(self) -> str:
        """The URL as the config file wrote it, user info masked: safe for logs and metrics."""
        return self._redacted_url

    @property
    def is_live(self) -> bool:
        return urlsplit(self.url).scheme.lower() in LIVE_SCHEMES

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be shown: the URL, its user info, values from the environment."""
        return self._secrets

    def redact(self, text: str) -> str:
        """`text` (e.g. an FFmpeg error naming the URL) with every secret of this camera hidden."""
        text = text.replace(self.url, self.redacted_url)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class PublisherSettings(_Strict):
    max_in_flight: int = Field(
        default=64,
        ge=1,
        description="frames handed to Kafka and not yet acknowledged before camera queues back up",
    )
    drain_timeout_s: float = Field(default=5.0, ge=0, description="at stop: time to publish what is queued")


class IngestSettings(_Strict):
    metrics_port: int = Field(default=9108, ge=0, le=65535, description="0 = no /metrics endpoint")
    publisher: PublisherSettings = PublisherSettings()
    cameras: tuple[CameraSettings, ...]
    source: Path | None = Field(default=None, exclude=True)
    # What cameras of the "cameras" topic are built from, besides their message (build_camera).
    _defaults_raw: dict = PrivateAttr(default_factory=dict)
    _entries_raw: dict[str, dict] = PrivateAttr(default_factory=dict)
    _environ: dict[str, str] | None = PrivateAttr(default=None)

    def build_camera(self, message: CameraMessage) -> CameraSettings:
        """The settings a reader runs `message`'s camera on: the YAML `defaults`, then the
        camera's own YAML entry when the file has one (what the message does not carry: resize,
        timeouts, FFmpeg options), then the message. IngestConfigError names what is wrong (an
        environment variable the URL refers to that is not set)."""
        entry = {**self._entries_raw.get(message.camera_id, {})}
        entry.update(id=message.camera_id, url=message.url, enabled=message.enabled)
        entry.update({name: value for name in ("fps", "transport") if (value := getattr(message, name))})
        base_dir = self.source.parent if self.source is not None else Path.cwd()
        environ = os.environ if self._environ is None else self._environ
        return _parse_camera(entry, 0, self._defaults_raw, "cameras topic", base_dir, environ)

    @property
    def enabled_cameras(self) -> tuple[CameraSettings, ...]:
        return tuple(camera for camera in self.cameras if camera.enabled)

    @classmethod
    def load(cls, path: Path | None = None) -> IngestSettings:
        """The cameras file at `path` (see load_config); ingest has no settings without one."""
        if path is None:
            raise IngestConfigError("ingest needs a cameras file (--config cameras.yaml)")
        return load_config(path)


class IngestServiceSettings(ServiceSettings):
    """Everything `vigil ingest` runs on: its cameras file (the top level: `cameras`, `defaults`,
    `publisher`, `metrics_port`) and Kafka (VIGIL_KAFKA_*)."""

    ingest: IngestSettings
    kafka: KafkaSettings


def load_config(path: Path, environ: dict[str, str] | None = None) -> IngestSettings:
    """Read and validate a cameras YAML file; `environ` defaults to os.environ."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise IngestConfigError(f"cannot read cameras file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise IngestConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_config(raw, source=path, environ=os.environ if environ is None else environ)


def parse_config(
    raw: Any, source: Path | None = None, environ: dict[str, str] | None = None
) -> IngestSettings:
    """Validate an already-parsed YAML document (see load_config)."""
    where = str(source) if source is not None else "cameras config"
    environ = os.environ if environ is None else environ
    if not isinstance(raw, dict):
        raise IngestConfigError(
            f"{where}: expected a mapping with a `cameras` list, got {type(raw).__name__}"
        )
    # One file may configure the whole embedded deployment (`vigil up`): the other services'
    # sections are theirs to check.
    known = {"metrics_port", "publisher", "defaults", "cameras", *OTHER_SERVICES_SECTIONS}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise IngestConfigError(f"{where}: unknown top-level key(s) {', '.join(map(repr, unknown))}")
    defaults_raw = raw.get("defaults") or {}
    if not isinstance(defaults_raw, dict):
        raise IngestConfigError(f"{where}: defaults: expected a mapping")
    try:
        CameraDefaults.model_validate(defaults_raw)
    except ValidationError as error:
        raise IngestConfigError(_describe(where, "defaults", error)) from None
    cameras_raw = raw.get("cameras")
    if not isinstance(cameras_raw, list) or not cameras_raw:
        raise IngestConfigError(f"{where}: cameras: expected a non-empty list of cameras")
    base_dir = source.parent if source is not None else Path.cwd()
    cameras = [
        _parse_camera(entry, index, defaults_raw, where, base_dir, environ)
        for index, entry in enumerate(cameras_raw)
    ]
    seen: set[str] = set()
    for camera in cameras:
        if camera.id in seen:
            raise IngestConfigError(f"{where}: camera {camera.id!r}: id: used by more than one camera")
        seen.add(camera.id)
    try:
        top_level = {key: raw[key] for key in ("metrics_port", "publisher") if key in raw}
        settings = IngestSettings(**top_level, cameras=tuple(cameras), source=source)
    except ValidationError as error:
        raise IngestConfigError(_describe(where, None, error)) from None
    settings._defaults_raw = dict(defaults_raw)
    settings._entries_raw = {entry["id"]: dict(entry) for entry in cameras_raw}
    settings._environ = None if environ is os.environ else dict(environ)
    return settings


def _parse_camera(
    entry: Any, index: int, defaults: dict, where: str, base_dir: Path, environ: dict[str, str]
) -> CameraSettings:
    label = f"camera #{index + 1}"
    if not isinstance(entry, dict):
        raise IngestConfigError(f"{where}: {label}: expected a mapping with id and url")
    if isinstance(entry.get("id"), str):
        label = f"camera {entry['id']!r}"
    merged = dict(defaults)
    for key, value in entry.items():
        if key in _MERGED_KEY_BY_KEY and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    template = merged.get("url")
    secrets: list[str] = []
    if isinstance(template, str):
        try:
            merged["url"], secrets = _expand_environment(template, environ)
        except KeyError as missing:
            raise IngestConfigError(
                f"{where}: {label}: url: environment variable {missing.args[0]} is not set"
            ) from None
        if not urlsplit(merged["url"]).scheme or urlsplit(merged["url"]).scheme.lower() == "file":
            merged["url"] = str(base_dir / Path(urlsplit(merged["url"]).path))
            template = str(base_dir / Path(urlsplit(template).path))
    try:
        camera = CameraSettings.model_validate(merged)
    except ValidationError as error:
        raise IngestConfigError(_describe(where, label, error)) from None
    camera._redacted_url = _redacted(template)
    camera._url_template = template
    userinfo = urlsplit(camera.url).netloc.rpartition("@")[0]
    camera._secrets = tuple(
        sorted(
            {s for s in (*secrets, userinfo, *userinfo.split(":", 1)) if len(s) >= 3}, key=len, reverse=True
        )
    )
    return camera


def _expand_environment(template: str, environ: dict[str, str]) -> tuple[str, list[str]]:
    """`template` with each ${NAME} replaced from `environ`, and the values substituted.

    Values go in as they are: a password with URL-special characters (@ : / ? #) must be
    percent-encoded in the environment variable."""
    values: list[str] = []

    def substitute(match: re.Match) -> str:
        value = environ[match.group(1)]
        values.append(value)
        return value

    return _ENV_REFERENCE.sub(substitute, template), values


def _redacted(template: str) -> str:
    """The URL template for display: user info masked; ${NAME} references stay as they are."""
    parts = urlsplit(template)
    if "@" not in parts.netloc:
        return template
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _describe(where: str, label: str | None, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "value"
        problems.append(f"{location}: {item['msg']}")
    prefix = f"{where}: {label}: " if label else f"{where}: "
    return prefix + "; ".join(problems)
