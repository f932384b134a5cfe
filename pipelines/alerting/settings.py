"""The alert policy's settings: the `alerter:` section of the YAML file, and the cooldown and
escalation rules they put in force for one (camera, query) (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from vigil.pipelines.alerting.schedules import Schedule, StrictModel


def require_unique_names(names: list[str], what: str) -> None:
    """ValueError naming the repeated ones: schedules, webhooks and API clients are referred to
    by name (in overrides, metrics, acknowledgements), so a name must mean one thing."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{what} names must be unique; repeated: {', '.join(repeated)}")


class AlertOverrides(StrictModel):
    """Per-camera or per-query values replacing the global ones; a field left out inherits.
    `escalate_after: null` given explicitly turns escalation off for that camera or query."""

    cooldown_s: float | None = Field(None, ge=0, le=86_400)
    escalate_after: int | None = Field(None, ge=2, le=1_000)
    escalate_window_s: float | None = Field(None, gt=0, le=86_400)

    @model_validator(mode="after")
    def _null_only_for_escalate_after(self) -> AlertOverrides:
        for name in ("cooldown_s", "escalate_window_s"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name}: null is not a value here; leave it out to inherit the default")
        return self


@dataclass(frozen=True)
class PairRules:
    """The rules in force for one (camera, query), in ms; escalate_after None = no escalation."""

    cooldown_ms: int
    escalate_after: int | None
    escalate_window_ms: int


class AlertPolicySettings(StrictModel):
    """The alert policy's settings (the `alerter:` section of the YAML file).

    cameras / queries: overrides keyed by camera id / query id. A query's override wins over
    its camera's, which wins over the defaults: the query says what kind of event it is
    (a fire alarm wants no cooldown wherever it fires), the camera only where it happens.
    """

    cooldown_s: float = Field(60.0, ge=0, le=86_400, description="per (camera, query), between event starts")
    dedupe_ttl_s: float = Field(86_400.0, gt=0, le=30 * 86_400, description="how long hit ids are remembered")
    # A day's hits of a busy site. The alerter keeps each remembered id as a Kafka record of its
    # own (take_hit_changes), so the bound is on memory and restart time, not on record size.
    dedupe_max_hits: int = Field(20_000, ge=1, le=100_000, description="hit ids remembered at most")
    escalate_after: int | None = Field(
        None,
        ge=2,
        le=1_000,
        description="this many raised or cooled-down hits in the window escalate; null = off",
    )
    escalate_window_s: float = Field(600.0, gt=0, le=86_400)
    schedules: list[Schedule] = Field(default_factory=list)
    cameras: dict[Annotated[str, Field(min_length=1)], AlertOverrides] = Field(default_factory=dict)
    queries: dict[Annotated[str, Field(min_length=1)], AlertOverrides] = Field(default_factory=dict)

    @field_validator("schedules")
    @classmethod
    def _unique_names(cls, schedules: list[Schedule]) -> list[Schedule]:
        require_unique_names([schedule.name for schedule in schedules], "schedule")
        return schedules

    def rules_for(self, camera_id: str, query_id: str) -> PairRules:
        values: dict[str, Any] = {
            "cooldown_s": self.cooldown_s,
            "escalate_after": self.escalate_after,
            "escalate_window_s": self.escalate_window_s,
        }
        for overrides in (self.cameras.get(camera_id), self.queries.get(query_id)):  # query last: it wins
            if overrides is not None:
                values.update({name: getattr(overrides, name) for name in overrides.model_fields_set})
        return PairRules(
            cooldown_ms=round(values["cooldown_s"] * 1000),
            escalate_after=values["escalate_after"],
            escalate_window_ms=round(values["escalate_window_s"] * 1000),
        )

    def pair_retention_ms(self) -> int:
        """How long an idle (camera, query)'s cooldown and escalation memory must be kept: at
        least the dedupe TTL, and never shorter than any cooldown or escalation window."""
        seconds = [self.dedupe_ttl_s, self.cooldown_s, self.escalate_window_s]
        for overrides in (*self.cameras.values(), *self.queries.values()):
            seconds += [overrides.cooldown_s or 0, overrides.escalate_window_s or 0]
        return round(max(seconds) * 1000)
