"""When a camera or query may alert, and when it must stay quiet: weekly windows of local time
(a section of the `alerter:` YAML settings; no I/O, the caller passes the instant in)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
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


class StrictModel(BaseModel):
    """The alerter's settings models: an unknown key is an error (a misspelt setting must not
    be silently ignored) and a loaded value does not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeWindow(StrictModel):
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

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        """A window as an operator types it: "[DAYS ]HH:MM-HH:MM", DAYS like "mon-fri" or
        "sat,sun" (omitted: every day): "mon-fri 22:00-06:00". ValueError names what is wrong."""
        days, _, hours = text.strip().rpartition(" ")
        start, dash, end = hours.partition("-")
        if not dash:
            raise ValueError(
                f'{text!r} is not a window: write "[days ]HH:MM-HH:MM", e.g. "mon-fri 22:00-06:00"'
            )
        window: dict[str, object] = {"start": start, "end": end}
        if days.strip():
            window["days"] = [day for day in re.split(r"[,\s]+", days.strip()) if day]
        return cls.model_validate(window)

    def describe(self) -> str:
        """As `parse` reads it: "mon-fri 22:00-06:00", "sat,sun 10:00-12:00", "23:00-06:00"."""
        indexes = [WEEKDAYS.index(name) for name in self.days]
        runs: list[list[int]] = []
        for index in indexes:
            if runs and index == runs[-1][-1] + 1:
                runs[-1].append(index)
            else:
                runs.append([index])
        days = ",".join(
            WEEKDAYS[run[0]] if len(run) == 1 else f"{WEEKDAYS[run[0]]}-{WEEKDAYS[run[-1]]}" for run in runs
        )
        hours = f"{self.start}-{self.end}"
        return hours if len(indexes) == len(WEEKDAYS) else f"{days} {hours}"

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


class AppliesTo(StrictModel):
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


class WeeklySchedule(StrictModel):
    """When something may alert, in local time of `timezone`: a standing query's own schedule
    (the query's `schedule` field), and the base of the alerter's named `Schedule`s.

    armed: omitted = always armed; otherwise the target is disarmed outside every window.
    quiet_hours: alerts raised inside them are muted (recorded, not spoken), except critical.
    """

    timezone: str = Field("UTC", max_length=64, description='IANA time zone, e.g. "Asia/Ho_Chi_Minh"')
    armed: list[TimeWindow] | None = Field(None, description="omitted = always armed")
    quiet_hours: list[TimeWindow] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_time_zone(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
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

    def describe(self) -> str:
        """One line: "armed mon-fri 22:00-06:00; quiet 23:00-06:00 (Asia/Ho_Chi_Minh)"."""
        parts = []
        if self.armed is not None:
            parts.append("armed " + ", ".join(window.describe() for window in self.armed))
        if self.quiet_hours:
            parts.append("quiet " + ", ".join(window.describe() for window in self.quiet_hours))
        return f"{'; '.join(parts) or 'always armed'} ({self.timezone})"

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


class Schedule(WeeklySchedule):
    """A named schedule of the alerter's settings, for the cameras and queries of `applies_to`."""

    name: str = Field(min_length=1, max_length=128)
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
