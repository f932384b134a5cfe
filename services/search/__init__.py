"""Retrospective search over what the detector stored, and indexing of recorded footage.

- frame_search.py: `FrameSearch`: a text, embedded by the detector's encoder, searched over the
  frame index and the hits (collapsed into moments by pipelines/search_results.py), and the
  frames of a camera around a time; `LazyFrameSearch` opens it on first use (the alerter);
- frame_cache.py, frame_vectors.py: the frame index held in the searching process (FAISS),
  loaded from Milvus and kept fresh from the lite owner's change journal;
- indexing.py: `index_video`: a recorded file decoded, sampled, embedded and written into the
  same frame index, with thumbnails (`vigil index`).
"""

# What the store raises, for the API's refusals (the store is the detector's).
from vigil.services.detector.store import StoreError
from vigil.services.search.frame_search import (
    FrameSearch,
    LazyFrameSearch,
    SearchSettings,
    SearchUnavailableError,
)
from vigil.services.search.indexing import IndexProgress, index_video

__all__ = [
    "FrameSearch",
    "IndexProgress",
    "LazyFrameSearch",
    "SearchSettings",
    "SearchUnavailableError",
    "StoreError",
    "index_video",
]
