"""The hits the alerter keeps for GET /api/v1/hits (pipelines/hit_log.py): one entry per hit id,
the closed version wins, newest event first, bounded."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vigil.pipelines.hit_log import HitLog


@dataclass(frozen=True)
class Hit:
    hit_id: str
    event_start_ts_ms: int
    end_ts_ms: int | None = None


def test_one_entry_per_hit_and_the_closed_version_wins_over_a_replayed_open_one():
    log = HitLog[Hit](max_hits=10)
    log.add(Hit("cam:q:1000", 1_000))
    log.add(Hit("cam:q:1000", 1_000, end_ts_ms=5_000))
    log.add(Hit("cam:q:1000", 1_000))  # a replay of the confirmation
    assert log.hits() == [Hit("cam:q:1000", 1_000, end_ts_ms=5_000)]


def test_newest_event_first_and_the_oldest_go_past_the_bound():
    log = HitLog[Hit](max_hits=3)
    for start in (4_000, 1_000, 3_000, 2_000):
        log.add(Hit(f"cam:q:{start}", start))
    assert [hit.event_start_ts_ms for hit in log.hits()] == [4_000, 3_000, 2_000]
    assert "cam:q:1000" not in log and len(log) == 3


def test_the_bound_must_hold_at_least_one_hit():
    with pytest.raises(ValueError, match="max_hits"):
        HitLog[Hit](max_hits=0)
