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
   only silence more, never re-arm what another one disarmed. A standing query's own
   schedule (its `schedule` field, given to `decide`) is one more of them, named
   QUERY_SCHEDULE in the decision.
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

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from vigil.pipelines.alerting.schedules import WeeklySchedule
from vigil.pipelines.alerting.settings import AlertPolicySettings
from vigil.pipelines.alerting.severity import SEVERITIES, Severity, escalate

# What a decision names as its `schedule` when the query's own schedule disarmed or muted it.
QUERY_SCHEDULE = "the query's own schedule"

SuppressReason = Literal["duplicate", "cooldown", "disarmed"]
SUPPRESS_REASONS: tuple[str, ...] = get_args(SuppressReason)
STATE_VERSION = 1


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

    def decide(
        self,
        hit: AlertableHit,
        query_severity: Severity,
        now_ms: int,
        query_schedule: WeeklySchedule | None = None,
    ) -> Decision:
        """Judge one hit. `query_severity` is its query's configured severity, `query_schedule`
        its own schedule (None: always armed, never quiet); `now_ms` is the hit record's
        timestamp (only used to forget old memory; see the module docstring)."""
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
        decision = self._judge(hit, query_severity, now_ms, query_schedule)
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

    def _judge(
        self, hit: AlertableHit, query_severity: Severity, now_ms: int, query_schedule: WeeklySchedule | None
    ) -> Decision:
        disarmed_by = quiet_by = None
        applying: list[tuple[str, WeeklySchedule]] = [
            (schedule.name, schedule)
            for schedule in self.settings.schedules
            if schedule.applies_to.matches(hit.camera_id, hit.query_id)
        ]
        if query_schedule is not None:
            applying.append((QUERY_SCHEDULE, query_schedule))
        for name, schedule in applying:
            if disarmed_by is None and not schedule.is_armed(hit.peak_ts_ms):
                disarmed_by = name
            if quiet_by is None and schedule.is_quiet(hit.peak_ts_ms):
                quiet_by = name
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
