"""Sharing one Milvus lite directory between processes: one owner serves it, the others connect.

Milvus lite lets one process open a directory (an OS file lock, `LOCK`), and Vigil's owner (the
detector, or whichever process opened the directory first) already reaches its collections
through lite's gRPC server, started in its own process on a free loopback port. So that search
(the alerter's API, `vigil search`) and `vigil index` work while the detector writes, the owner
advertises that server and the others use it as they would a Milvus server:

1. The owner takes the lock (starting lite), then writes `vigil-server.json` in the directory,
   atomically (a temporary file renamed over it): `{"uri": "http://127.0.0.1:PORT", "pid": ...,
   "started": ...}` (`started` is the process's start time from /proc, so a recycled pid is not
   mistaken for the owner). It removes the file on close.
2. Another process that finds the directory locked reads the file and connects to that URI, if
   the process it names is alive and is the one that started then. A file whose owner is dead is
   stale (a killed owner cannot remove it; its lock went with it): it is never trusted, and the
   next owner overwrites it.
3. Lite's engine lets one writer into a collection at a time (its WAL and sequence numbers are
   not guarded against concurrent writers); one client writing serially, as the detector does,
   met that, but two processes writing (the detector and `vigil index`) would not. So the
   owner's server runs every mutating RPC under one lock; reads (search, query) run in parallel.

With a Milvus server URI none of this applies: every process connects to the server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from vigil.services.detector.store.change_journal import ChangeJournal, succeeded

logger = logging.getLogger(__name__)

ADVERTISEMENT = "vigil-server.json"
# Lite's RPCs that change a collection, its partitions or its indexes; run one at a time.
_MUTATING_RPCS = (
    "CreateCollection",
    "DropCollection",
    "Insert",
    "Upsert",
    "Delete",
    "CreateIndex",
    "DropIndex",
    "LoadCollection",
    "ReleaseCollection",
    "CreatePartition",
    "DropPartition",
    "LoadPartitions",
    "ReleasePartitions",
    "Flush",
    "TruncateCollection",
    "RenameCollection",
    "AlterCollection",
    "ManualCompaction",
)
_MAX_MESSAGE_SIZE = 256 * 1024 * 1024  # as lite's own server (Milvus standalone's limit)
_WORKERS = 10
_CLIENT_PING_INTERVAL_MS = 10_000  # pymilvus' keepalive time (its gRPC channel options)


def start_lite_server(directory: Path) -> tuple[Any, Any, int, ChangeJournal]:
    """Open Milvus lite on `directory` (DataDirLockedError when another process has it) and serve
    it on a free loopback port with mutating RPCs serialised and the frame index's changes
    journaled (change_journal.py): (grpc server, lite db, port, journal).

    Lite's `start_server_in_thread`, but with `_SerialWrites` as the servicer (see point 3)."""
    from concurrent import futures

    import grpc
    from milvus_lite.adapter.grpc.servicer import MilvusServicer
    from milvus_lite.db import MilvusLite
    from pymilvus.grpc_gen import milvus_pb2_grpc

    db = MilvusLite(str(directory))
    try:
        servicer = MilvusServicer(db)
        write_lock = threading.Lock()
        journal = ChangeJournal(directory)
        for name in _MUTATING_RPCS:
            method = getattr(servicer, name, None)
            if method is not None:
                setattr(servicer, name, _serialised(name, method, write_lock, journal))
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=_WORKERS),
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE_SIZE),
                ("grpc.max_send_message_length", _MAX_MESSAGE_SIZE),
                # pymilvus pings every 10 s, idle or not; gRPC's server default refuses pings
                # closer than 5 minutes without calls and answers with GOAWAY "too_many_pings"
                # (logged by every client after about 2 idle minutes). Accept them.
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_recv_ping_interval_without_data_ms", _CLIENT_PING_INTERVAL_MS // 2),
                ("grpc.http2.max_ping_strikes", 0),
            ],
        )
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
    except BaseException:
        db.close()
        raise
    return server, db, port, journal


def _serialised(name: str, method: Any, lock: threading.Lock, journal: ChangeJournal) -> Any:
    def call(request: Any, context: Any) -> Any:
        with lock:
            response = method(request, context)
            if succeeded(response):  # under the lock: the journal's order is the writes' order
                journal.note(name, request)
            return response

    return call


def advertise(directory: Path, uri: str) -> None:
    """Name this process's server in the directory (atomically: a reader never sees half a file)."""
    record = {"uri": uri, "pid": os.getpid(), "started": _process_start(os.getpid())}
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".vigil-server-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(record, file)
        os.replace(temporary, directory / ADVERTISEMENT)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def withdraw(directory: Path) -> None:
    """Remove this process's advertisement (only its own: a later owner's stays)."""
    path = directory / ADVERTISEMENT
    record = _read(path)
    if record is not None and record.get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def owner_uri(directory: Path, wait_s: float = 5.0) -> str | None:
    """The URI of the live owner's server, waiting up to `wait_s` for an owner that has just
    taken the lock to advertise; None when there is no live, reachable owner."""
    deadline = time.monotonic() + wait_s
    while True:
        record = _read(directory / ADVERTISEMENT)
        if record is not None and _is_live(record) and _accepts_connections(str(record["uri"])):
            return str(record["uri"])
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int) or "uri" not in record:
        return None
    return record


def _is_live(record: dict[str, Any]) -> bool:
    pid = record["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    started = _process_start(pid)
    return started is None or record.get("started") in (None, started)


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc); None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _accepts_connections(uri: str) -> bool:
    host, _, port = uri.removeprefix("http://").partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False
