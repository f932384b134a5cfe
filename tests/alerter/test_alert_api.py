"""The HTTP API (its own service, `vigil api`) beside a real alerter (real broker, real uvicorn,
real espeak-ng audio): the live event stream with working media links, acknowledgement by role
(a command the alerter applies), resume after a reconnect, signed webhook payloads whose
thumbnail link works, and refusals that are 4xx."""

from __future__ import annotations

import io
import json
import logging
import stat
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from alerter_support import SECRET, Receiver, Stack, api_settings_for, make_hit, standing_query
from PIL import Image

from vigil.services.alerter.config import AlerterSettings
from vigil.services.alerter.service import alert_id_for
from vigil.services.alerter.speech import SpeechSettings
from vigil.services.alerter.webhooks import WebhookSettings
from vigil.services.common.api_settings import ApiSettings
from vigil.services.common.auth import ApiToken, UrlSigner
from vigil.services.common.contract import HitMessage, encode_json
from vigil.services.common.kafka import ResilientProducer, publish_query
from vigil.services.common.thumbnail_store import ThumbnailStore

CAMERA, QUERY = "gate-3", "fence"
VIEWER, OPERATOR, ADMIN = "viewer-token-0123456789", "operator-token-0123456789", "admin-token-0123456789"
SIGNING_KEY = "link-signing-key-0123456789abcdef"
TOKENS = [
    ApiToken(name="vera", role="viewer", token=VIEWER),
    ApiToken(name="olga", role="operator", token=OPERATOR),
    ApiToken(name="ada", role="admin", token=ADMIN),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class EventStream:
    """A Server-Sent Events client over requests: one parsed event per `next()`."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.response = requests.get(url, headers=headers or {}, stream=True, timeout=(5, 30))
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._lines = self.response.iter_lines(decode_unicode=True)

    def next(self) -> dict:
        fields: dict = {}
        for line in self._lines:
            if line == "":
                if "data" in fields or "event" in fields:
                    if "data" in fields:
                        fields["data"] = json.loads(fields["data"])
                    return fields
                fields = {}  # a comment-only block (keep-alive, "following")
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise AssertionError("the event stream ended")

    def close(self) -> None:
        self.response.close()


def thumbnail_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def gate_hit(start_ms: int, thumbnail: str, end_ms: int | None = None) -> HitMessage:
    return make_hit(CAMERA, QUERY, start_ms, end_ms=end_ms, peak_after_ms=500, thumbnail=thumbnail, score=0.9)


def config_for(tmp_path, **api) -> tuple[AlerterSettings, ApiSettings]:
    """An alerter's settings and its API's (`api` overrides the latter's)."""
    config = AlerterSettings(
        group_id=f"alerter-api-test-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        speech=SpeechSettings(cache_dir=tmp_path / "speech", engines=["espeak-ng"]),
        cameras={CAMERA: "cổng số 3"},
    )
    return config, api_settings_for(config, tmp_path, **api)


def publish(settings, *messages: HitMessage, query: bool = False) -> None:
    with ResilientProducer(settings) as producer:
        if query:
            query = standing_query(QUERY, "người leo rào", language="vi", severity="warning")
            publish_query(producer, settings.topics, query)
        for message in messages:
            producer.send(settings.topics.hits, encode_json(message), key=CAMERA)
        producer.flush()


def test_stream_links_acknowledgement_and_resume(kafka_settings, tmp_path, receiver: Receiver, caplog):
    caplog.set_level(logging.DEBUG)
    start_ms = int(time.time() * 1000) - 5_000
    reference = ThumbnailStore(tmp_path / "thumbnails").save(CAMERA, start_ms + 500, thumbnail_jpeg())
    config, api_config = config_for(tmp_path, tokens=TOKENS, signing_key=SIGNING_KEY)
    config = config.model_copy(
        update={"webhooks": [WebhookSettings(name="ops", url=receiver.url, secret=SECRET, timeout_s=2)]}
    )
    publish(kafka_settings, query=True)
    running = Stack(config, kafka_settings, api_config)
    api = running.url
    try:
        # EventSource cannot set headers: the token rides in the query string.
        stream = EventStream(f"{api}/api/v1/alerts/stream?access_token={VIEWER}")
        publish(kafka_settings, gate_hit(start_ms, reference))
        raised = stream.next()
        assert running.metric("vigil_api_stream_clients") == 1
        alert_id = alert_id_for(gate_hit(start_ms, reference).hit_id)
        assert raised["event"] == "raised" and raised["data"]["alert_id"] == alert_id
        view = raised["data"]
        assert view["status"] == "open" and view["alert"]["language"] == "vi"
        assert view["alert"]["text"] == "Cảnh báo: phát hiện người leo rào tại camera cổng số 3."

        # The links work without a token (an <audio> element, a webhook receiver) ...
        audio = requests.get(view["audio_url"], timeout=5)
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
        assert audio.content == (config.speech.cache_dir / view["alert"]["audio"]).read_bytes()
        assert audio.content[:4] == b"RIFF"
        picture = requests.get(view["thumbnail_url"], timeout=5)
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        assert picture.content == thumbnail_jpeg()
        # ... and so does the webhook's, whose signature the receiver verified.
        receiver.wait_for(1)
        delivered = receiver.received[0]
        assert delivered.verified
        payload = json.loads(delivered.body)
        assert payload["event"] == "alert.raised" and payload["alert"]["alert_id"] == alert_id
        assert requests.get(payload["thumbnail_url"], timeout=5).content == thumbnail_jpeg()
        assert urlsplit(payload["audio_url"]).path == urlsplit(view["audio_url"]).path

        listed = requests.get(f"{api}/api/v1/alerts", headers=bearer(VIEWER), timeout=5).json()["alerts"]
        assert [a["alert_id"] for a in listed] == [alert_id]

        # Acknowledging needs an operator; once, and the second try names who did it first.
        acknowledge = f"{api}/api/v1/alerts/{alert_id}/acknowledge"
        assert requests.post(acknowledge, headers=bearer(VIEWER), timeout=5).status_code == 403
        done = requests.post(acknowledge, headers=bearer(OPERATOR), timeout=5)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "acknowledged" and done.json()["acknowledged_by"] == "olga"
        again = requests.post(acknowledge, headers=bearer(ADMIN), timeout=5)
        assert again.status_code == 409 and again.json()["acknowledged_by"] == "olga"
        assert "already acknowledged by olga" in again.json()["detail"]
        acknowledged = stream.next()
        assert acknowledged["event"] == "acknowledged" and acknowledged["data"]["acknowledged_by"] == "olga"

        publish(kafka_settings, gate_hit(start_ms, reference, end_ms=start_ms + 4_000))
        ended = stream.next()
        assert ended["event"] == "ended" and ended["data"]["end_ts_ms"] == start_ms + 4_000
        stream.close()

        # A client that reconnects gets exactly what it missed; one from another API process is
        # told to reload.
        resumed = EventStream(
            f"{api}/api/v1/alerts/stream", {**bearer(VIEWER), "Last-Event-ID": raised["id"]}
        )
        assert [resumed.next()["id"], resumed.next()["id"]] == [acknowledged["id"], ended["id"]]
        resumed.close()
        stale = EventStream(f"{api}/api/v1/alerts/stream", {**bearer(VIEWER), "Last-Event-ID": "0badc0de-7"})
        assert stale.next()["event"] == "resync"
        stale.close()

        assert requests.get(f"{api}/api/v1/alerts", headers=bearer(VIEWER), timeout=5).json()["alerts"] == []
        everything = requests.get(f"{api}/api/v1/alerts?status=all", headers=bearer(VIEWER), timeout=5)
        assert [a["status"] for a in everything.json()["alerts"]] == ["acknowledged"]
    finally:
        running.stop()
    # Everything the service side logged (urllib3 is this test's HTTP client, which logs the
    # stream's URL with its token, as a browser's history would).
    logged = "\n".join(
        record.getMessage() + str(record.__dict__)
        for record in caplog.records
        if not record.name.startswith("urllib3")
    )
    assert "GET /api/v1/alerts/stream -> 200" in logged
    for secret in (VIEWER, OPERATOR, ADMIN, SIGNING_KEY, SECRET):
        assert secret not in logged


def test_refusals_are_4xx_that_name_the_problem(kafka_settings, tmp_path):
    config, api_config = config_for(tmp_path, tokens=TOKENS, signing_key=SIGNING_KEY, link_ttl_s=60)
    start_ms = int(time.time() * 1000) - 5_000
    reference = ThumbnailStore(tmp_path / "thumbnails").save(CAMERA, start_ms + 500, thumbnail_jpeg())
    publish(kafka_settings, gate_hit(start_ms, reference), query=True)
    running = Stack(config, kafka_settings, api_config)
    api = running.url
    alert_id = alert_id_for(gate_hit(start_ms, reference).hit_id)
    try:
        record = wait_for_alert(running, alert_id)
        audio_path = f"/media/audio/{record.alert.audio}"

        def get(path: str, token: str | None = None, **kwargs) -> requests.Response:
            headers = bearer(token) if token else {}
            return requests.get(f"{api}{path}", headers=headers, timeout=5, **kwargs)

        no_token = get("/api/v1/alerts")
        assert no_token.status_code == 401 and no_token.headers["www-authenticate"] == "Bearer"
        assert "needs a bearer token" in no_token.json()["detail"]
        assert get("/api/v1/alerts", "not-a-real-token-at-all").status_code == 401
        assert get("/api/v1/me", ADMIN).json() == {"name": "ada", "role": "admin"}
        assert get("/api/v1/alerts/alert:nope", VIEWER).status_code == 404
        unknown = requests.post(
            f"{api}/api/v1/alerts/alert:nope/acknowledge", headers=bearer(OPERATOR), timeout=5
        )
        assert unknown.status_code == 404 and "no alert 'alert:nope'" in unknown.json()["detail"]
        assert get("/api/v1/alerts/bad%20id!", VIEWER).status_code == 422
        assert get("/api/v1/alerts?limit=0", VIEWER).status_code == 422
        bad_status = get("/api/v1/alerts?status=closed", VIEWER)
        assert bad_status.status_code == 422 and "status" in bad_status.text

        # Media: a viewer's token or a genuine, unexpired link for that very file.
        assert get(audio_path).status_code == 401
        assert get(audio_path, VIEWER).status_code == 200
        signer = UrlSigner(SIGNING_KEY, ttl_s=60)
        assert get(f"{audio_path}?{signer.signed_query(audio_path, time.time())}").status_code == 200
        expired = get(f"{audio_path}?{signer.signed_query(audio_path, time.time() - 120)}")
        assert expired.status_code == 403 and "expired" in expired.json()["detail"]
        other = "/media/audio/espeak-ng-" + "0" * 64 + ".wav"
        forged = get(f"{other}?{signer.signed_query(audio_path, time.time())}")
        assert forged.status_code == 403 and "signature" in forged.json()["detail"]
        assert get(other, VIEWER).status_code == 404
        assert get(f"/media/thumbnails/{reference}", VIEWER).content == thumbnail_jpeg()
        missing = get(f"/media/thumbnails/{CAMERA}/2020-01-01/1577836800000.jpg", VIEWER)
        assert missing.status_code == 404
        bad_name = get("/media/audio/notes.txt", VIEWER)
        assert bad_name.status_code == 400 and "not a speech cache file name" in bad_name.json()["detail"]
        # Traversal, encoded so that no client resolves the dots first.
        for path in (
            "/media/audio/..%2F..%2Fetc%2Fpasswd",
            "/media/thumbnails/..%2F..%2F..%2Fetc%2Fpasswd",
            "/media/thumbnails/%2Fetc%2Fpasswd",
            f"/media/thumbnails/{CAMERA}/%2E%2E/%2E%2E/secret.jpg",
        ):
            refused = get(path, VIEWER)
            assert refused.status_code in (400, 404), (path, refused.status_code)
            assert "root:" not in refused.text
    finally:
        running.stop()


def test_without_tokens_a_private_admin_token_is_generated(kafka_settings, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    token_file = tmp_path / "home" / "api-token"
    config, api_config = config_for(
        tmp_path, token_file=token_file, signing_key_file=tmp_path / "home" / "link-key"
    )
    running = Stack(config, kafka_settings, api_config)
    try:
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "home" / "link-key").stat().st_mode) == 0o600
        me = requests.get(f"{running.url}/api/v1/me", headers=bearer(token), timeout=5)
        assert me.json() == {"name": "admin", "role": "admin"}
    finally:
        running.stop()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert str(token_file) in logged and token not in logged


def wait_for_alert(running: Stack, alert_id: str, timeout_s: float = 30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alert_id in running.service.book and running.api.service.alerts.records():
            return running.service.alert_record(alert_id)
        time.sleep(0.1)
    pytest.fail(f"no alert {alert_id} within {timeout_s} s")
