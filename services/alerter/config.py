"""The alerter's settings: one pydantic model, from a YAML file and/or the environment.

    VIGIL_ALERTER_GROUP_ID=vigil-alerter VIGIL_ALERTER_POLICY__COOLDOWN_S=30 vigil alerter
    vigil alerter --config vigil.yaml          # its `alerter:` section

Environment variables (VIGIL_ALERTER_<FIELD>, nested with "__") override the file, which
overrides the defaults. `policy` is the alert policy (cooldown, escalation, schedules; see
pipelines/alerting.py), `speech` how alerts are spoken, `webhooks` where they are POSTed,
`cameras` the names cameras are spoken by (a camera missing there is spoken by its id).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from vigil.models.errors import VigilError
from vigil.pipelines.alerting import AlertPolicySettings
from vigil.services.alerter.speech import SpeechSettings
from vigil.services.alerter.webhooks import WebhookSettings
from vigil.services.common.contract import ID_PATTERN
from vigil.services.common.settings import EnvOverFileSettings, load_section


class AlerterConfigError(VigilError):
    """The alerter's settings file or environment is invalid; the message names the field."""


class AlerterConfig(EnvOverFileSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_ALERTER_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    group_id: str = Field("vigil-alerter", pattern=r"^[A-Za-z0-9._-]+$", description="Kafka consumer group")
    policy: AlertPolicySettings = Field(default_factory=AlertPolicySettings)
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    cameras: dict[str, str] = Field(default_factory=dict, description="camera id -> spoken display name")
    default_language: Literal["vi", "en"] = Field(
        "vi", description="language of alerts for a hit whose query is unknown (deleted meanwhile)"
    )
    metrics_port: int = Field(9110, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    play_locally: bool = Field(False, description="also play unmuted alerts on this machine's sound device")
    batch_max_hits: int = Field(100, ge=1, le=10_000, description="hits handled per poll")
    query_refresh_ms: int = Field(200, ge=10, le=10_000, description="how often live query changes are read")

    @field_validator("cameras")
    @classmethod
    def _camera_names(cls, cameras: dict[str, str]) -> dict[str, str]:
        for camera_id, name in cameras.items():
            if not re.fullmatch(ID_PATTERN, camera_id):
                raise ValueError(f"{camera_id!r} is not a valid camera id")
            if not name.strip():
                raise ValueError(f"{camera_id}: the display name is empty")
        return cameras

    @field_validator("webhooks")
    @classmethod
    def _unique_webhook_names(cls, webhooks: list[WebhookSettings]) -> list[WebhookSettings]:
        names = [webhook.name for webhook in webhooks]
        if len(set(names)) != len(names):
            raise ValueError(f"webhook names must be unique (name: ...), got {names}")
        return webhooks

    def camera_name(self, camera_id: str) -> str:
        return self.cameras.get(camera_id, camera_id)


def load_alerter_config(path: Path | None = None) -> AlerterConfig:
    """Defaults, then the `alerter:` section of the YAML file at `path` (if any; the file may
    configure the other services too, as `vigil up`'s does), then VIGIL_ALERTER_* variables."""
    return load_section(path, "alerter", AlerterConfig, AlerterConfigError)
