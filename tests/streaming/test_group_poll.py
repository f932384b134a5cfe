"""A group consumer polled through broker restarts (services/common/group_poll.py): kafka-python
3.0 lets a refused coordinator connection escape `poll()` now and then (2 in 6 restarts here),
and one such error ended the alerter's loop after an outage."""

from __future__ import annotations

import threading
import time

from vigil.services.broker.local import LocalBroker
from vigil.services.common.group_poll import poll_through_outage
from vigil.services.common.kafka import KafkaSettings, ResilientProducer, ensure_topics, make_consumer

RESTARTS = 8


def test_polling_through_broker_restarts_never_raises_and_reads_what_comes_after(tmp_path):
    broker = LocalBroker(0, log_dir=tmp_path, data_dir=tmp_path / "broker").start()
    settings = KafkaSettings(bootstrap=broker.bootstrap, event_partitions=1, frame_partitions=1)
    ensure_topics(settings)
    consumer = make_consumer(settings, group_id="restarts", topics=[settings.topics.hits])
    restarted = threading.Event()

    def restart_again_and_again() -> None:
        for _ in range(RESTARTS):
            broker.stop()
            time.sleep(1.5)
            broker.start()
            time.sleep(2.0)
        restarted.set()

    restarter = threading.Thread(target=restart_again_and_again)
    try:
        poll_through_outage(consumer, 500)  # joined the group
        restarter.start()
        while not restarted.is_set():
            poll_through_outage(consumer, 200)  # raised KafkaConnectionError without the wrapper
        with ResilientProducer(settings) as producer:
            producer.send(settings.topics.hits, b'{"after": "the restarts"}', key="cam")
            producer.flush()
        values, deadline = [], time.monotonic() + 30
        while not values and time.monotonic() < deadline:
            values = [r.value for batch in poll_through_outage(consumer, 500).values() for r in batch]
        assert values == [b'{"after": "the restarts"}']
    finally:
        restarter.join()
        consumer.close(autocommit=False)
        broker.stop()
