"""The store's one Milvus connection: a Milvus server by URI, or Milvus lite started in this
process on a local directory, and what every collection of the store does through it.

Milvus lite runs inside the detector, so this module also looks after lite's process-wide
concerns: its directory's single owner, index files torn by a killed process, grpc's noise
about an RPC lite lacks, and the Arrow memory pool lite allocates from
(`use_arrow_pool_that_returns_memory`, `release_freed_memory`).

One process owns a lite directory; every other one connects to the owner's gRPC server, which
the owner advertises in the directory (lite_sharing.py: how, and why writes are serialised).
So `vigil search`, `vigil index` and the alerter's search work beside a running detector. A
process that finds the directory locked with no live owner advertised gets MilvusLockedError;
one opened with `may_own_lite=False` (the alerter's search, which must never take the directory
from the detector) gets NoLiteOwnerError when no process has the directory open.

`MilvusConnection` is the base of the store's parts (schema.py, hits.py, frame_index.py):
each is a mixin over the same `settings` and `_client`, and `HitStore` (hit_store.py) is all
of them, so one object and one connection serve both collections.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from vigil.services.detector.store import lite_sharing
from vigil.services.detector.store.errors import (
    EmbeddingDimensionError,
    MilvusLockedError,
    NoLiteOwnerError,
    StoreError,
)
from vigil.services.detector.store.settings import StoreSettings

logger = logging.getLogger(__name__)

# Milvus returns at most this many rows from one query (its query window).
MAX_QUERY_ROWS = 16_384
# Arrow's pool for its C++ code, read once when pyarrow is imported (use_arrow_pool_that_returns_memory).
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


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
    those freed pages (bench part lite_pools: 14 MiB more per 1,000 hits, against 3.7 under
    jemalloc, which hands freed pages back to the OS within a second).

    Arrow's C++ code (Parquet reading and writing, compute: most of what lite allocates) takes
    its pool from ARROW_DEFAULT_MEMORY_POOL, read once, when pyarrow is first imported;
    `pyarrow.set_memory_pool` reaches only the allocations made from Python. So the variable is
    set while pyarrow is not imported yet (pymilvus imports it: call this first), and the
    Python-side pool as well, for a process that imported pyarrow earlier. The system pool is
    the fallback where a pyarrow build has no jemalloc. An operator's choice is left as it is.
    """
    operator_choice = os.environ.get(ARROW_POOL_VARIABLE)
    if operator_choice is None and "pyarrow" not in sys.modules:
        os.environ[ARROW_POOL_VARIABLE] = "jemalloc"
    import pyarrow  # Milvus lite's own dependency

    if operator_choice is None and pyarrow.default_memory_pool().backend_name != "jemalloc":
        try:
            pool = pyarrow.jemalloc_memory_pool()
        except NotImplementedError:  # a pyarrow built without jemalloc
            pool = pyarrow.system_memory_pool()
        pyarrow.set_memory_pool(pool)
    return pyarrow.default_memory_pool().backend_name


class MilvusConnection:
    """The client of the store's Milvus and the operations every collection shares.

    A mixin: `HitStore.__init__` sets `settings` and connects (`_connect`); the collections'
    mixins (schema.py, hits.py, frame_index.py) reach Milvus through `_client` and the helpers
    here. With a lite URI the connection owns the directory until `close()`, or, when another
    process owns it, goes through that owner's server (`lite_owner_uri` is then its URI).
    """

    settings: StoreSettings
    _client: Any
    _lite_server: Any
    _lite_db: Any
    _lite_journal: Any
    _lite_directory: Path | None
    lite_owner_uri: str | None

    # --- opening -------------------------------------------------------------------------

    def _connect(self, may_own_lite: bool = True) -> Any:
        settings = self.settings
        if settings.is_lite:
            use_arrow_pool_that_returns_memory()  # before pymilvus imports pyarrow
        from pymilvus import MilvusClient

        if not settings.is_lite:
            token = settings.token.get_secret_value() if settings.token else ""
            logger.info("connecting to Milvus server %s", settings.uri_for_logs())
            return MilvusClient(uri=settings.uri, token=token, timeout=settings.timeout_s)

        directory = Path(settings.uri).expanduser().resolve()
        if not may_own_lite:
            uri = lite_sharing.owner_uri(directory, wait_s=0) if directory.is_dir() else None
            if uri is None:
                raise NoLiteOwnerError(
                    f"no Vigil process has the Milvus lite directory {directory} open (start the "
                    "detector or `vigil up`), or point VIGIL_MILVUS_URI at a Milvus server"
                )
            return self._connect_to_owner(directory, uri)
        from milvus_lite import DataDirLockedError

        try:
            return self._open_lite(directory)
        except DataDirLockedError:
            uri = lite_sharing.owner_uri(directory)
        if uri is None:
            raise MilvusLockedError(
                f"Milvus lite directory {directory} is open by another process that serves it to no "
                f"one (no live owner in {lite_sharing.ADVERTISEMENT}): only one process may open "
                "Milvus lite; stop it, or point every process at a Milvus server URI "
                "(VIGIL_MILVUS_URI=http://host:19530)"
            ) from None
        return self._connect_to_owner(directory, uri)

    def _connect_to_owner(self, directory: Path, uri: str) -> Any:
        from pymilvus import MilvusClient

        self.lite_owner_uri = uri
        logger.info("Milvus lite %s is open in another process: connecting to its server %s", directory, uri)
        return MilvusClient(uri=uri, timeout=self.settings.timeout_s)

    def _open_lite(self, directory: Path) -> Any:
        """Become the directory's owner (DataDirLockedError when another process is) and advertise."""
        from pymilvus import MilvusClient

        if directory.exists() and not directory.is_dir():
            raise StoreError(
                f"Milvus lite URI {directory} is a file; it must be a directory "
                "(an older milvus-lite single-file database cannot be opened by milvus-lite 3)"
            )
        directory.mkdir(parents=True, exist_ok=True)
        grpc_server_log = logging.getLogger("grpc._server")
        if not any(isinstance(f, _HideUnimplementedRpc) for f in grpc_server_log.filters):
            grpc_server_log.addFilter(_HideUnimplementedRpc())
        # The lite server is started here rather than through pymilvus' "*.db" URI because
        # pymilvus' server manager turns DataDirLockedError into a bare "Open local milvus
        # failed" and keeps the directory open after client.close(), so a closed store could
        # not be reopened by another process.
        self._lite_server, self._lite_db, port, self._lite_journal = lite_sharing.start_lite_server(directory)
        self._lite_directory = directory
        uri = f"http://127.0.0.1:{port}"
        try:
            # Safe only now: we hold the directory's lock and no collection has been loaded yet.
            _discard_torn_index_files(directory)
            lite_sharing.advertise(directory, uri)
        except BaseException:
            self.close()
            raise
        logger.info("opened Milvus lite in %s, serving it to other processes at %s", directory, uri)
        return MilvusClient(uri=uri, timeout=self.settings.timeout_s)

    # --- shared by both collections ------------------------------------------------------

    def _vector(self, embedding: Sequence[float] | np.ndarray, what: str) -> list[float]:
        vector = np.asarray(embedding, dtype=np.float32)
        if vector.shape != (self.settings.dim,):
            raise EmbeddingDimensionError(
                f"{what}: embedding has shape {vector.shape}, expected ({self.settings.dim},)"
            )
        if not np.isfinite(vector).all() or not np.any(vector):
            raise ValueError(f"{what}: embedding must be finite and not all zeros (cosine is undefined)")
        return vector.tolist()

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

    def _count(self, collection: str) -> int:
        timeout = self.settings.timeout_s
        rows = self._client.query(collection, filter="", output_fields=["count(*)"], timeout=timeout)
        return int(rows[0]["count(*)"])

    def release_freed_memory(self) -> None:
        """Hand the memory Milvus lite's Arrow buffers freed back to the OS now, rather than
        when the pool's own decay gets to it (after a retention pass dropped a whole slice)."""
        if self.settings.is_lite:
            import pyarrow  # Milvus lite's own dependency

            pyarrow.default_memory_pool().release_unused()

    # --- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the client and, for lite, the directory (another process may open it next)."""
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()
        server, self._lite_server = self._lite_server, None
        directory, self._lite_directory = getattr(self, "_lite_directory", None), None
        if directory is not None:
            lite_sharing.withdraw(directory)
        if server is not None:
            server.stop(grace=2).wait()
        db, self._lite_db = self._lite_db, None
        if db is not None:
            db.close()
        journal, self._lite_journal = getattr(self, "_lite_journal", None), None
        if journal is not None:
            journal.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
