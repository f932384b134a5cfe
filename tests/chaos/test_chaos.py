"""The chaos suite: a real `vigil up` on footage with known events, with every service killed -9
in turn (the broker included, the detector and the broker each during an open event), poison
frames sent mid-run, an alert acknowledged and an operator's query registered; then `vigil up`
restarted on what is left.

The run is held against a clean run on the very same frames (vigil/chaos/reference.py): the
frames its camera published, read back from the durable broker log, through the live
detector's decisions with no fault in between. Bounded for `make test` (one run of ~56 s of
stream, the replay, one restart: about 3 minutes); the longer variants (kills at random
points, several runs) are `make bench` (bench/chaos.py).
"""

from __future__ import annotations

import pytest

from vigil.chaos import OPERATOR_QUERY, Fault, clean_reference, compare, restart_keeps, run_scenario, summary
from vigil.demo import DEMO_QUERIES

STREAM_SECONDS = 56.0
# The reliability issue's targets.
BACK_IN_SERVICE_S = 10.0
POISON_STALL_S = 2.0
EVENT_TOLERANCE_S = 2.0

# The demo clip: a cat 12-20 s and a motorcycle 34-42 s into the stream.
CHAOS = [
    Fault(16.0, "kill:detector"),  # the cat event is open
    Fault(24.0, "poison"),
    Fault(27.0, "ack"),
    Fault(29.0, "kill:alerter"),
    Fault(37.0, "kill:broker"),  # the motorcycle event is open
    Fault(47.0, "kill:ingest"),
    Fault(52.0, "query"),  # late: a new rival query would change how the events above are gated
]


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    run = run_scenario(tmp_path_factory.mktemp("chaos"), CHAOS, STREAM_SECONDS)
    print("chaos:", summary(run))
    return run


@pytest.fixture(scope="module")
def reference(chaos):
    clean = clean_reference(chaos)
    print("clean:", clean)
    return clean


def test_the_clean_run_finds_both_events_of_the_footage(reference):
    assert reference.frames >= 2 * (STREAM_SECONDS - 8)  # ingest's 2 frames/s, less its kill
    assert {event.query_id for event in reference.events} == {"cat", "xe-may"}, reference.events


def test_kills_of_every_service_lose_or_duplicate_nothing_and_keep_event_times(chaos, reference):
    assert chaos.exit_code == 0
    assert [action for action, _, _ in chaos.faults] == [fault.action for fault in CHAOS]
    # Work the detector shed changes what it saw: a detector that keeps up sheds none.
    assert compare(reference, chaos, EVENT_TOLERANCE_S) == [], f"frames shed: {chaos.frames_shed}"


@pytest.mark.parametrize("service", ["detector", "alerter", "broker", "ingest"])
def test_each_killed_service_is_back_in_service_within_10_s(chaos, service):
    (recovered,) = chaos.recovery(f"kill:{service}")
    assert recovered is not None and recovered <= BACK_IN_SERVICE_S, chaos.faults


def test_poison_frames_are_each_dead_lettered_and_stall_detection_under_2_s(chaos):
    (stalled,) = chaos.recovery("poison")
    assert stalled is not None and stalled <= POISON_STALL_S, chaos.faults
    reasons = [reason for reason, source in chaos.dead_letters if source == "frames"]
    assert len(reasons) == 4, chaos.dead_letters
    assert sum("over max_message_bytes" in reason for reason in reasons) == 1
    assert sum("ahead of this machine's clock" in reason for reason in reasons) == 1
    assert sum("before the broker received" in reason for reason in reasons) == 1
    assert sum("not a readable JPEG" in reason for reason in reasons) == 1


def test_a_restart_keeps_queries_alerts_and_acknowledgements(chaos):
    assert chaos.acknowledged is not None, "no alert had been raised to acknowledge"
    restarted = restart_keeps(chaos.home)
    assert {alert.alert_id for alert in chaos.alerts} <= set(restarted.alerts)
    kept = restarted.alerts[chaos.acknowledged]
    assert kept["status"] == "acknowledged" and kept["acknowledged_by"] == "chaos"
    assert {OPERATOR_QUERY["query_id"], *(query["id"] for query in DEMO_QUERIES)} <= restarted.query_ids
