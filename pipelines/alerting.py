"""Which hits become alerts, and how loud (no I/O, no clock: the caller passes the time in).

`AlertPolicy.decide(hit, query_severity, now_ms)` is fed every message of the "hits" topic in
the order the alerter consumes them and answers with a `Decision`: raise an alert (with its
severity, whether it was escalated, whether it is muted) or suppress the hit for one reason of
a fixed set (`SUPPRESS_REASONS`). A hit goes through, in this order:

1. Dedupe by hit id. Detector replicas may both publish a hit around a rebalance, and the
   detector publishes every hit twice (when the event is confirmed, `end_ts_ms` None, and
   again when it closes, with `end_ts_ms` set, under the same id). A hit id already seen is
   "duplicate"; `Decision.close_update` says it is the first closed version of a known hit
   (the service records the end time on the alert, `Decision.alerted` says whether there is
   one). Every judged hit id is remembered, whatever its outcome, so a replica's copy of a
   disarmed or cooled-down hit is a duplicate too, not a second chance.
2. Schedules, at the hit's peak time. `peak_ts_ms` is the capture time of the best frame: the
   wall time the thing happened, which is what "armed at night" and "quiet after 23:00" mean
   (the event start may be minutes earlier for a slow build-up; the time of processing is
   not a property of the event at all). Every schedule whose `applies_to` covers the hit's
   camera and query is consulted: outside all `armed` windows of any of them the hit is
   "disarmed" (even a critical one: a disarmed target is one where activity is expected);
   inside a `quiet_hours` window of any of them the alert is raised and recorded but muted
   (nobody is woken by speech), unless its severity is critical. Schedules combine
   restrictively (every applying schedule must be armed) so that adding a schedule can
   only silence more, never re-arm what another one disarmed.
3. Escalation and cooldown, per (camera, query), in event-start time. Measuring them between
   `event_start_ts_ms` values (the time the hit id is derived from) rather than arrival times
   makes a restarted alerter replaying the same hits take the same decisions, however fast
   or late the replay runs.
   - Escalation: when the hit is the `escalate_after`-th counted hit of its pair within
     `escalate_window_s`, it is escalated: its severity goes up one level (info -> warning ->
     critical; critical stays critical) and `escalated` is True. Counted are hits that were
     raised and hits suppressed by cooldown: a query that keeps firing during its cooldown is
     exactly what escalation is for. Duplicates and disarmed hits do not count (a disarmed
     target's activity is expected, and must not make the first alert after arming loud).
   - Cooldown: a hit whose event started less than `cooldown_s` from the last raised alert of
     its pair is suppressed ("cooldown"). The anchor is the last raised alert, not the last
     hit, so a query firing without pause still alerts once per cooldown instead of never.
     An escalation bypasses the cooldown once: the first escalated hit is raised at once even
     inside the cooldown (the escalation is news), later ones wait for the cooldown like any
     other until the query calms down (fewer than `escalate_after` hits in the window), after
     which a new escalation may bypass it again.
4. Severity comes from the query (`query_severity`, the QueryMessage's severity, or for a
   hit whose query is not standing UNKNOWN_QUERY_SEVERITY: `severity_of(query)`), escalated
   as above; muting is decided on the final severity, so an escalation to critical is heard
   during quiet hours.

`now_ms` is only used to forget: hit ids and (camera, query) pairs not seen for `dedupe_ttl_s`
are dropped, and at most `dedupe_max_hits` hit ids are kept (the least recently seen go
first), so memory stays bounded. The service should pass the hit record's Kafka timestamp
(`decision_clock_ms`), which a replay sees again unchanged, so that even forgetting is
deterministic. Forgetting an open hit's id before its close arrives makes the close a new
hit; its event start is the one the pair's cooldown is anchored on, so it is suppressed by
cooldown (when cooldown_s > 0).

`to_state()` / `restore()` snapshot what the policy remembers as JSON-able data (settings are
not part of it: a policy restored under edited settings applies the new ones from then on).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# The same values as services.common.contract.Severity (pipelines/ does not import services/;
# tests/pipelines/test_alert_policy.py checks that the two stay equal). Ordered, lowest first.
Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)

SuppressReason = Literal["duplicate", "cooldown", "disarmed"]
SUPPRESS_REASONS: tuple[str, ...] = get_args(SuppressReason)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
STATE_VERSION = 1


def require_unique_names(names: list[str], what: str) -> None:
    """ValueError naming the repeated ones: schedules, webhooks and API clients are referred to
    by name (in overrides, metrics, acknowledgements), so a name must mean one thing."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{what} names must be unique; repeated: {', '.join(repeated)}")


def escalate(severity: Severity) -> Severity:
    """One level up; critical stays critical."""
    return SEVERITIES[min(SEVERITIES.index(severity) + 1, len(SEVERITIES) - 1)]  # type: ignore[return-value]


# --- settings (the `alerter:` section of the YAML file) -------------------------------------

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


def _minute_of_day(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _parse_days(value: object) -> list[str]:
    """Weekdays as written ("mon", "Monday", "mon-fri", "fri-mon" wrapping over the weekend)
    -> canonical short names, Monday first."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ValueError('days must be a list of weekdays such as ["mon-fri", "sun"]')

    def day(name: str) -> int:
        key = name.strip().lower()
        for index, (short, full) in enumerate(zip(WEEKDAYS, _FULL_DAY_NAMES, strict=True)):
            if key in (short, full):
                return index
        raise ValueError(f"{name!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)")

    chosen: set[int] = set()
    for item in items:
        first, dash, last = item.partition("-")
        if not dash:
            chosen.add(day(first))
            continue
        start, end = day(first), day(last)
        chosen.update((start + offset) % 7 for offset in range((end - start) % 7 + 1))
    if not chosen:
        raise ValueError("a window needs at least one weekday")
    return [WEEKDAYS[index] for index in sorted(chosen)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeWindow(_Strict):
    """A weekly window of local time: on each of `days`, from `start` (included) to `end`
    (excluded), "HH:MM". An `end` not after `start` crosses midnight and ends the next day:
    {days: [fri], start: "22:00", end: "06:00"} is Friday 22:00 to Saturday 06:00 (the day
    is the one the window starts on). "24:00" may end a window at midnight; a whole day is
    "00:00"-"24:00". Times are wall-clock times of the schedule's time zone, so on a DST
    change day a window may last an hour more or less than its nominal length."""

    days: list[str] = Field(
        default_factory=lambda: list(WEEKDAYS), description="weekdays; ranges like mon-fri"
    )
    start: str = Field(description='"HH:MM", local time')
    end: str = Field(
        description='"HH:MM", local time; not after start = crosses midnight; "24:00" = midnight'
    )

    @field_validator("days", mode="before")
    @classmethod
    def _weekdays(cls, days: object) -> list[str]:
        return _parse_days(days)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, clock: object, info: ValidationInfo) -> str:
        if isinstance(clock, int) and not isinstance(clock, bool):
            # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320 (but 06:00 as text).
            raise ValueError(
                f'got the number {clock}: write times in quotes, e.g. "22:00" (YAML reads 22:00 as 1320)'
            )
        match = _CLOCK.match(clock) if isinstance(clock, str) else None
        hours, minutes = (int(match[1]), int(match[2])) if match else (-1, -1)
        midnight_end = info.field_name == "end" and (hours, minutes) == (24, 0)
        if not midnight_end and not (0 <= hours <= 23 and 0 <= minutes <= 59):
            allowed = '"00:00" to "23:59"' + (' or "24:00"' if info.field_name == "end" else "")
            raise ValueError(f"{clock!r} is not a time of day (HH:MM, {allowed})")
        return f"{hours:02d}:{minutes:02d}"

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError(
                f'start and end are both {self.start!r}: for a whole day write "00:00" to "24:00"'
            )
        return self

    def contains(self, weekday: int, minute_of_day: int) -> bool:
        """Whether local time (weekday 0 = Monday, minute since local midnight) is inside."""
        start, end = _minute_of_day(self.start), _minute_of_day(self.end)
        days = {WEEKDAYS.index(name) for name in self.days}
        if start < end:
            return weekday in days and start <= minute_of_day < end
        # Crosses midnight: the evening part belongs to the day the window starts on, the
        # morning part to the window that started the day before.
        started_today = weekday in days and minute_of_day >= start
        started_yesterday = (weekday - 1) % 7 in days and minute_of_day < end
        return started_today or started_yesterday


class AppliesTo(_Strict):
    """Which hits a schedule governs: the listed cameras and/or queries; an empty list = all."""

    cameras: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="empty = all"
    )
    queries: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="empty = all"
    )

    def matches(self, camera_id: str, query_id: str) -> bool:
        camera_ok = not self.cameras or camera_id in self.cameras
        return camera_ok and (not self.queries or query_id in self.queries)


class Schedule(_Strict):
    """When the cameras/queries of `applies_to` may alert, in local time of `timezone`.

    armed: omitted = always armed; otherwise the target is disarmed outside every window.
    quiet_hours: alerts raised inside them are muted (recorded, not spoken), except critical.
    """

    name: str = Field(min_length=1, max_length=128)
    timezone: str = Field("UTC", description='IANA time zone, e.g. "Asia/Ho_Chi_Minh"')
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    armed: list[TimeWindow] | None = Field(None, description="omitted = always armed")
    quiet_hours: list[TimeWindow] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_time_zone(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'unknown time zone {timezone!r} (an IANA name such as "Asia/Ho_Chi_Minh" or "UTC")'
            ) from None
        return timezone

    @field_validator("armed")
    @classmethod
    def _some_window(cls, armed: list[TimeWindow] | None) -> list[TimeWindow] | None:
        if armed is not None and not armed:
            # An empty list would disarm for good: almost surely a mistake, and disabling the
            # query or camera says that better.
            raise ValueError("an empty list would never arm; omit `armed` to be armed at all times")
        return armed

    def local_time(self, ts_ms: int) -> tuple[int, int]:
        """(weekday, minute of day) of the instant `ts_ms` in this schedule's time zone."""
        local = datetime.fromtimestamp(ts_ms // 1000, ZoneInfo(self.timezone))
        return local.weekday(), local.hour * 60 + local.minute

    def is_armed(self, ts_ms: int) -> bool:
        if self.armed is None:
            return True
        weekday, minute = self.local_time(ts_ms)
        return any(window.contains(weekday, minute) for window in self.armed)

    def is_quiet(self, ts_ms: int) -> bool:
        weekday, minute = self.local_time(ts_ms)
        return any(window.contains(weekday, minute) for window in self.quiet_hours)


class AlertOverrides(_Strict):
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


class AlertPolicySettings(_Strict):
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


# --- decisions ----------------------------------------------------------------------------


class AlertableHit(Protocol):
    """What the policy reads of a hit: services.common.contract.HitMessage and
    pipelines.matching.Hit both fit."""

    @property
    def hit_id(self) -> str: ...
    @property
    def camera_id(self) -> str: ...
    @property
    def query_id(self) -> str: ...
    @property
    def event_start_ts_ms(self) -> int: ...
    @property
    def peak_ts_ms(self) -> int: ...
    @property
    def end_ts_ms(self) -> int | None: ...


class RatedQuery(Protocol):
    """What the policy reads of a standing query: how loud its alerts are
    (services.common.contract.QueryMessage fits)."""

    @property
    def severity(self) -> Severity: ...


# A hit whose query is not (or no longer) standing, e.g. deleted while its event was open,
# still alerts: nobody said how loud, so at the middle level.
UNKNOWN_QUERY_SEVERITY: Severity = "warning"


def severity_of(query: RatedQuery | None) -> Severity:
    """The `query_severity` to decide a hit with: its query's own, or UNKNOWN_QUERY_SEVERITY
    when the query is not standing (None)."""
    return query.severity if query is not None else UNKNOWN_QUERY_SEVERITY


def decision_clock_ms(record_timestamp_ms: int | None, wall_ms: int) -> int:
    """The `now_ms` to decide a hit at: its Kafka record's timestamp, which a replay sees again
    unchanged; the wall clock only for a record that has none (None, or Kafka's -1)."""
    if record_timestamp_ms is not None and record_timestamp_ms >= 0:
        return record_timestamp_ms
    return wall_ms


@dataclass(frozen=True)
class Decision:
    """What to do with one hit.

    raised: True = raise an alert with `severity`, `escalated` and `muted`; False = suppressed
        for `reason` (one of SUPPRESS_REASONS), and `severity` is None.
    alerted: whether this hit id has an alert (raised now, or, for a duplicate, earlier).
    close_update: a duplicate that is the first closed version of a known hit: the service
        records its end time (on the alert, when `alerted`).
    schedule: the schedule that disarmed the hit, or that muted the alert; else None.
    """

    hit_id: str
    raised: bool
    severity: Severity | None = None
    escalated: bool = False
    muted: bool = False
    reason: SuppressReason | None = None
    alerted: bool = False
    close_update: bool = False
    schedule: str | None = None

    @classmethod
    def alert(
        cls, hit_id: str, severity: Severity, *, escalated: bool, muted: bool, schedule: str | None
    ) -> Decision:
        return cls(hit_id, True, severity, escalated, muted, None, True, False, schedule)

    @classmethod
    def suppress(
        cls,
        hit_id: str,
        reason: SuppressReason,
        *,
        alerted: bool = False,
        close_update: bool = False,
        schedule: str | None = None,
    ) -> Decision:
        return cls(hit_id, False, None, False, False, reason, alerted, close_update, schedule)


@dataclass
class _SeenHit:
    touched_ms: int  # now_ms when the id was last seen
    alerted: bool
    closed: bool


@dataclass
class _PairMemory:
    touched_ms: int
    last_alert_start_ms: int | None = None
    last_alert_escalated: bool = False
    # Event starts of the latest counted hits (raised or cooled down), at most escalate_after.
    counted_starts_ms: list[int] = field(default_factory=list)


class AlertPolicy:
    """The alert policy with its memory; see the module docstring. `settings` may be replaced
    between decisions (a reloaded config): the memory stays valid under new settings."""

    def __init__(self, settings: AlertPolicySettings | None = None) -> None:
        self.settings = settings or AlertPolicySettings()
        self._seen: OrderedDict[str, _SeenHit] = OrderedDict()  # least recently seen first
        self._pairs: OrderedDict[tuple[str, str], _PairMemory] = OrderedDict()
        # Hit ids added or changed, and forgotten, since take_hit_changes(): so that a service can
        # persist the memory one hit at a time instead of whole (it holds up to dedupe_max_hits).
        self._changed_hits: set[str] = set()
        self._dropped_hits: set[str] = set()

    @property
    def remembered_hits(self) -> int:
        return len(self._seen)

    @property
    def remembered_pairs(self) -> int:
        return len(self._pairs)

    def decide(self, hit: AlertableHit, query_severity: Severity, now_ms: int) -> Decision:
        """Judge one hit. `query_severity` is its query's configured severity; `now_ms` is the
        hit record's timestamp (only used to forget old memory; see the module docstring)."""
        if query_severity not in SEVERITIES:
            raise ValueError(f"query_severity must be one of {', '.join(SEVERITIES)}, got {query_severity!r}")
        now_ms = int(now_ms)
        self._forget(now_ms)
        closes = hit.end_ts_ms is not None
        seen = self._seen.get(hit.hit_id)
        if seen is not None:
            close_update = closes and not seen.closed
            seen.closed = seen.closed or closes
            seen.touched_ms = max(seen.touched_ms, now_ms)
            self._seen.move_to_end(hit.hit_id)
            self._changed_hits.add(hit.hit_id)
            return Decision.suppress(hit.hit_id, "duplicate", alerted=seen.alerted, close_update=close_update)
        decision = self._judge(hit, query_severity, now_ms)
        self._seen[hit.hit_id] = _SeenHit(now_ms, decision.raised, closes)
        self._changed_hits.add(hit.hit_id)
        self._dropped_hits.discard(hit.hit_id)
        while len(self._seen) > self.settings.dedupe_max_hits:
            self._drop_oldest_hit()
        return decision

    def _drop_oldest_hit(self) -> None:
        hit_id, _ = self._seen.popitem(last=False)
        self._changed_hits.discard(hit_id)
        self._dropped_hits.add(hit_id)

    def _judge(self, hit: AlertableHit, query_severity: Severity, now_ms: int) -> Decision:
        disarmed_by = quiet_by = None
        for schedule in self.settings.schedules:
            if not schedule.applies_to.matches(hit.camera_id, hit.query_id):
                continue
            if disarmed_by is None and not schedule.is_armed(hit.peak_ts_ms):
                disarmed_by = schedule.name
            if quiet_by is None and schedule.is_quiet(hit.peak_ts_ms):
                quiet_by = schedule.name
        if disarmed_by is not None:
            return Decision.suppress(hit.hit_id, "disarmed", schedule=disarmed_by)

        rules = self.settings.rules_for(hit.camera_id, hit.query_id)
        pair = self._pair(hit.camera_id, hit.query_id, now_ms)
        start = int(hit.event_start_ts_ms)
        escalated = False
        if rules.escalate_after is not None:
            window = rules.escalate_window_ms
            counted = [ts for ts in pair.counted_starts_ms if start - ts < window] + [start]
            pair.counted_starts_ms = counted[-rules.escalate_after :]
            escalated = sum(abs(start - ts) < window for ts in pair.counted_starts_ms) >= rules.escalate_after
        last = pair.last_alert_start_ms
        cooling_down = last is not None and abs(start - last) < rules.cooldown_ms
        if cooling_down and not (escalated and not pair.last_alert_escalated):
            return Decision.suppress(hit.hit_id, "cooldown")

        pair.last_alert_start_ms = start if last is None else max(last, start)
        pair.last_alert_escalated = escalated
        severity = escalate(query_severity) if escalated else query_severity
        muted = quiet_by is not None and severity != "critical"
        return Decision.alert(
            hit.hit_id, severity, escalated=escalated, muted=muted, schedule=quiet_by if muted else None
        )

    def _pair(self, camera_id: str, query_id: str, now_ms: int) -> _PairMemory:
        key = (camera_id, query_id)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = _PairMemory(touched_ms=now_ms)
        pair.touched_ms = max(pair.touched_ms, now_ms)
        self._pairs.move_to_end(key)
        return pair

    def _forget(self, now_ms: int) -> None:
        """Drop hit ids and pairs not seen for their retention, least recently seen first."""
        hits_before = now_ms - round(self.settings.dedupe_ttl_s * 1000)
        while self._seen and next(iter(self._seen.values())).touched_ms <= hits_before:
            self._drop_oldest_hit()
        pairs_before = now_ms - self.settings.pair_retention_ms()
        while self._pairs and next(iter(self._pairs.values())).touched_ms <= pairs_before:
            self._pairs.popitem(last=False)

    # --- snapshots -------------------------------------------------------------------------

    def to_state(self, include_hits: bool = True) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the memory (least recently seen first). Without
        `include_hits`, the hit ids are left out: the caller keeps them one by one, from
        `take_hit_changes()`, and hands them back to `restore`."""
        hits = self._seen.items() if include_hits else ()
        return {
            "version": STATE_VERSION,
            "hits": [self.hit_state(hit_id, seen) for hit_id, seen in hits],
            "pairs": [
                {
                    "camera_id": camera_id,
                    "query_id": query_id,
                    "touched_ms": pair.touched_ms,
                    "last_alert_start_ms": pair.last_alert_start_ms,
                    "last_alert_escalated": pair.last_alert_escalated,
                    "counted_starts_ms": list(pair.counted_starts_ms),
                }
                for (camera_id, query_id), pair in self._pairs.items()
            ],
        }

    @staticmethod
    def hit_state(hit_id: str, seen: _SeenHit) -> list[Any]:
        return [hit_id, seen.touched_ms, seen.alerted, seen.closed]

    def take_hit_changes(self) -> tuple[list[list[Any]], list[str]]:
        """The remembered hit ids added or changed since the last call (each as `hit_state`),
        and those forgotten since; then starts counting afresh."""
        changed = [self.hit_state(hit_id, self._seen[hit_id]) for hit_id in self._changed_hits]
        dropped = sorted(self._dropped_hits)
        self._changed_hits, self._dropped_hits = set(), set()
        return changed, dropped

    def restore(self, state: dict[str, Any], hits: Iterable[list[Any]] = ()) -> None:
        """Resume from `to_state()`'s snapshot plus hit states kept apart (`take_hit_changes`);
        this policy's settings stay its own. Hit ids inside the snapshot itself are reported by
        the next `take_hit_changes()`, so that a whole snapshot of old moves to records."""
        try:
            if state["version"] != STATE_VERSION:
                raise ValueError(f"version {state['version']!r}, this Vigil reads {STATE_VERSION}")
            items = sorted([*state["hits"], *hits], key=lambda item: int(item[1]))  # least recent first
            seen = OrderedDict(
                (str(hit_id), _SeenHit(int(touched), bool(alerted), bool(closed)))
                for hit_id, touched, alerted, closed in items
            )
            pairs = OrderedDict(
                (
                    (str(item["camera_id"]), str(item["query_id"])),
                    _PairMemory(
                        touched_ms=int(item["touched_ms"]),
                        last_alert_start_ms=None
                        if item["last_alert_start_ms"] is None
                        else int(item["last_alert_start_ms"]),
                        last_alert_escalated=bool(item["last_alert_escalated"]),
                        counted_starts_ms=[int(ts) for ts in item["counted_starts_ms"]],
                    ),
                )
                for item in state["pairs"]
            )
        except (KeyError, IndexError, ValueError, TypeError) as error:
            raise ValueError(f"not an AlertPolicy snapshot: {error!r}") from None
        self._seen, self._pairs = seen, pairs
        # Hit ids that came inside the snapshot are not kept apart yet: they count as changed.
        self._changed_hits = {str(item[0]) for item in state["hits"]} & set(seen)
        self._dropped_hits = set()
        while len(self._seen) > self.settings.dedupe_max_hits:
            self._drop_oldest_hit()
