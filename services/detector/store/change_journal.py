"""What changed in the frame index, for the searching processes' vector caches to follow.

Milvus lite offers no cheap way to ask what changed: a partition's row count costs about 2 us a
row (its dedup pipeline), a filtered query about 8 us a row searched, and a field such as an
insertion time cannot be added to an existing lite collection (no AddCollectionField). But every
write to a lite directory passes through its owner's gRPC server (lite_sharing.py: the detector,
`vigil index` and the API all reach lite through it), so that server notes each change to a
collection with a `frame_id` primary key in a journal beside the data, `vigil-changes.jsonl`:

    {"generation": "<uuid>", "pid": 1234}                     (the first line: this owner's)
    {"op": "upsert", "collection": "vigil_frames", "partition": "frames_...", "ids": [...]}
    {"op": "delete", "collection": "vigil_frames", "partition": "", "expr": "frame_id in [...]"}
    {"op": "drop_partition", "collection": "vigil_frames", "partition": "frames_..."}

A reader (services/search/frame_cache.py) keeps its offset and reads only new whole lines: a
refresh costs what changed, not what is stored. A new owner starts a new generation (the file
replaced), and so does a journal past MAX_JOURNAL_BYTES; a reader that sees another generation
has missed changes and reloads. A Milvus server has no such journal.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

JOURNAL = "vigil-changes.jsonl"
# Replaced by a new generation past this (readers then reload: at 8 frames/s about 2 weeks).
MAX_JOURNAL_BYTES = 256 * 1024 * 1024
# Only collections keyed by this field are journaled (the frame index; the hits stay on Milvus).
JOURNALED_KEY = "frame_id"


class ChangeJournal:
    """The owner's side: appends one line per successful change, under the server's write lock."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / JOURNAL
        self._lock = threading.Lock()
        self._file = self._start_generation()

    def _start_generation(self) -> Any:
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(json.dumps({"generation": uuid.uuid4().hex, "pid": os.getpid()}) + "\n")
        os.replace(temporary, self.path)
        return open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for appends)

    def note(self, rpc: str, request: Any) -> None:
        """Journal a successful mutating RPC, if it changed a journaled collection."""
        record = _record_for(rpc, request)
        if record is None:
            return
        with self._lock:
            if self._file.tell() > MAX_JOURNAL_BYTES:
                self._file.close()
                self._file = self._start_generation()
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._file.flush()  # readers in other processes see it at once; no fsync: a cache aid

    def close(self) -> None:
        with self._lock:
            self._file.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _record_for(rpc: str, request: Any) -> dict[str, Any] | None:
    if rpc not in ("Upsert", "Insert", "Delete", "DropPartition", "DropCollection", "TruncateCollection"):
        return None
    collection, partition = request.collection_name, getattr(request, "partition_name", "")
    if rpc in ("Upsert", "Insert"):
        for field_data in request.fields_data:
            if field_data.field_name == JOURNALED_KEY:
                ids = list(field_data.scalars.string_data.data)
                return {"op": "upsert", "collection": collection, "partition": partition, "ids": ids}
        return None
    if rpc == "Delete":
        return {"op": "delete", "collection": collection, "partition": partition, "expr": request.expr}
    if rpc == "DropPartition":
        return {"op": "drop_partition", "collection": collection, "partition": partition}
    if rpc in ("DropCollection", "TruncateCollection"):
        return {"op": "reset", "collection": collection, "partition": ""}
    return None


def succeeded(response: Any) -> bool:
    """Whether a mutating RPC's response (a MutationResult or a bare Status) says it worked."""
    status = getattr(response, "status", response)
    return int(getattr(status, "code", 0)) == 0 and int(getattr(status, "error_code", 0)) == 0


@dataclass
class JournalReader:
    """A reader's side: `read` returns the records appended since the last call, or None when
    the journal is missing or another generation began (changes may have been missed)."""

    directory: Path
    generation: str | None = None
    offset: int = 0
    _partial: bytes = field(default=b"", repr=False)

    def start(self) -> bool:
        """Start at the journal's current end (a load that follows sees everything before it);
        False when there is no journal (no lite owner that journals)."""
        try:
            with open(self.directory / JOURNAL, "rb") as file:
                header = file.readline()
                self.generation = _generation(header)
                file.seek(0, os.SEEK_END)
                self.offset = file.tell()
        except OSError:
            return False
        self._partial = b""
        return self.generation is not None

    def read(self) -> list[dict[str, Any]] | None:
        try:
            with open(self.directory / JOURNAL, "rb") as file:
                if _generation(file.readline()) != self.generation:
                    return None
                file.seek(self.offset)
                data = file.read()
        except OSError:
            return None
        self.offset += len(data)
        data, self._partial = self._partial + data, b""
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for its end
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                logger.warning("skipped an unreadable line of the change journal")
                return None
        return records


def _generation(header: bytes) -> str | None:
    try:
        record = json.loads(header)
    except ValueError:
        return None
    return str(record["generation"]) if isinstance(record, dict) and "generation" in record else None
