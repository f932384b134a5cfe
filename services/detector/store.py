"""Where the detector's results live: hits and a sampled frame index in Milvus, thumbnails on disk.

Milvus lite (a local directory, the embedded default) or a Milvus server (by URI) hold two
collections: "hits" (one row per detected event, primary key = the contract's deterministic
hit id, so a replay after a crash overwrites instead of duplicating; with the peak region's
box, if any) and "frames" (about one frame per camera per second, for retrospective search),
cut into one partition per time slice so that retention frees memory by dropping old slices
whole (frame_slices.py).
Thumbnails are JPEG files beside them, referenced from both collections by a relative path
that `ThumbnailStore.path_for` resolves without ever leaving its root.

Durability: `HitStore.upsert_hits` returns only once the rows would survive a crash, because
the detector commits its Kafka offsets right after it.

Over 400 lines: the hits collection, the frame index and the thumbnail folder are still one
module (one Milvus connection serves both collections); issue 13 splits them.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.errors import VigilError
from vigil.paths import var_dir
from vigil.services.common.contract import ID_PATTERN, Box, HitMessage, derive_hit_id
from vigil.services.common.thumbnails import JPEG_MAGIC
from vigil.services.detector.frame_slices import DEFAULT_SLICE_MINUTES, FrameSlice, slice_for

logger = logging.getLogger(__name__)

SERVER_URI_SCHEMES = ("http://", "https://", "tcp://", "unix:")
COLLECTION_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"
# Milvus returns at most this many rows from one query (its query window).
MAX_QUERY_ROWS = 16_384
# end_ts_ms of an event that is still on: Milvus INT64 fields are not nullable here.
OPEN_EVENT_END = -1
# The partition every Milvus collection has: frame rows written before the index was cut into
# time slices (services/detector/frame_slices.py) are there, and are forgotten row by row.
DEFAULT_PARTITION = "_default"
# The hit's peak region (HitMessage.box): ARRAY<FLOAT> of capacity 4, nullable (NULL = the
# whole frame, and what hits written before boxes existed read as).
BOX_FIELD = "box"
# Fields added after a collection's first release, per collection role: a collection made
# before lacks them but is otherwise ours, so it is migrated (or the error says how).
ADDED_FIELDS: dict[str, dict[str, str]] = {"hits": {BOX_FIELD: "the peak region of each hit"}}

_ID_RE = re.compile(ID_PATTERN)


class StoreError(VigilError):
    """The hit store cannot do what was asked; the message says what and how to fix it."""


class MilvusLockedError(StoreError):
    """Another Milvus lite owner holds the data directory."""


class EmbeddingDimensionError(StoreError):
    """A collection or a vector whose dimension is not the configured encoder's."""


class InvalidThumbnailReferenceError(StoreError):
    """A thumbnail reference that is malformed or points outside the thumbnail root."""


class ThumbnailNotFoundError(StoreError):
    """A well-formed thumbnail reference with no file behind it."""


class StoreSettings(BaseSettings):
    """Where hits, frames and thumbnails are stored (environment: VIGIL_MILVUS_<FIELD>)."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_MILVUS_", extra="forbid", validate_default=True)

    uri: str = Field(
        default_factory=lambda: str(var_dir() / "milvus"),
        min_length=1,
        description="a local directory (Milvus lite, one owning process) or http(s)://host:19530",
    )
    token: SecretStr | None = Field(None, description="Milvus server token ('user:password' or API key)")
    dim: int = Field(512, ge=2, le=32_768, description="embedding dimension: the encoder's")
    hits_collection: str = Field("vigil_hits", pattern=COLLECTION_NAME_PATTERN)
    frames_collection: str = Field("vigil_frames", pattern=COLLECTION_NAME_PATTERN)
    thumbnails_dir: Path = Field(default_factory=lambda: var_dir() / "thumbnails")
    hnsw_m: int = Field(16, ge=4, le=64)
    hnsw_ef_construction: int = Field(200, ge=8, le=512)
    search_ef: int = Field(64, ge=1, le=32_768, description="HNSW search breadth; >= top_k")
    frames_flush_rows: int = Field(
        1_000, ge=1, le=1_000_000, description="flush the frame index after this many new rows"
    )
    timeout_s: float = Field(10.0, gt=0, le=600)

    @property
    def is_lite(self) -> bool:
        return not self.uri.startswith(SERVER_URI_SCHEMES)

    def uri_for_logs(self) -> str:
        """The URI without any user:password part (a server URI may carry one)."""
        if self.is_lite:
            return self.uri
        parts = urlsplit(self.uri)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class HitRecord:
    """A hit as the detector stores it: the contract's message and the peak frame's embedding."""

    hit: HitMessage  # hit.box, the peak region, is stored with it (None = the whole frame)
    embedding: Sequence[float] | np.ndarray


@dataclass(frozen=True)
class FrameRecord:
    """One sampled frame for retrospective search; thumbnail is a ThumbnailStore reference or ""."""

    camera_id: str
    ts_ms: int
    embedding: Sequence[float] | np.ndarray
    thumbnail: str = ""

    @property
    def frame_id(self) -> str:
        return derive_frame_id(self.camera_id, self.ts_ms)


@dataclass(frozen=True)
class FrameMatch:
    """A frame found by `HitStore.search_frames`; score is the cosine similarity (higher = closer)."""

    frame_id: str
    camera_id: str
    ts_ms: int
    thumbnail: str
    score: float


def derive_frame_id(camera_id: str, ts_ms: int) -> str:
    """The frame's primary key: re-indexing the same frame after a replay overwrites it."""
    return f"{camera_id}:{ts_ms}"


def _added_field_params(field: str) -> dict[str, Any]:
    """An added field's schema parameters, the same for a new collection and for adding it to an
    older one (a field added to an existing collection must be nullable)."""
    from pymilvus import DataType

    if field == BOX_FIELD:
        return {
            "datatype": DataType.ARRAY,
            "element_type": DataType.FLOAT,
            "max_capacity": 4,
            "nullable": True,
        }
    raise KeyError(f"no schema parameters for the added field {field!r}")


def _check_id(name: str, value: str) -> None:
    # Ids are interpolated into Milvus filter expressions and file paths: only the contract's
    # alphabet gets through.
    if not isinstance(value, str) or len(value) > 128 or not _ID_RE.fullmatch(value):
        raise ValueError(f"{name} {value!r} does not match {ID_PATTERN} (at most 128 characters)")


def _check_ts_ms(name: str, ts_ms: int) -> None:
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or ts_ms < 0:
        raise ValueError(f"{name} must be a non-negative integer (ms since the Unix epoch), got {ts_ms!r}")


class _HideUnimplementedRpc(logging.Filter):
    """pymilvus calls AllocTimestamp while waiting for a new index; Milvus lite does not
    implement it, the client carries on without it, but grpc logs a traceback at ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Method not implemented" not in record.getMessage() and "AllocTimestamp" not in str(
            record.exc_info[1] if record.exc_info else ""
        )


def _discard_torn_index_files(directory: Path) -> None:
    """Remove index sidecar files that a killed process left half-written.

    Milvus lite builds segment indexes on a background thread and writes them in place
    (no temp file and rename), then loads any index file it finds on the next open. A
    process killed mid-write (the detector is SIGKILLed by design when it is restarted)
    would leave a file that fails every later open with "Not an Arrow file". The files are
    derived from the segment data, so a torn one is deleted here and rebuilt on load.
    """
    from milvus_lite.index.files import SCALAR_INDEX_FILE_EXT, VECTOR_INDEX_FILE_EXT

    for path in directory.rglob("*"):
        if path.suffix not in (SCALAR_INDEX_FILE_EXT, VECTOR_INDEX_FILE_EXT) or not path.is_file():
            continue
        try:
            _load_index_file(path)
        except Exception as exc:  # any reader error means the file is unusable
            logger.warning("removing torn Milvus lite index file %s (%s); it is rebuilt on load", path, exc)
            path.unlink()


def _load_index_file(path: Path) -> None:
    """Read the whole index file with the reader Milvus lite would use for it."""
    from milvus_lite.index.files import SCALAR_INDEX_FILE_EXT

    if path.suffix == SCALAR_INDEX_FILE_EXT:
        from milvus_lite.index.scalar import ScalarInvertedIndex

        ScalarInvertedIndex.load(str(path))
        return
    with path.open("rb") as file:
        if file.read(6) == b"\x93NUMPY":  # a brute-force index is a .npy array
            file.seek(0)
            np.load(file, allow_pickle=False)
            return
    import faiss  # HNSW indexes are FAISS files (faiss-cpu comes with milvus-lite)

    faiss.read_index(str(path))


def use_arrow_pool_that_returns_memory() -> str:
    """Make pyarrow's default pool, which Milvus lite allocates from in this process, one that
    gives freed pages back to the OS; the name of the pool in use.

    Lite writes a small Parquet segment on every flush and its compactions merge and free them
    again, so it frees about as much as it allocates. pyarrow's default pool (mimalloc) keeps
    those freed pages: with its rows bounded the detector still grew ~2 MiB a minute in the
    soak, and each hit written and flushed alone added ~35 KiB. Arrow's jemalloc hands freed
    pages back to the OS within a second (bench part lite_pools compares the pools). The
    system allocator is the fallback where a pyarrow build has no jemalloc. An operator's
    ARROW_DEFAULT_MEMORY_POOL is left as it is.
    """
    import pyarrow  # Milvus lite's own dependency

    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            pool = pyarrow.jemalloc_memory_pool()
        except NotImplementedError:  # a pyarrow built without jemalloc
            pool = pyarrow.system_memory_pool()
        pyarrow.set_memory_pool(pool)
    return pyarrow.default_memory_pool().backend_name


class HitStore:
    """The hits and frames collections, created on first use and loaded on every open.

    With a lite URI this object owns the directory until `close()`: Milvus lite allows one
    owner (a second one, in this process or another, gets MilvusLockedError). Use it as a
    context manager, or call close().
    """

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self._lite_server: Any = None
        self._lite_db: Any = None
        self._frames_since_flush = 0
        # How long a new frame slice is; retention sets it from how long frames are kept.
        self.frames_slice_minutes = DEFAULT_SLICE_MINUTES
        self._client = self._connect()
        try:
            self._open_collection(settings.hits_collection, self._hits_schema(), role="hits")
            self._open_collection(settings.frames_collection, self._frames_schema(), role="frames")
            self._frame_slices = self._list_frame_slices()
        except BaseException:
            self.close()
            raise

    # --- opening -------------------------------------------------------------------------

    def _connect(self) -> Any:
        from pymilvus import MilvusClient

        settings = self.settings
        if not settings.is_lite:
            token = settings.token.get_secret_value() if settings.token else ""
            logger.info("connecting to Milvus server %s", settings.uri_for_logs())
            return MilvusClient(uri=settings.uri, token=token, timeout=settings.timeout_s)

        # The lite server is started here rather than through pymilvus' "*.db" URI because
        # pymilvus' server manager turns DataDirLockedError into a bare "Open local milvus
        # failed" and keeps the directory open after client.close(), so a closed store could
        # not be reopened by another process.
        from milvus_lite import DataDirLockedError
        from milvus_lite.adapter.grpc.server import start_server_in_thread

        directory = Path(settings.uri).expanduser().resolve()
        if directory.exists() and not directory.is_dir():
            raise StoreError(
                f"Milvus lite URI {directory} is a file; it must be a directory "
                "(an older milvus-lite single-file database cannot be opened by milvus-lite 3)"
            )
        directory.mkdir(parents=True, exist_ok=True)
        use_arrow_pool_that_returns_memory()
        grpc_server_log = logging.getLogger("grpc._server")
        if not any(isinstance(f, _HideUnimplementedRpc) for f in grpc_server_log.filters):
            grpc_server_log.addFilter(_HideUnimplementedRpc())
        try:
            self._lite_server, self._lite_db, port = start_server_in_thread(str(directory), host="127.0.0.1")
        except DataDirLockedError:
            raise MilvusLockedError(
                f"Milvus lite directory {directory} is already open by another HitStore or process: "
                "only one process may open Milvus lite (the embedded default has one owner, e.g. "
                "`vigil up`); stop it, or point every process at a Milvus server URI "
                "(VIGIL_MILVUS_URI=http://host:19530)"
            ) from None
        # Safe only now: we hold the directory's lock and no collection has been loaded yet.
        _discard_torn_index_files(directory)
        logger.info("opened Milvus lite in %s", directory)
        return MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=settings.timeout_s)

    def _hits_schema(self) -> tuple[Any, Any]:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("hit_id", DataType.VARCHAR, is_primary=True, max_length=400)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.settings.dim)
        schema.add_field("camera_id", DataType.VARCHAR, max_length=128)
        schema.add_field("query_id", DataType.VARCHAR, max_length=128)
        schema.add_field("event_start_ts_ms", DataType.INT64)
        schema.add_field("peak_ts_ms", DataType.INT64)
        schema.add_field("end_ts_ms", DataType.INT64)
        schema.add_field("score", DataType.FLOAT)
        schema.add_field("thumbnail", DataType.VARCHAR, max_length=1024)
        schema.add_field("encoder", DataType.VARCHAR, max_length=128)
        schema.add_field(BOX_FIELD, **_added_field_params(BOX_FIELD))
        return schema, self._index_params(scalar_fields=("camera_id", "query_id"))

    def _frames_schema(self) -> tuple[Any, Any]:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("frame_id", DataType.VARCHAR, is_primary=True, max_length=200)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.settings.dim)
        schema.add_field("camera_id", DataType.VARCHAR, max_length=128)
        schema.add_field("ts_ms", DataType.INT64)
        schema.add_field("thumbnail", DataType.VARCHAR, max_length=1024)
        return schema, self._index_params(scalar_fields=("camera_id",))

    def _index_params(self, scalar_fields: Iterable[str]) -> Any:
        index_params = self._client.prepare_index_params()
        index_params.add_index(
            "embedding",
            index_type="HNSW",
            metric_type="COSINE",
            params={"M": self.settings.hnsw_m, "efConstruction": self.settings.hnsw_ef_construction},
        )
        for field in scalar_fields:
            # Milvus lite builds only INVERTED scalar indexes.
            index_params.add_index(field, index_type="INVERTED")
        return index_params

    def _open_collection(self, name: str, schema_and_indexes: tuple[Any, Any], role: str) -> None:
        schema, index_params = schema_and_indexes
        client, timeout = self._client, self.settings.timeout_s
        if not client.has_collection(name, timeout=timeout):
            client.create_collection(name, schema=schema, index_params=index_params, timeout=timeout)
            logger.info("created Milvus collection %s (dim %d)", name, self.settings.dim)
        else:
            self._check_existing_schema(name, schema, role)
        # A reopened collection is NotLoad and refuses searches until loaded.
        if str(client.get_load_state(name, timeout=timeout).get("state")) != "Loaded":
            client.load_collection(name, timeout=timeout)

    def _check_existing_schema(self, name: str, expected_schema: Any, role: str) -> None:
        description = self._client.describe_collection(name, timeout=self.settings.timeout_s)
        fields = {field["name"]: field for field in description["fields"]}
        missing = [field.name for field in expected_schema.fields if field.name not in fields]
        added_later = ADDED_FIELDS.get(role, {})
        if any(field not in added_later for field in missing):
            raise StoreError(
                f"Milvus collection {name!r} exists but lacks the fields {missing}: it was not made "
                "by this Vigil; configure another collection name"
            )
        if missing:
            self._add_missing_fields(name, role, missing)
        existing_dim = int(fields["embedding"]["params"]["dim"])
        if existing_dim != self.settings.dim:
            raise EmbeddingDimensionError(
                f"Milvus collection {name!r} holds {existing_dim}-d embeddings but the encoder "
                f"produces {self.settings.dim}-d ones: embeddings of different encoders cannot share "
                f"an index. Configure a new collection name (e.g. {name}_{self.settings.dim}) or "
                "switch back to the encoder that filled it"
            )

    def _add_missing_fields(self, name: str, role: str, missing: list[str]) -> None:
        """Migrate a collection made by an older Vigil: add the nullable fields it lacks.

        A Milvus server (2.6+) adds a field in place, its old rows reading NULL. Milvus lite
        3.2.2 has no AddCollectionField RPC (it answers UNIMPLEMENTED), so there the error says
        exactly what to do instead.
        """
        what = ", ".join(f"{field!r} ({ADDED_FIELDS[role][field]})" for field in missing)
        new_name = f"{name}_v2"[:255]
        if self.settings.is_lite:
            directory = str(Path(self.settings.uri).expanduser().resolve())
            code = (  # json.dumps: double-quoted Python literals, so the shell quoting stays readable
                f"from milvus_lite import MilvusLite; db = MilvusLite({json.dumps(directory)}); "
                f"db.drop_collection({json.dumps(name)}); db.close()"
            )
            drop = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
            raise StoreError(
                f"Milvus collection {name!r} in {directory} was made by an older Vigil: it lacks the "
                f"field(s) {what}, and Milvus lite cannot add a field to an existing collection. Its "
                f"rows are intact. To keep them, start a new collection beside it: set "
                f"VIGIL_MILVUS_{role.upper()}_COLLECTION={new_name} (Vigil then lists only new hits; "
                f"the old rows stay in {name!r}, untouched). To discard them, stop every Vigil "
                f"process and run: `{drop}`"
            )
        from pymilvus.exceptions import MilvusException

        for field in missing:
            params = _added_field_params(field)
            data_type = params.pop("datatype")
            try:
                self._client.add_collection_field(
                    name, field, data_type, timeout=self.settings.timeout_s, **params
                )
            except MilvusException as error:
                raise StoreError(
                    f"Milvus collection {name!r} was made by an older Vigil: it lacks the field(s) "
                    f"{what}, and the server refused to add {field!r} ({error}); Milvus 2.6 or later "
                    f"can. Or start a new collection beside it: set "
                    f"VIGIL_MILVUS_{role.upper()}_COLLECTION={new_name}"
                ) from None
            logger.warning(
                "migrated Milvus collection %s in place: added the field %r (%s); the rows written "
                "before read it as NULL",
                name,
                field,
                ADDED_FIELDS[role][field],
            )

    # --- writing -------------------------------------------------------------------------

    @staticmethod
    def _box_row(hit: HitMessage) -> list[float] | None:
        """hit.box as stored: FLOAT (32-bit) fractions, or None (NULL) for the whole frame."""
        if hit.box is None:
            return None
        stored = np.asarray(hit.box, dtype=np.float32)
        x0, y0, x1, y1 = stored.tolist()
        if not (x0 < x1 and y0 < y1):
            # Only a box narrower than ~1e-7 of the frame collapses at 32 bits: no pixel is.
            raise ValueError(
                f"hit {hit.hit_id}: box {list(hit.box)} collapses to {stored.tolist()} at FLOAT precision"
            )
        return stored.tolist()

    def _vector(self, embedding: Sequence[float] | np.ndarray, what: str) -> list[float]:
        vector = np.asarray(embedding, dtype=np.float32)
        if vector.shape != (self.settings.dim,):
            raise EmbeddingDimensionError(
                f"{what}: embedding has shape {vector.shape}, expected ({self.settings.dim},)"
            )
        if not np.isfinite(vector).all() or not np.any(vector):
            raise ValueError(f"{what}: embedding must be finite and not all zeros (cosine is undefined)")
        return vector.tolist()

    def upsert_hits(self, records: Sequence[HitRecord]) -> None:
        """Write hits; the same hit id overwrites, so replays do not duplicate. Durable on return."""
        if not records:
            return
        rows = []
        for record in records:
            hit = record.hit
            expected_id = derive_hit_id(hit.camera_id, hit.query_id, hit.event_start_ts_ms)
            if hit.hit_id != expected_id:
                # A hit id not derived from its parts would defeat idempotent replays.
                raise ValueError(f"hit_id {hit.hit_id!r} is not derive_hit_id(...) = {expected_id!r}")
            rows.append(
                {
                    "hit_id": hit.hit_id,
                    "embedding": self._vector(record.embedding, f"hit {hit.hit_id}"),
                    "camera_id": hit.camera_id,
                    "query_id": hit.query_id,
                    "event_start_ts_ms": hit.event_start_ts_ms,
                    "peak_ts_ms": hit.peak_ts_ms,
                    "end_ts_ms": OPEN_EVENT_END if hit.end_ts_ms is None else hit.end_ts_ms,
                    "score": hit.peak_score,
                    "thumbnail": hit.thumbnail,
                    "encoder": hit.encoder,
                    BOX_FIELD: self._box_row(hit),
                }
            )
        name = self.settings.hits_collection
        self._client.upsert(name, rows, timeout=self.settings.timeout_s)
        if self.settings.is_lite:
            # Lite's write-ahead log reaches the OS on upsert (survives a process crash) but is
            # fsynced only at flush; flushing (~10 ms) makes the hit survive a power loss too,
            # before the detector commits the Kafka offsets that would let it be forgotten. A
            # server acknowledges an upsert once it is in its own log, and rate-limits flush.
            self._client.flush(name, timeout=self.settings.timeout_s)

    def add_frames(self, records: Sequence[FrameRecord]) -> None:
        """Index sampled frames (idempotent by camera and timestamp), each in its time slice.

        Flushed every `frames_flush_rows` rows rather than per call: the frame index is a
        search aid, so losing its last seconds to a power cut is cheaper than an fsync per
        micro-batch. But unflushed rows are searched without the HNSW index (measured on lite:
        10k unflushed 512-d rows, 235 ms a search; flushed, 4 ms), so they must not pile up.
        """
        if not records:
            return
        rows_by_slice: dict[FrameSlice, list[dict[str, Any]]] = {}
        for record in records:
            _check_id("camera_id", record.camera_id)
            _check_ts_ms("ts_ms", record.ts_ms)
            row = {
                "frame_id": record.frame_id,
                "embedding": self._vector(record.embedding, f"frame {record.frame_id}"),
                "camera_id": record.camera_id,
                "ts_ms": record.ts_ms,
                "thumbnail": record.thumbnail,
            }
            rows_by_slice.setdefault(self._frame_slice_for(record.ts_ms), []).append(row)
        name, timeout = self.settings.frames_collection, self.settings.timeout_s
        for frame_slice, rows in rows_by_slice.items():
            self._client.upsert(name, rows, partition_name=frame_slice.name, timeout=timeout)
            self._frames_since_flush += len(rows)
        if self._frames_since_flush >= self.settings.frames_flush_rows:
            self.flush_frames()

    def _frame_slice_for(self, ts_ms: int) -> FrameSlice:
        """The slice a frame goes to, opening it (a Milvus partition) when it is new."""
        frame_slice = slice_for(ts_ms, self._frame_slices, self.frames_slice_minutes)
        if frame_slice in self._frame_slices:
            return frame_slice
        name, timeout = self.settings.frames_collection, self.settings.timeout_s
        if not self.settings.is_lite:
            # Another detector on the same server may have opened slices since: follow them.
            self._frame_slices = self._list_frame_slices()
            frame_slice = slice_for(ts_ms, self._frame_slices, self.frames_slice_minutes)
            if frame_slice in self._frame_slices:
                return frame_slice
        if not self._client.has_partition(name, frame_slice.name, timeout=timeout):
            self._client.create_partition(name, frame_slice.name, timeout=timeout)
            if not self.settings.is_lite:  # a server loads a new partition of a loaded collection
                self._client.load_partitions(name, [frame_slice.name], timeout=timeout)
            logger.info("opened frame index slice %s", frame_slice.name)
        bisect.insort(self._frame_slices, frame_slice)
        return frame_slice

    def _list_frame_slices(self) -> list[FrameSlice]:
        names = self._client.list_partitions(self.settings.frames_collection, timeout=self.settings.timeout_s)
        return sorted(s for s in map(FrameSlice.parse, names) if s is not None)

    def flush_frames(self) -> None:
        """Seal the frame rows written so far into indexed, fsynced segments."""
        self._client.flush(self.settings.frames_collection, timeout=self.settings.timeout_s)
        self._frames_since_flush = 0

    # --- reading -------------------------------------------------------------------------

    def search_frames(
        self,
        query_vectors: Sequence[Sequence[float]] | np.ndarray,
        top_k: int = 10,
        camera_ids: Sequence[str] | None = None,
        since_ts_ms: int | None = None,
        until_ts_ms: int | None = None,
    ) -> list[list[FrameMatch]]:
        """The top_k nearest frames for each query vector, best first, in ONE Milvus call
        (each call costs tens of ms on lite whatever the batch size, so callers should batch).

        camera_ids: only these cameras (None = all); since/until: inclusive capture-time bounds.
        """
        if not 1 <= top_k <= 1024:
            raise ValueError(f"top_k must be from 1 to 1024, got {top_k}")
        vectors = [self._vector(vector, f"query vector {i}") for i, vector in enumerate(query_vectors)]
        if not vectors:
            return []
        conditions = []
        if camera_ids is not None:
            for camera_id in camera_ids:
                _check_id("camera_id", camera_id)
            if not camera_ids:
                return [[] for _ in vectors]
            conditions.append(f"camera_id in {json.dumps(list(camera_ids))}")
        if since_ts_ms is not None:
            _check_ts_ms("since_ts_ms", since_ts_ms)
            conditions.append(f"ts_ms >= {since_ts_ms}")
        if until_ts_ms is not None:
            _check_ts_ms("until_ts_ms", until_ts_ms)
            conditions.append(f"ts_ms <= {until_ts_ms}")
        results = self._client.search(
            self.settings.frames_collection,
            data=vectors,
            anns_field="embedding",
            filter=" and ".join(conditions),
            limit=top_k,
            output_fields=["camera_id", "ts_ms", "thumbnail"],
            search_params={"metric_type": "COSINE", "params": {"ef": max(self.settings.search_ef, top_k)}},
            timeout=self.settings.timeout_s,
        )
        return [
            [
                FrameMatch(
                    frame_id=match["frame_id"],
                    camera_id=match["entity"]["camera_id"],
                    ts_ms=int(match["entity"]["ts_ms"]),
                    thumbnail=match["entity"]["thumbnail"],
                    score=float(match["distance"]),
                )
                for match in matches
            ]
            for matches in results
        ]

    def hits(
        self,
        camera_id: str | None = None,
        query_id: str | None = None,
        since_ts_ms: int | None = None,
        limit: int = 100,
    ) -> list[HitMessage]:
        """Stored hits, newest peak first; since_ts_ms bounds the peak time (inclusive). Each
        hit's box is as written, at FLOAT (32-bit) precision; None for whole-frame hits.

        Milvus queries have no ORDER BY, so up to 16,384 matching rows are sorted here; with
        more matches than that, narrow the query with since_ts_ms.
        """
        if not 1 <= limit <= MAX_QUERY_ROWS:
            raise ValueError(f"limit must be from 1 to {MAX_QUERY_ROWS}, got {limit}")
        conditions = []
        if camera_id is not None:
            _check_id("camera_id", camera_id)
            conditions.append(f"camera_id == {json.dumps(camera_id)}")
        if query_id is not None:
            _check_id("query_id", query_id)
            conditions.append(f"query_id == {json.dumps(query_id)}")
        if since_ts_ms is not None:
            _check_ts_ms("since_ts_ms", since_ts_ms)
            conditions.append(f"peak_ts_ms >= {since_ts_ms}")
        rows = self._client.query(
            self.settings.hits_collection,
            filter=" and ".join(conditions),
            output_fields=[
                "hit_id",
                "camera_id",
                "query_id",
                "event_start_ts_ms",
                "peak_ts_ms",
                "end_ts_ms",
                "score",
                "thumbnail",
                "encoder",
                BOX_FIELD,
            ],
            limit=MAX_QUERY_ROWS,
            timeout=self.settings.timeout_s,
        )
        rows = sorted(rows, key=lambda row: (row["peak_ts_ms"], row["hit_id"]), reverse=True)[:limit]
        return [
            HitMessage(
                hit_id=row["hit_id"],
                camera_id=row["camera_id"],
                query_id=row["query_id"],
                event_start_ts_ms=int(row["event_start_ts_ms"]),
                peak_ts_ms=int(row["peak_ts_ms"]),
                end_ts_ms=None if row["end_ts_ms"] == OPEN_EVENT_END else int(row["end_ts_ms"]),
                # Milvus stores FLOAT (32-bit); round so 0.9 reads back as 0.9, not 0.899999976.
                peak_score=round(float(row["score"]), 6),
                thumbnail=row["thumbnail"],
                encoder=row["encoder"],
                box=_box_from_row(row.get(BOX_FIELD)),
            )
            for row in rows
        ]

    # --- forgetting (services/detector/retention.py) -------------------------------------

    def forget_hits_before(self, peak_before_ms: int, limit: int) -> list[str]:
        """Delete up to `limit` hits whose peak is before `peak_before_ms`; their thumbnails."""
        _check_ts_ms("peak_before_ms", peak_before_ms)
        return self._forget(self.settings.hits_collection, "hit_id", f"peak_ts_ms < {peak_before_ms}", limit)

    def frame_slices(self) -> list[FrameSlice]:
        """The frame index's time slices, oldest first, as Milvus lists them now (with a server,
        another detector may have opened or dropped some)."""
        self._frame_slices = self._list_frame_slices()
        return list(self._frame_slices)

    def drop_frame_slice(self, frame_slice: FrameSlice) -> tuple[int, list[str]]:
        """Forget a whole time slice of the frame index: (its rows, their thumbnails). Its
        memory is freed at once, unlike that of deleted rows (see frame_slices.py)."""
        name, timeout = self.settings.frames_collection, self.settings.timeout_s
        rows, thumbnails = 0, []
        iterator = self._client.query_iterator(
            name,
            batch_size=MAX_QUERY_ROWS,
            filter="",
            output_fields=["thumbnail"],
            partition_names=[frame_slice.name],
            timeout=timeout,
        )
        try:
            while batch := iterator.next():
                rows += len(batch)
                thumbnails += [row["thumbnail"] for row in batch if row.get("thumbnail")]
        finally:
            iterator.close()
        if not self.settings.is_lite:  # a server drops only a released partition
            self._client.release_partitions(name, [frame_slice.name], timeout=timeout)
        self._client.drop_partition(name, frame_slice.name, timeout=timeout)
        self._frame_slices = [s for s in self._frame_slices if s != frame_slice]
        logger.info("dropped frame index slice %s (%d rows)", frame_slice.name, rows)
        return rows, thumbnails

    def release_freed_memory(self) -> None:
        """Hand the memory Milvus lite's Arrow buffers freed back to the OS now, rather than
        when the pool's own decay gets to it (after a retention pass dropped a whole slice)."""
        if self.settings.is_lite:
            import pyarrow  # Milvus lite's own dependency

            pyarrow.default_memory_pool().release_unused()

    def forget_unsliced_frames_before(self, before_ms: int, limit: int) -> list[str]:
        """Delete up to `limit` frame index rows captured before `before_ms` that were written
        before the index was sliced (the default partition); their thumbnails."""
        _check_ts_ms("before_ms", before_ms)
        return self._forget(
            self.settings.frames_collection,
            "frame_id",
            f"ts_ms < {before_ms}",
            limit,
            partition_names=[DEFAULT_PARTITION],
        )

    def hit_thumbnails(self, references: Sequence[str]) -> set[str]:
        """Those of `references` that a stored hit shows (a peak frame is indexed too)."""
        for reference in references:
            if not _REFERENCE_RE.fullmatch(reference):
                raise InvalidThumbnailReferenceError(f"thumbnail reference {reference!r} is malformed")
        rows = self._client.query(
            self.settings.hits_collection,
            filter=f"thumbnail in {json.dumps(list(references))}",
            output_fields=["thumbnail"],
            limit=MAX_QUERY_ROWS,
            timeout=self.settings.timeout_s,
        )
        return {row["thumbnail"] for row in rows}

    def _forget(
        self, collection: str, key: str, condition: str, limit: int, partition_names: list[str] | None = None
    ) -> list[str]:
        timeout = self.settings.timeout_s
        rows = self._client.query(
            collection,
            filter=condition,
            output_fields=[key, "thumbnail"],
            limit=min(limit, MAX_QUERY_ROWS),
            partition_names=partition_names,
            timeout=timeout,
        )
        if rows:
            self._client.delete(collection, ids=[row[key] for row in rows], timeout=timeout)
            self._client.flush(collection, timeout=timeout)
        return [row["thumbnail"] for row in rows if row.get("thumbnail")]

    def count_hits(self) -> int:
        return self._count(self.settings.hits_collection)

    def count_frames(self) -> int:
        return self._count(self.settings.frames_collection)

    def _count(self, collection: str) -> int:
        timeout = self.settings.timeout_s
        rows = self._client.query(collection, filter="", output_fields=["count(*)"], timeout=timeout)
        return int(rows[0]["count(*)"])

    # --- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the client and, for lite, the directory (another process may open it next)."""
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()
        server, self._lite_server = self._lite_server, None
        if server is not None:
            server.stop(grace=2).wait()
        db, self._lite_db = self._lite_db, None
        if db is not None:
            db.close()

    def __enter__(self) -> HitStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _box_from_row(stored: Sequence[float] | None) -> Box | None:
    """A stored box back as the contract's floats: each FLOAT as the shortest decimal that is
    that FLOAT (0.1 reads back as 0.1, not 0.10000000149), which keeps x0 < x1 and y0 < y1."""
    if stored is None:
        return None
    x0, y0, x1, y1 = (float(str(np.float32(value))) for value in stored)
    return x0, y0, x1, y1


# --- thumbnails ----------------------------------------------------------------------------

# <camera_id>/<yyyy-mm-dd>/<ts_ms>.jpg; the camera part is the contract's ID_PATTERN, whose
# first character cannot be '.', so '.' and '..' never match a path segment.
_REFERENCE_RE = re.compile(
    r"^(?P<camera_id>[A-Za-z0-9][A-Za-z0-9._-]{0,127})/(?P<day>\d{4}-\d{2}-\d{2})/(?P<ts_ms>\d{1,16})\.jpg$"
)
# datetime cannot represent years past 9999.
_MAX_TS_MS = 253_402_300_799_999


def _utc_day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def thumbnail_reference(camera_id: str, ts_ms: int) -> str:
    """The reference `ThumbnailStore.save(camera_id, ts_ms, ...)` returns: known before (or
    without) saving, so a hit can name its peak frame's thumbnail deterministically."""
    return f"{camera_id}/{_utc_day(ts_ms)}/{ts_ms}.jpg"


class ThumbnailStore:
    """JPEG thumbnails under root/<camera_id>/<yyyy-mm-dd (UTC)>/<ts_ms>.jpg.

    References are relative paths that `path_for` checks before resolving, so a reference that
    arrives over HTTP cannot reach a file outside the root.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def save(self, camera_id: str, ts_ms: int, jpeg: bytes) -> str:
        """Write the thumbnail atomically (temp file, fsync, rename); return its reference."""
        _check_id("camera_id", camera_id)
        _check_ts_ms("ts_ms", ts_ms)
        if ts_ms > _MAX_TS_MS:
            raise ValueError(f"ts_ms {ts_ms} is past the year 9999")
        if not jpeg.startswith(JPEG_MAGIC):
            raise ValueError(f"thumbnail for {camera_id} at {ts_ms} is not a JPEG (starts with {jpeg[:4]!r})")
        reference = thumbnail_reference(camera_id, ts_ms)
        target = self.root / reference
        target.parent.mkdir(parents=True, exist_ok=True)
        # The temp file lives in the target's folder so os.replace is an atomic rename: a
        # reader (or a crash) sees the old file or the new one, never half of one.
        descriptor, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{ts_ms}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as temp_file:
                temp_file.write(jpeg)
                temp_file.flush()
                # The hit that references this file becomes durable right after; so must the file.
                os.fsync(temp_file.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return reference

    def path_for(self, reference: str) -> Path:
        """The file behind a reference from `save`; refuses anything else.

        Raises InvalidThumbnailReferenceError for a malformed reference or one that resolves
        outside the root (absolute paths, '..', symlinks pointing out), ThumbnailNotFoundError
        when the reference is well-formed but no file is there.
        """
        _check_reference(reference)
        root = self.root.resolve()
        # The pattern already excludes '..' and absolute paths; resolving catches symlinks
        # (a camera folder or file linked to somewhere else).
        path = _inside(root, (root / reference).resolve(), reference)
        if not path.is_file():
            raise ThumbnailNotFoundError(f"no thumbnail {reference!r} under {self.root}")
        return path

    def read(self, reference: str) -> bytes:
        return self.path_for(reference).read_bytes()

    def delete(self, references: Sequence[str]) -> int:
        """Delete these thumbnails (a missing one is not an error) and day folders left empty;
        returns how many files went. Checked as `path_for` checks, each day folder resolved
        once: retention deletes tens of thousands at a time (frames of one time slice)."""
        root = self.root.resolve()
        folders: dict[Path, Path] = {}  # day folder as referenced -> as resolved
        deleted = 0
        for reference in references:
            match = _check_reference(reference)
            referenced = root / match["camera_id"] / match["day"]
            if referenced not in folders:
                folders[referenced] = referenced.resolve()
            folder = _inside(root, folders[referenced], reference)
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                (folder / reference.rsplit("/", 1)[1]).unlink()
                deleted += 1
        for folder in folders.values():
            with contextlib.suppress(OSError):  # not empty yet: other thumbnails of that day
                folder.rmdir()
        return deleted


def _check_reference(reference: str) -> re.Match[str]:
    """The parts of a reference that `ThumbnailStore.save` could have returned;
    InvalidThumbnailReferenceError for anything else."""
    match = _REFERENCE_RE.fullmatch(reference) if isinstance(reference, str) else None
    if match is None:
        raise InvalidThumbnailReferenceError(
            f"thumbnail reference {reference!r} is not of the form <camera_id>/<yyyy-mm-dd>/<ts_ms>.jpg"
        )
    ts_ms = int(match["ts_ms"])
    if ts_ms > _MAX_TS_MS or _utc_day(ts_ms) != match["day"]:
        raise InvalidThumbnailReferenceError(
            f"thumbnail reference {reference!r}: the day does not match the timestamp {ts_ms}"
        )
    return match


def _inside(root: Path, resolved: Path, reference: str) -> Path:
    """`resolved` itself, when it lies under the (resolved) root."""
    if not resolved.is_relative_to(root):
        raise InvalidThumbnailReferenceError(
            f"thumbnail reference {reference!r} leads outside the thumbnail directory"
        )
    return resolved
