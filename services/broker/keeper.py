"""Retention and compaction for the local broker's durable log, which tansu stores but never applies.

tansu keeps each topic's `cleanup.policy` and `retention.ms` and applies neither; its `s3://`
engine stores every produced batch as one object, `.../partitions/<p>/records/<base offset>.batch`,
and serves a fetch from the first object at or after the offset asked for. So, as an S3
lifecycle rule would, the StoreKeeper deletes whole batch objects through the store's S3 API:

- `cleanup.policy=delete`: a batch stored longer ago than the topic's `retention.ms`;
- `cleanup.policy=compact`: a batch none of whose records is its key's newest one (read through
  Kafka, so the keeper knows each record's key), or whose newest records are all tombstones
  older than the topic's `delete.retention.ms` (Kafka's default, a day, when it sets none).

Like Kafka's log cleaner it never touches a partition's newest batch, and readers see what
they would see on Kafka: a reader from the start gets every key's newest value (a compacted
topic) or the records within retention (a deleted one). Without it, frames (an hour is
configured) and state snapshots (one per camera per second) would fill the disk, and a
restarted service would replay every snapshot ever written.

Settings come from the same topic_specs that create the topics: there is no second copy, with
one bound of the local broker's own: tansu's `s3://` engine lists a partition's stored batches
on every fetch (one ListObjectsV2 of the whole partition), so a fetch costs in proportion to
what the partition holds. On s3rver's own listing, reading 100 records took 0.46 s from a
100-batch partition, 11 s from a 1,000-batch one and did not finish in 60 s from 3,000; the
object store now answers those listings from the folder (objectstore/server.js: 0.46 s and
0.83 s for 1,000 and 3,000), but each fetch still returns the whole list. So the local log
keeps at most LOCAL_FRAMES_RETENTION_MS of frames (the detector skips frames older than its
`max_lag_s`, 10 s, anyway) and LOCAL_EVENTS_RETENTION_MS of the other deleted topics (hits are
kept in Milvus, alerts and acknowledgements on the compacted "alert-state"; the topics only
carry them to their consumers, which are seconds behind), but "query-history" for as long as
configured (a record per operator edit, and the only copy of the audit trail). A Kafka cluster
applies the configured retention itself.
"""

from __future__ import annotations

import logging
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import requests
from kafka import TopicPartition
from prometheus_client import Counter

from vigil.services.broker.object_store import BUCKET
from vigil.services.common.kafka import KafkaSettings, make_consumer, topic_specs

log = logging.getLogger("vigil.broker")

DAY_MS = 86_400_000
DELETE_RETENTION_MS = DAY_MS
LOCAL_FRAMES_RETENTION_MS = 120_000
LOCAL_EVENTS_RETENTION_MS = 3_600_000
_S3_NAMESPACE = "{http://doc.s3.amazonaws.com/2006-03-01/}"
_BATCH_SUFFIX = ".batch"
LIST_PAGE_KEYS = 100

BATCHES_REMOVED = Counter(
    "vigil_broker_store_batches_removed_total",
    "Batches the store keeper deleted from the local broker's durable log",
    ["topic", "reason"],
)
BYTES_REMOVED = Counter(
    "vigil_broker_store_bytes_removed_total",
    "Bytes the store keeper freed in the local broker's durable log",
    ["topic"],
)


@dataclass(frozen=True)
class StoredBatch:
    """One stored batch object: its key, first offset, size and when it was written."""

    key: str
    base_offset: int
    size: int
    stored_ms: int


def expired_batches(batches: list[StoredBatch], retention_ms: int, now_ms: int) -> list[StoredBatch]:
    """The batches of one partition (in offset order) stored before now - retention_ms, the
    newest batch excepted (it holds the partition's end)."""
    cutoff = now_ms - retention_ms
    return [batch for batch in batches[:-1] if batch.stored_ms < cutoff]


def superseded_batches(
    batches: list[StoredBatch], live_offsets: Iterable[int], read_up_to: int
) -> list[StoredBatch]:
    """The batches of one partition (in offset order) that hold no live record, among those read
    whole (every record below `read_up_to` has been seen); the newest batch excepted."""
    live = sorted(live_offsets)
    removable = []
    cursor = 0
    for batch, following in zip(batches, batches[1:], strict=False):
        end = following.base_offset
        if end > read_up_to:
            break
        while cursor < len(live) and live[cursor] < batch.base_offset:
            cursor += 1
        if cursor < len(live) and live[cursor] < end:
            continue
        removable.append(batch)
    return removable


@dataclass
class CompactionIndex:
    """Each key's newest record in one partition: offset, tombstone or not, and its time."""

    newest: dict[bytes, tuple[int, bool, int]] = field(default_factory=dict)
    keyless: set[int] = field(default_factory=set)
    read_up_to: int = 0

    def add(self, offset: int, key: bytes | None, tombstone: bool, timestamp_ms: int) -> None:
        if key is None:
            self.keyless.add(offset)  # never compacted away (Kafka refuses them on such topics)
        else:
            self.newest[key] = (offset, tombstone, timestamp_ms)
        self.read_up_to = max(self.read_up_to, offset + 1)

    def live_offsets(self, now_ms: int, delete_retention_ms: int = DELETE_RETENTION_MS) -> set[int]:
        """Offsets that must stay; a tombstone older than `delete_retention_ms` is forgotten."""
        cutoff = now_ms - delete_retention_ms
        for key in [key for key, (_, tombstone, ts) in self.newest.items() if tombstone and ts < cutoff]:
            del self.newest[key]
        return {offset for offset, _, _ in self.newest.values()} | self.keyless


class StoreKeeper:
    """Applies retention and compaction to the durable log every `interval_s`, in a thread."""

    def __init__(
        self,
        settings: KafkaSettings,
        store_endpoint: str,
        *,
        cluster_id: str = "tansu_cluster",
        interval_s: float = 20.0,
    ) -> None:
        self.settings = settings
        self.store_endpoint = store_endpoint
        self.cluster_id = cluster_id
        self.interval_s = interval_s
        self._specs = topic_specs(settings)
        self._indexes: dict[TopicPartition, CompactionIndex] = {}
        self._consumer = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one pass ----------------------------------------------------------------------

    def run_once(self, now_ms: int | None = None) -> dict[str, int]:
        """One pass over every topic; returns {topic: batches removed}."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self._read_compacted_topics()
        removed: dict[str, int] = {}
        for topic, spec in self._specs.items():
            configs = spec["configs"]
            for partition in range(spec["num_partitions"]):
                if configs.get("cleanup.policy") == "compact":
                    batches = self._list_batches(topic, partition)
                    index = self._indexes.get(TopicPartition(topic, partition), CompactionIndex())
                    kept_ms = int(configs.get("delete.retention.ms", DELETE_RETENTION_MS))
                    live = index.live_offsets(now_ms, kept_ms)
                    doomed = superseded_batches(batches, live, index.read_up_to)
                    reason = "compacted"
                else:
                    retention_ms = self.retention_ms(topic, int(configs["retention.ms"]))
                    cutoff = now_ms - retention_ms
                    # Oldest first, stopping at the first page that reaches the cutoff: an hour
                    # of frames is thousands of batches a partition, and only the oldest go.
                    batches = self._list_batches(topic, partition, stop_at_ms=cutoff)
                    doomed = expired_batches(batches, retention_ms, now_ms)
                    reason = "expired"
                for batch in doomed:
                    self._delete(batch)
                    BATCHES_REMOVED.labels(topic=topic, reason=reason).inc()
                    BYTES_REMOVED.labels(topic=topic).inc(batch.size)
                if doomed:
                    removed[topic] = removed.get(topic, 0) + len(doomed)
        if removed:
            log.info(
                "store keeper removed batches: %s", ", ".join(f"{t} {n}" for t, n in sorted(removed.items()))
            )
        return removed

    def retention_ms(self, topic: str, configured_ms: int) -> int:
        """The topic's retention on the local log: the configured one, capped (module docstring),
        except for "query-history": one record per operator edit stays a handful of batches, and
        it is the only copy of who changed a query (nothing downstream keeps it)."""
        if topic == self.settings.topics.query_history:
            return configured_ms
        cap = LOCAL_FRAMES_RETENTION_MS if topic == self.settings.topics.frames else LOCAL_EVENTS_RETENTION_MS
        return min(configured_ms, cap)

    def _read_compacted_topics(self, budget_s: float = 20.0) -> None:
        """Read what the compacted topics gained since the last pass (all of it, the first time)."""
        if self._consumer is None:
            self._consumer = make_consumer(self.settings, group_id=None)
            partitions = [
                TopicPartition(topic, partition)
                for topic, spec in self._specs.items()
                if spec["configs"].get("cleanup.policy") == "compact"
                for partition in range(spec["num_partitions"])
            ]
            self._consumer.assign(partitions)
            self._consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline:
            batch = self._consumer.poll(timeout_ms=300, max_records=5_000)
            if not batch and self._at_end():
                return
            for partition, records in batch.items():
                index = self._indexes.setdefault(partition, CompactionIndex())
                for record in records:
                    index.add(record.offset, record.key, record.value is None, record.timestamp)

    def _at_end(self) -> bool:
        consumer = self._consumer
        assert consumer is not None
        ends = consumer.end_offsets(list(consumer.assignment()), timeout_ms=5_000)
        return all((consumer.position(tp, timeout_ms=1_000) or 0) >= end for tp, end in ends.items())

    # --- the store's S3 API --------------------------------------------------------------

    def _prefix(self, topic: str, partition: int) -> str:
        return f"clusters/{self.cluster_id}/topics/{topic}/partitions/{partition:010d}/records/"

    def _list_batches(self, topic: str, partition: int, stop_at_ms: int | None = None) -> list[StoredBatch]:
        """The partition's stored batches in offset order; with `stop_at_ms`, only the pages up
        to the first that holds a batch stored at or after it (batches are stored in offset
        order, so the rest are newer)."""
        prefix = self._prefix(topic, partition)
        batches: list[StoredBatch] = []
        marker = ""
        while True:
            response = requests.get(
                f"{self.store_endpoint}/{BUCKET}",
                # s3rver opens every listed object's metadata file at once: a page of 1000 held
                # 2000 file descriptors for a moment. 100 keeps it well under any limit.
                params={"prefix": prefix, "marker": marker, "max-keys": str(LIST_PAGE_KEYS)},
                timeout=10,
            )
            response.raise_for_status()
            root = ElementTree.fromstring(response.content)
            keys = []
            for item in root.iter(f"{_S3_NAMESPACE}Contents"):
                key = item.findtext(f"{_S3_NAMESPACE}Key") or ""
                keys.append(key)
                name = key[len(prefix) :]
                if not name.endswith(_BATCH_SUFFIX) or not name[: -len(_BATCH_SUFFIX)].isdigit():
                    continue
                modified = item.findtext(f"{_S3_NAMESPACE}LastModified") or ""
                batches.append(
                    StoredBatch(
                        key=key,
                        base_offset=int(name[: -len(_BATCH_SUFFIX)]),
                        size=int(item.findtext(f"{_S3_NAMESPACE}Size") or 0),
                        stored_ms=int(
                            datetime.fromisoformat(modified.replace("Z", "+00:00")).timestamp() * 1000
                        ),
                    )
                )
            if root.findtext(f"{_S3_NAMESPACE}IsTruncated") != "true" or not keys:
                break
            if stop_at_ms is not None and batches and max(b.stored_ms for b in batches) >= stop_at_ms:
                break
            marker = keys[-1]
        batches.sort(key=lambda batch: batch.base_offset)
        return batches

    def _delete(self, batch: StoredBatch) -> None:
        response = requests.delete(f"{self.store_endpoint}/{BUCKET}/{batch.key}", timeout=10)
        if response.status_code not in (200, 204, 404):
            response.raise_for_status()

    # --- the thread ------------------------------------------------------------------------

    def start(self) -> StoreKeeper:
        self._thread = threading.Thread(target=self._run, name="store-keeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as error:  # the broker or store away for a moment: next pass
                log.warning("store keeper pass failed (next in %.0f s): %s", self.interval_s, error)
            self._stop.wait(self.interval_s)
