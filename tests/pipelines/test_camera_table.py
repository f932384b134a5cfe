"""The cameras' table, the YAML seeding rule and ingest's start/restart/stop plan, without a broker."""

from __future__ import annotations

import json
from dataclasses import dataclass

from vigil.errors import VigilError
from vigil.pipelines.camera_table import CameraChanges, CameraTable, cameras_to_seed, plan_camera_changes


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Cam:
    camera_id: str
    url: str


def decode(value: bytes) -> Cam:
    try:
        return Cam(**json.loads(value))
    except (ValueError, TypeError) as error:
        raise VigilError(f"bad camera: {error}") from None


def put(camera_id: str, url: str = "rtsp://h/s", key: str | None = None) -> Record:
    return Record((key or camera_id).encode(), json.dumps({"camera_id": camera_id, "url": url}).encode())


def test_the_last_value_per_key_wins_and_a_tombstone_deletes_but_is_remembered():
    table = CameraTable(decode)
    assert table.apply(put("gate", "rtsp://h/1")) is None
    assert table.apply(put("gate", "rtsp://h/2")) is None
    assert table.get("gate") == Cam("gate", "rtsp://h/2")
    assert table.apply(Record(b"gate", None)) is None
    assert "gate" not in table and table.knows("gate")
    assert not table.knows("dock")


def test_a_bad_record_is_refused_with_its_reason_and_changes_nothing():
    table = CameraTable(decode)
    table.apply(put("gate"))
    version = table.version
    assert "no key" in table.apply(Record(None, b"{}"))
    assert "bad camera" in table.apply(Record(b"gate", b"not json"))
    assert "does not match the record key" in table.apply(put("dock", key="gate"))
    assert table.version == version and table.get("gate") == Cam("gate", "rtsp://h/s")


def test_the_yaml_seeds_only_the_cameras_the_topic_has_never_seen():
    table = CameraTable(decode)
    assert cameras_to_seed(["gate", "dock"], table) == ["gate", "dock"]  # a fresh topic
    table.apply(put("gate", "rtsp://edited/through-the-api"))
    table.apply(put("dock"))
    table.apply(Record(b"dock", None))  # deleted through the API: the file must not bring it back
    assert cameras_to_seed(["gate", "dock", "yard"], table) == ["yard"]  # a camera new to the file


def test_the_plan_starts_the_new_restarts_the_changed_and_stops_the_deleted():
    running = {"gate": Cam("gate", "rtsp://h/1"), "dock": Cam("dock", "rtsp://h/2"), "hall": Cam("hall", "x")}
    wanted = {"gate": Cam("gate", "rtsp://h/1"), "dock": Cam("dock", "rtsp://h/3"), "yard": Cam("yard", "y")}
    assert plan_camera_changes(running, wanted) == CameraChanges(
        start=("yard",), restart=("dock",), stop=("hall",)
    )
    assert not plan_camera_changes(wanted, dict(wanted))  # equal settings: nothing to do
    assert plan_camera_changes({}, wanted).start == ("dock", "gate", "yard")
    assert plan_camera_changes(running, {}).stop == ("dock", "gate", "hall")
