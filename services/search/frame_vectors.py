"""`FrameVectors`: the frame index's embeddings held in this process, searched with FAISS.

Why this index (measured on the 2-core AVX2 machine, 1,000,000 clustered 384-d rows, top 200):
an exhaustive scan costs 59 ms (fp16) to 65 ms (SQ8) a search, alone over half the 150 ms
budget that the text's embedding (80-140 ms) leaves little of; an inverted file of 1,024 lists
with 8-bit scalar-quantised codes (IVF1024,SQ8) costs 3-6 ms visiting 16-64 lists (about
0.06 ms a list at a million rows), keeps 384 bytes a row (fp32: 1,536), takes rows added and
removed by id at any time (HNSW cannot remove), and builds in about 20 s per million rows.
PROBES: on the bench's rows (real embeddings of 146 frames plus noise, 100,000 rows, 10 texts)
the top 200 spreads over many lists: 32 lists found 0.77 of the exact top 200, 128 0.95, 160
0.96, 256 0.985, and every frame returned at 160 scored within 0.002 of the exact 200th.

Filters hold exactly: the camera and capture-time bounds select rows by an id bitmap (a FAISS
IDSelectorBitmap over the slot numbers); a selective filter visits more lists (probes_for), up
to all of them, where the search is exhaustive over the selected rows (one camera's last hour).

Until `train_rows` rows are held there is nothing to train the lists on: the rows are kept as
float32 and searched exhaustively (a matrix product: 65,536 rows cost about 3 ms).

Each row has a slot (its FAISS id); a forgotten row's slot is reused by the next new row, so
the arrays stay as large as the most rows held at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from vigil.pipelines.frame_cache_plan import probes_for

LISTS = 1_024
PROBES = 160
TRAIN_ROWS = 65_536
_NO_CAMERA = -1


@dataclass(frozen=True)
class CachedMatch:
    frame_id: str
    camera_id: str
    ts_ms: int
    thumbnail: str
    score: float  # the cosine similarity, up to the codes' quantisation


class FrameVectors:
    """Rows keyed by frame id, each in a partition (a time slice); thread-safe."""

    def __init__(self, dim: int, *, lists: int = LISTS, probes: int = PROBES, train_rows: int = TRAIN_ROWS):
        self.dim, self.lists, self.probes, self.train_rows = dim, lists, probes, max(train_rows, lists)
        self._lock = threading.Lock()
        self._slot_of: dict[str, int] = {}
        self._free: list[int] = []
        self._size = 0  # slots in use or freed: [0, size)
        self._camera = np.full(1024, _NO_CAMERA, dtype=np.int32)
        self._ts = np.zeros(1024, dtype=np.int64)
        self._partition = np.zeros(1024, dtype=np.int32)
        self._thumbnail: list[str] = [""] * 1024
        self._camera_codes: dict[str, int] = {}
        self._camera_names: list[str] = []
        self._partition_codes: dict[str, int] = {}
        self._raw: np.ndarray | None = np.zeros((1024, dim), dtype=np.float32)  # until trained
        self._index: faiss.IndexIVFScalarQuantizer | None = None

    def __len__(self) -> int:
        return len(self._slot_of)

    @property
    def trained(self) -> bool:
        return self._index is not None

    # --- writing -------------------------------------------------------------------------

    def upsert(
        self,
        frame_ids: Sequence[str],
        camera_ids: Sequence[str],
        ts_ms: Sequence[int] | np.ndarray,
        thumbnails: Sequence[str],
        partitions: Sequence[str],
        vectors: np.ndarray,
    ) -> None:
        """Add rows, or replace those already held under the same frame id."""
        if not len(frame_ids):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(frame_ids), self.dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = (vectors / np.where(norms > 0, norms, 1)).astype(np.float32)  # as Milvus' COSINE
        with self._lock:
            self._forget_locked([i for i in frame_ids if i in self._slot_of])
            slots = np.array([self._take_slot() for _ in frame_ids], dtype=np.int64)
            for slot, frame_id, camera, ts, thumbnail, partition in zip(
                slots.tolist(), frame_ids, camera_ids, ts_ms, thumbnails, partitions, strict=True
            ):
                self._slot_of[frame_id] = slot
                self._camera[slot] = self._code(self._camera_codes, camera, self._camera_names)
                self._ts[slot] = int(ts)
                self._partition[slot] = self._code(self._partition_codes, partition, None)
                self._thumbnail[slot] = thumbnail or ""
            if self._index is not None:
                self._index.add_with_ids(vectors, slots)
            else:
                assert self._raw is not None
                self._raw[slots] = vectors
                if len(self._slot_of) >= self.train_rows:
                    self._train_locked()

    def forget(self, frame_ids: Sequence[str]) -> None:
        with self._lock:
            self._forget_locked([i for i in frame_ids if i in self._slot_of])

    def drop_partition(self, partition: str) -> int:
        """Forget every row of a partition (a dropped time slice); how many."""
        with self._lock:
            code = self._partition_codes.get(partition)
            if code is None:
                return 0
            slots = np.flatnonzero((self._partition[: self._size] == code) & self._live_mask())
            self._free_slots(slots)
            return len(slots)

    def _forget_locked(self, frame_ids: Sequence[str]) -> None:
        if frame_ids:
            self._free_slots(np.array([self._slot_of[i] for i in frame_ids], dtype=np.int64))

    def _free_slots(self, slots: np.ndarray) -> None:
        if not len(slots):
            return
        if self._index is not None:
            self._index.remove_ids(faiss.IDSelectorBatch(slots.astype(np.int64)))
        for slot in slots.tolist():
            camera = self._camera_names[self._camera[slot]]
            self._slot_of.pop(f"{camera}:{int(self._ts[slot])}", None)  # frame ids are derived
            self._thumbnail[slot] = ""
        self._camera[slots] = _NO_CAMERA
        self._free += slots.tolist()

    def _take_slot(self) -> int:
        if self._free:
            return self._free.pop()
        if self._size == len(self._camera):
            grown = len(self._camera) * 2
            self._camera = np.concatenate([self._camera, np.full(grown // 2, _NO_CAMERA, np.int32)])
            self._ts = np.resize(self._ts, grown)
            self._partition = np.resize(self._partition, grown)
            self._thumbnail += [""] * (grown // 2)
            if self._raw is not None:
                self._raw = np.concatenate([self._raw, np.zeros_like(self._raw)])
        self._size += 1
        return self._size - 1

    @staticmethod
    def _code(codes: dict[str, int], name: str, names: list[str] | None) -> int:
        code = codes.get(name)
        if code is None:
            code = codes[name] = len(codes)
            if names is not None:
                names.append(name)
        return code

    def _train_locked(self) -> None:
        assert self._raw is not None
        slots = np.flatnonzero(self._live_mask())
        vectors = self._raw[slots]
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, self.lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        sample = vectors[np.random.default_rng(0).permutation(len(vectors))[: self.lists * 100]]
        index.train(sample)
        index.add_with_ids(vectors, slots.astype(np.int64))
        self._index, self._raw = index, None

    def _live_mask(self) -> np.ndarray:
        return self._camera[: self._size] != _NO_CAMERA

    # --- searching -----------------------------------------------------------------------

    def search(
        self,
        vector: np.ndarray,
        top_k: int,
        camera_ids: Sequence[str] | None = None,
        since_ts_ms: int | None = None,
        until_ts_ms: int | None = None,
    ) -> list[CachedMatch]:
        """The top_k rows nearest `vector` (unit length) by cosine, best first, within the
        cameras and inclusive capture-time bounds."""
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        with self._lock:
            filtered = camera_ids is not None or since_ts_ms is not None or until_ts_ms is not None
            mask = self._live_mask()
            if camera_ids is not None:
                codes = [self._camera_codes[c] for c in camera_ids if c in self._camera_codes]
                mask &= np.isin(self._camera[: self._size], codes)
            if since_ts_ms is not None:
                mask &= self._ts[: self._size] >= since_ts_ms
            if until_ts_ms is not None:
                mask &= self._ts[: self._size] <= until_ts_ms
            if self._index is None:
                slots, scores = self._exact(query[0], np.flatnonzero(mask), top_k)
            else:
                slots, scores = self._approximate(query, mask if filtered else None, top_k)
            return [
                CachedMatch(
                    f"{self._camera_names[self._camera[s]]}:{int(self._ts[s])}",
                    self._camera_names[self._camera[s]],
                    int(self._ts[s]),
                    self._thumbnail[s],
                    float(score),
                )
                for s, score in zip(slots.tolist(), scores.tolist(), strict=True)
            ]

    def _exact(self, query: np.ndarray, slots: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        assert self._raw is not None
        scores = self._raw[slots] @ query
        if len(scores) > top_k:
            best = np.argpartition(-scores, top_k - 1)[:top_k]
            slots, scores = slots[best], scores[best]
        order = np.argsort(-scores, kind="stable")
        return slots[order], scores[order]

    def _approximate(
        self, query: np.ndarray, mask: np.ndarray | None, top_k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self._index is not None
        params = faiss.SearchParametersIVF()
        params.nprobe = self.probes
        if mask is not None:
            selected = int(mask.sum())
            if not selected:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            bitmap = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))  # n: bytes
            probes = probes_for(selected, len(self._slot_of), self.lists, self.probes)
            params.sel, params.nprobe = selector, probes
        scores, slots = self._index.search(query, top_k, params=params)
        found = slots[0] >= 0
        return slots[0][found], scores[0][found]

    # --- accounting ----------------------------------------------------------------------

    def memory_bytes(self) -> int:
        """The arrays' and codes' bytes (not the dict of ids or the thumbnails' strings)."""
        arrays = self._camera.nbytes + self._ts.nbytes + self._partition.nbytes + 8 * len(self._thumbnail)
        if self._raw is not None:
            return arrays + self._raw.nbytes
        assert self._index is not None
        return arrays + self._index.ntotal * (self._index.code_size + 8) + self.lists * self.dim * 4
