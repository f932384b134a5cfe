"""The clean run a chaos run is held against, and the comparison.

`clean_reference` reads back the frames the run's camera published (from the run's durable
broker log, the poison frames left out) and puts them through the live detector's decisions
(services/detector/replay.py) in one go, with no fault in between: what an uninterrupted
detector makes of exactly those frames. Its hit ids embed the same capture times as the run's,
so they compare exactly. An event the replay closed only because its frames ran out was still
open when the run stopped: its end is None, as the live detector's is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vigil.chaos.model import POISON_SEQ_FROM, ChaosRun, Event


@dataclass(frozen=True)
class Reference:
    events: list[Event]  # in seconds into the run's stream; end None: open when the frames ran out
    hit_ids: set[str]
    frames: int  # how many frames were replayed


def clean_reference(run: ChaosRun, camera_id: str = "hall") -> Reference:
    from vigil.chaos.scenario import run_encoder
    from vigil.demo import DEMO_QUERIES
    from vigil.services.common.contract import derive_hit_id
    from vigil.services.detector.config import load_detector_config
    from vigil.services.detector.replay import ReplayQuery, replay_camera

    frames = _published_frames(run.home, camera_id)
    config = load_detector_config(run.home / "vigil.yaml")
    queries = [ReplayQuery(query["id"], query["text"]) for query in DEMO_QUERIES]
    hits = replay_camera(run_encoder(run.home), frames, queries, config, camera_id=camera_id)
    origin = run.stream_start_s or 0.0
    last_frame_ms = frames[-1][0] if frames else None
    events = sorted(
        (
            Event(
                hit.query_id,
                round(hit.event_start_ts_ms / 1000 - origin, 1),
                None if hit.end_ts_ms == last_frame_ms else round(hit.end_ts_ms / 1000 - origin, 1),
            )
            for hit in hits
        ),
        key=lambda event: (event.start_s, event.query_id),
    )
    ids = {derive_hit_id(camera_id, hit.query_id, hit.event_start_ts_ms) for hit in hits}
    return Reference(events=events, hit_ids=ids, frames=len(frames))


def _published_frames(home: Path, camera_id: str) -> list:
    """(capture ts_ms, RGB pixels) of every frame the camera published, oldest first."""
    from kafka import TopicPartition

    from vigil.services.broker.local import LocalBroker, free_loopback_port
    from vigil.services.common.contract import FrameHeaders
    from vigil.services.common.kafka import KafkaSettings, make_consumer
    from vigil.services.detector.admission import decode_jpeg

    broker = LocalBroker(free_loopback_port(), log_dir=home / "broker", data_dir=home / "broker").start()
    frames = {}
    try:
        consumer = make_consumer(KafkaSettings(bootstrap=broker.bootstrap), group_id=None)
        partitions = [
            TopicPartition("frames", number) for number in consumer.partitions_for_topic("frames") or ()
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        quiet, deadline = 0, time.monotonic() + 120
        while quiet < 5 and time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=300)
            quiet = 0 if polled else quiet + 1
            for records in polled.values():
                for record in records:
                    headers = FrameHeaders.from_kafka(record.headers)
                    if headers.camera_id == camera_id and headers.seq < POISON_SEQ_FROM:
                        frames[headers.ts_ms] = decode_jpeg(record.value)
        consumer.close()
    finally:
        broker.stop()
    return sorted(frames.items())


def compare(reference: Reference, run: ChaosRun, tolerance_s: float = 2.0) -> list[str]:
    """What the faults changed, as sentences; empty when nothing:
    - the hit ids in Milvus differ from the reference's;
    - an event's start or end is over `tolerance_s` from the reference's, one is missing, or one
      is open (no end) where the other is closed;
    - a hit on "hits" is not in Milvus, or one in Milvus never was on "hits";
    - an alert was raised twice, or a reference event raised no alert."""
    problems = []
    stored = {hit.hit_id for hit in run.stored_hits}
    if stored != reference.hit_ids:
        problems.append(
            f"hit ids in Milvus differ from the clean run's: missing {sorted(reference.hit_ids - stored)}, "
            f"extra {sorted(stored - reference.hit_ids)}"
        )
    unmatched = list(run.events())
    for event in reference.events:
        match = next(
            (
                other
                for other in unmatched
                if other.query_id == event.query_id
                and abs(other.start_s - event.start_s) <= tolerance_s
                and _ends_match(event.end_s, other.end_s, tolerance_s)
            ),
            None,
        )
        if match is None:
            problems.append(f"{event} of the clean run has no counterpart within {tolerance_s} s")
        else:
            unmatched.remove(match)
    problems += [f"{event} is not in the clean run" for event in unmatched]
    if set(run.hits) != stored:
        problems.append(
            f"hits on 'hits' and in Milvus differ: lost {sorted(set(run.hits) - stored)}, "
            f"only in Milvus {sorted(stored - set(run.hits))}"
        )
    alert_ids = [alert.alert_id for alert in run.alerts]
    duplicates = sorted({alert_id for alert_id in alert_ids if alert_ids.count(alert_id) > 1})
    if duplicates:
        problems.append(f"alerts raised twice: {duplicates}")
    alerted = {alert.hit_id for alert in run.alerts}
    problems += [
        f"no alert for the clean run's hit {hit_id}" for hit_id in sorted(reference.hit_ids - alerted)
    ]
    return problems


def _ends_match(reference_end_s: float | None, run_end_s: float | None, tolerance_s: float) -> bool:
    if reference_end_s is None or run_end_s is None:
        return reference_end_s is run_end_s  # both still open when the frames ran out
    return abs(run_end_s - reference_end_s) <= tolerance_s
