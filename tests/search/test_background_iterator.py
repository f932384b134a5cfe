"""BackgroundIterator: items in order, the producer's error raised in the consumer, and leaving
early stops the producer (so the file it reads can be closed)."""

from __future__ import annotations

import threading

import pytest

from vigil.services.search.background import BackgroundIterator


def test_items_come_in_order_and_the_producer_runs_ahead_at_most_depth():
    produced: list[int] = []

    def source():
        for i in range(50):
            produced.append(i)
            yield i

    seen = []
    with BackgroundIterator(source(), depth=4) as items:
        for item in items:
            seen.append(item)
            assert len(produced) <= item + 1 + 4 + 1  # depth queued, one being put
    assert seen == list(range(50))


def test_the_producers_error_is_raised_where_its_item_would_have_come():
    def source():
        yield 1
        raise OSError("disk gone")

    with BackgroundIterator(source(), depth=2) as items, pytest.raises(OSError, match="disk gone"):
        assert next(iter(items)) == 1
        for _ in items:
            pass


def test_leaving_early_stops_and_joins_the_producer():
    stopped = threading.Event()

    def source():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            stopped.set()

    with BackgroundIterator(source(), depth=2) as items:
        for item in items:
            if item == 3:
                break
    assert stopped.is_set()  # the generator was closed
    assert not any(t.name == "vigil-background-iterator" and t.is_alive() for t in threading.enumerate())
