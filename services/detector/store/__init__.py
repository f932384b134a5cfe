"""Where the detector's results live: hits and a sampled frame index in Milvus.

Milvus lite (a local directory, the embedded default) or a Milvus server (by URI) hold two
collections: "hits" (one row per detected event, primary key = the contract's deterministic
hit id, so a replay after a crash overwrites instead of duplicating; with the peak region's
box, if any) and "frames" (about one frame per camera per second, for retrospective search),
cut into one partition per time slice so that retention frees memory by dropping old slices
whole (frame_slices.py). Thumbnails are JPEG files beside them, in the folder that
services/common/thumbnail_store.py keeps (the alerter serves them too).

Durability: `HitStore.upsert_hits` returns only once the rows would survive a crash, because
the detector commits its Kafka offsets right after it.

One module per part, and `HitStore` (hit_store.py) is all of them: one object, one Milvus
connection, both collections.
- settings.py: `StoreSettings` (VIGIL_MILVUS_<FIELD>);  errors.py: what the store raises;
- connection.py: the client, Milvus lite in this process and its Arrow memory pool;
- lite_sharing.py: one lite directory shared by processes through its owner's server;
- schema.py: the collections' schemas and indexes, opening and migrating them;
- hits.py: the hits collection;  frame_index.py: the frame index and its time slices.
"""

from vigil.services.detector.store.connection import MAX_QUERY_ROWS, use_arrow_pool_that_returns_memory
from vigil.services.detector.store.errors import (
    EmbeddingDimensionError,
    MilvusLockedError,
    NoLiteOwnerError,
    StoreError,
)
from vigil.services.detector.store.frame_index import FrameMatch, FrameRecord, IndexedFrame, derive_frame_id
from vigil.services.detector.store.hit_store import HitStore
from vigil.services.detector.store.hits import HitMatch, HitRecord
from vigil.services.detector.store.settings import StoreSettings

__all__ = [
    "MAX_QUERY_ROWS",
    "EmbeddingDimensionError",
    "FrameMatch",
    "FrameRecord",
    "IndexedFrame",
    "HitMatch",
    "HitRecord",
    "HitStore",
    "MilvusLockedError",
    "NoLiteOwnerError",
    "StoreError",
    "StoreSettings",
    "derive_frame_id",
    "use_arrow_pool_that_returns_memory",
]
