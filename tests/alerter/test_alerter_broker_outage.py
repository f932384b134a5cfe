"""A Kafka outage, as the alerter and the API live it: noticed at once in the alerter's metrics,
the API's health endpoint and the log, and over without a restart: a hit published after the
broker's return is alerted."""

from __future__ import annotations

import logging
import time
import uuid

import requests
from alerter_support import Stack, TopicReader, api_settings_for, make_hit, standing_query, wait_for

from vigil.services.alerter.config import AlerterSettings, SpeechSettings
from vigil.services.broker.local import LocalBroker
from vigil.services.common.contract import AlertMessage, encode_json
from vigil.services.common.kafka import KafkaSettings, ResilientProducer, ensure_topics, publish_query

CAMERA, QUERY = "gate-3", "fence"


def publish_hit(settings: KafkaSettings, start_ms: int) -> str:
    hit = make_hit(CAMERA, QUERY, start_ms, end_ms=start_ms + 2_000, score=0.9)
    with ResilientProducer(settings) as producer:
        producer.send(settings.topics.hits, encode_json(hit), key=CAMERA)
        producer.flush()
    return hit.hit_id


def test_a_broker_outage_is_reported_at_once_and_alerting_resumes_after_it(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    broker = LocalBroker(0, log_dir=tmp_path, data_dir=tmp_path / "broker").start()
    settings = KafkaSettings(bootstrap=broker.bootstrap, event_partitions=1, frame_partitions=1)
    ensure_topics(settings)
    with ResilientProducer(settings) as producer:
        publish_query(producer, settings.topics, standing_query(QUERY, "a person climbing the fence"))
    config = AlerterSettings(
        group_id=f"outage-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        speech=SpeechSettings(cache_dir=tmp_path / "speech", engines=["espeak-ng"]),
    )
    stack = Stack(config, settings, api_settings_for(config, tmp_path))
    running = stack.alerter
    health = f"{stack.url}/healthz"
    try:
        assert requests.get(health, timeout=5).json() == {"status": "ok", "kafka": "up"}
        assert running.metric("vigil_kafka_broker_up") == 1

        broker.stop()
        stopped = time.monotonic()
        wait_for(lambda: running.metric("vigil_kafka_broker_up") == 0, 5, "the outage in the metrics")
        assert time.monotonic() - stopped < 3  # "at once": the monitor probes every second
        wait_for(lambda: stack.api.metric("vigil_kafka_broker_up") == 0, 5, "the outage at the API")
        body = requests.get(health, timeout=5).json()
        assert body["status"] == "degraded" and body["kafka"] == "down" and body["kafka_down_s"] >= 0
        assert running.metric("vigil_kafka_broker_outages_total") == 1
        assert any("is unreachable" in record.getMessage() for record in caplog.records)

        time.sleep(2)  # the alerter's loop meets the outage
        broker.start()
        wait_for(lambda: running.metric("vigil_kafka_broker_up") == 1, 5, "the broker's return")
        wait_for(lambda: requests.get(health, timeout=5).json()["status"] == "ok", 5, "the API's health")

        hit_id = publish_hit(settings, int(time.time() * 1000) - 3_000)
        alerts = TopicReader(settings, settings.topics.alerts)

        def alerted() -> bool:
            return any(AlertMessage.model_validate_json(r.value).hit_id == hit_id for r in alerts.poll())

        try:
            wait_for(alerted, 30, "the alert after the outage")
        finally:
            alerts.close()
        assert running.thread.is_alive() and stack.api.thread.is_alive()  # no restart was needed
    finally:
        stack.stop()
        broker.stop()
