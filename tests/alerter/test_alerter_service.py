"""The alerter service on the real broker: hits in, spoken Vietnamese alerts out, state kept across
a restart (acknowledgements, no re-alerting of redelivered hits), bad hits and failed webhook
deliveries dead-lettered."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from alerter_support import Running, TopicReader, make_hit, standing_query, wait_for
from kafka import KafkaAdminClient, TopicPartition

from vigil.pipelines.alert_book import AlreadyAcknowledgedError
from vigil.pipelines.alerting import WEEKDAYS, AlertPolicySettings, WeeklySchedule
from vigil.services.alerter.config import AlerterSettings
from vigil.services.alerter.service import alert_id_for
from vigil.services.alerter.speech import SpeechSettings
from vigil.services.alerter.webhooks import WebhookSettings
from vigil.services.broker.local import free_loopback_port
from vigil.services.common.contract import AlertMessage, HitMessage, encode_json
from vigil.services.common.kafka import (
    ResilientProducer,
    publish_query,
)

CAMERA, QUERY = "cam-3", "q-moto"


def hit(start_ms: int, end_ms: int | None = None) -> HitMessage:
    return make_hit(CAMERA, QUERY, start_ms, end_ms=end_ms)


@pytest.fixture
def config(tmp_path) -> AlerterSettings:
    dead_port = free_loopback_port()  # nothing listens there: every delivery is refused
    return AlerterSettings(
        group_id=f"alerter-test-{uuid.uuid4().hex[:8]}",  # a group of its own: no other test's members
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
        query = standing_query(QUERY, "Một chiếc xe máy", language="vi", severity="critical")
        publish_query(producer, topics, query)
        boxed = hit(second).model_copy(update={"box": (0.5, 0.25, 0.75, 1.0)})  # the region that matched
        for message in (hit(first), hit(first, end_ms=first + 5_000), hit(cooled), boxed):
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
    assert [m.box for m in messages] == [None, (0.5, 0.25, 0.75, 1.0)]  # the console draws it
    for message in messages:
        assert message.text == "Khẩn cấp: phát hiện một chiếc xe máy tại camera cổng chính."
        assert message.language == "vi" and message.severity == "critical" and not message.muted
        assert message.query_text == "Một chiếc xe máy" and message.peak_score == pytest.approx(0.83)
        assert message.speech_engine == "espeak-ng"
        audio = config.speech.cache_dir / message.audio
        assert audio.is_file() and audio.read_bytes()[:4] == b"RIFF"

    # The policy's memory: one record per remembered hit id, the snapshot without them.
    state_reader = TopicReader(kafka_settings, topics.alert_state)
    expected_seen = sorted(f"seen:{hit(start).hit_id}" for start in (first, cooled, second))

    def states() -> dict[str, bytes]:  # the newest value per name, as a restart reads them
        return {r.key.decode().split(":", 1)[1]: r.value for r in state_reader.poll()}

    wait_for(lambda: sorted(n for n in states() if n.startswith("seen:")) == expected_seen, 10, "seen")
    saved = states()
    state_reader.close()
    assert json.loads(saved["seen:" + hit(first).hit_id])["seen"][2] is True  # alerted
    assert json.loads(saved["policy"])["hits"] == []

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


def test_a_hit_stamped_a_day_ahead_is_dead_lettered_and_does_not_silence_the_query(kafka_settings, config):
    # Its cooldown (60 s here) would otherwise run from tomorrow: every real hit of the query
    # until then would be suppressed.
    topics = kafka_settings.topics
    now_ms = int(time.time() * 1000)
    with ResilientProducer(kafka_settings) as producer:
        publish_query(producer, topics, standing_query(QUERY, "Một chiếc xe máy", language="vi"))
        for message in (hit(now_ms + 86_400_000), hit(now_ms - 5_000)):
            producer.send(topics.hits, encode_json(message), key=CAMERA)
        producer.flush()
    alerts = TopicReader(kafka_settings, topics.alerts)
    dead = TopicReader(kafka_settings, topics.dead_letters)
    running = Running(config, kafka_settings)
    try:
        wait_for(lambda: len(alerts.poll()) >= 1, 30, "the real hit's alert")
        wait_for(lambda: any("dlq.source_topic" in dict(r.headers) for r in dead.poll()), 15, "a dead letter")
        bad_hits = running.metric("vigil_alerter_bad_hits_total")
    finally:
        running.stop()
        alerts.close()
        dead.close()
    [alert] = [AlertMessage.model_validate_json(record.value) for record in alerts.records]
    assert alert.alert_id == alert_id_for(hit(now_ms - 5_000).hit_id)
    [letter] = [r for r in dead.records if "dlq.source_topic" in dict(r.headers)]
    reason = dict(letter.headers)["dlq.reason"].decode()
    assert hit(now_ms + 86_400_000).hit_id in reason and "ahead of this machine's clock" in reason
    assert bad_hits == 1


def test_alert_phrases_are_spoken_ahead_so_the_alert_finds_its_audio_cached(kafka_settings, config):
    topics = kafka_settings.topics
    now_ms = int(time.time() * 1000)
    with ResilientProducer(kafka_settings) as producer:
        query = standing_query(QUERY, "a person climbing the fence", cameras=[CAMERA], severity="warning")
        publish_query(producer, topics, query)
    running = Running(config.model_copy(update={"webhooks": []}), kafka_settings)
    try:
        assert running.service.warmer.wait(30)
        spoken_ahead = config.speech.cache_dir.glob("espeak-ng-*.wav")
        assert len(list(spoken_ahead)) == 1
        attempts = "vigil_alerter_speech_synthesis_seconds_count"
        assert running.metric(attempts, engine="espeak-ng", ok="true") == 1
        with ResilientProducer(kafka_settings) as producer:
            producer.send(topics.hits, encode_json(hit(now_ms - 10_000)), key=CAMERA)
        wait_for(lambda: len(running.service.book), 30, "the alert")
        alert = running.service.open_alerts()[0].alert
        assert alert.text == "Alert: a person climbing the fence detected at camera cổng chính."
        assert alert.audio == running.service.speech.cache_path(alert.text, "en", "espeak-ng").name
        assert running.metric(attempts, engine="espeak-ng", ok="true") == 1  # no synthesis at alert time
    finally:
        running.stop()


def test_alerts_past_retention_are_forgotten_for_good(kafka_settings, config):
    retention_s = 2.0
    config = config.model_copy(update={"webhooks": [], "retention_days": retention_s / 86_400})
    with ResilientProducer(kafka_settings) as producer:
        producer.send(kafka_settings.topics.hits, encode_json(hit(int(time.time() * 1000))), key=CAMERA)
    running = Running(config, kafka_settings)
    try:
        running.service.prune_interval_s = 0.0
        wait_for(lambda: len(running.service.book), 30, "the alert")
        raised = time.monotonic()
        wait_for(lambda: not len(running.service.book), 10, "the alert to be forgotten")
        assert time.monotonic() - raised < retention_s + 1.0
    finally:
        running.stop()
    restarted = Running(config, kafka_settings)  # the record's tombstone is on alert-state
    try:
        assert len(restarted.service.book) == 0
    finally:
        restarted.stop()


def test_offsets_are_committed_once_the_interval_is_up_even_when_no_more_hits_come(kafka_settings, config):
    config = config.model_copy(update={"webhooks": [], "commit_interval_s": 3.0})
    now_ms = int(time.time() * 1000)
    partition = TopicPartition(kafka_settings.topics.hits, 0)
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)

    def committed() -> int | None:
        offsets = admin.list_group_offsets({config.group_id: [partition]}).get(config.group_id, {})
        return offsets[partition].offset if partition in offsets else None

    def send(message: HitMessage) -> None:
        with ResilientProducer(kafka_settings) as producer:
            producer.send(kafka_settings.topics.hits, encode_json(message), key=CAMERA)

    send(hit(now_ms - 200_000))
    running = Running(config, kafka_settings)
    try:
        wait_for(lambda: committed() == 1, 30, "the first batch's commit")  # no commit before it
        send(hit(now_ms - 100_000))  # past the cooldown: a second alert
        wait_for(lambda: len(running.service.book) == 2, 10, "the second alert")
        assert committed() == 1  # handled, not committed: the interval is not up
        wait_for(lambda: committed() == 2, 10, "the commit once the interval is up, with no hit since")
    finally:
        running.stop()
        admin.close()


def test_a_querys_own_schedule_disarms_it_outside_its_window(kafka_settings, config):
    topics = kafka_settings.topics
    now_ms = int(time.time() * 1000)
    # Armed all day, but only on the weekday three days from now (UTC): never now.
    other_day = WEEKDAYS[(datetime.fromtimestamp(now_ms / 1000, UTC).weekday() + 3) % 7]
    elsewhen = WeeklySchedule(armed=[{"days": [other_day], "start": "00:00", "end": "24:00"}])
    with ResilientProducer(kafka_settings) as producer:
        publish_query(
            producer, topics, standing_query("q-scheduled", "a person climbing the fence", schedule=elsewhen)
        )
        publish_query(producer, topics, standing_query(QUERY, "Một chiếc xe máy", language="vi"))
        for query_id in ("q-scheduled", QUERY):
            producer.send(topics.hits, encode_json(make_hit(CAMERA, query_id, now_ms - 5_000)), key=CAMERA)
        producer.flush()
    running = Running(config.model_copy(update={"webhooks": []}), kafka_settings)
    try:
        disarmed = "vigil_alerter_suppressed_total"
        wait_for(
            lambda: running.metric(disarmed, query="q-scheduled", reason="disarmed") == 1, 30, "the disarm"
        )
        wait_for(lambda: len(running.service.book), 30, "the unscheduled query's alert")
        assert [record.alert.query_id for record in running.service.alert_records()] == [QUERY]
    finally:
        running.stop()
