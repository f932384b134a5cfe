"""Acknowledgements as commands: the API process (ApiService) checks its mirror of the book, sends
the command on "alert-commands", and answers once the alerter (AlerterService, another thread
here, on the real broker) has applied it and its record is back on "alert-state". Also: the
API's live stream and its book follow the alerter's, and survive a restart of either."""

from __future__ import annotations

import statistics
import threading
import time
import uuid

import requests
from alerter_support import (
    Running,
    RunningApi,
    Stack,
    TopicReader,
    api_settings_for,
    make_hit,
    standing_query,
    wait_for,
)

from vigil.pipelines.alert_book import alert_id_for
from vigil.pipelines.alerting import AlertPolicySettings
from vigil.services.alerter.config import AlerterSettings
from vigil.services.alerter.speech import SpeechSettings
from vigil.services.common.auth import ApiToken
from vigil.services.common.contract import encode_json
from vigil.services.common.kafka import ResilientProducer, publish_query

CAMERA, QUERY = "dock-2", "boat"
VIEWER, OLGA, OTTO = "viewer-token-0123456789", "olga-token-0123456789", "otto-token-0123456789"
TOKENS = [
    ApiToken(name="vera", role="viewer", token=VIEWER),
    ApiToken(name="olga", role="operator", token=OLGA),
    ApiToken(name="otto", role="operator", token=OTTO),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def alerter_config(tmp_path) -> AlerterSettings:
    return AlerterSettings(
        group_id=f"alert-commands-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        commit_interval_s=0,
        policy=AlertPolicySettings(cooldown_s=0),  # every hit of these tests is an alert of its own
        speech=SpeechSettings(cache_dir=tmp_path / "speech", engines=["espeak-ng"], warm_up=False),
    )


def publish_hits(settings, starts_ms: list[int], query: bool = False) -> list[str]:
    """One hit per start; returns their alert ids."""
    hits = [make_hit(CAMERA, QUERY, start_ms) for start_ms in starts_ms]
    with ResilientProducer(settings) as producer:
        if query:
            publish_query(producer, settings.topics, standing_query(QUERY, "a boat at the dock"))
        for hit in hits:
            producer.send(settings.topics.hits, encode_json(hit), key=CAMERA)
        producer.flush()
    return [alert_id_for(hit.hit_id) for hit in hits]


def acknowledge(url: str, alert_id: str, token: str) -> requests.Response:
    return requests.post(f"{url}/api/v1/alerts/{alert_id}/acknowledge", headers=bearer(token), timeout=30)


def alert_at(url: str, alert_id: str) -> dict:
    return requests.get(f"{url}/api/v1/alerts/{alert_id}", headers=bearer(VIEWER), timeout=5).json()


def known_to_api(url: str, alert_id: str) -> bool:
    return (
        requests.get(f"{url}/api/v1/alerts/{alert_id}", headers=bearer(VIEWER), timeout=5).status_code == 200
    )


def test_an_acknowledgement_is_applied_by_the_alerter_and_survives_its_restart(kafka_settings, tmp_path):
    config = alerter_config(tmp_path)
    api = api_settings_for(config, tmp_path, tokens=TOKENS)
    [alert_id] = publish_hits(kafka_settings, [int(time.time() * 1000) - 5_000], query=True)
    stack = Stack(config, kafka_settings, api)
    try:
        wait_for(lambda: known_to_api(stack.url, alert_id), 30, "the alert at the API")
        done = acknowledge(stack.url, alert_id, OLGA)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "acknowledged" and done.json()["acknowledged_by"] == "olga"
        # The alerter applied it (its book, its metric), not the API.
        assert stack.service.alert_record(alert_id).acknowledged_by == "olga"
        assert stack.alerter.metric("vigil_alerter_acknowledged_total", query=QUERY) == 1
    finally:
        stack.stop()
    # A new alerter of the group: the acknowledgement is in its book, and a replayed command
    # (none here: committed) or a second operator changes nothing.
    restarted = Stack(config, kafka_settings, api)
    try:
        assert restarted.service.alert_record(alert_id).acknowledged_by == "olga"
        wait_for(lambda: known_to_api(restarted.url, alert_id), 30, "the alert at the new API")
        assert alert_at(restarted.url, alert_id)["acknowledged_by"] == "olga"
        again = acknowledge(restarted.url, alert_id, OTTO)
        assert again.status_code == 409 and again.json()["acknowledged_by"] == "olga"
    finally:
        restarted.stop()


def test_two_operators_at_once_one_wins_and_the_other_is_told_who(kafka_settings, tmp_path):
    config = alerter_config(tmp_path)
    api = api_settings_for(config, tmp_path, tokens=TOKENS)
    [alert_id] = publish_hits(kafka_settings, [int(time.time() * 1000) - 5_000], query=True)
    stack = Stack(config, kafka_settings, api)
    try:
        wait_for(lambda: known_to_api(stack.url, alert_id), 30, "the alert at the API")
        answers: dict[str, requests.Response] = {}
        start = threading.Barrier(2)

        def operator(name: str, token: str) -> None:
            start.wait()
            answers[name] = acknowledge(stack.url, alert_id, token)

        threads = [threading.Thread(target=operator, args=args) for args in (("olga", OLGA), ("otto", OTTO))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        statuses = sorted(answer.status_code for answer in answers.values())
        assert statuses == [200, 409], {name: a.text for name, a in answers.items()}
        [winner] = [name for name, answer in answers.items() if answer.status_code == 200]
        [loser] = [answer for answer in answers.values() if answer.status_code == 409]
        assert loser.json()["acknowledged_by"] == winner and f"already acknowledged by {winner}" in loser.text
        assert stack.service.alert_record(alert_id).acknowledged_by == winner
        assert stack.alerter.metric("vigil_alerter_acknowledged_total", query=QUERY) == 1
    finally:
        stack.stop()


def test_with_the_alerter_stopped_an_acknowledgement_waits_then_applies(kafka_settings, tmp_path):
    config = alerter_config(tmp_path)
    api_config = api_settings_for(config, tmp_path, tokens=TOKENS, acknowledge_timeout_s=2)
    [alert_id] = publish_hits(kafka_settings, [int(time.time() * 1000) - 5_000], query=True)
    stack = Stack(config, kafka_settings, api_config)
    wait_for(lambda: known_to_api(stack.url, alert_id), 30, "the alert at the API")
    stack.alerter.stop()
    api = stack.api
    try:
        pending = acknowledge(api.url, alert_id, OLGA)
        assert pending.status_code == 503, pending.text
        assert (
            "alerter did not apply" in pending.json()["detail"] and "stays queued" in pending.json()["detail"]
        )
        assert alert_at(api.url, alert_id)["status"] == "open"
        back = Running(config, kafka_settings, api_config)  # the alerter alone: the API never stopped
        try:
            wait_for(
                lambda: alert_at(api.url, alert_id)["status"] == "acknowledged", 30, "the queued command"
            )
            assert alert_at(api.url, alert_id)["acknowledged_by"] == "olga"
        finally:
            back.stop()
    finally:
        api.stop()


def test_the_api_streams_the_alerters_changes_and_reloads_its_book_after_a_restart(kafka_settings, tmp_path):
    config = alerter_config(tmp_path)
    api_config = api_settings_for(config, tmp_path, tokens=TOKENS)
    now_ms = int(time.time() * 1000)
    [first] = publish_hits(kafka_settings, [now_ms - 60_000], query=True)
    stack = Stack(config, kafka_settings, api_config)
    try:
        wait_for(lambda: known_to_api(stack.url, first), 30, "the first alert at the API")
        assert acknowledge(stack.url, first, OLGA).status_code == 200
        stream = requests.get(
            f"{stack.url}/api/v1/alerts/stream", headers=bearer(VIEWER), stream=True, timeout=(5, 30)
        )
        # Subscribed once the headers are back (the stream subscribes before its first byte).
        assert stream.status_code == 200
        lines = stream.iter_lines(chunk_size=1, decode_unicode=True)
        [second] = publish_hits(kafka_settings, [now_ms - 5_000])
        event = next(line for line in lines if line.startswith("event:"))
        data = next(line for line in lines if line.startswith("data:"))
        assert event == "event: raised" and second in data
        stream.close()
    finally:
        stack.api.stop()
    # A new API process with the alerter still running: the book comes back from "alert-state",
    # the acknowledgement with it; /readyz says so.
    api = RunningApi(api_config, kafka_settings)
    try:
        assert requests.get(f"{api.url}/readyz", timeout=5).json()["status"] == "ready"
        assert alert_at(api.url, first)["acknowledged_by"] == "olga"
        assert alert_at(api.url, second)["status"] == "open"
    finally:
        api.stop()
        stack.alerter.stop()


def test_acknowledgement_round_trip_latency(kafka_settings, tmp_path):
    """The median time of POST .../acknowledge, from the request to the answer that the alerter
    applied it, over 20 alerts (printed; run with -s)."""
    config = alerter_config(tmp_path)
    api = api_settings_for(config, tmp_path, tokens=TOKENS)
    now_ms = int(time.time() * 1000)
    alert_ids = publish_hits(kafka_settings, [now_ms - 600_000 + i * 20_000 for i in range(20)], query=True)
    stack = Stack(config, kafka_settings, api)
    try:
        wait_for(lambda: len(stack.api.service.alerts) == 20, 60, "20 alerts at the API")
        seconds = []
        for alert_id in alert_ids:
            started = time.perf_counter()
            done = acknowledge(stack.url, alert_id, OLGA)
            seconds.append(time.perf_counter() - started)
            assert done.status_code == 200, done.text
        median_ms = statistics.median(seconds) * 1000
        print(
            f"\nacknowledgement round trip over {len(seconds)}: median {median_ms:.0f} ms, "
            f"max {max(seconds) * 1000:.0f} ms"
        )
        assert median_ms < 5_000
    finally:
        stack.stop()


def test_a_command_that_does_not_decode_is_dead_lettered_and_changes_nothing(kafka_settings, tmp_path):
    config = alerter_config(tmp_path)
    [alert_id] = publish_hits(kafka_settings, [int(time.time() * 1000) - 5_000], query=True)
    topics = kafka_settings.topics
    dead = TopicReader(kafka_settings, topics.dead_letters)
    running = Running(config, kafka_settings)
    try:
        wait_for(lambda: alert_id in running.service.book, 30, "the alert")
        with ResilientProducer(kafka_settings) as producer:
            producer.send(topics.alert_commands, b'{"alert_id": "' + alert_id.encode() + b'"}', key=alert_id)
            producer.flush()
        wait_for(lambda: running.metric("vigil_alerter_bad_commands_total") == 1, 15, "the bad command")
        wait_for(lambda: any("dlq.source_topic" in dict(r.headers) for r in dead.poll()), 15, "a dead letter")
        [letter] = [r for r in dead.records if "dlq.source_topic" in dict(r.headers)]
        assert dict(letter.headers)["dlq.source_topic"] == topics.alert_commands.encode()
        assert b"AcknowledgeCommand" in dict(letter.headers)["dlq.reason"]
        assert running.service.alert_record(alert_id).status == "open"
    finally:
        running.stop()
        dead.close()
