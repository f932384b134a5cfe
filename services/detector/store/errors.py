"""What the hit store raises when it cannot do what was asked (thumbnail errors are
services/common/thumbnail_store.py's)."""

from __future__ import annotations

from vigil.errors import VigilError


class StoreError(VigilError):
    """The hit store cannot do what was asked; the message says what and how to fix it."""


class MilvusLockedError(StoreError):
    """Another process holds the Milvus lite directory and serves it to no one."""


class NoLiteOwnerError(StoreError):
    """A store opened only through lite's owner (`may_own_lite=False`) found no live owner."""


class EmbeddingDimensionError(StoreError):
    """A collection or a vector whose dimension is not the configured encoder's."""
