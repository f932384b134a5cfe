"""`HitStore`: the detector's one object for Milvus, made of the store's parts.

It is the connection (connection.py), the collections' schemas (schema.py), the hits
(hits.py) and the frame index (frame_index.py) as mixins of one class: one object, one
Milvus connection, both collections. Mixins rather than one object per collection because
the parts share all of their state (the client, the settings, lite's server) and callers
reach it as one: retention sets `frames_slice_minutes`, and the tests reach `_client` and
the schema check on the store itself.
"""

from __future__ import annotations

from typing import Any

from vigil.services.detector.frame_slices import DEFAULT_SLICE_MINUTES
from vigil.services.detector.store.frame_index import FrameIndex
from vigil.services.detector.store.hits import HitsCollection
from vigil.services.detector.store.schema import CollectionSchemas
from vigil.services.detector.store.settings import StoreSettings


class HitStore(CollectionSchemas, HitsCollection, FrameIndex):
    """The hits and frames collections, created on first use and loaded on every open.

    With a lite URI this object owns the directory until `close()`, or, when another process
    (or another HitStore) owns it, connects to the owner's server (connection.py). With
    `may_own_lite=False` it only ever connects to an owner (NoLiteOwnerError when none is open).
    Use it as a context manager, or call close().
    """

    def __init__(self, settings: StoreSettings, *, may_own_lite: bool = True) -> None:
        self.settings = settings
        self._lite_server: Any = None
        self._lite_db: Any = None
        self._lite_directory = None
        self.lite_owner_uri = None
        self._frames_since_flush = 0
        # How long a new frame slice is; retention sets it from how long frames are kept.
        self.frames_slice_minutes = DEFAULT_SLICE_MINUTES
        self._client = self._connect(may_own_lite)
        try:
            self._open_collection(settings.hits_collection, self._hits_schema(), role="hits")
            self._open_collection(settings.frames_collection, self._frames_schema(), role="frames")
            self._frame_slices = self._list_frame_slices()
        except BaseException:
            self.close()
            raise
