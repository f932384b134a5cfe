"""Alerter bench, service part: the cases (bench/alerter.py's docstring says what each one is)
and what each starts from: its plan of hits, the standing queries on the broker, the policy
memory the warm-20k cases restart with, and the alerter's settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

GROUP_ID = "bench-alerter"
COOLDOWN_S = 60.0
# (query_id, text, language, severity): the standing queries of the service cases.
QUERIES = (
    ("q-moto", "Một chiếc xe máy", "vi", "critical"),
    ("q-fence", "a person climbing the fence", "en", "warning"),
)
CASES = (
    "cold",
    "warm",
    "warm-fetch500",
    "warm-20k",
    "warm-20k-every-batch",
    "burst-cold",
    "burst-warm",
)
CASE_TEXT = {
    "cold": "not spoken ahead (warm_up off, new camera each hit)",
    "warm": "spoken ahead (warm_up on, cameras configured)",
    "warm-fetch500": "spoken ahead, alerter's fetch_max_wait_ms 500 (kafka-python's default; bench patch)",
    "warm-20k": "spoken ahead, policy memory 20,000 hit ids",
    "warm-20k-every-batch": "spoken ahead, policy memory 20,000 hit ids, commit_interval_s 0",
    "burst-cold": "burst, not spoken ahead",
    "burst-warm": "burst, spoken ahead",
}
MEMORY_HITS = 20_000


@dataclass(frozen=True)
class Plan:
    """One case: how its hits are sent, and the (camera, query) of each timed hit."""

    case: str
    warm: bool
    fetch500: bool
    is_burst: bool
    pace_s: float
    burst: int
    bursts: int
    idle_s: float
    pairs: list[tuple[str, str]]
    cameras: list[str]


def plan_case(case: str, hits: int, pace_s: float, burst: int, bursts: int, idle_s: float) -> Plan:
    is_burst = case.startswith("burst")
    count = burst * bursts if is_burst else hits
    # Distinct cameras: in pairs with the two queries (cooldown is per camera and query).
    if case.startswith("cold") or is_burst:
        pairs = [(f"cam-{100 + i}", QUERIES[i % 2][0]) for i in range(count)]
    else:
        pairs = [(f"cam-{100 + i // 2}", QUERIES[i % 2][0]) for i in range(count)]
    return Plan(
        case=case,
        warm="cold" not in case,
        fetch500=case.endswith("-fetch500"),
        is_burst=is_burst,
        pace_s=pace_s,
        burst=burst,
        bursts=bursts,
        idle_s=idle_s,
        pairs=pairs,
        cameras=sorted({camera for camera, _ in pairs}),
    )


@dataclass
class _PastHit:
    """A hit the restarted alerter's policy remembers (AlertableHit)."""

    hit_id: str
    camera_id: str
    query_id: str
    event_start_ts_ms: int
    peak_ts_ms: int
    end_ts_ms: int | None


def remembered_policy(hits: int, now_ms: int):
    """The policy of an alerter that has judged `hits` hits over the last day (one every 4 s on
    40 cameras x 5 queries; each event also closed)."""
    from vigil.pipelines.alerting import AlertPolicy, AlertPolicySettings
    from vigil.services.common.contract import derive_hit_id

    policy = AlertPolicy(AlertPolicySettings(cooldown_s=COOLDOWN_S))
    start_ms = now_ms - hits * 4_000
    for i in range(hits):
        camera, query = f"old-cam-{i % 40}", f"old-q-{i % 5}"
        at_ms = start_ms + i * 4_000
        hit = _PastHit(derive_hit_id(camera, query, at_ms), camera, query, at_ms, at_ms + 500, at_ms + 3_000)
        policy.decide(hit, "warning", at_ms + 3_000)
    assert policy.remembered_hits == hits, policy.remembered_hits
    return policy


def prepare_broker(plan: Plan, settings, producer) -> None:
    """The standing queries; in the warm-20k cases also the policy memory the alerter restarts with."""
    from vigil.services.alerter.state import save_policy_memory
    from vigil.services.common.contract import QueryMessage
    from vigil.services.common.kafka import publish_query
    from vigil.services.common.state_log import GroupStateLog

    topics = settings.topics
    now_ms = int(time.time() * 1000)
    for query_id, text, language, severity in QUERIES:
        publish_query(
            producer,
            topics,
            QueryMessage(
                query_id=query_id,
                text=text,
                language=language,
                severity=severity,
                created_by="bench",
                updated_ts_ms=now_ms,
            ),
        )
    if plan.case.startswith("warm-20k"):
        state_log = GroupStateLog(settings, producer, topics.alert_state, GROUP_ID, "alerter state")
        save_policy_memory(state_log, remembered_policy(MEMORY_HITS, now_ms))  # as the alerter does
        producer.flush()


def alerter_settings(plan: Plan, tmp: Path):
    from vigil.pipelines.alerting import AlertPolicySettings
    from vigil.services.alerter.config import AlerterSettings
    from vigil.services.alerter.speech import SpeechSettings

    return AlerterSettings(
        group_id=GROUP_ID,
        metrics_port=0,
        speech=SpeechSettings(cache_dir=tmp / "speech", engines=["espeak-ng"], warm_up=plan.warm),
        policy=AlertPolicySettings(cooldown_s=COOLDOWN_S),
        commit_interval_s=0 if plan.case.endswith("every-batch") else AlerterSettings().commit_interval_s,
        cameras={camera: camera for camera in plan.cameras} if plan.warm else {},
    )
