"""The evaluation's figures from hits against the truth: pure functions, no I/O, no model.

A *run* is one camera stream played once with its standing queries registered in one language.
Its events are the pasted photos (`Event`: which query's object, [start_ms, end_ms) in capture
time); its hits are what the live detector reported (`Hit`, from `replay_camera`'s ReplayHit).

Definitions (all times are capture times in ms):

- **found**: an event is found when a hit *of its own query* starts within `TOLERANCE_MS`
  (1,500 ms) of the event's start, on either side, inclusive: |hit start - event start| <=
  1500. Each hit finds at most one event and each event is found by at most one hit (the
  nearest start; on a tie the earlier hit). That hit is the event's *matching hit*.
- **time to detect** of a found event: the matching hit's `confirmed_ts_ms` (the capture time
  of the frame whose scoring confirmed it: when the operator would be alerted) minus the event's
  start. Median and p90 (numpy's linear interpolation) over the found events.
- every hit that matches no event is one of:
  - **late**: it starts while an event of its own query is on (from 1.5 s before its start to
    its end): it fired on the right object, but more than 1.5 s after the event began, or a
    second time. Not a false event (the object is there) and not a found event either; counted
    on its own. A hit that starts earlier and merely runs into its own event is not late;
  - **cross-firing**: it overlaps the span of an event of another object: a false event;
  - **background**: it overlaps no event at all: a false event.
  A hit [event_start_ts_ms, end_ts_ms] overlaps an event [start_ms, end_ms) when hit start <
  event end and hit end >= event start.
- **false events per hour per query** = (cross-firing + background hits) / query-hours, where
  query-hours = sum over runs of the run's footage time (frames x frame period) x its number of
  registered queries: the false alerts one standing query makes on one camera in an hour.
- **cross-firing rate**: over every (event, other query registered on the same run) pair, the
  share of pairs in which that other query has a hit overlapping the event's span, in percent.
- **two-event query**: the query that has two events in its stream; recall of its first and of
  its second event (in time) separately.
- **size buckets**: recall per bucket of the pasted photo's area fraction.
- **event F1**: the harmonic mean of recall (found events / events) and precision (matching
  hits / (matching + false hits); late hits count neither way): one figure to compare two
  ways of deciding (the per-frame threshold and the temporal model) at their recall.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

TOLERANCE_MS = 1_500
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Event:
    event_id: str
    query_id: str  # the query whose object the photo shows
    start_ms: int
    end_ms: int  # exclusive
    ordinal: int = 1  # 1 or 2: which event of its query in the run
    size_bucket: str = ""


@dataclass(frozen=True)
class Hit:
    query_id: str
    start_ms: int  # event_start_ts_ms
    confirmed_ms: int
    end_ms: int

    @classmethod
    def from_replay(cls, hit) -> Hit:
        return cls(hit.query_id, int(hit.event_start_ts_ms), int(hit.confirmed_ts_ms), int(hit.end_ts_ms))


@dataclass(frozen=True)
class Run:
    name: str
    language: str
    queries: tuple[str, ...]  # registered query ids
    duration_ms: int
    events: tuple[Event, ...]
    hits: tuple[Hit, ...]


@dataclass
class RunOutcome:
    run: Run
    matched: dict[str, int] = field(default_factory=dict)  # event id -> index of its matching hit
    kinds: list[str] = field(default_factory=list)  # per hit: match | late | cross | background
    cross_pairs: list[tuple[str, str, bool]] = field(default_factory=list)  # (event, query, fired)

    def found(self, event: Event) -> bool:
        return event.event_id in self.matched

    def time_to_detect_ms(self, event: Event) -> int | None:
        index = self.matched.get(event.event_id)
        return None if index is None else self.run.hits[index].confirmed_ms - event.start_ms


def overlaps(hit: Hit, event: Event) -> bool:
    return hit.start_ms < event.end_ms and hit.end_ms >= event.start_ms


def starts_during(hit: Hit, event: Event) -> bool:
    """The hit starts while the event is on (or within the tolerance before it)."""
    return event.start_ms - TOLERANCE_MS <= hit.start_ms < event.end_ms


def match_run(run: Run) -> RunOutcome:
    """Match one run's hits to its events (see the module docstring)."""
    registered = set(run.queries)
    for event in run.events:
        if event.query_id not in registered:
            raise ValueError(f"event {event.event_id}: its query {event.query_id!r} is not registered")
    outcome = RunOutcome(run)
    used: set[int] = set()
    for event in sorted(run.events, key=lambda e: (e.start_ms, e.event_id)):
        candidates = [
            (abs(hit.start_ms - event.start_ms), hit.start_ms, i)
            for i, hit in enumerate(run.hits)
            if i not in used
            and hit.query_id == event.query_id
            and abs(hit.start_ms - event.start_ms) <= TOLERANCE_MS
        ]
        if candidates:
            index = min(candidates)[2]
            used.add(index)
            outcome.matched[event.event_id] = index
    for i, hit in enumerate(run.hits):
        if i in used:
            kind = "match"
        elif any(e.query_id == hit.query_id and starts_during(hit, e) for e in run.events):
            kind = "late"
        elif any(e.query_id != hit.query_id and overlaps(hit, e) for e in run.events):
            kind = "cross"
        else:
            kind = "background"
        outcome.kinds.append(kind)
    for event in run.events:
        for query in run.queries:
            if query != event.query_id:
                fired = any(h.query_id == query and overlaps(h, event) for h in run.hits)
                outcome.cross_pairs.append((event.event_id, query, fired))
    return outcome


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return None if denominator == 0 else scale * numerator / denominator


def _recall(outcomes: Sequence[RunOutcome], keep) -> dict:
    events = [(o, e) for o in outcomes for e in o.run.events if keep(o, e)]
    found = sum(o.found(e) for o, e in events)
    return {"events": len(events), "found": found, "found_pct": _ratio(found, len(events), 100.0)}


def _f1(found: int, events: int, matching: int, decided: int) -> float | None:
    """2PR / (P + R) with R = found / events and P = matching / decided; None when undefined."""
    if not events or not decided:
        return None
    recall, precision = found / events, matching / decided
    if not recall + precision:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def summarise(outcomes: Iterable[RunOutcome]) -> dict:
    """The figures over a set of runs (one language of one split, say)."""
    outcomes = list(outcomes)
    events = [(o, e) for o in outcomes for e in o.run.events]
    found = [(o, e) for o, e in events if o.found(e)]
    kinds = [k for o in outcomes for k in o.kinds]
    counts = {k: kinds.count(k) for k in ("match", "late", "cross", "background")}
    false_events = counts["cross"] + counts["background"]
    footage_ms = sum(o.run.duration_ms for o in outcomes)
    query_hours = sum(o.run.duration_ms * len(o.run.queries) for o in outcomes) / HOUR_MS
    pairs = [p for o in outcomes for p in o.cross_pairs]
    fired = sum(p[2] for p in pairs)
    ttd = np.array([o.time_to_detect_ms(e) for o, e in found], np.float64)
    buckets = sorted({e.size_bucket for _, e in events if e.size_bucket})
    per_query = sorted({e.query_id for _, e in events})
    return {
        "runs": len(outcomes),
        "footage_s": footage_ms / 1000,
        "query_hours": query_hours,
        "events": len(events),
        "found": len(found),
        "found_pct": _ratio(len(found), len(events), 100.0),
        "hits": len(kinds),
        "hit_kinds": counts,
        "false_events": false_events,
        "false_per_hour_per_query": _ratio(false_events, query_hours),
        "cross_false_per_hour_per_query": _ratio(counts["cross"], query_hours),
        "background_false_per_hour_per_query": _ratio(counts["background"], query_hours),
        "precision_pct": _ratio(counts["match"], counts["match"] + false_events, 100.0),
        "event_f1": _f1(len(found), len(events), counts["match"], counts["match"] + false_events),
        "cross_pairs": len(pairs),
        "cross_fired": fired,
        "cross_firing_pct": _ratio(fired, len(pairs), 100.0),
        "time_to_detect_ms": {
            "n": int(ttd.size),
            "median": float(np.median(ttd)) if ttd.size else None,
            "p90": float(np.percentile(ttd, 90)) if ttd.size else None,
        },
        "two_event_query": {
            "first": _recall(outcomes, lambda o, e: _twice(o, e) and e.ordinal == 1),
            "second": _recall(outcomes, lambda o, e: _twice(o, e) and e.ordinal == 2),
        },
        "size_buckets": {b: _recall(outcomes, lambda o, e, b=b: e.size_bucket == b) for b in buckets},
        "per_query": {q: _recall(outcomes, lambda o, e, q=q: e.query_id == q) for q in per_query},
    }


def _twice(outcome: RunOutcome, event: Event) -> bool:
    return sum(e.query_id == event.query_id for e in outcome.run.events) == 2


@dataclass(frozen=True)
class Goals:
    """The product's goals, judged per language on the held-out split."""

    found_pct: float = 90.0
    false_per_hour_per_query: float = 2.0
    cross_firing_pct: float = 5.0

    def check(self, figures: dict) -> dict[str, bool | None]:
        def at_least(value, goal):
            return None if value is None else value >= goal

        def at_most(value, goal):
            return None if value is None else value <= goal

        return {
            "found_pct": at_least(figures["found_pct"], self.found_pct),
            "false_per_hour_per_query": at_most(
                figures["false_per_hour_per_query"], self.false_per_hour_per_query
            ),
            "cross_firing_pct": at_most(figures["cross_firing_pct"], self.cross_firing_pct),
        }


GOALS = Goals()
