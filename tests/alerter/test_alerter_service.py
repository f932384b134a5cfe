"""The alerter service on the real broker: hits in, spoken Vietnamese alerts out, state kept across
a restart (acknowledgements, no re-alerting of redelivered hits), bad hits and failed webhook
deliveries dead-lettered."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from vigil.pipelines.alerting import AlertPolicySettings
from vigil.services.alerter.book import AlreadyAcknowledgedError
from vigil.services.alerter.config import AlerterConfig
from vigil.services.alerter.service import AlerterService, alert_id_for
from vigil.services.alerter.speech import SpeechSettings
from vigil.services.alerter.webhooks import WebhookSettings
from vigil.services.broker.local import free_loopback_port
from vigil.services.common.contract import AlertMessage, HitMessage, QueryMessage, derive_hit_id, encode_json
from vigil.services.common.kafka import (
    ResilientProducer,
    assign_all_partitions,
    make_consumer,
    publish_query,
)

CAMERA, QUERY = "cam-3", "q-moto"


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class TopicReader:
    """Every record of a topic from its first, without joining a group."""

    def __init__(self, settings, topic: str) -> None:
        self.consumer = make_consumer(settings, group_id=None)
        assign_all_partitions(self.consumer, topic)
        self.consumer.seek_to_beginning()
        self.records: list = []

    def poll(self) -> list:
        for records in self.consumer.poll(timeout_ms=100).values():
            self.records.extend(records)
        return self.records

    def close(self) -> None:
        self.consumer.close(autocommit=False)


class Running:
    """An AlerterService looping in a thread; an exception there fails the test at stop()."""

    def __init__(self, config: AlerterConfig, settings) -> None:
        self.registry = CollectorRegistry()
        self.service = AlerterService(config, settings, metrics_registry=self.registry)
        self.stop_event = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.service.run(self.stop_event)
        except BaseException as error:  # reported by stop()
            self.errors.append(error)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(30)
        self.service.close()
        assert not self.thread.is_alive()
        assert not self.errors, self.errors


def hit(start_ms: int, end_ms: int | None = None) -> HitMessage:
    return HitMessage(
        hit_id=derive_hit_id(CAMERA, QUERY, start_ms),
        camera_id=CAMERA,
        query_id=QUERY,
        event_start_ts_ms=start_ms,
        peak_ts_ms=start_ms + 1_000,
        end_ts_ms=end_ms,
        peak_score=0.83,
        thumbnail=f"{CAMERA}/{start_ms + 1_000}.jpg",
        encoder="offline-test",
    )


@pytest.fixture
def config(tmp_path) -> AlerterConfig:
    dead_port = free_loopback_port()  # nothing listens there: every delivery is refused
    return AlerterConfig(
        group_id="alerter-test",
        metrics_port=0,
        policy=AlertPolicySettings(cooldown_s=60),
        speech=SpeechSettings(cache_dir=tmp_path / "speech", engines=["espeak-ng"]),
        webhooks=[
            WebhookSettings(
                name="ops",
                url=f"http://127.0.0.1:{dead_port}/hook?token=abcdef123456",
                secret="s" * 32,
                max_attempts=1,
                timeout_s=1,
            )
        ],
        cameras={CAMERA: "cổng chính"},
    )


def test_hits_become_spoken_alerts_that_survive_a_restart(kafka_settings, config):
    topics = kafka_settings.topics
    now_ms = int(time.time() * 1000)
    first, cooled, second = now_ms - 300_000, now_ms - 290_000, now_ms - 200_000
    with ResilientProducer(kafka_settings) as producer:
        publish_query(
            producer,
            topics,
            QueryMessage(
                query_id=QUERY,
                text="Một chiếc xe máy",
                language="vi",
                severity="critical",
                created_by="test",
                updated_ts_ms=now_ms,
            ),
        )
        for message in (hit(first), hit(first, end_ms=first + 5_000), hit(cooled), hit(second)):
            producer.send(topics.hits, encode_json(message), key=CAMERA)
        producer.send(topics.hits, b'{"hit_id": "broken"', key=CAMERA)
        producer.flush()

    alerts = TopicReader(kafka_settings, topics.alerts)
    dead = TopicReader(kafka_settings, topics.dead_letters)
    running = Running(config, kafka_settings)
    try:
        wait_for(lambda: len(alerts.poll()) >= 2, 30, "two alerts")
        # One bad hit and one failed webhook delivery per alert.
        wait_for(lambda: len(dead.poll()) >= 3, 15, "three dead letters")
        wait_for(
            lambda: running.metric("vigil_alerter_suppressed_total", query=QUERY, reason="duplicate"),
            5,
            "the close",
        )
        first_id = alert_id_for(hit(first).hit_id)
        record = running.service.acknowledge(first_id, "lan")
        assert record.status == "acknowledged" and record.end_ts_ms == first + 5_000
        with pytest.raises(AlreadyAcknowledgedError, match="already acknowledged by lan"):
            running.service.acknowledge(first_id, "minh")
        assert running.metric("vigil_alerter_alerts_total", query=QUERY, severity="critical") == 2
        assert running.metric("vigil_alerter_suppressed_total", query=QUERY, reason="cooldown") == 1
        assert running.metric("vigil_alerter_suppressed_total", query=QUERY, reason="duplicate") == 1
        assert running.metric("vigil_alerter_acknowledged_total", query=QUERY) == 1
        assert running.metric("vigil_alerter_speech_total", engine="espeak-ng") == 2
        assert running.metric("vigil_alerter_hit_to_alert_seconds_count") == 2
        assert (
            running.metric("vigil_alerter_webhook_deliveries_total", webhook="ops", outcome="exhausted") == 2
        )
    finally:
        running.stop()

    messages = [AlertMessage.model_validate_json(record.value) for record in alerts.records]
    assert [m.alert_id for m in messages] == [first_id, alert_id_for(hit(second).hit_id)]
    assert all(record.key == CAMERA.encode() for record in alerts.records)
    for message in messages:
        assert message.text == "Khẩn cấp: phát hiện một chiếc xe máy tại camera cổng chính."
        assert message.language == "vi" and message.severity == "critical" and not message.muted
        assert message.query_text == "Một chiếc xe máy" and message.peak_score == pytest.approx(0.83)
        assert message.speech_engine == "espeak-ng"
        audio = config.speech.cache_dir / message.audio
        assert audio.is_file() and audio.read_bytes()[:4] == b"RIFF"

    bad = [r for r in dead.records if "dlq.source_topic" in dict(r.headers)]
    webhook_letters = [r for r in dead.records if "dlq.source" in dict(r.headers)]
    assert len(bad) == 1 and len(webhook_letters) == 2
    bad = bad[0]
    headers = dict(bad.headers)
    assert headers["dlq.source_topic"] == topics.hits.encode()
    assert b"HitMessage" in headers["dlq.reason"]
    assert bad.value == b'{"hit_id": "broken"'
    for letter in webhook_letters:
        document = json.loads(letter.value)
        assert document["webhook"] == "ops" and document["outcome"] == "exhausted"
        assert document["payload"]["alert"]["alert_id"] == letter.key.decode()
        assert "abcdef123456" not in letter.value.decode()  # the URL's token is masked
        assert dict(letter.headers)["dlq.source"] == b"webhook:ops"

    # The detector redelivers the same hits (same ids) to a restarted alerter of the same group.
    with ResilientProducer(kafka_settings) as producer:
        for message in (hit(first, end_ms=first + 5_000), hit(second), hit(second, end_ms=second + 4_000)):
            producer.send(topics.hits, encode_json(message), key=CAMERA)
        producer.flush()
    restarted = Running(config.model_copy(update={"webhooks": []}), kafka_settings)
    try:
        acknowledged = restarted.service.book.get(first_id)
        assert acknowledged.status == "acknowledged" and acknowledged.acknowledged_by == "lan"
        assert [r.alert_id for r in restarted.service.open_alerts()] == [alert_id_for(hit(second).hit_id)]
        wait_for(
            lambda: restarted.metric("vigil_alerter_suppressed_total", query=QUERY, reason="duplicate") == 3,
            30,
            "the redelivered hits to be judged",
        )
        second_record = restarted.service.book.get(alert_id_for(hit(second).hit_id))
        assert second_record.end_ts_ms == second + 4_000
        time.sleep(0.5)
        assert len(alerts.poll()) == 2
        assert restarted.metric("vigil_alerter_alerts_total", query=QUERY, severity="critical") == 0
    finally:
        restarted.stop()
        alerts.close()
        dead.close()
