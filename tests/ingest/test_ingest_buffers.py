"""DropOldestQueue: bounded, newest kept, what was dropped is reported."""

from __future__ import annotations

import threading

import pytest

from vigil.services.ingest.buffers import DropOldestQueue


def test_a_full_queue_drops_its_oldest_item_and_returns_it():
    queue: DropOldestQueue[int] = DropOldestQueue(3)
    assert [queue.put(i) for i in range(5)] == [None, None, None, 0, 1]
    assert queue.drain() == [2, 3, 4]
    assert len(queue) == 0


def test_items_come_out_oldest_first():
    queue: DropOldestQueue[str] = DropOldestQueue(4)
    for item in "abc":
        queue.put(item)
    assert [queue.get_nowait() for _ in range(4)] == ["a", "b", "c", None]


def test_every_put_wakes_the_consumer():
    woken = threading.Event()
    queue: DropOldestQueue[int] = DropOldestQueue(1, on_put=woken.set)
    queue.put(1)
    assert woken.is_set()


def test_concurrent_producers_never_exceed_the_bound():
    queue: DropOldestQueue[int] = DropOldestQueue(10)
    dropped = []

    def produce(base: int) -> None:
        for i in range(1000):
            if queue.put(base + i) is not None:
                dropped.append(1)

    threads = [threading.Thread(target=produce, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(queue) == 10
    assert len(dropped) == 4000 - 10


def test_rejects_a_queue_that_holds_nothing():
    with pytest.raises(ValueError, match="maxsize"):
        DropOldestQueue(0)
