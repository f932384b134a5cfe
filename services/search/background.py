"""`BackgroundIterator`: run a producer iterator in a thread, a bounded queue ahead of its consumer.

For work that releases the GIL (PyAV decoding, onnxruntime, Pillow), so that producing the next
items overlaps with consuming the last ones. An exception in the producer is raised in the consumer
at the point the item would have come; leaving the `with` block early stops the producer
and closes it (a generator's `with` blocks exit in its thread).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


class _End:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class BackgroundIterator(Generic[T]):
    """Iterate `source` in a daemon thread, at most `depth` items ahead of the consumer."""

    def __init__(self, source: Iterator[T], depth: int) -> None:
        self._source = source
        self._queue: queue.Queue[T | _End] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="vigil-background-iterator", daemon=True)
        self._started = False

    def _produce(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            self._put(_End(error))
        else:
            self._put(_End())
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:  # a generator: run its `finally` and `with` exits (closing files) now
                close()

    def _put(self, item: T | _End) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def __enter__(self) -> BackgroundIterator[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Stop the producer and wait for it, so that what it reads (an open file) can be closed."""
        self._stop.set()
        if self._started:
            self._thread.join()
