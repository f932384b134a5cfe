"""The alerter's settings: one pydantic model, from a YAML file and/or the environment.

    VIGIL_ALERTER_GROUP_ID=vigil-alerter VIGIL_ALERTER_POLICY__COOLDOWN_S=30 vigil alerter
    vigil alerter --config vigil.yaml          # its `alerter:` section

Environment variables (VIGIL_ALERTER_<FIELD>, nested with "__") override the file, which
overrides the defaults. `policy` is the alert policy (cooldown, escalation, schedules; see
pipelines/alerting/), `speech` how alerts are spoken, `webhooks` where they are POSTed,
`cameras` the names cameras are spoken by (a camera missing there is spoken by its id). The
HTTP API is a service of its own with its own `api:` section (services/common/api_settings.py),
which the alerter reads too, for the media links in its webhooks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from vigil.errors import VigilError
from vigil.pipelines.alerting import AlertPolicySettings, require_unique_names
from vigil.services.alerter.speech import SpeechSettings
from vigil.services.alerter.webhooks import WebhookSettings
from vigil.services.common.api_settings import ApiSettings
from vigil.services.common.contract import ID_PATTERN
from vigil.services.common.kafka import KafkaSettings
from vigil.services.common.settings import SectionSettings, ServiceSettings


class AlerterConfigError(VigilError):
    """The alerter's settings file or environment is invalid; the message names the field."""


class AlerterSettings(SectionSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_ALERTER_")
    section = "alerter"
    error = AlerterConfigError

    group_id: str = Field("vigil-alerter", pattern=r"^[A-Za-z0-9._-]+$", description="Kafka consumer group")
    policy: AlertPolicySettings = Field(default_factory=AlertPolicySettings)
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    cameras: dict[str, str | dict[Literal["vi", "en"], str]] = Field(
        default_factory=dict,
        description="camera id -> spoken name, one for all languages or one per language ({vi: .., en: ..})",
    )
    default_language: Literal["vi", "en"] = Field(
        "vi", description="language of alerts for a hit whose query is unknown (deleted meanwhile)"
    )
    metrics_port: int = Field(9110, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    # A hit whose times run further ahead than this of the clock or of its broker receive time is
    # dead-lettered: its cooldown would silence the query's real hits until then
    # (pipelines/admission.py). Hits behind their receive time are normal (a detector replaying
    # after a restart), so only the future is judged.
    max_clock_skew_s: float = Field(
        30.0, gt=0, le=86_400, description="dead-letter hits stamped further ahead than this"
    )
    play_locally: bool = Field(False, description="also play unmuted alerts on this machine's sound device")
    batch_max_hits: int = Field(100, ge=1, le=10_000, description="hits handled per poll")
    query_refresh_ms: int = Field(200, ge=10, le=10_000, description="how often live query changes are read")
    commit_interval_s: float = Field(
        5.0,
        ge=0,
        le=300,
        description="cadence of the policy's memory (what changed) and the offset commit; "
        "0 = after every batch",
    )
    retention_days: float = Field(
        30.0,
        gt=0,
        le=3650,
        description="alerts raised longer ago are forgotten (acknowledged or not); hits stay in Milvus",
    )

    @field_validator("cameras")
    @classmethod
    def _camera_names(cls, cameras: dict) -> dict:
        for camera_id, names in cameras.items():
            if not re.fullmatch(ID_PATTERN, camera_id):
                raise ValueError(f"{camera_id!r} is not a valid camera id")
            for name in [names] if isinstance(names, str) else names.values():
                if not name.strip():
                    raise ValueError(f"{camera_id}: the display name is empty")
            if isinstance(names, dict) and not names:
                raise ValueError(f"{camera_id}: no display name")
        return cameras

    @field_validator("webhooks")
    @classmethod
    def _unique_webhook_names(cls, webhooks: list[WebhookSettings]) -> list[WebhookSettings]:
        require_unique_names([webhook.name for webhook in webhooks], "webhook")
        return webhooks

    def camera_name(self, camera_id: str, language: str | None = None) -> str:
        """How the camera is spoken in `language`: its name in that language, else its one name,
        else its first name, else its id."""
        names = self.cameras.get(camera_id, camera_id)
        if isinstance(names, str):
            return names
        return names.get(language) or next(iter(names.values()))


def load_alerter_config(path: Path | None = None) -> AlerterSettings:
    """Defaults, then the `alerter:` section of the YAML file at `path` (if any; the file may
    configure the other services too, as `vigil up`'s does), then VIGIL_ALERTER_* variables."""
    return AlerterSettings.load(path)


class AlerterServiceSettings(ServiceSettings):
    """Everything `vigil alerter` runs on: its settings (the `alerter:` section and
    VIGIL_ALERTER_*), Kafka (VIGIL_KAFKA_*) and where the API serves the media its webhooks
    link to (the `api:` section and VIGIL_API_*: public address, signing key)."""

    alerter: AlerterSettings
    kafka: KafkaSettings
    api: ApiSettings = Field(default_factory=ApiSettings.load)
