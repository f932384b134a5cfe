"""The live feed of alert changes: backlog after Last-Event-ID with no gap or repeat, resync when
that is impossible, a stuck subscriber cut off, close ends every stream."""

from __future__ import annotations

import asyncio
import threading

from vigil.pipelines.alert_book import AlertRecord
from vigil.services.api.feed import AlertFeed
from vigil.services.common.contract import AlertMessage


def record(n: int) -> AlertRecord:
    return AlertRecord(
        alert=AlertMessage(
            alert_id=f"alert:cam:q:{n}",
            hit_id=f"cam:q:{n}",
            camera_id="cam",
            query_id="q",
            severity="warning",
            text="Cảnh báo",
            language="vi",
            raised_ts_ms=n,
        )
    )


def test_a_reconnecting_client_gets_exactly_what_it_missed():
    async def scenario():
        feed = AlertFeed(replay=10)
        changes = [feed.publish("raised", record(n)) for n in range(5)]
        loop = asyncio.get_running_loop()
        with feed.subscribe(changes[1].id, loop) as subscription:
            assert [c.seq for c in subscription.backlog] == [3, 4, 5] and not subscription.resync
            # Published from another thread, as the alerter's loop does.
            thread = threading.Thread(target=feed.publish, args=("acknowledged", record(1)))
            thread.start()
            thread.join()
            live = await subscription.next(timeout_s=2)
            assert (live.seq, live.kind) == (6, "acknowledged")
        with feed.subscribe(None, loop) as fresh:  # a first connection: only what comes next
            assert fresh.backlog == [] and not fresh.resync
        assert feed.subscribers == 0

    asyncio.run(scenario())


def test_resync_when_the_missed_changes_are_unknown():
    async def scenario():
        feed = AlertFeed(replay=3)
        changes = [feed.publish("raised", record(n)) for n in range(6)]
        loop = asyncio.get_running_loop()
        assert feed.subscribe(changes[1].id, loop).resync  # changes 3 and 4 are gone from the buffer
        assert not feed.subscribe(changes[2].id, loop).resync  # 4, 5, 6 are all still there
        assert feed.subscribe("0badc0de-2", loop).resync  # another alerter process
        assert feed.subscribe(f"{feed.epoch}-99", loop).resync  # from the future
        assert feed.subscribe("garbage", loop).resync

    asyncio.run(scenario())


def test_a_subscriber_that_stops_reading_is_cut_off_and_close_ends_streams():
    async def scenario():
        feed = AlertFeed(replay=10, max_queued=2)
        loop = asyncio.get_running_loop()
        stuck = feed.subscribe(None, loop)
        for n in range(4):
            feed.publish("raised", record(n))
        await asyncio.sleep(0)  # let the loop run the hand-overs
        assert [await stuck.next(1), await stuck.next(1), await stuck.next(1)][2] is None
        assert stuck.overflowed
        reader = feed.subscribe(None, loop)
        feed.close()
        assert await reader.next(1) is None
        assert await feed.subscribe(None, loop).next(1) is None  # closed for newcomers too

    asyncio.run(scenario())
