"""The detector's settings: one pydantic model, from a YAML file and/or the environment.

    VIGIL_DETECTOR_GROUP_ID=vigil-detector VIGIL_DETECTOR_MAX_LAG_S=10 vigil detector
    vigil detector --config detector.yaml

Environment variables (VIGIL_DETECTOR_<FIELD>, nested with "__": VIGIL_DETECTOR_ENCODER__KIND
=clip) override the file, which overrides the defaults. `cameras` holds per-camera overrides of
`match` (Frigate's pattern): a camera missing there uses the defaults.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from vigil.errors import VigilError
from vigil.models.registry import EncoderSettings
from vigil.pipelines.calibration import ScorePrior
from vigil.pipelines.detector import CalibrationSettings, CameraPipeline, TemporalStage
from vigil.pipelines.discrimination import DiscriminationSettings
from vigil.pipelines.matching import MatchSettings
from vigil.pipelines.regions import RegionSettings
from vigil.pipelines.views import ViewSettings
from vigil.services.common.contract import ID_PATTERN, describe_validation_error
from vigil.services.common.kafka import KafkaSettings
from vigil.services.common.settings import SectionSettings, ServiceSettings
from vigil.services.detector.retention import RetentionSettings
from vigil.services.detector.store import StoreSettings


class DetectorConfigError(VigilError):
    """The detector's settings file or environment is invalid; the message names the field."""


class DetectorMatchSettings(BaseModel):
    """How calibrated scores become events (per camera overridable). Durations are ms of
    capture time; the enter threshold is each query's own ("auto" = 0.5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exit_ratio: float = Field(0.7, gt=0, lt=1, description="exit threshold as a fraction of enter")
    min_duration_ms: int = Field(1_000, ge=0, le=600_000, description="an event must last this long")
    cooldown_ms: int = Field(10_000, ge=0, le=3_600_000, description="quiet time after an event")
    max_gap_ms: int = Field(5_000, gt=0, le=600_000, description="no frame for this long ends an event")

    def for_threshold(self, threshold: float | str) -> MatchSettings:
        return MatchSettings.for_threshold(threshold, **self.model_dump())


class CameraOverrideSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: dict[str, Any] = Field(default_factory=dict, description="fields of `match` to override")


class DetectorSettings(SectionSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_DETECTOR_")
    section = "detector"
    error = DetectorConfigError

    group_id: str = Field("vigil-detector", pattern=r"^[A-Za-z0-9._-]+$", description="Kafka consumer group")
    # "group": detectors share the cameras' partitions through the consumer group protocol
    # (several replicas). "all": this detector takes every partition itself, still committing
    # under group_id: no group join, so a restarted detector resumes at once instead of after
    # the dead member's session and a rebalance (6-12 s on the local broker). For a single
    # detector only, as `vigil up` runs it; two would both score every frame.
    assignment: Literal["group", "all"] = "group"
    encoder: EncoderSettings = Field(default_factory=lambda: EncoderSettings(kind="auto"))
    # Off by default: over the offline encoder the GRU (retrained with the gate margin as a
    # feature) is level with the per-frame threshold on the evaluation's tune split, the same
    # events found at about the same F1 (docs/EVALUATION.md, models/temporal/TRAINING.md), so the
    # simpler decision stays. With CLIP, re-measure.
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    temporal: Literal["gru", "off"] = Field(
        "off", description="gru: threshold the GRU's probability over each query's window; off: the score"
    )
    batch_max_frames: int = Field(16, ge=1, le=512, description="frames embedded in one call")
    batch_max_wait_ms: int = Field(
        20, ge=0, le=5_000, description="wait to fill a batch after its first frame"
    )
    max_lag_s: float = Field(
        10.0, gt=0, description="frames captured longer ago than this are skipped, newest first"
    )
    # A frame's capture time is believed only within this of this machine's clock (ahead) and of
    # the broker's receive time (ahead; behind, within this or max_lag_s): one frame stamped a
    # day ahead would otherwise make every later real frame "already seen"
    # (pipelines/admission.py). Cameras' clocks should be NTP-synchronised; 30 s leaves room for
    # a camera that is not, and for slow publishing.
    max_clock_skew_s: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="dead-letter frames stamped further than this from now or from their broker receive time",
    )
    index_interval_s: float = Field(
        1.0, ge=0, description="frame index: one frame per camera per N s; 0 = off"
    )
    commit_interval_s: float = Field(1.0, gt=0, le=60, description="state snapshot + offset commit cadence")
    window_frames: int = Field(64, ge=1, le=10_000, description="recent frames kept per camera")
    query_refresh_ms: int = Field(200, ge=10, le=10_000, description="how often live query changes are read")
    metrics_port: int = Field(9109, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    match: DetectorMatchSettings = Field(default_factory=DetectorMatchSettings)
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    # What is embedded of a frame that is not still: "regions" (crops around what moved, the
    # whole frame at a low rate) or "frames" (the whole frame, as before regions). Still frames
    # cost nothing either way. "frames" stays the default until regions beat it on the
    # evaluation's held-out part (docs/EVALUATION.md): on the offline encoder they do not yet.
    embed: Literal["regions", "frames"] = Field("frames", description="regions or whole frames")
    regions: RegionSettings = Field(
        default_factory=RegionSettings, description="the change detector and region selection"
    )
    views: ViewSettings = Field(default_factory=ViewSettings, description="how long region embeddings stand")
    # Fields of pipelines.discrimination.DiscriminationSettings; the encoder's measured
    # synonym_cosine applies unless set here. On by default: on the evaluation's held-out part
    # it cuts false events many times over (docs/EVALUATION.md); {"enabled": false} turns it off.
    discrimination: dict[str, Any] = Field(
        default_factory=dict, description="the discriminative decision (enabled, min_margin, ...)"
    )
    latency_budget_s: float = Field(
        1.0,
        gt=0,
        description="when behind, shed work so a frame is scored within this long of its capture",
    )
    # Off: on the hall footage the detector's boxes (mostly people) came first in the region cap
    # and crowded out the motion region of the new object; its detections still inform each
    # crop's embedding (services/common/framing.py).
    detector_boxes: bool = Field(
        False, description="also embed the encoder's own object detector's boxes inside the motion"
    )
    cameras: dict[str, CameraOverrideSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _camera_overrides_are_valid(self) -> DetectorSettings:
        for camera_id, overrides in self.cameras.items():
            if not re.fullmatch(ID_PATTERN, camera_id):
                raise ValueError(f"cameras: {camera_id!r} is not a valid camera id")
            try:
                DetectorMatchSettings.model_validate({**self.match.model_dump(), **overrides.match})
            except ValidationError as error:
                raise ValueError(f"cameras.{camera_id}.match: {describe_validation_error(error)}") from None
        return self

    @model_validator(mode="after")
    def _discrimination_is_valid(self) -> DetectorSettings:
        try:
            DiscriminationSettings(**self.discrimination)
        except (TypeError, ValueError) as error:
            raise ValueError(f"discrimination: {error}") from None
        return self

    def camera_pipeline(
        self,
        camera_id: str,
        dim: int,
        *,
        prior: ScorePrior | None,
        discrimination: DiscriminationSettings,
        temporal: TemporalStage | None,
    ) -> CameraPipeline:
        """A camera's pipeline with these settings (the live detector's and `replay`'s)."""
        return CameraPipeline(
            camera_id,
            dim,
            calibration=self.calibration,
            prior=prior,
            temporal=temporal,
            window_frames=self.window_frames,
            regions=self.regions,
            views=self.views,
            discrimination=discrimination,
        )

    def match_for(self, camera_id: str) -> DetectorMatchSettings:
        overrides = self.cameras.get(camera_id)
        if overrides is None or not overrides.match:
            return self.match
        return DetectorMatchSettings.model_validate({**self.match.model_dump(), **overrides.match})


def load_detector_config(path: Path | None = None) -> DetectorSettings:
    """Defaults, then the `detector:` section of the YAML file at `path` (if any; the file may
    configure the other services too, as `vigil up`'s does), then VIGIL_DETECTOR_* variables."""
    return DetectorSettings.load(path)


class DetectorServiceSettings(ServiceSettings):
    """Everything `vigil detector` runs on: its settings (the `detector:` section and
    VIGIL_DETECTOR_*), Kafka (VIGIL_KAFKA_*) and its store (VIGIL_MILVUS_*)."""

    detector: DetectorSettings
    kafka: KafkaSettings
    store: StoreSettings
