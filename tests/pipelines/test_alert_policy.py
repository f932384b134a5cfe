"""AlertPolicy hit by hit: dedupe, cooldown, schedules (time zones, DST), quiet hours, escalation,
bounded memory, snapshots, and settings that name the field they got wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

import pytest
import yaml
from pydantic import ValidationError

from vigil.pipelines.alerting import (
    QUERY_SCHEDULE,
    SUPPRESS_REASONS,
    UNKNOWN_QUERY_SEVERITY,
    WEEKDAYS,
    AlertPolicy,
    AlertPolicySettings,
    Decision,
    Severity,
    TimeWindow,
    WeeklySchedule,
    decision_clock_ms,
    escalate,
    severity_of,
)
from vigil.services.common import contract
from vigil.services.common.contract import HitMessage, derive_hit_id, describe_validation_error

S = 1000  # ms
MONDAY_NOON_UTC = 1_717_416_000_000  # 2024-06-03T12:00:00Z, a Monday


def at(iso: str) -> int:
    """ms since the epoch of an ISO time with its offset ("2024-06-03T23:30:00+00:00")."""
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def hit(
    start_ms: int,
    *,
    camera: str = "cam-1",
    query: str = "q-1",
    peak_ms: int | None = None,
    end_ms: int | None = None,
) -> HitMessage:
    """A hit as the detector publishes it (its id derived from camera, query and start)."""
    return HitMessage(
        hit_id=derive_hit_id(camera, query, start_ms),
        camera_id=camera,
        query_id=query,
        event_start_ts_ms=start_ms,
        peak_ts_ms=start_ms if peak_ms is None else peak_ms,
        end_ts_ms=end_ms,
        peak_score=0.9,
        thumbnail=f"thumbs/{camera}/{start_ms}.jpg",
        encoder="offline",
    )


def closed(open_hit: HitMessage, end_ms: int) -> HitMessage:
    """The same event's closing message: same hit id, end_ts_ms set."""
    return open_hit.model_copy(update={"end_ts_ms": end_ms})


def decide(
    policy: AlertPolicy, the_hit: HitMessage, severity: Severity = "warning", now_ms: int | None = None
):
    """Decide with now_ms = the record's timestamp: shortly after the hit's latest time."""
    if now_ms is None:
        now_ms = (the_hit.end_ts_ms or the_hit.peak_ts_ms) + 200
    return policy.decide(the_hit, severity, now_ms)


def policy(**settings) -> AlertPolicy:
    return AlertPolicy(AlertPolicySettings.model_validate(settings))


def outcome(decision: Decision) -> str:
    """'raise:<severity>[:escalated][:muted]' or 'suppress:<reason>', for compact assertions."""
    if not decision.raised:
        return f"suppress:{decision.reason}"
    return ":".join(
        ["raise", decision.severity or "", *(["escalated"] if decision.escalated else [])]
        + (["muted"] if decision.muted else [])
    )


# --- basics -------------------------------------------------------------------------------


def test_a_new_hit_raises_an_alert_with_its_query_severity():
    decision = decide(policy(), hit(MONDAY_NOON_UTC), "info")
    assert decision.raised and decision.alerted
    assert (decision.severity, decision.escalated, decision.muted, decision.reason) == (
        "info",
        False,
        False,
        None,
    )
    assert decision.hit_id == derive_hit_id("cam-1", "q-1", MONDAY_NOON_UTC)


def test_an_unknown_query_severity_is_refused():
    with pytest.raises(ValueError, match="query_severity"):
        policy().decide(hit(MONDAY_NOON_UTC), "urgent", MONDAY_NOON_UTC)  # type: ignore[arg-type]


def test_severity_and_reasons_are_the_contracts_and_the_fixed_set():
    assert get_args(Severity) == get_args(contract.Severity)
    assert SUPPRESS_REASONS == ("duplicate", "cooldown", "disarmed")


# --- dedupe -------------------------------------------------------------------------------


def test_the_same_hit_id_twice_is_a_duplicate():
    alerts = policy()
    first = decide(alerts, hit(MONDAY_NOON_UTC))
    again = decide(alerts, hit(MONDAY_NOON_UTC))
    assert first.raised
    assert outcome(again) == "suppress:duplicate"
    assert again.alerted and not again.close_update


def test_a_replica_copy_arriving_later_is_a_duplicate_even_after_the_cooldown():
    # Two detector replicas published the same hit around a rebalance; the second copy comes
    # late, past the cooldown: it is still the same event and must not alert again.
    alerts = policy(cooldown_s=60)
    original = hit(MONDAY_NOON_UTC)
    assert decide(alerts, original).raised
    late_copy = decide(alerts, original, now_ms=MONDAY_NOON_UTC + 10 * 60 * S)
    assert outcome(late_copy) == "suppress:duplicate" and late_copy.alerted


def test_a_replica_copy_of_a_suppressed_hit_is_a_duplicate_not_a_second_chance():
    alerts = policy(cooldown_s=60)
    decide(alerts, hit(MONDAY_NOON_UTC))
    cooled = hit(MONDAY_NOON_UTC + 30 * S)
    assert outcome(decide(alerts, cooled)) == "suppress:cooldown"
    copy = decide(alerts, cooled, now_ms=MONDAY_NOON_UTC + 5 * 60 * S)
    assert outcome(copy) == "suppress:duplicate"
    assert not copy.alerted  # the service has no alert to update for it


def test_the_close_update_of_an_alerted_hit_is_a_duplicate_marked_as_close_update():
    alerts = policy()
    opened = hit(MONDAY_NOON_UTC)
    assert decide(alerts, opened).raised
    close = decide(alerts, closed(opened, MONDAY_NOON_UTC + 40 * S))
    assert outcome(close) == "suppress:duplicate"
    assert close.close_update and close.alerted
    # a replica's copy of the close, and a late copy of the open version, are plain duplicates
    assert not decide(alerts, closed(opened, MONDAY_NOON_UTC + 40 * S)).close_update
    assert not decide(alerts, opened).close_update


def test_the_close_update_of_a_suppressed_hit_says_it_has_no_alert():
    alerts = policy(cooldown_s=60)
    decide(alerts, hit(MONDAY_NOON_UTC))
    cooled = hit(MONDAY_NOON_UTC + 10 * S)
    decide(alerts, cooled)
    close = decide(alerts, closed(cooled, MONDAY_NOON_UTC + 20 * S))
    assert outcome(close) == "suppress:duplicate" and close.close_update and not close.alerted


def test_a_closed_hit_never_seen_open_is_judged_as_a_new_hit():
    close = decide(policy(), hit(MONDAY_NOON_UTC, end_ms=MONDAY_NOON_UTC + 5 * S))
    assert close.raised and not close.close_update


# --- cooldown -----------------------------------------------------------------------------


def test_cooldown_suppresses_the_same_camera_and_query_until_it_has_passed():
    alerts = policy(cooldown_s=60)
    starts = [0, 30, 59.999, 60]
    decisions = [outcome(decide(alerts, hit(MONDAY_NOON_UTC + round(s * S)))) for s in starts]
    assert decisions == ["raise:warning", "suppress:cooldown", "suppress:cooldown", "raise:warning"]


def test_cooldown_is_anchored_on_the_last_alert_not_the_last_hit():
    # A query firing every 30 s without pause still alerts once a minute, not never.
    alerts = policy(cooldown_s=60)
    decisions = [outcome(decide(alerts, hit(MONDAY_NOON_UTC + s * S))) for s in (0, 30, 60, 90, 120)]
    assert decisions == ["raise:warning", "suppress:cooldown"] * 2 + ["raise:warning"]


def test_cooldown_is_per_camera_and_query_not_across_cameras():
    alerts = policy(cooldown_s=60)
    assert decide(alerts, hit(MONDAY_NOON_UTC, camera="cam-1", query="q-1")).raised
    assert decide(alerts, hit(MONDAY_NOON_UTC + 5 * S, camera="cam-2", query="q-1")).raised
    assert decide(alerts, hit(MONDAY_NOON_UTC + 6 * S, camera="cam-1", query="q-2")).raised
    assert (
        outcome(decide(alerts, hit(MONDAY_NOON_UTC + 7 * S, camera="cam-1", query="q-1")))
        == "suppress:cooldown"
    )


def test_cooldown_is_measured_between_event_starts_not_arrival_times():
    alerts = policy(cooldown_s=60)
    assert decide(alerts, hit(MONDAY_NOON_UTC), now_ms=MONDAY_NOON_UTC + 10 * 60 * S).raised
    # arrives at the same moment, but the event started 90 s after the first: not cooling down
    assert decide(alerts, hit(MONDAY_NOON_UTC + 90 * S), now_ms=MONDAY_NOON_UTC + 10 * 60 * S).raised
    # arrives ten minutes later (a slow replay), but started 20 s after the last alert's event
    late = decide(alerts, hit(MONDAY_NOON_UTC + 110 * S), now_ms=MONDAY_NOON_UTC + 20 * 60 * S)
    assert outcome(late) == "suppress:cooldown"


def test_a_camera_override_changes_the_cooldown_of_that_camera_only():
    alerts = policy(cooldown_s=60, cameras={"lobby": {"cooldown_s": 300}})
    for camera in ("lobby", "gate"):
        decide(alerts, hit(MONDAY_NOON_UTC, camera=camera))
    after_two_minutes = MONDAY_NOON_UTC + 120 * S
    assert outcome(decide(alerts, hit(after_two_minutes, camera="lobby"))) == "suppress:cooldown"
    assert decide(alerts, hit(after_two_minutes, camera="gate")).raised
    assert decide(alerts, hit(MONDAY_NOON_UTC + 300 * S, camera="lobby")).raised


def test_a_query_override_wins_over_its_cameras_override():
    settings = AlertPolicySettings(
        cooldown_s=60, cameras={"lobby": {"cooldown_s": 300}}, queries={"q-fire": {"cooldown_s": 0}}
    )
    assert settings.rules_for("lobby", "q-fire").cooldown_ms == 0
    assert settings.rules_for("lobby", "q-1").cooldown_ms == 300 * S
    alerts = AlertPolicy(settings)
    fires = [decide(alerts, hit(MONDAY_NOON_UTC + s * S, camera="lobby", query="q-fire")) for s in (0, 1, 2)]
    assert all(decision.raised for decision in fires)


# --- schedules ----------------------------------------------------------------------------

NIGHT_UTC = {"name": "night", "armed": [{"start": "22:00", "end": "06:00"}]}


@pytest.mark.parametrize(
    ("when", "armed"),
    [
        ("2024-06-03T21:59:00+00:00", False),
        ("2024-06-03T22:00:00+00:00", True),  # start included
        ("2024-06-03T23:30:00+00:00", True),
        ("2024-06-04T02:00:00+00:00", True),  # after midnight, still the same night
        ("2024-06-04T05:59:00+00:00", True),
        ("2024-06-04T06:00:00+00:00", False),  # end excluded
        ("2024-06-04T12:00:00+00:00", False),
    ],
)
def test_an_armed_window_across_midnight_arms_the_night_and_disarms_the_day(when, armed):
    decision = decide(policy(schedules=[NIGHT_UTC]), hit(at(when)))
    assert decision.raised is armed
    if not armed:
        assert decision.reason == "disarmed" and decision.schedule == "night"


@pytest.mark.parametrize(
    ("when", "armed"),
    [
        ("2024-06-07T23:00:00+00:00", True),  # Friday night
        ("2024-06-08T05:00:00+00:00", True),  # Saturday morning: Friday's window goes on
        ("2024-06-08T23:00:00+00:00", False),  # Saturday night: no window starts on Saturday
        ("2024-06-07T05:00:00+00:00", False),  # Friday morning: Thursday's night is not armed
    ],
)
def test_the_days_of_a_midnight_crossing_window_are_the_days_it_starts_on(when, armed):
    friday_nights = {"name": "weekend", "armed": [{"days": ["fri"], "start": "22:00", "end": "06:00"}]}
    assert decide(policy(schedules=[friday_nights]), hit(at(when))).raised is armed


def test_schedules_are_evaluated_in_their_own_time_zone():
    saigon = {**NIGHT_UTC, "timezone": "Asia/Ho_Chi_Minh"}  # UTC+7, no DST
    four_pm_utc = at("2024-06-03T16:00:00+00:00")  # 23:00 in Ho Chi Minh City
    assert decide(policy(schedules=[saigon]), hit(four_pm_utc)).raised
    assert outcome(decide(policy(schedules=[NIGHT_UTC]), hit(four_pm_utc))) == "suppress:disarmed"
    half_past_eleven_utc = at("2024-06-03T23:30:00+00:00")  # 06:30 the next morning there
    assert outcome(decide(policy(schedules=[saigon]), hit(half_past_eleven_utc))) == "suppress:disarmed"
    assert decide(policy(schedules=[NIGHT_UTC]), hit(half_past_eleven_utc)).raised


@pytest.mark.parametrize(
    ("when_utc", "armed"),
    [
        # Saturday 30 March 2024, CET (UTC+1)
        ("2024-03-30T06:30:00+00:00", False),  # 07:30 local
        ("2024-03-30T16:30:00+00:00", True),  # 17:30 local
        # Sunday 31 March 2024: clocks go from 02:00 to 03:00, CEST (UTC+2)
        ("2024-03-31T06:30:00+00:00", True),  # 08:30 local: the same UTC time, now armed
        ("2024-03-31T16:30:00+00:00", False),  # 18:30 local: the same UTC time, now disarmed
    ],
)
def test_a_dst_change_day_in_berlin_follows_local_wall_time(when_utc, armed):
    office_hours = {
        "name": "office",
        "timezone": "Europe/Berlin",
        "armed": [{"start": "08:00", "end": "18:00"}],
    }
    assert decide(policy(schedules=[office_hours]), hit(at(when_utc))).raised is armed


def test_schedules_judge_a_hit_at_its_peak_time_not_its_start():
    started_before_arming = hit(at("2024-06-03T21:55:00+00:00"), peak_ms=at("2024-06-03T22:05:00+00:00"))
    assert decide(policy(schedules=[NIGHT_UTC]), started_before_arming).raised
    peaked_after_disarming = hit(at("2024-06-04T05:55:00+00:00"), peak_ms=at("2024-06-04T06:01:00+00:00"))
    assert outcome(decide(policy(schedules=[NIGHT_UTC]), peaked_after_disarming)) == "suppress:disarmed"


def test_a_schedule_governs_only_the_cameras_and_queries_it_applies_to():
    shop_nights = {**NIGHT_UTC, "applies_to": {"cameras": ["shop"], "queries": ["q-person"]}}
    alerts = policy(schedules=[shop_nights])
    noon = MONDAY_NOON_UTC
    assert outcome(decide(alerts, hit(noon, camera="shop", query="q-person"))) == "suppress:disarmed"
    assert decide(alerts, hit(noon, camera="shop", query="q-fire")).raised
    assert decide(alerts, hit(noon, camera="gate", query="q-person")).raised


def test_every_schedule_that_applies_must_be_armed():
    weekdays = {"name": "weekdays", "armed": [{"days": ["mon-fri"], "start": "00:00", "end": "24:00"}]}
    alerts = policy(schedules=[weekdays, NIGHT_UTC])
    assert decide(alerts, hit(at("2024-06-03T23:00:00+00:00"))).raised  # Monday night: both armed
    monday_noon = decide(alerts, hit(MONDAY_NOON_UTC))
    assert outcome(monday_noon) == "suppress:disarmed" and monday_noon.schedule == "night"
    saturday_night = decide(alerts, hit(at("2024-06-08T23:00:00+00:00")))
    assert outcome(saturday_night) == "suppress:disarmed" and saturday_night.schedule == "weekdays"


def test_disarmed_hits_neither_start_a_cooldown_nor_count_toward_escalation():
    alerts = policy(cooldown_s=600, escalate_after=2, schedules=[NIGHT_UTC])
    assert outcome(decide(alerts, hit(at("2024-06-03T21:58:00+00:00")))) == "suppress:disarmed"
    first_armed = decide(alerts, hit(at("2024-06-03T22:01:00+00:00")))
    assert outcome(first_armed) == "raise:warning"  # no cooldown from 21:58, not escalated either


# --- quiet hours --------------------------------------------------------------------------

QUIET_NIGHTS = {
    "name": "sleep",
    "timezone": "Asia/Ho_Chi_Minh",
    "quiet_hours": [{"start": "23:00", "end": "06:00"}],
}
MIDNIGHT_IN_SAIGON = at("2024-06-03T00:00:00+07:00")


def test_quiet_hours_mute_alerts_but_still_raise_them():
    decision = decide(policy(schedules=[QUIET_NIGHTS]), hit(MIDNIGHT_IN_SAIGON), "warning")
    assert decision.raised and decision.muted and decision.schedule == "sleep"
    daytime = decide(policy(schedules=[QUIET_NIGHTS]), hit(at("2024-06-03T09:00:00+07:00")), "warning")
    assert daytime.raised and not daytime.muted and daytime.schedule is None


def test_quiet_hours_do_not_mute_a_critical_alert():
    decision = decide(policy(schedules=[QUIET_NIGHTS]), hit(MIDNIGHT_IN_SAIGON), "critical")
    assert outcome(decision) == "raise:critical"


def test_an_alert_escalated_to_critical_is_heard_during_quiet_hours():
    alerts = policy(cooldown_s=60, escalate_after=2, schedules=[QUIET_NIGHTS])
    assert outcome(decide(alerts, hit(MIDNIGHT_IN_SAIGON))) == "raise:warning:muted"
    assert outcome(decide(alerts, hit(MIDNIGHT_IN_SAIGON + 20 * S))) == "raise:critical:escalated"


def test_a_querys_own_schedule_arms_it_as_a_named_schedule_would():
    nights_in_saigon = WeeklySchedule(timezone="Asia/Ho_Chi_Minh", armed=[{"start": "22:00", "end": "06:00"}])
    alerts = policy()
    day = alerts.decide(hit(at("2024-06-03T12:00:00+07:00")), "warning", MONDAY_NOON_UTC, nights_in_saigon)
    assert outcome(day) == "suppress:disarmed" and day.schedule == QUERY_SCHEDULE
    night = hit(at("2024-06-03T23:00:00+07:00"))
    assert alerts.decide(night, "warning", night.peak_ts_ms, nights_in_saigon).raised
    # Another query with no schedule of its own is armed all day.
    other = hit(at("2024-06-03T12:00:00+07:00"), query="q-other")
    assert alerts.decide(other, "warning", other.peak_ts_ms, None).raised


def test_a_querys_own_schedule_and_the_alerters_combine_restrictively():
    weekdays_only = WeeklySchedule(armed=[{"days": "mon-fri", "start": "00:00", "end": "24:00"}])
    alerts = policy(schedules=[NIGHT_UTC])
    monday_night, saturday_night = hit(at("2024-06-03T23:00:00+00:00")), hit(at("2024-06-08T23:00:00+00:00"))
    assert alerts.decide(monday_night, "warning", monday_night.peak_ts_ms, weekdays_only).raised
    refused = alerts.decide(saturday_night, "warning", saturday_night.peak_ts_ms, weekdays_only)
    assert outcome(refused) == "suppress:disarmed" and refused.schedule == QUERY_SCHEDULE
    monday_noon = alerts.decide(hit(MONDAY_NOON_UTC), "warning", MONDAY_NOON_UTC, weekdays_only)
    assert outcome(monday_noon) == "suppress:disarmed" and monday_noon.schedule == "night"


def test_a_querys_own_quiet_hours_mute_its_alerts():
    quiet = WeeklySchedule(timezone="Asia/Ho_Chi_Minh", quiet_hours=[{"start": "23:00", "end": "06:00"}])
    decision = policy().decide(hit(MIDNIGHT_IN_SAIGON), "warning", MIDNIGHT_IN_SAIGON, quiet)
    assert outcome(decision) == "raise:warning:muted" and decision.schedule == QUERY_SCHEDULE


# --- escalation ---------------------------------------------------------------------------


def test_escalation_counts_hits_suppressed_by_cooldown_and_raises_severity_one_level():
    alerts = policy(cooldown_s=300, escalate_after=3, escalate_window_s=600)
    decisions = [outcome(decide(alerts, hit(MONDAY_NOON_UTC + s * S))) for s in (0, 60, 120, 180, 420)]
    assert decisions == [
        "raise:warning",
        "suppress:cooldown",  # counts: the query keeps firing
        "raise:critical:escalated",  # third in 10 min: escalated, and bypasses the cooldown once
        "suppress:cooldown",  # already escalated: the cooldown applies again
        "raise:critical:escalated",  # cooldown over, still firing: still escalated
    ]


def test_escalation_goes_one_level_up_and_critical_stays_critical():
    assert [escalate(severity) for severity in ("info", "warning", "critical")] == [
        "warning",
        "critical",
        "critical",
    ]
    for severity, expected in (("info", "warning"), ("critical", "critical")):
        alerts = policy(cooldown_s=0, escalate_after=2)
        decide(alerts, hit(MONDAY_NOON_UTC), severity)
        second = decide(alerts, hit(MONDAY_NOON_UTC + S), severity)
        assert (second.severity, second.escalated) == (expected, True)


def test_escalation_lapses_once_the_query_calms_down_and_can_bypass_the_cooldown_again():
    alerts = policy(cooldown_s=300, escalate_after=2, escalate_window_s=120)
    t = MONDAY_NOON_UTC
    assert outcome(decide(alerts, hit(t))) == "raise:warning"
    assert outcome(decide(alerts, hit(t + 60 * S))) == "raise:critical:escalated"
    assert outcome(decide(alerts, hit(t + 600 * S))) == "raise:warning"  # alone in its window
    assert outcome(decide(alerts, hit(t + 650 * S))) == "raise:critical:escalated"  # new burst


def test_escalation_is_per_camera_and_query():
    alerts = policy(cooldown_s=0, escalate_after=2)
    decide(alerts, hit(MONDAY_NOON_UTC, camera="cam-1"))
    assert not decide(alerts, hit(MONDAY_NOON_UTC + S, camera="cam-2")).escalated
    assert not decide(alerts, hit(MONDAY_NOON_UTC + 2 * S, camera="cam-1", query="q-2")).escalated
    assert decide(alerts, hit(MONDAY_NOON_UTC + 3 * S, camera="cam-1")).escalated


def test_escalation_is_off_by_default_and_can_be_turned_off_for_one_query():
    alerts = policy(cooldown_s=0)
    assert not any(decide(alerts, hit(MONDAY_NOON_UTC + s * S)).escalated for s in range(20))
    settings = AlertPolicySettings(escalate_after=2, queries={"q-noisy": {"escalate_after": None}})
    assert settings.rules_for("cam-1", "q-noisy").escalate_after is None
    assert settings.rules_for("cam-1", "q-1").escalate_after == 2


# --- bounded memory -----------------------------------------------------------------------


def test_dedupe_memory_is_bounded_and_forgets_the_least_recently_seen_first():
    alerts = policy(cooldown_s=0, dedupe_max_hits=3)
    a, b, c, d = (hit(MONDAY_NOON_UTC + i * S) for i in range(4))
    for one in (a, b, c):
        decide(alerts, one)
    decide(alerts, closed(a, MONDAY_NOON_UTC + 10 * S))  # a seen again: now the most recent
    decide(alerts, d)
    assert alerts.remembered_hits == 3
    assert outcome(decide(alerts, a)) == "suppress:duplicate"
    assert decide(alerts, b).raised  # b was forgotten, so it is judged as new


def test_hit_ids_are_forgotten_after_the_dedupe_ttl():
    alerts = policy(cooldown_s=0, dedupe_ttl_s=3600)
    first = hit(MONDAY_NOON_UTC)
    decide(alerts, first, now_ms=MONDAY_NOON_UTC)
    decide(alerts, hit(MONDAY_NOON_UTC + S), now_ms=MONDAY_NOON_UTC + 3599 * S)
    assert alerts.remembered_hits == 2
    decide(alerts, hit(MONDAY_NOON_UTC + 2 * S), now_ms=MONDAY_NOON_UTC + 3600 * S)
    assert alerts.remembered_hits == 2  # the first is gone
    assert decide(alerts, first, now_ms=MONDAY_NOON_UTC + 3600 * S).raised


def test_a_forgotten_open_hits_close_is_still_held_back_by_the_cooldown():
    alerts = policy(cooldown_s=60, dedupe_max_hits=1)
    opened = hit(MONDAY_NOON_UTC)
    assert decide(alerts, opened).raised
    decide(alerts, hit(MONDAY_NOON_UTC, camera="cam-2"))  # pushes the open hit's id out
    assert outcome(decide(alerts, closed(opened, MONDAY_NOON_UTC + 30 * S))) == "suppress:cooldown"


def test_idle_camera_query_pairs_are_forgotten_too():
    alerts = policy(dedupe_ttl_s=3600)
    decide(alerts, hit(MONDAY_NOON_UTC, camera="old"), now_ms=MONDAY_NOON_UTC)
    decide(alerts, hit(MONDAY_NOON_UTC + 2 * 3600 * S, camera="new"), now_ms=MONDAY_NOON_UTC + 2 * 3600 * S)
    assert alerts.remembered_pairs == 1 and alerts.remembered_hits == 1


# --- snapshots and determinism ------------------------------------------------------------


def _busy_night() -> list[tuple[HitMessage, Severity]]:
    """Hits of two cameras over a night with quiet hours, cooldowns, escalation, duplicates."""
    t = at("2024-06-03T22:30:00+07:00")
    hits: list[tuple[HitMessage, Severity]] = []
    for i, offset_s in enumerate((0, 20, 40, 70, 130, 200, 260, 900, 905, 2000, 2030, 2060)):
        camera = "cam-1" if i % 3 else "cam-2"
        opened = hit(t + offset_s * S, camera=camera)
        hits.append((opened, "info" if camera == "cam-2" else "warning"))
        if i % 4 == 0:
            hits.append((opened, "warning"))  # a replica's copy
        if i % 2 == 0:
            hits.append((closed(opened, t + (offset_s + 15) * S), "warning"))
    return hits


def _settings_for_the_night() -> AlertPolicySettings:
    return AlertPolicySettings(
        cooldown_s=60,
        escalate_after=3,
        escalate_window_s=300,
        cameras={"cam-2": {"cooldown_s": 30}},
        schedules=[
            {
                "name": "home",
                "timezone": "Asia/Ho_Chi_Minh",
                "quiet_hours": [{"start": "23:00", "end": "06:00"}],
            },
            {
                "name": "cam-2-nights",
                "timezone": "Asia/Ho_Chi_Minh",
                "applies_to": {"cameras": ["cam-2"]},
                "armed": [{"start": "22:00", "end": "22:50"}],
            },
        ],
    )


def test_state_round_trips_through_json_and_restored_policy_decides_identically():
    hits = _busy_night()
    reference = AlertPolicy(_settings_for_the_night())
    expected = [decide(reference, one, severity) for one, severity in hits]
    assert {decision.reason for decision in expected} >= {"duplicate", "cooldown", "disarmed", None}
    assert any(decision.escalated for decision in expected) and any(decision.muted for decision in expected)

    for cut in range(len(hits) + 1):
        first = AlertPolicy(_settings_for_the_night())
        before = [decide(first, one, severity) for one, severity in hits[:cut]]
        restored = AlertPolicy(_settings_for_the_night())
        restored.restore(json.loads(json.dumps(first.to_state())))
        after = [decide(restored, one, severity) for one, severity in hits[cut:]]
        assert before + after == expected, f"decisions differ after a restart at hit {cut}"
        assert restored.to_state() == reference.to_state()


def test_replaying_the_same_hits_gives_the_same_decisions():
    hits = _busy_night()
    runs = []
    for _ in range(2):
        alerts = AlertPolicy(_settings_for_the_night())
        runs.append([decide(alerts, one, severity) for one, severity in hits])
    assert runs[0] == runs[1]


def test_the_memory_kept_hit_by_hit_restores_to_the_same_decisions():
    """What a service persists: the snapshot without hit ids, plus each change of a hit id as
    it happens (and the forgotten ones deleted); restored, the policy decides the same."""
    hits = _busy_night()
    cut = len(hits) // 2
    settings = _settings_for_the_night().model_copy(update={"dedupe_max_hits": 5})
    reference, first = AlertPolicy(settings), AlertPolicy(settings)
    kept: dict[str, list] = {}  # the service's per-hit records, by key
    for index, (one, severity) in enumerate(hits[:cut]):
        decide(reference, one, severity)
        decide(first, one, severity)
        if index % 3 == 0:  # a checkpoint now and then, as the service's commit interval does
            changed, dropped = first.take_hit_changes()
            kept.update((state[0], state) for state in changed)
            for hit_id in dropped:
                kept.pop(hit_id, None)
    changed, dropped = first.take_hit_changes()
    kept.update((state[0], state) for state in changed)
    for hit_id in dropped:
        kept.pop(hit_id, None)
    assert len(kept) == first.remembered_hits == 5
    snapshot = json.loads(json.dumps(first.to_state(include_hits=False)))
    assert snapshot["hits"] == []
    restored = AlertPolicy(settings)
    restored.restore(snapshot, json.loads(json.dumps(list(kept.values()))))
    assert restored.to_state() == first.to_state()
    assert restored.take_hit_changes() == ([], [])  # all of it was kept apart already
    whole = AlertPolicy(settings)  # a snapshot with its hit ids inside (as written before)
    whole.restore(first.to_state())
    assert sorted(whole.take_hit_changes()[0]) == sorted(kept.values())
    for one, severity in hits[cut:]:
        assert decide(restored, one, severity) == decide(reference, one, severity)


def test_restore_refuses_what_is_not_a_snapshot():
    alerts = AlertPolicy()
    with pytest.raises(ValueError, match="not an AlertPolicy snapshot"):
        alerts.restore({"version": 1, "hits": [["only-an-id"]], "pairs": []})
    with pytest.raises(ValueError, match="not an AlertPolicy snapshot"):
        alerts.restore({"version": 99, "hits": [], "pairs": []})


# --- settings -----------------------------------------------------------------------------

EXAMPLE_YAML = """
alerter:
  cooldown_s: 60
  dedupe_ttl_s: 86400
  dedupe_max_hits: 20000
  escalate_after: 3
  escalate_window_s: 600
  cameras:
    lobby: {cooldown_s: 300}
  queries:
    q-fire: {cooldown_s: 0, escalate_after: null}
  schedules:
    - name: shop-closed
      timezone: Asia/Ho_Chi_Minh
      applies_to: {cameras: [shop-front, shop-back]}
      armed:
        - {days: [mon-sun], start: "18:00", end: "08:00"}
        - {days: [sat, sunday], start: "08:00", end: "18:00"}
    - name: night
      timezone: Europe/Berlin
      quiet_hours:
        - {start: "23:00", end: "06:30"}
"""


def test_settings_load_from_the_alerter_section_of_a_yaml_file():
    settings = AlertPolicySettings.model_validate(yaml.safe_load(EXAMPLE_YAML)["alerter"])
    shop = settings.schedules[0]
    assert shop.armed[1].days == ["sat", "sun"] and len(shop.armed[0].days) == 7
    assert settings.rules_for("lobby", "q-1").cooldown_ms == 300 * S
    assert settings.rules_for("lobby", "q-fire").cooldown_ms == 0
    assert settings.rules_for("lobby", "q-fire").escalate_after is None
    assert settings.rules_for("gate", "q-1").escalate_after == 3


def _schedule(**window) -> dict:
    return {"schedules": [{"name": "s", "armed": [{"start": "22:00", "end": "06:00", **window}]}]}


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        (_schedule(start="25:00"), "schedules.0.armed.0.start", "'25:00' is not a time of day"),
        (_schedule(end="6am"), "schedules.0.armed.0.end", "'6am' is not a time of day"),
        (_schedule(start="24:00"), "schedules.0.armed.0.start", "'24:00' is not a time of day"),
        (
            yaml.safe_load("schedules: [{name: s, armed: [{start: 22:00, end: '06:00'}]}]"),
            "schedules.0.armed.0.start",
            "write times in quotes",
        ),
        (_schedule(days=["mon", "funday"]), "schedules.0.armed.0.days", "'funday' is not a weekday"),
        (_schedule(end="22:00"), "schedules.0.armed.0", "for a whole day"),
        (
            {"schedules": [{"name": "s", "timezone": "Asia/Saigon_City"}]},
            "schedules.0.timezone",
            "unknown time zone 'Asia/Saigon_City'",
        ),
        ({"schedules": [{"name": "s", "armed": []}]}, "schedules.0.armed", "would never arm"),
        ({"schedules": [{"name": "s"}, {"name": "s"}]}, "schedules", "unique"),
        ({"cooldown_s": -1}, "cooldown_s", "greater than or equal to 0"),
        ({"cameras": {"lobby": {"cooldown_s": "soon"}}}, "cameras.lobby.cooldown_s", "valid number"),
        ({"escalate_after": 1}, "escalate_after", "greater than or equal to 2"),
        ({"cooldown": 60}, "cooldown", "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_name_the_bad_field(settings, field, message):
    with pytest.raises(ValidationError) as caught:
        AlertPolicySettings.model_validate(settings)
    described = describe_validation_error(caught.value)
    assert f"{field}: " in described and message in described, described


# --- what the service feeds decide(): the severity of a hit's query, and the clock


@dataclass(frozen=True)
class RatedQuery:
    severity: Severity


def test_a_hit_is_decided_at_its_querys_severity_or_warning_when_the_query_is_gone():
    assert severity_of(RatedQuery("critical")) == "critical"
    assert severity_of(RatedQuery("info")) == "info"
    assert severity_of(None) == UNKNOWN_QUERY_SEVERITY == "warning"
    policy = AlertPolicy(AlertPolicySettings(cooldown_s=0))
    decision = policy.decide(hit(MONDAY_NOON_UTC), severity_of(None), MONDAY_NOON_UTC)
    assert decision.raised and decision.severity == "warning"


def test_a_hit_is_decided_at_its_records_timestamp_and_the_wall_clock_only_without_one():
    assert decision_clock_ms(1_700_000_000_000, wall_ms=1_800_000_000_000) == 1_700_000_000_000
    assert decision_clock_ms(0, wall_ms=1_800_000_000_000) == 0
    assert decision_clock_ms(-1, wall_ms=1_800_000_000_000) == 1_800_000_000_000  # Kafka's "no timestamp"
    assert decision_clock_ms(None, wall_ms=1_800_000_000_000) == 1_800_000_000_000


@pytest.mark.parametrize(
    ("typed", "days", "start", "end", "described"),
    [
        ("mon-fri 22:00-06:00", ["mon", "tue", "wed", "thu", "fri"], "22:00", "06:00", "mon-fri 22:00-06:00"),
        ("sat, sun 7:30-12:00", ["sat", "sun"], "07:30", "12:00", "sat-sun 07:30-12:00"),
        ("23:00-24:00", list(WEEKDAYS), "23:00", "24:00", "23:00-24:00"),
        ("fri-mon 00:00-06:00", ["mon", "fri", "sat", "sun"], "00:00", "06:00", "mon,fri-sun 00:00-06:00"),
    ],
)
def test_a_window_typed_by_an_operator_reads_and_describes_itself_back(typed, days, start, end, described):
    window = TimeWindow.parse(typed)
    assert (window.days, window.start, window.end) == (days, start, end)
    assert window.describe() == described and TimeWindow.parse(described) == window


@pytest.mark.parametrize(
    ("typed", "named"),
    [
        ("22:00", "is not a window"),
        ("someday 10:00-11:00", "not a weekday"),
        ("mon 25:00-26:00", "time of day"),
    ],
)
def test_a_mistyped_window_is_refused_naming_what_is_wrong(typed, named):
    with pytest.raises(ValueError, match=named):
        TimeWindow.parse(typed)
