"""Webhook delivery against a real HTTP receiver on loopback (http.server, no mocks)."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
from alerter_support import SECRET, Receiver, Response
from pydantic import ValidationError

from vigil.services.alerter.webhooks import (
    ATTEMPT_HEADER,
    CANCELLED,
    DELIVERED,
    EVENT_ID_HEADER,
    EXHAUSTED,
    QUEUE_FULL,
    REJECTED,
    DeadLetter,
    WebhookDispatcher,
    WebhookSender,
    WebhookSettings,
    encode_payload,
    redact_url,
    sign,
    verify_signature,
)

PAYLOAD = {
    "alert_id": "cam1:q1:1700000000000",
    "camera_id": "cam1",
    "text": "người đàn ông mặc áo đỏ",
    "thumbnail_url": "https://thumbs.example/cam1/1700000000000.jpg",
}


def settings(url: str, **overrides) -> WebhookSettings:
    fields = dict(
        name="ops",
        url=url,
        secret=SECRET,
        timeout_s=2.0,
        max_attempts=4,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
    )
    return WebhookSettings(**(fields | overrides))


class Recorder:
    def __init__(self) -> None:
        self.dead: list[DeadLetter] = []
        self.observed: list[tuple[str, float]] = []

    def sender(self, s: WebhookSettings) -> WebhookSender:
        return WebhookSender(
            s, on_dead_letter=self.dead.append, observe=lambda o, t: self.observed.append((o, t))
        )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- signing ----------------------------------------------------------------------------


def test_sign_and_verify_round_trip_and_failures():
    body = encode_payload(PAYLOAD)
    header = sign(SECRET, body, timestamp=1_700_000_000)
    t, v1 = header.split(",")
    assert t == "t=1700000000" and v1.startswith("v1=") and len(v1) == 3 + 64
    assert verify_signature(SECRET, body, header, now=1_700_000_100)
    assert not verify_signature(SECRET, body.replace(b"cam1", b"cam2"), header, now=1_700_000_100)  # tampered
    assert not verify_signature("another-secret-0123456789", body, header, now=1_700_000_100)  # wrong secret
    assert not verify_signature(SECRET, body, header, now=1_700_000_301)  # stale: a replay
    assert not verify_signature(SECRET, body, header, now=1_699_999_000)  # from the future
    assert verify_signature(SECRET, body, header, now=1_700_000_900, tolerance_s=1000)
    # The timestamp is signed: moving it invalidates the signature.
    assert not verify_signature(
        SECRET, body, header.replace("t=1700000000", "t=1700000200"), now=1_700_000_200
    )
    for bad in (None, "", "garbage", "t=abc,v1=00", "v1=" + "0" * 64, "t=1700000000", f"{t},v1"):
        assert not verify_signature(SECRET, body, bad, now=1_700_000_000), bad
    # Secret rotation: several v1 entries, one of them right.
    rotated = f"{t},v1={'0' * 64},{v1}"
    assert verify_signature(SECRET, body, rotated, now=1_700_000_000)


def test_settings_validation_and_secret_hidden():
    s = settings("https://user:p4ssw0rd-x@hooks.example:8443/alerts?token=qwerty123&x=1")
    text = repr(s) + str(s)
    for leaked in (SECRET, "p4ssw0rd-x", "qwerty123", "user:"):
        assert leaked not in text
    assert s.safe_url == "https://hooks.example:8443/alerts?token=***&x=***"
    assert s.model_dump_json().count(SECRET) == 0
    assert s.secret.get_secret_value() == SECRET

    with pytest.raises(ValidationError, match="at least 16 characters") as short:
        settings("https://hooks.example/a", secret="tooshort-123")
    assert "tooshort-123" not in str(short.value)
    for url in (
        "ftp://hooks.example/a",
        "hooks.example/a",
        "file:///etc/passwd",
        "http:///nohost",
        "http://h:99999/",
    ):
        with pytest.raises(ValidationError, match="url"):
            settings(url)
    with pytest.raises(ValidationError, match="backoff_max_s"):
        settings("https://hooks.example/a", backoff_initial_s=2, backoff_max_s=1)
    with pytest.raises(ValidationError):
        settings("https://hooks.example/a", bogus=1)
    assert redact_url("http://[::1]:8080/p?a=1#frag") == "http://[::1]:8080/p?a=***"


# --- delivery ---------------------------------------------------------------------------


def test_delivers_signed_json_with_headers(receiver):
    rec = Recorder()
    result = rec.sender(settings(receiver.url)).deliver("alert-1", PAYLOAD)
    assert (result.ok, result.attempts, result.status, result.error) == (True, 1, 200, None)
    [got] = receiver.received
    assert got.verified
    assert json.loads(got.body) == PAYLOAD
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers[EVENT_ID_HEADER] == "alert-1"
    assert got.headers[ATTEMPT_HEADER] == "1"
    assert rec.dead == [] and [o for o, _ in rec.observed] == [DELIVERED]


def test_retries_5xx_then_delivers_on_attempt_3(receiver):
    receiver.plan = [Response(500), Response(503), Response(200)]
    rec = Recorder()
    result = rec.sender(settings(receiver.url)).deliver("alert-2", PAYLOAD)
    assert result.ok and result.attempts == 3 and result.status == 200
    assert [r.headers[ATTEMPT_HEADER] for r in receiver.received] == ["1", "2", "3"]
    assert {r.headers[EVENT_ID_HEADER] for r in receiver.received} == {"alert-2"}  # idempotency key
    assert all(r.verified for r in receiver.received)  # each retry freshly signed
    assert rec.dead == [] and [o for o, _ in rec.observed] == [DELIVERED]


@pytest.mark.parametrize("status", [400, 404, 301])
def test_permanent_failure_is_not_retried(receiver, status):
    receiver.plan = [Response(status, body=b"bad payload", headers={"Location": "http://elsewhere/"})]
    rec = Recorder()
    result = rec.sender(settings(receiver.url)).deliver("alert-3", PAYLOAD)
    assert not result.ok and result.attempts == 1 and result.status == status
    assert len(receiver.received) == 1
    [dead] = rec.dead
    assert (dead.webhook, dead.event_id, dead.attempts, dead.status, dead.outcome) == (
        "ops",
        "alert-3",
        1,
        status,
        REJECTED,
    )
    assert "bad payload" in dead.error and dead.payload == PAYLOAD and dead.url == receiver.url
    json.dumps(dead.to_dict())  # ready for the dead-letters topic
    assert [o for o, _ in rec.observed] == [REJECTED]


def test_exhausted_5xx_dead_letters_after_max_attempts(receiver):
    receiver.plan = [Response(502, body=b"upstream down")]
    rec = Recorder()
    result = rec.sender(settings(receiver.url, max_attempts=3)).deliver("alert-4", PAYLOAD)
    assert not result.ok and result.attempts == 3 and len(receiver.received) == 3
    [dead] = rec.dead
    assert dead.outcome == EXHAUSTED and dead.status == 502 and "upstream down" in dead.error


def test_retry_after_is_honoured_up_to_backoff_max(receiver):
    receiver.plan = [Response(429, headers={"Retry-After": "3600"}), Response(200)]
    s = settings(receiver.url, backoff_initial_s=0.0, backoff_max_s=0.3)
    started = time.monotonic()
    result = WebhookSender(s).deliver("alert-5", PAYLOAD)
    assert result.ok and result.attempts == 2
    gap = receiver.received[1].at - receiver.received[0].at
    assert 0.25 <= gap < 1.0, gap  # waited, but capped at backoff_max_s, not an hour
    assert time.monotonic() - started < 1.5


def test_slow_receiver_each_attempt_bounded_by_timeout(receiver):
    receiver.plan = [Response(200, delay_s=2.0)]
    rec = Recorder()
    s = settings(receiver.url, timeout_s=0.2, max_attempts=3)
    started = time.monotonic()
    result = rec.sender(s).deliver("alert-6", PAYLOAD)
    elapsed = time.monotonic() - started
    assert not result.ok and result.attempts == 3 and result.status is None
    assert "timed out after 0.2 s (read)" in result.error
    assert len(receiver.received) == 3
    assert elapsed < 3 * 0.2 + 3 * 0.05 + 0.4, elapsed  # three bounded tries plus backoff, not 3 x 2 s
    [dead] = rec.dead
    assert dead.outcome == EXHAUSTED and dead.attempts == 3 and "timed out" in dead.error


def test_connection_refused_dead_letters():
    rec = Recorder()
    url = f"http://127.0.0.1:{closed_port()}/hook"
    result = rec.sender(settings(url, max_attempts=2)).deliver("alert-7", PAYLOAD)
    assert not result.ok and result.attempts == 2 and result.status is None
    [dead] = rec.dead
    assert (
        dead.outcome == EXHAUSTED and "connection" in dead.error.lower() and "refused" in dead.error.lower()
    )


def test_secret_never_logged(receiver, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    rec = Recorder()
    receiver.plan = [Response(500, body=b"oops")]
    userinfo_url = receiver.url.replace("http://", "http://alice:pw-Zq81xx@") + "?token=tk-998877"
    rec.sender(settings(userinfo_url, max_attempts=2)).deliver("alert-8", PAYLOAD)
    rec.sender(settings(f"http://127.0.0.1:{closed_port()}/h?token=tk-998877", max_attempts=2)).deliver(
        "alert-9", PAYLOAD
    )
    assert len(receiver.received) == 2 and all(r.verified for r in receiver.received)
    assert "Authorization" in receiver.received[0].headers  # the userinfo became basic auth
    assert caplog.records and "attempt 1/2 failed" in caplog.text
    assert SECRET not in caplog.text and "pw-Zq81xx" not in caplog.text
    # urllib3's DEBUG log prints request paths; ours never shows query values.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("vigil."))
    assert "tk-998877" not in ours and "pw-Zq81xx" not in ours and "token=***" in ours
    for dead in rec.dead:
        text = json.dumps(dead.to_dict())
        assert SECRET not in text and "pw-Zq81xx" not in text and "tk-998877" not in text


def test_bad_event_id_or_payload_raises_before_sending(receiver):
    sender = WebhookSender(settings(receiver.url))
    with pytest.raises(ValueError):
        sender.deliver("evil\r\nX-Injected: 1", PAYLOAD)
    with pytest.raises(TypeError):
        sender.deliver("alert-10", {"when": object()})
    with pytest.raises(ValueError):
        sender.deliver("alert-10", {"score": float("nan")})
    assert receiver.received == []


# --- dispatcher -------------------------------------------------------------------------


def test_dispatcher_submit_does_not_block_on_slow_receiver(receiver):
    receiver.plan = [Response(200, delay_s=0.2)]
    fast = Receiver()
    try:
        rec = Recorder()
        dispatcher = WebhookDispatcher(
            [settings(receiver.url, name="slow"), settings(fast.url, name="fast")],
            on_dead_letter=rec.dead.append,
            observe=lambda o, t: rec.observed.append((o, t)),
        )
        started = time.monotonic()
        for i in range(3):
            dispatcher.submit(f"alert-d{i}", PAYLOAD | {"n": i})
        assert time.monotonic() - started < 0.1
        fast.wait_for(3, timeout=1.0)  # the fast webhook is not held up by the slow one
        assert len(receiver.received) < 3
        assert dispatcher.close(timeout=5.0)
        assert [json.loads(r.body)["n"] for r in receiver.received] == [0, 1, 2]
        assert all(r.verified for r in receiver.received + fast.received)
        assert rec.dead == [] and [o for o, _ in rec.observed] == [DELIVERED] * 6
        with pytest.raises(RuntimeError):
            dispatcher.submit("alert-late", PAYLOAD)
    finally:
        fast.stop()


def test_dispatcher_queue_full_dead_letters(receiver):
    receiver.plan = [Response(200, delay_s=10.0)]  # held until released
    rec = Recorder()
    dispatcher = WebhookDispatcher(
        [settings(receiver.url, timeout_s=5.0)], on_dead_letter=rec.dead.append, queue_size=1
    )
    dispatcher.submit("alert-q0", PAYLOAD)
    receiver.wait_for(1)  # in flight
    dispatcher.submit("alert-q1", PAYLOAD)  # waits in the queue
    dispatcher.submit("alert-q2", PAYLOAD)  # no room
    [dead] = rec.dead
    assert (dead.event_id, dead.outcome, dead.attempts, dead.error) == (
        "alert-q2",
        QUEUE_FULL,
        0,
        "queue full (1 events waiting)",
    )
    receiver.release.set()
    assert dispatcher.close(timeout=5.0)
    assert [r.headers[EVENT_ID_HEADER] for r in receiver.received] == ["alert-q0", "alert-q1"]


def test_dispatcher_close_timeout_dead_letters_the_rest(receiver):
    receiver.plan = [Response(503)]
    rec = Recorder()
    s = settings(receiver.url, max_attempts=10, backoff_initial_s=5.0, backoff_max_s=5.0)
    dispatcher = WebhookDispatcher([s], on_dead_letter=rec.dead.append)
    dispatcher.submit("alert-c0", PAYLOAD)
    dispatcher.submit("alert-c1", PAYLOAD)
    receiver.wait_for(1)  # c0 tried once, now backing off for 5 s
    started = time.monotonic()
    assert not dispatcher.close(timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert sorted((d.event_id, d.outcome) for d in rec.dead) == [
        ("alert-c0", CANCELLED),
        ("alert-c1", CANCELLED),
    ]
    by_id = {d.event_id: d for d in rec.dead}
    assert by_id["alert-c0"].attempts == 1 and by_id["alert-c0"].status == 503
    assert by_id["alert-c1"].attempts == 0
    assert len(receiver.received) == 1
