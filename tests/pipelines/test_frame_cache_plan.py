"""The frame index cache's refresh decisions: journal records folded, in order, into one plan."""

from __future__ import annotations

from vigil.pipelines.frame_cache_plan import ids_in_delete_expr, plan_refresh, probes_for

C = "vigil_frames"


def upsert(ids: list[str], partition: str = "frames_20261207T1000_5", collection: str = C) -> dict:
    return {"op": "upsert", "collection": collection, "partition": partition, "ids": ids}


def test_written_frames_are_fetched_from_the_partition_they_went_to():
    plan = plan_refresh([upsert(["a:1", "a:2"]), upsert(["b:1"], "frames_20261207T1005_5")], C)
    assert plan.fetch == {
        "a:1": "frames_20261207T1000_5",
        "a:2": "frames_20261207T1000_5",
        "b:1": "frames_20261207T1005_5",
    }
    assert not plan.forget and not plan.drop_partitions and not plan.reload


def test_other_collections_are_ignored():
    assert plan_refresh([upsert(["a:1"], collection="vigil_hits")], C).empty


def test_a_frame_deleted_after_it_was_written_is_forgotten_and_not_fetched():
    delete = {"op": "delete", "collection": C, "partition": "", "expr": 'frame_id in ["a:1"]'}
    plan = plan_refresh([upsert(["a:1", "a:2"]), delete], C)
    assert plan.fetch == {"a:2": "frames_20261207T1000_5"} and plan.forget == {"a:1"}


def test_a_frame_written_again_after_a_delete_is_fetched():
    delete = {"op": "delete", "collection": C, "partition": "", "expr": 'frame_id in ["a:1"]'}
    plan = plan_refresh([delete, upsert(["a:1"])], C)
    assert plan.fetch == {"a:1": "frames_20261207T1000_5"} and not plan.forget


def test_a_dropped_partition_forgets_what_was_written_into_it_before():
    drop = {"op": "drop_partition", "collection": C, "partition": "frames_20261207T1000_5"}
    plan = plan_refresh([upsert(["a:1"]), upsert(["b:1"], "frames_20261207T1005_5"), drop], C)
    assert plan.drop_partitions == {"frames_20261207T1000_5"}
    assert plan.fetch == {"b:1": "frames_20261207T1005_5"}


def test_a_delete_by_condition_or_a_dropped_collection_means_reload():
    by_condition = {"op": "delete", "collection": C, "partition": "", "expr": "ts_ms < 5"}
    assert plan_refresh([by_condition], C).reload
    assert plan_refresh([{"op": "reset", "collection": C, "partition": ""}], C).reload


def test_delete_expressions_name_their_ids_only_when_they_list_primary_keys():
    assert ids_in_delete_expr('frame_id in ["cam-1:5", "x:\\"y"]') == ["cam-1:5", 'x:"y']
    assert ids_in_delete_expr("frame_id in [1, 2]") is None
    assert ids_in_delete_expr('camera_id in ["a"]') is None


def test_selective_filters_visit_more_lists_up_to_all():
    assert probes_for(1_000_000, 1_000_000, 1024, 32) == 32
    assert probes_for(100_000, 1_000_000, 1024, 32) == 320
    assert probes_for(3_600, 1_000_000, 1024, 32) == 1024
    assert probes_for(0, 1_000_000, 1024, 32) == 1024
