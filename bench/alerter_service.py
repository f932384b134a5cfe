"""Alerter bench, service part: one case of hit-to-alert latency through the real `AlerterService`
on a fresh local broker (bench/alerter.py `--role service`; its docstring says what each case is
and what is timed).

`measure_service` runs the case in named steps: prepare the broker (standing queries, the
remembered policy of the warm-20k cases), start the service, prime it, read the idle CPU, send
the timed hits (paced or in bursts), then turn what was kept into the case's row.
"""

from __future__ import annotations

import functools
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from alerter_cases import QUERIES, Plan, alerter_settings, plan_case, prepare_broker
from alerter_harness import AlertsFollower, HitSender, ServiceLoop, Timings, process_cpu_s, stats_ms

# --- the service under test ----------------------------------------------------------------


def _start_service(plan: Plan, config, settings):
    """The alerter service, and the seconds making it took."""
    from prometheus_client import CollectorRegistry

    from vigil.services.alerter.config import AlerterServiceSettings
    from vigil.services.alerter.service import AlerterService
    from vigil.services.common.api_settings import ApiSettings

    if plan.fetch500:  # the alerter's hits consumer with kafka-python's default wait
        import vigil.services.common.consumer_service as service_module

        plain = service_module.make_consumer
        service_module.make_consumer = functools.partial(plain, fetch_max_wait_ms=500)
    started = time.perf_counter()
    try:
        service = AlerterService(
            AlerterServiceSettings(alerter=config, kafka=settings, api=ApiSettings(port=0)),
            metrics_registry=CollectorRegistry(),
        )
    finally:
        if plan.fetch500:
            service_module.make_consumer = plain
    return service, time.perf_counter() - started


# --- the measurement -----------------------------------------------------------------------


@dataclass
class _Measured:
    """What one case's run measured, besides the samples the sender, follower and timings keep."""

    first_alert_s: float
    warmed_s: float | None
    idle_wall: float
    idle_broker_cores: float
    idle_own_cores: float
    hit_ids: list[str]
    burst_rows: list[dict]
    window_s: float
    broker_cores: float
    own_cores: float
    remembered: int


def _prime(plan: Plan, sender: HitSender, follower: AlertsFollower, service) -> tuple[float, float | None]:
    """One hit on a camera of its own until its alert (the alerter's consumer has joined its group),
    then, in the spoken-ahead cases, until the phrases are spoken ahead: both in seconds."""
    primed = time.perf_counter()
    prime_id, future = sender.send("cam-prime", QUERIES[0][0])
    future.get(timeout=10)
    if not follower.wait_for([prime_id], 60):
        raise SystemExit(f"{plan.case}: no alert for the priming hit within 60 s")
    first_alert_s = time.perf_counter() - primed
    warmed_s = None
    if service.warmer is not None:
        warming = time.perf_counter()
        if not service.warmer.wait(60):
            raise SystemExit(f"{plan.case}: the phrases were not spoken ahead within 60 s")
        warmed_s = time.perf_counter() - warming
    return first_alert_s, warmed_s


def _idle_cores(broker, idle_s: float) -> tuple[float, float, float]:
    """No hits for `idle_s`: what polling "hits" (and this process's follower) costs, as (seconds,
    broker cores, this process's cores)."""
    idle = (process_cpu_s(broker.pid), time.process_time(), time.perf_counter())
    time.sleep(idle_s)
    idle_wall = time.perf_counter() - idle[2]
    idle_broker_cores = (process_cpu_s(broker.pid) - idle[0]) / idle_wall
    idle_own_cores = (time.process_time() - idle[1]) / idle_wall
    return idle_wall, idle_broker_cores, idle_own_cores


def _send_bursts(
    plan: Plan, sender: HitSender, producer, follower: AlertsFollower
) -> tuple[list[str], list[dict]]:
    """`plan.bursts` bursts of `plan.burst` hits, each awaited: the hit ids and a row per burst."""
    hit_ids: list[str] = []
    burst_rows: list[dict] = []
    burst, sent = plan.burst, sender.sent
    # Each burst lands at another point of the alerter's fetch wait.
    for k in range(plan.bursts):
        burst_begun = time.time()
        burst_ids = [
            sender.send(camera, query_id)[0] for camera, query_id in plan.pairs[k * burst : (k + 1) * burst]
        ]
        producer.flush()
        hits_sent_s = max(sent[hit_id] for hit_id in burst_ids) - burst_begun
        if not follower.wait_for(burst_ids, 120):
            raise SystemExit(f"{plan.case}: alerts of burst {k + 1} missing after 120 s")
        created = sorted(follower.received[hit_id][1] for hit_id in burst_ids)
        burst_rows.append(
            {
                "hits_sent_s": hits_sent_s,  # the last hit handed to the producer
                "burst_s": created[-1] - burst_begun,  # first hit sent -> last alert sent
                "raising_s": created[-1] - created[0],  # first -> last alert sent
                # Once the alerter has the hits (CreateTime has ms resolution).
                "alerts_per_s": (len(created) - 1) / max(created[-1] - created[0], 1e-3),
            }
        )
        hit_ids += burst_ids
        time.sleep(0.5 + 0.25 * k)
    return hit_ids, burst_rows


def _send_paced(plan: Plan, sender: HitSender, begun: float) -> list[str]:
    """One hit every `plan.pace_s` from `begun`, each acknowledged before the next: their ids."""
    hit_ids: list[str] = []
    for index, (camera, query_id) in enumerate(plan.pairs, start=1):
        time.sleep(max(0.0, begun + (index - 1) * plan.pace_s - time.time()))
        hit_id, future = sender.send(camera, query_id)
        future.get(timeout=10)
        hit_ids.append(hit_id)
    return hit_ids


def _measure(
    plan: Plan, broker, service, producer, sender: HitSender, follower: AlertsFollower, timings: Timings
) -> _Measured:
    """Prime, read the idle CPU, then send the timed hits and wait for every alert."""
    first_alert_s, warmed_s = _prime(plan, sender, follower, service)
    time.sleep(0.5)
    idle_wall, idle_broker_cores, idle_own_cores = _idle_cores(broker, plan.idle_s)
    timings.clear()
    cpu_before = (process_cpu_s(broker.pid), time.process_time())
    begun = time.time()
    if plan.is_burst:
        hit_ids, burst_rows = _send_bursts(plan, sender, producer, follower)
    else:
        hit_ids, burst_rows = _send_paced(plan, sender, begun), []
    if not follower.wait_for(hit_ids, 120):
        missing = sum(hit_id not in follower.received for hit_id in hit_ids)
        raise SystemExit(f"{plan.case}: {missing} of {len(hit_ids)} alerts missing after 120 s")
    window_s = time.time() - begun
    return _Measured(
        first_alert_s=first_alert_s,
        warmed_s=warmed_s,
        idle_wall=idle_wall,
        idle_broker_cores=idle_broker_cores,
        idle_own_cores=idle_own_cores,
        hit_ids=hit_ids,
        burst_rows=burst_rows,
        window_s=window_s,
        broker_cores=(process_cpu_s(broker.pid) - cpu_before[0]) / window_s,
        own_cores=(time.process_time() - cpu_before[1]) / window_s,
        remembered=service.policy.remembered_hits,
    )


def _policy_record_bytes(policy) -> int:
    """The size of the policy record the last checkpoint wrote (GroupStateLog.save's encoding)."""
    return len(
        json.dumps(policy.to_state(include_hits=False), separators=(",", ":"), ensure_ascii=False).encode()
    )


def _case_row(
    plan: Plan,
    started_s: float,
    measured: _Measured,
    sender: HitSender,
    follower: AlertsFollower,
    timings: Timings,
    snapshot_bytes: int,
) -> dict:
    hit_ids, sent, acked = measured.hit_ids, sender.sent, sender.acked
    received = [follower.received[hit_id] for hit_id in hit_ids]
    to_sent = [created - acked[hit_id] for hit_id, (_, created, _) in zip(hit_ids, received, strict=True)]
    to_received = [got - acked[hit_id] for hit_id, (got, _, _) in zip(hit_ids, received, strict=True)]
    row = {
        "case": plan.case,
        "warm_up": plan.warm,
        "hits": len(hit_ids),
        "pace_s": None if plan.is_burst else plan.pace_s,
        "cameras": len(plan.cameras),
        "service_start_s": started_s,
        "priming_alert_s": measured.first_alert_s,
        "spoken_ahead_s": measured.warmed_s,
        "timestamp_types": sorted({kind for _, _, kind in received}),
        "hit_ack": stats_ms([acked[h] - sent[h] for h in hit_ids]),
        "to_alert_sent": stats_ms(to_sent),
        "to_alert_received": stats_ms(to_received),
        "handle": stats_ms(timings.handle),
        "speak": stats_ms([s for s, _ in timings.speak]),
        "speak_cached": sum(1 for _, cached in timings.speak if cached),
        "speak_none": sum(1 for _, cached in timings.speak if cached is None),
        "batches": len(timings.checkpoint),
        "checkpoint": stats_ms(timings.checkpoint),
        "snapshot_save": stats_ms(timings.snapshot_save),
        "remembered_hits": measured.remembered,
        "window_s": measured.window_s,
        "broker_cores": measured.broker_cores,
        "idle_s": measured.idle_wall,
        "idle_broker_cores": measured.idle_broker_cores,
        "idle_alerter_and_harness_cores": measured.idle_own_cores,
        "alerter_and_harness_cores": measured.own_cores,
        "snapshot_bytes": snapshot_bytes,
    }
    if plan.is_burst:
        row["burst"] = plan.burst
        row["bursts"] = measured.burst_rows
        for key in ("hits_sent_s", "burst_s", "raising_s", "alerts_per_s"):
            row[key] = statistics.median(b[key] for b in measured.burst_rows)  # median over the bursts
    return row


def measure_service(case: str, hits: int, pace_s: float, burst: int, bursts: int, idle_s: float) -> dict:
    from vigil.services.broker.local import LocalBroker
    from vigil.services.common.kafka import KafkaSettings, ResilientProducer, ensure_topics

    plan = plan_case(case, hits, pace_s, burst, bursts, idle_s)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-alerter-") as tmp_name:
        tmp = Path(tmp_name)
        with LocalBroker(0, log_dir=tmp) as broker:
            settings = KafkaSettings(
                bootstrap=broker.bootstrap, topic_prefix=f"bench-{uuid.uuid4().hex[:8]}-"
            )
            ensure_topics(settings)
            producer = ResilientProducer(settings)
            prepare_broker(plan, settings, producer)
            config = alerter_settings(plan, tmp)
            follower = AlertsFollower(settings)
            follower.start()
            service, started_s = _start_service(plan, config, settings)
            timings = Timings(service)
            loop = ServiceLoop(service)
            sender = HitSender(producer, settings.topics)
            try:
                measured = _measure(plan, broker, service, producer, sender, follower, timings)
            finally:
                loop.stop.set()
                loop.thread.join(30)
                service.close()
                follower.halt.set()
                follower.join(10)
                producer.close()
            if loop.errors:
                raise SystemExit(f"{case}: the alerter failed: {loop.errors[0]!r}")
            snapshot_bytes = _policy_record_bytes(service.policy)
    return _case_row(plan, started_s, measured, sender, follower, timings, snapshot_bytes)
