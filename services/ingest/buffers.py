"""The bounded hand-over between a camera's reader thread and the publisher thread."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """A FIFO of at most `maxsize` items; putting into a full queue drops the oldest item.

    For live video the newest frame is the one worth publishing: when the publisher cannot
    keep up (broker slow or down), memory stays bounded and what is published is recent.
    `on_put` is called after every put (e.g. to wake the publisher).
    """

    def __init__(self, maxsize: int, on_put: Callable[[], None] | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"DropOldestQueue maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._on_put = on_put

    def put(self, item: T) -> T | None:
        """Append `item`; return the item dropped to make room, if any."""
        with self._lock:
            dropped = self._items.popleft() if len(self._items) >= self.maxsize else None
            self._items.append(item)
        if self._on_put is not None:
            self._on_put()
        return dropped

    def get_nowait(self) -> T | None:
        """The oldest item, or None when empty."""
        with self._lock:
            return self._items.popleft() if self._items else None

    def drain(self) -> list[T]:
        """Remove and return every item, oldest first."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
