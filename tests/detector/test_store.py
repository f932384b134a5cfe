"""HitStore against a real Milvus lite in a temporary directory, and ThumbnailStore on disk."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vigil.services.common.contract import HitMessage, derive_hit_id
from vigil.services.common.thumbnail_store import (
    InvalidThumbnailReferenceError,
    ThumbnailNotFoundError,
    ThumbnailStore,
)
from vigil.services.detector.frame_slices import FrameSlice
from vigil.services.detector.store import (
    EmbeddingDimensionError,
    FrameRecord,
    HitRecord,
    HitStore,
    StoreError,
    StoreSettings,
)

DIM = 8
JPEG = b"\xff\xd8\xff\xe0" + b"not a real picture, but it starts like one" + b"\xff\xd9"
REPO_ROOT = Path(__file__).resolve().parents[2]


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def make_hit(
    camera_id="cam-1", query_id="fire", start=1_000, peak=1_500, end=None, score=0.9, box=None
) -> HitMessage:
    return HitMessage(
        hit_id=derive_hit_id(camera_id, query_id, start),
        camera_id=camera_id,
        query_id=query_id,
        event_start_ts_ms=start,
        peak_ts_ms=peak,
        end_ts_ms=end,
        peak_score=score,
        thumbnail=f"{camera_id}/1970-01-01/{peak}.jpg",
        encoder="offline-test",
        box=box,
    )


def settings_for(directory: Path, dim: int = DIM) -> StoreSettings:
    return StoreSettings(uri=str(directory), dim=dim, thumbnails_dir=directory.parent / "thumbnails")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store per module: creating the two collections costs about 2 s."""
    with HitStore(settings_for(tmp_path_factory.mktemp("shared") / "milvus")) as shared_store:
        yield shared_store


def test_upserting_the_same_hit_twice_keeps_one_row_with_the_latest_values(store):
    still_on = make_hit(camera_id="dup-cam", end=None)
    store.upsert_hits([HitRecord(still_on, unit(1))])
    ended = still_on.model_copy(update={"end_ts_ms": 4_000})
    store.upsert_hits([HitRecord(ended, unit(1))])

    stored = store.hits(camera_id="dup-cam")
    assert stored == [ended]


def test_hits_filter_by_camera_query_and_time_newest_first(store):
    store.upsert_hits(
        [
            HitRecord(make_hit("list-a", "smoke", start=100, peak=150), unit(1, 1)),
            HitRecord(make_hit("list-a", "smoke", start=200, peak=250), unit(1, 2)),
            HitRecord(make_hit("list-a", "person", start=300, peak=350), unit(2, 1)),
            HitRecord(make_hit("list-b", "smoke", start=400, peak=450), unit(3, 1)),
        ]
    )
    assert [hit.peak_ts_ms for hit in store.hits(camera_id="list-a", query_id="smoke")] == [250, 150]
    assert [hit.peak_ts_ms for hit in store.hits(camera_id="list-a", since_ts_ms=200)] == [350, 250]
    assert [hit.camera_id for hit in store.hits(query_id="smoke", since_ts_ms=100, limit=1)] == ["list-b"]
    assert store.count_hits() >= 4


def test_frame_search_answers_several_vectors_in_one_call_filtered_by_camera_and_time(store):
    # Per camera, one frame a second drifting away from unit(1, 0): the earlier, the nearer.
    frames = [
        FrameRecord(camera_id, 10_000 + second * 1_000, unit(1, second * 0.1))
        for camera_id in ("search-a", "search-b")
        for second in range(10)
    ]
    frames.append(FrameRecord("search-a", 30_000, unit(0, 0, 1), thumbnail="search-a/1970-01-01/30000.jpg"))
    store.add_frames(frames)
    store.add_frames(frames[:3])  # a replay overwrites, it does not add
    assert store.count_frames() == 21

    near_first, near_blue = store.search_frames(
        [unit(1, 0), unit(0, 0, 1)], top_k=3, camera_ids=["search-a"], since_ts_ms=10_000, until_ts_ms=40_000
    )
    assert [match.ts_ms for match in near_first] == [10_000, 11_000, 12_000]
    assert {match.camera_id for match in near_first + near_blue} == {"search-a"}
    assert near_blue[0].ts_ms == 30_000
    assert near_blue[0].thumbnail == "search-a/1970-01-01/30000.jpg"
    assert near_blue[0].score == pytest.approx(1.0, abs=1e-5)

    (late_only,) = store.search_frames([unit(1, 0)], top_k=2, camera_ids=["search-b"], since_ts_ms=15_000)
    assert [(match.camera_id, match.ts_ms) for match in late_only] == [
        ("search-b", 15_000),
        ("search-b", 16_000),
    ]


def test_vectors_of_the_wrong_dimension_and_underived_hit_ids_are_refused(store):
    with pytest.raises(EmbeddingDimensionError, match=r"shape \(3,\), expected \(8,\)"):
        store.add_frames([FrameRecord("cam-1", 1, [1.0, 0.0, 0.0])])
    forged = make_hit().model_copy(update={"hit_id": "cam-1:fire:999"})
    with pytest.raises(ValueError, match="derive_hit_id"):
        store.upsert_hits([HitRecord(forged, unit(1))])
    with pytest.raises(ValueError, match="camera_id"):
        store.search_frames([unit(1)], camera_ids=['x" or camera_id != "'])


def test_a_second_store_on_the_lite_directory_goes_through_the_owner(store):
    # Milvus lite allows one owner; a second HitStore (in this process or another:
    # tests/detector/test_lite_sharing.py) connects to the owner's server instead of failing.
    with HitStore(store.settings) as second:
        assert second.lite_owner_uri is not None and store.lite_owner_uri is None
        second.add_frames([FrameRecord("via-owner", 7_000, unit(0, 0, 1))])
        second.flush_frames()
    (matches,) = store.search_frames([unit(0, 0, 1)], top_k=1, camera_ids=["via-owner"])
    assert [match.frame_id for match in matches] == ["via-owner:7000"]


def test_hits_are_searched_by_vector_within_cameras_and_peak_times(store):
    box = (0.25, 0.5, 0.75, 1.0)
    near = make_hit("search-a", "cat", start=10_000, peak=11_000, end=12_000, box=box)
    far = make_hit("search-a", "dog", start=20_000, peak=21_000, end=22_000)
    other = make_hit("search-b", "cat", start=10_000, peak=11_000)
    store.upsert_hits(
        [
            HitRecord(near, unit(0, 0, 0, 1)),
            HitRecord(far, unit(1, 0, 0, 1)),
            HitRecord(other, unit(0, 0, 0, 1)),
        ]
    )
    found = store.search_hits(unit(0, 0, 0, 1), top_k=2, camera_ids=["search-a"])
    assert [match.hit for match in found] == [near, far]
    assert found[0].score == pytest.approx(1.0, abs=1e-5) and found[1].score == pytest.approx(
        0.7071, abs=1e-3
    )
    assert [
        m.hit for m in store.search_hits(unit(0, 0, 0, 1), camera_ids=["search-a"], since_ts_ms=15_000)
    ] == [far]
    assert [
        m.hit for m in store.search_hits(unit(0, 0, 0, 1), camera_ids=["search-a"], until_ts_ms=15_000)
    ] == [near]
    assert store.search_hits(unit(0, 0, 0, 1), camera_ids=[]) == []


def test_the_frames_of_a_camera_between_two_times_oldest_first(store):
    store.add_frames(
        [
            FrameRecord("moment", ts, unit(1, ts / 1000), f"moment/1970-01-01/{ts}.jpg")
            for ts in range(9_000, 0, -1_000)
        ]
    )
    store.add_frames([FrameRecord("moment-other", 5_000, unit(1))])
    store.flush_frames()
    frames = store.frames_between("moment", 3_000, 6_000)
    assert [(f.camera_id, f.ts_ms, f.thumbnail) for f in frames] == [
        ("moment", ts, f"moment/1970-01-01/{ts}.jpg") for ts in (3_000, 4_000, 5_000, 6_000)
    ]
    assert [f.ts_ms for f in store.frames_between("moment", 0, 10_000, limit=2)] == [1_000, 2_000]


def test_rows_survive_close_and_reopen_and_a_changed_dimension_is_refused(tmp_path):
    settings = settings_for(tmp_path / "milvus")
    hit = make_hit()
    with HitStore(settings) as first:
        first.upsert_hits([HitRecord(hit, unit(1))])
        first.add_frames([FrameRecord("cam-1", 5_000, unit(0, 1))])

    with HitStore(settings) as reopened:  # the reopened collections come back NotLoad: loaded here
        assert reopened.count_hits() == 1
        assert reopened.hits() == [hit]
        (matches,) = reopened.search_frames([unit(0, 1)], top_k=1)
        assert [match.frame_id for match in matches] == ["cam-1:5000"]

    with pytest.raises(EmbeddingDimensionError) as refused:
        HitStore(settings_for(tmp_path / "milvus", dim=16))
    message = str(refused.value)
    assert "8-d" in message and "16-d" in message and "new collection name" in message
    # The refusal released the directory: the right dimension still opens it.
    with HitStore(settings) as again:
        assert again.count_hits() == 1


def test_frames_go_to_time_slices_that_a_reopened_store_finds_and_a_replay_keeps_to(tmp_path):
    settings = settings_for(tmp_path / "milvus")
    minute = 60_000
    t0 = 1_800_000_000_000  # a whole minute
    frames = [
        FrameRecord("cam-1", ts_ms, unit(1, n), f"cam-1/2027-01-15/{ts_ms}.jpg")
        for n, ts_ms in enumerate((t0, t0 + 4 * minute, t0 + 6 * minute, t0 + 61 * minute))
    ]
    with HitStore(settings) as first:
        first.frames_slice_minutes = 5
        first.add_frames(frames)
        opened = [FrameSlice(t0, 5), FrameSlice(t0 + 5 * minute, 5), FrameSlice(t0 + 61 * minute, 5)]
        assert first.frame_slices() == opened

    with HitStore(settings) as reopened:
        assert reopened.frame_slices() == opened
        reopened.frames_slice_minutes = 60  # retention lengthened the slices to open
        reopened.add_frames(frames[2:3])  # a replay: to its own slice, where it overwrites itself
        assert reopened.frame_slices() == opened
        assert reopened.count_frames() == 4

        rows, thumbnails = reopened.drop_frame_slice(opened[0])
        assert (rows, sorted(thumbnails)) == (2, [frames[0].thumbnail, frames[1].thumbnail])
        assert reopened.frame_slices() == opened[1:]
        (matches,) = reopened.search_frames([unit(1)], top_k=10)
        assert sorted(match.ts_ms for match in matches) == [frames[2].ts_ms, frames[3].ts_ms]


def test_an_upserted_hit_survives_a_process_crash_before_close(tmp_path):
    directory = tmp_path / "milvus"
    script = textwrap.dedent(
        f"""
        import os
        from vigil.services.common.contract import HitMessage
        from vigil.services.detector.store import HitRecord, HitStore, StoreSettings
        hit = HitMessage.model_validate_json({make_hit().model_dump_json()!r})
        store = HitStore(StoreSettings(uri={str(directory)!r}, dim={DIM}))
        store.upsert_hits([HitRecord(hit, [1.0] + [0.0] * {DIM - 1})])
        os._exit(0)  # no close(): as if killed right after committing the Kafka offsets
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=REPO_ROOT)
    with HitStore(settings_for(directory)) as reopened:
        assert reopened.hits() == [make_hit()]


@pytest.mark.parametrize(
    ("operator_pool", "pyarrow_first", "expected_pool"),
    [
        (None, False, "jemalloc"),
        (None, True, "jemalloc"),
        ("system", False, "system"),
        ("mimalloc", False, "mimalloc"),
    ],
)
def test_lite_allocates_from_a_pool_that_returns_freed_memory_unless_the_operator_chose_one(
    tmp_path, operator_pool, pyarrow_first, expected_pool
):
    # In a fresh process each: pyarrow reads the variable once, when it is first imported.
    script = textwrap.dedent(
        f"""
        {"import pyarrow" if pyarrow_first else ""}
        from vigil.services.common.contract import HitMessage
        from vigil.services.detector.store import HitRecord, HitStore, StoreSettings
        hit = HitMessage.model_validate_json({make_hit().model_dump_json()!r})
        with HitStore(StoreSettings(uri={str(tmp_path / "milvus")!r}, dim={DIM})) as store:
            store.upsert_hits([HitRecord(hit, [1.0] + [0.0] * {DIM - 1})])  # a Parquet segment
            store.hits()
            import pyarrow as pa
            gib_mappings = 0
            for line in open("/proc/self/maps"):
                first, last = (int(address, 16) for address in line.split()[0].split("-"))
                gib_mappings += len(line.split()) == 5 and last - first >= 1 << 30
            print(pa.default_memory_pool().backend_name, gib_mappings)
        """
    )
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if operator_pool:
        environment["ARROW_DEFAULT_MEMORY_POOL"] = operator_pool
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=environment
    )
    assert result.returncode == 0, result.stderr
    pool, anonymous_gib_mappings = result.stdout.split()
    assert pool == expected_pool
    if operator_pool is None and not pyarrow_first:
        # Arrow's C++ code too (the Parquet writer and reader), not only pyarrow's Python calls:
        # mimalloc, pyarrow's own default, never ran (it reserves a 1 GiB arena on first use).
        assert anonymous_gib_mappings == "0"


def test_index_files_torn_by_a_kill_are_rebuilt_and_the_hits_survive(tmp_path, caplog):
    directory = tmp_path / "milvus"
    with HitStore(settings_for(directory)) as first:
        first.upsert_hits([HitRecord(make_hit(), unit(1.0))])
        first.add_frames([FrameRecord("cam-1", 1_000, unit(0.0, 1.0), "cam-1/1970-01-01/1000.jpg")])
        first.flush_frames()
    index_files = sorted(p for p in directory.rglob("*") if p.suffix in (".idx", ".sidx"))
    assert {p.suffix for p in index_files} == {".idx", ".sidx"}
    for path in index_files:  # what a SIGKILL during Milvus lite's in-place index write leaves
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    with HitStore(settings_for(directory)) as reopened:
        assert reopened.hits() == [make_hit()]
        assert reopened.count_frames() == 1
    assert sum("removing torn Milvus lite index file" in r.getMessage() for r in caplog.records) == len(
        index_files
    )


def test_hits_with_and_without_a_box_round_trip_through_a_reopened_store(tmp_path):
    settings = settings_for(tmp_path / "milvus")
    boxed = make_hit(camera_id="cam-box", start=2_000, peak=2_500, box=(0.1, 0.2, 0.35, 0.9))
    whole_frame = make_hit(camera_id="cam-box", query_id="smoke", start=1_000, peak=1_500)
    # A box finer than Milvus' 32-bit FLOAT: it comes back at float32 precision, still ordered.
    fine = make_hit(camera_id="cam-fine", box=(0.123456789, 0.2, 0.123457789, 0.987654321))
    with HitStore(settings) as first:
        first.upsert_hits(
            [HitRecord(boxed, unit(1)), HitRecord(whole_frame, unit(0, 1)), HitRecord(fine, unit(1, 1))]
        )
        assert first.hits(camera_id="cam-box") == [boxed, whole_frame]

    with HitStore(settings) as reopened:
        assert reopened.hits(camera_id="cam-box") == [boxed, whole_frame]
        (stored_box,) = [hit.box for hit in reopened.hits(camera_id="cam-fine")]
        assert stored_box == pytest.approx(fine.box, abs=1e-7) and stored_box[0] < stored_box[2]
        # A replay (the event's peak moved to the whole frame) overwrites the box too.
        reopened.upsert_hits([HitRecord(boxed.model_copy(update={"box": None}), unit(1))])
        assert reopened.hits(camera_id="cam-box")[0].box is None


def test_a_box_that_collapses_at_float32_precision_is_refused(store):
    hair = make_hit(camera_id="cam-hair", box=(0.5, 0.2, 0.50000001, 0.4))  # narrower than any pixel
    with pytest.raises(ValueError, match=r"cam-hair:fire:1000: box .* collapses .* at FLOAT precision"):
        store.upsert_hits([HitRecord(hair, unit(1))])


@contextlib.contextmanager
def raw_lite_client(directory: Path):
    """A plain pymilvus client on Milvus lite, without HitStore (as another program would)."""
    from milvus_lite.adapter.grpc.server import start_server_in_thread
    from pymilvus import MilvusClient

    server, db, port = start_server_in_thread(str(directory), host="127.0.0.1")
    client = MilvusClient(uri=f"http://127.0.0.1:{port}")
    try:
        yield client
    finally:
        client.close()
        server.stop(grace=2).wait()
        db.close()


def create_hits_collection_as_the_previous_vigil_did(directory: Path, name: str = "vigil_hits") -> None:
    """The hits collection exactly as the store made it before boxes (no "box" field), with one hit."""
    from pymilvus import DataType, MilvusClient

    directory.mkdir(parents=True, exist_ok=True)
    with raw_lite_client(directory) as client:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("hit_id", DataType.VARCHAR, is_primary=True, max_length=400)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("camera_id", DataType.VARCHAR, max_length=128)
        schema.add_field("query_id", DataType.VARCHAR, max_length=128)
        schema.add_field("event_start_ts_ms", DataType.INT64)
        schema.add_field("peak_ts_ms", DataType.INT64)
        schema.add_field("end_ts_ms", DataType.INT64)
        schema.add_field("score", DataType.FLOAT)
        schema.add_field("thumbnail", DataType.VARCHAR, max_length=1024)
        schema.add_field("encoder", DataType.VARCHAR, max_length=128)
        index_params = client.prepare_index_params()
        index_params.add_index("embedding", index_type="HNSW", metric_type="COSINE", params={"M": 16})
        for field in ("camera_id", "query_id"):
            index_params.add_index(field, index_type="INVERTED")
        client.create_collection(name, schema=schema, index_params=index_params)
        hit = make_hit()
        row = {
            "hit_id": hit.hit_id,
            "embedding": unit(1).tolist(),
            "camera_id": hit.camera_id,
            "query_id": hit.query_id,
            "event_start_ts_ms": hit.event_start_ts_ms,
            "peak_ts_ms": hit.peak_ts_ms,
            "end_ts_ms": -1,
            "score": hit.peak_score,
            "thumbnail": hit.thumbnail,
            "encoder": hit.encoder,
        }
        client.upsert(name, [row])
        client.flush(name)


def test_an_old_hits_collection_without_box_is_refused_saying_exactly_what_to_do(tmp_path, monkeypatch):
    directory = tmp_path / "milvus"
    create_hits_collection_as_the_previous_vigil_did(directory)

    with pytest.raises(StoreError) as refused:
        HitStore(settings_for(directory))
    message = str(refused.value)
    assert "'vigil_hits'" in message and "made by an older Vigil" in message
    assert "'box' (the peak region of each hit)" in message
    assert "Milvus lite cannot add a field to an existing collection" in message
    assert "rows are intact" in message

    # What it says, option 1: a new collection beside the old one, whose hit is still there.
    assert "set VIGIL_MILVUS_HITS_COLLECTION=vigil_hits_v2" in message
    monkeypatch.setenv("VIGIL_MILVUS_HITS_COLLECTION", "vigil_hits_v2")
    with HitStore(StoreSettings(uri=str(directory), dim=DIM)) as beside:
        assert beside.settings.hits_collection == "vigil_hits_v2" and beside.count_hits() == 0
        beside.upsert_hits([HitRecord(make_hit(box=(0.0, 0.5, 0.5, 1.0)), unit(1))])
    with raw_lite_client(directory) as client:
        client.load_collection("vigil_hits")
        old_rows = client.query("vigil_hits", filter="", output_fields=["hit_id"])
        assert [row["hit_id"] for row in old_rows] == [make_hit().hit_id]

    # Option 2: the exact command it gives drops the old collection; Vigil then starts it anew.
    monkeypatch.delenv("VIGIL_MILVUS_HITS_COLLECTION")
    command = message.split("run: `", 1)[1].rstrip("`")
    subprocess.run(shlex.split(command), check=True, timeout=60, capture_output=True)
    with HitStore(settings_for(directory)) as fresh:
        assert fresh.settings.hits_collection == "vigil_hits" and fresh.count_hits() == 0
        fresh.upsert_hits([HitRecord(make_hit(box=(0.25, 0.25, 0.5, 0.5)), unit(1))])
        assert fresh.hits() == [make_hit(box=(0.25, 0.25, 0.5, 0.5))]


class _Milvus26StandIn:
    """No Milvus server runs in the tests: this answers describe_collection and
    add_collection_field as Milvus 2.6 does, for the server-side path of the migration (the
    real add_collection_field is what lite lacks)."""

    def __init__(self, refuse: Exception | None = None) -> None:
        self.added: list[tuple] = []
        self.refuse = refuse

    @staticmethod
    def prepare_index_params():
        from pymilvus import MilvusClient

        return MilvusClient.prepare_index_params()

    def describe_collection(self, name, timeout=None):
        old_fields = ["hit_id", "camera_id", "query_id", "event_start_ts_ms", "peak_ts_ms", "end_ts_ms"]
        old_fields += ["score", "thumbnail", "encoder"]
        return {"fields": [{"name": "embedding", "params": {"dim": DIM}}] + [{"name": f} for f in old_fields]}

    def add_collection_field(self, name, field, data_type, timeout=None, **params):
        if self.refuse is not None:
            raise self.refuse
        self.added.append((name, field, data_type, params))


def _check_hits_collection_on(server: _Milvus26StandIn) -> None:
    store = HitStore.__new__(HitStore)  # not connected: the stand-in is the server
    store.settings = StoreSettings(uri="http://milvus.example:19530", dim=DIM)
    store._client = server
    store._check_existing_schema("vigil_hits", store._hits_schema()[0], "hits")


def test_on_a_milvus_server_an_old_hits_collection_gets_the_box_field_in_place(caplog):
    from pymilvus import DataType
    from pymilvus.exceptions import MilvusException

    server = _Milvus26StandIn()
    with caplog.at_level(logging.WARNING):
        _check_hits_collection_on(server)
    box_params = {"element_type": DataType.FLOAT, "max_capacity": 4, "nullable": True}
    assert server.added == [("vigil_hits", "box", DataType.ARRAY, box_params)]
    assert any("migrated Milvus collection vigil_hits in place" in r.getMessage() for r in caplog.records)

    says = r"refused to add 'box' .*not supported.*VIGIL_MILVUS_HITS_COLLECTION=vigil_hits_v2"
    with pytest.raises(StoreError, match=says):
        _check_hits_collection_on(_Milvus26StandIn(refuse=MilvusException(message="not supported")))


def test_a_lite_uri_that_is_a_file_is_refused_with_a_reason(tmp_path):
    old_file = tmp_path / "milvus.db"
    old_file.write_bytes(b"old format")
    with pytest.raises(Exception, match="is a file; it must be a directory"):
        HitStore(settings_for(old_file))


def test_settings_never_show_the_token_and_hide_server_credentials():
    settings = StoreSettings(uri="http://vigil:hunter2@milvus.example:19530", token="root:Milvus", dim=DIM)
    assert "root:Milvus" not in repr(settings)
    assert settings.uri_for_logs() == "http://milvus.example:19530"
    assert not settings.is_lite


def test_default_locations_follow_vigil_home(monkeypatch, tmp_path):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    settings = StoreSettings()
    assert settings.uri == str(tmp_path / "milvus") and settings.is_lite
    assert settings.thumbnails_dir == tmp_path / "thumbnails"


# --- thumbnails ----------------------------------------------------------------------------


def test_thumbnails_round_trip_under_camera_and_utc_day(tmp_path):
    thumbnails = ThumbnailStore(tmp_path / "thumbnails")
    reference = thumbnails.save("cam-1", 1_700_000_000_123, JPEG)
    assert reference == "cam-1/2023-11-14/1700000000123.jpg"
    assert thumbnails.read(reference) == JPEG
    assert thumbnails.path_for(reference) == (tmp_path / "thumbnails" / reference).resolve()
    assert not [path for path in (tmp_path / "thumbnails").rglob("*.tmp")]


def test_thumbnail_save_refuses_bad_camera_ids_and_non_jpeg_bytes(tmp_path):
    thumbnails = ThumbnailStore(tmp_path)
    for camera_id in ("../up", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="camera_id"):
            thumbnails.save(camera_id, 1, JPEG)
    with pytest.raises(ValueError, match="not a JPEG"):
        thumbnails.save("cam-1", 1, b"\x89PNG....")


@pytest.mark.parametrize(
    "reference",
    [
        "../x",
        "/etc/passwd",
        "cam/../../x",
        "cam-1/2023-11-14/../../../etc/passwd",
        "cam-1/2023-11-14/1700000000123.jpg/..",
        "cam-1/2023-11-14/1700000000123.png",
        "cam-1/2023-11-14/1700000000123.jpg\n",
        "cam-1\\2023-11-14\\1700000000123.jpg",
        "cam-1/2023-11-15/1700000000123.jpg",  # day does not match the timestamp
        "",
    ],
)
def test_thumbnail_references_that_could_escape_the_root_are_refused(tmp_path, reference):
    thumbnails = ThumbnailStore(tmp_path / "thumbnails")
    thumbnails.save("cam-1", 1_700_000_000_123, JPEG)
    with pytest.raises(InvalidThumbnailReferenceError, match="thumbnail reference"):
        thumbnails.path_for(reference)
    with pytest.raises(InvalidThumbnailReferenceError, match="thumbnail reference"):
        thumbnails.delete([reference])
    assert thumbnails.read("cam-1/2023-11-14/1700000000123.jpg") == JPEG


def test_a_symlink_leading_out_of_the_thumbnail_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    (outside / "2023-11-14").mkdir(parents=True)
    (outside / "2023-11-14" / "1700000000123.jpg").write_bytes(b"secret")
    root = tmp_path / "thumbnails"
    root.mkdir()
    os.symlink(outside, root / "cam-1")
    thumbnails = ThumbnailStore(root)
    with pytest.raises(InvalidThumbnailReferenceError, match="leads outside"):
        thumbnails.path_for("cam-1/2023-11-14/1700000000123.jpg")
    with pytest.raises(InvalidThumbnailReferenceError, match="leads outside"):
        thumbnails.delete(["cam-1/2023-11-14/1700000000123.jpg"])
    assert (outside / "2023-11-14" / "1700000000123.jpg").read_bytes() == b"secret"


def test_deleting_thumbnails_removes_their_files_and_the_day_folders_left_empty(tmp_path):
    thumbnails = ThumbnailStore(tmp_path)
    day_one = [thumbnails.save("cam-1", 1_700_000_000_000 + n, JPEG) for n in range(3)]
    next_day = thumbnails.save("cam-1", 1_700_000_000_000 + 86_400_000, JPEG)
    missing = "cam-2/2023-11-14/1700000000000.jpg"
    assert thumbnails.delete([*day_one[:2], missing]) == 2
    assert [path.name for path in (tmp_path / "cam-1" / "2023-11-14").iterdir()] == ["1700000000002.jpg"]
    assert thumbnails.delete([day_one[2], next_day]) == 2
    assert not (tmp_path / "cam-1" / "2023-11-14").exists()
    assert not (tmp_path / "cam-1" / "2023-11-15").exists()


def test_a_missing_thumbnail_is_reported_as_not_found(tmp_path):
    with pytest.raises(ThumbnailNotFoundError, match="cam-1/2023-11-14/1700000000123.jpg"):
        ThumbnailStore(tmp_path).path_for("cam-1/2023-11-14/1700000000123.jpg")
