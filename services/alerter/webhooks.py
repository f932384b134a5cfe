"""Webhook delivery: signed JSON POSTs, retried with backoff, dead-lettered after the last try.

Each request carries the payload as compact UTF-8 JSON and three headers:

    Content-Type: application/json
    X-Vigil-Event-Id: <alert id>           the same on every retry: receivers deduplicate on it
    X-Vigil-Signature: t=<unix s>,v1=<hex>  HMAC-SHA256(secret, f"{t}.{body}"), Stripe-style

The timestamp is inside the signed text, so a receiver that checks it (`verify_signature`,
default tolerance 5 minutes) rejects a replayed request. Every attempt is signed afresh.
`X-Vigil-Attempt` (1, 2, ...) is informational and not signed.

Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter
(Retry-After honoured, capped at backoff_max_s); any other status, redirects included (they
are not followed), is a permanent failure. A delivery that fails for good becomes a
`DeadLetter` handed to `on_dead_letter` (the service publishes it on "dead-letters").

The secret never appears in a repr, a log line or a dead letter; URLs are shown without their
userinfo and with query values masked (`WebhookSettings.safe_url`). Note that urllib3's own
DEBUG log prints request paths with their query strings: keep it at INFO where a webhook's URL
carries a token in its query.

`WebhookSender.deliver` blocks (up to max_attempts x timeout_s plus the backoff);
`WebhookDispatcher` gives each webhook its own thread and bounded queue so that a slow
receiver never holds up alerting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from vigil.services.common.contract import ID_PATTERN

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vigil-Signature"
EVENT_ID_HEADER = "X-Vigil-Event-Id"
ATTEMPT_HEADER = "X-Vigil-Attempt"
SIGNATURE_VERSION = "v1"
MIN_SECRET_LENGTH = 16
USER_AGENT = "vigil-webhooks/1"
_SNIPPET_BYTES = 512  # of an error response's body, kept for the dead letter
_MAX_BODY_READ = 64 * 1024  # of a success response's body, read so the connection can be reused

# Outcomes passed to `observe` (one call per event and webhook).
DELIVERED, REJECTED, EXHAUSTED, QUEUE_FULL, CANCELLED = (
    "delivered",  # a 2xx response
    "rejected",  # a permanent failure: a 4xx other than 429, a redirect, an unusable request
    "exhausted",  # still failing (connection, timeout, 429, 5xx) after max_attempts
    "queue_full",  # the dispatcher's queue for this webhook was full; never attempted
    "cancelled",  # the dispatcher closed before the event could be (re)tried
)

SecretLike = str | bytes | SecretStr


# --- Settings ---------------------------------------------------------------------------


class WebhookSettings(BaseModel):
    """One webhook (an entry of the `alerter:` section's webhook list)."""

    # hide_input_in_errors: a rejected secret or URL must not be echoed by the error message.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field("webhook", max_length=128, pattern=ID_PATTERN, description="shown in logs and metrics")
    url: str = Field(description="http(s) URL the alerts are POSTed to")
    secret: SecretStr = Field(description=f"HMAC-SHA256 key, at least {MIN_SECRET_LENGTH} characters")
    timeout_s: float = Field(5.0, gt=0, le=120, description="connect and read timeout of each attempt")
    max_attempts: int = Field(4, ge=1, le=20, description="tries before the event is dead-lettered")
    backoff_initial_s: float = Field(0.5, ge=0, le=60, description="wait after the first failed try")
    backoff_max_s: float = Field(10.0, ge=0, le=600, description="longest wait between tries")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError(f"url must be an http:// or https:// URL, not scheme {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("url has no host")
        try:
            parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
        except ValueError:
            raise ValueError("url has an invalid port") from None
        return url

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        length = len(secret.get_secret_value())
        if length < MIN_SECRET_LENGTH:
            raise ValueError(
                f"secret must be at least {MIN_SECRET_LENGTH} characters long (got {length}); generate "
                "one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return secret

    @model_validator(mode="after")
    def _backoff_order(self) -> WebhookSettings:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) is less than "
                f"backoff_initial_s ({self.backoff_initial_s})"
            )
        return self

    @property
    def safe_url(self) -> str:
        """The URL for logs and dead letters: no userinfo, query values masked."""
        return redact_url(self.url)

    def __repr_args__(self):  # repr/str show safe_url; SecretStr already masks the secret
        for name, value in super().__repr_args__():
            yield name, (self.safe_url if name == "url" else value)


def redact_url(url: str) -> str:
    """`url` without user:password@ and with every query value replaced by ***, no fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    query = "&".join(f"{key}=***" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# --- Signing ----------------------------------------------------------------------------


def _key(secret: SecretLike) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def _digest(secret: SecretLike, body: bytes, timestamp: int) -> str:
    return hmac.new(_key(secret), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign(secret: SecretLike, body: bytes, timestamp: int | None = None) -> str:
    """The X-Vigil-Signature value for `body`: "t=<unix seconds>,v1=<hex HMAC-SHA256>"."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={timestamp},{SIGNATURE_VERSION}={_digest(secret, body, timestamp)}"


def verify_signature(
    secret: SecretLike, body: bytes, header: str | None, now: float | None = None, tolerance_s: float = 300
) -> bool:
    """Whether `header` signs exactly `body` with `secret`, at a time within `tolerance_s` of now.

    For receivers (and tests). Constant-time comparison; several v1 entries are accepted (one
    matching is enough), for a sender rotating its secret. Malformed headers are False.
    """
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == SIGNATURE_VERSION:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, body, timestamp).encode("ascii")
    # No early exit: every candidate is compared.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", errors="replace"))
    return matched


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON. Raises TypeError/ValueError for a non-JSON payload."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _check_event_id(event_id: str) -> None:
    if not (isinstance(event_id, str) and 0 < len(event_id) <= 400 and event_id.isascii()):
        raise ValueError(f"event id must be 1-400 ASCII characters, got {event_id!r}")
    if not event_id.isprintable():  # no CR/LF: it travels in a header
        raise ValueError(f"event id must not contain control characters, got {event_id!r}")


# --- Delivery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    attempts: int  # requests sent (0: never tried)
    status: int | None  # the last HTTP status, None when no response came back
    error: str | None  # why it failed; None when ok


@dataclass(frozen=True)
class DeadLetter:
    """An event a webhook could not take; `to_dict()` is JSON-ready for the "dead-letters" topic."""

    webhook: str
    url: str  # safe_url: no credentials, query values masked
    event_id: str
    attempts: int
    status: int | None
    error: str
    outcome: str  # rejected, exhausted, queue_full or cancelled
    payload: Mapping[str, Any]
    ts_ms: int  # when it was dead-lettered

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Attempt:
    status: int | None
    error: str | None
    retryable: bool = False
    retry_after_s: float | None = None
    cancelled: bool = False


def _retry_after_s(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _read_capped(response: requests.Response, limit: int) -> bytes:
    """Up to `limit` bytes of the body; what arrived before an error (the status counts, not this)."""
    data = b""
    try:
        for chunk in response.iter_content(chunk_size=min(limit, 8192)):
            data += chunk
            if len(data) >= limit:
                break
    except requests.RequestException:
        pass
    return data[:limit]


class WebhookSender:
    """Delivers events to one webhook, blocking. Use it from one thread at a time (as
    `WebhookDispatcher` does): it keeps one HTTP session for connection reuse.

    on_dead_letter(DeadLetter) is called for each event that fails for good; observe(outcome,
    seconds) once per event (outcomes: the module's DELIVERED ... CANCELLED), seconds from the
    first try to the end, backoff included. Exceptions from either are logged, not raised.
    """

    def __init__(
        self,
        settings: WebhookSettings,
        on_dead_letter: Callable[[DeadLetter], None] | None = None,
        observe: Callable[[str, float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_dead_letter = on_dead_letter
        self.observe = observe
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        self._cancelled = threading.Event()
        # initial x 2^(n-1), capped, plus up to one initial backoff of jitter (capped in _wait).
        self._backoff = wait_exponential(multiplier=settings.backoff_initial_s, max=settings.backoff_max_s)
        self._backoff += wait_random(0, settings.backoff_initial_s)
        parts = urlsplit(settings.url)
        # Strings that must never reach a log line or a dead letter, longest first.
        hidden = [settings.secret.get_secret_value(), parts.password or ""]
        hidden += [value for _, value in parse_qsl(parts.query) if len(value) >= 4]
        self._hidden = sorted({h for h in hidden if h}, key=len, reverse=True)

    def deliver(self, event_id: str, payload: Mapping[str, Any]) -> DeliveryResult:
        """POST `payload` as signed JSON, retrying; dead-letters it if every try fails.

        Raises ValueError/TypeError (before any request) for a bad event id or a payload that
        is not JSON; delivery failures are returned, never raised.
        """
        _check_event_id(event_id)
        return self._deliver(event_id, encode_payload(payload), payload)

    def cancel(self) -> None:
        """Stop retrying for good (shutdown): a delivery in progress finishes its current request
        and is dead-lettered as "cancelled" if that fails; later calls send nothing."""
        self._cancelled.set()

    def close(self) -> None:
        self._session.close()

    def _deliver(self, event_id: str, body: bytes, payload: Mapping[str, Any]) -> DeliveryResult:
        s = self.settings
        started = time.monotonic()
        tries: list[_Attempt] = []

        def attempt() -> _Attempt:
            if self._cancelled.is_set():
                last = tries[-1] if tries else _Attempt(None, None)
                reason = f"{last.error}; " if last.error else ""
                error = f"{reason}cancelled: the dispatcher closed before delivery"
                return _Attempt(last.status, error, cancelled=True)
            result = self._attempt(event_id, body, len(tries) + 1)
            tries.append(result)
            return result

        retrying = Retrying(
            stop=stop_after_attempt(s.max_attempts),
            wait=self._wait,
            retry=retry_if_result(lambda a: a.error is not None and a.retryable),
            retry_error_callback=lambda state: state.outcome.result(),
            before_sleep=lambda state: self._log_retry(event_id, state),
            sleep=self._cancelled.wait,  # a cancel cuts the backoff short
        )
        last: _Attempt = retrying(attempt)
        result = DeliveryResult(last.error is None, len(tries), last.status, last.error)
        if result.ok:
            log.debug("webhook %s: event %s delivered (attempt %d)", s.name, event_id, result.attempts)
            self._observe(DELIVERED, time.monotonic() - started)
        else:
            outcome = CANCELLED if last.cancelled else EXHAUSTED if last.retryable else REJECTED
            self._dead_letter(event_id, payload, result, outcome, started)
        return result

    def _attempt(self, event_id: str, body: bytes, number: int) -> _Attempt:
        s = self.settings
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(s.secret, body),
            EVENT_ID_HEADER: event_id,
            ATTEMPT_HEADER: str(number),
        }
        try:
            with self._session.post(
                s.url,
                data=body,
                headers=headers,
                timeout=(s.timeout_s, s.timeout_s),
                allow_redirects=False,  # a redirect must not carry a signed alert elsewhere
                stream=True,  # read at most a bounded part of the response
            ) as response:
                status = response.status_code
                if 200 <= status < 300:
                    _read_capped(response, _MAX_BODY_READ)
                    return _Attempt(status, None)
                snippet = _read_capped(response, _SNIPPET_BYTES).decode("utf-8", errors="replace").strip()
                retryable = status == 429 or 500 <= status <= 599
                retry_after = _retry_after_s(response.headers.get("Retry-After"), time.time())
                error = f"HTTP {status} {response.reason or ''}".rstrip() + (
                    f": {snippet}" if snippet else ""
                )
                return _Attempt(status, self._scrub(error), retryable, retry_after if retryable else None)
        except requests.Timeout as error:  # before ConnectionError: ConnectTimeout is both
            stage = "connect" if isinstance(error, requests.ConnectTimeout) else "read"
            return _Attempt(None, f"timed out after {s.timeout_s:g} s ({stage})", retryable=True)
        except requests.ConnectionError as error:
            return _Attempt(None, self._scrub(f"connection failed: {_root_cause(error)}"), retryable=True)
        except requests.RequestException as error:  # an unusable request: retrying cannot help
            return _Attempt(None, self._scrub(f"{type(error).__name__}: {error}"), retryable=False)

    def _wait(self, state: RetryCallState) -> float:
        s = self.settings
        backoff = min(self._backoff(state), s.backoff_max_s)
        retry_after = state.outcome.result().retry_after_s if state.outcome else None
        if retry_after is not None:
            backoff = min(max(backoff, retry_after), s.backoff_max_s)
        return backoff

    def _log_retry(self, event_id: str, state: RetryCallState) -> None:
        s = self.settings
        last: _Attempt = state.outcome.result()
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "webhook %s (%s): event %s attempt %d/%d failed: %s; retrying in %.2f s",
            s.name,
            s.safe_url,
            event_id,
            state.attempt_number,
            s.max_attempts,
            last.error,
            wait,
        )

    def _dead_letter(
        self,
        event_id: str,
        payload: Mapping[str, Any],
        result: DeliveryResult,
        outcome: str,
        started: float | None = None,
    ) -> None:
        s = self.settings
        error = result.error or outcome
        log.error(
            "webhook %s (%s): event %s dead-lettered (%s) after %d attempt(s): %s",
            s.name,
            s.safe_url,
            event_id,
            outcome,
            result.attempts,
            error,
        )
        self._observe(outcome, time.monotonic() - started if started is not None else 0.0)
        if self.on_dead_letter is None:
            return
        record = DeadLetter(
            webhook=s.name,
            url=s.safe_url,
            event_id=event_id,
            attempts=result.attempts,
            status=result.status,
            error=error,
            outcome=outcome,
            payload=payload,
            ts_ms=int(time.time() * 1000),
        )
        try:
            self.on_dead_letter(record)
        except Exception:
            log.exception("webhook %s: on_dead_letter failed for event %s", s.name, event_id)

    def _observe(self, outcome: str, seconds: float) -> None:
        if self.observe is None:
            return
        try:
            self.observe(outcome, seconds)
        except Exception:
            log.exception("webhook %s: observe failed", self.settings.name)

    def _scrub(self, text: str) -> str:
        for hidden in self._hidden:
            text = text.replace(hidden, "***")
        return text


def _root_cause(error: BaseException) -> str:
    """The innermost reason of a requests/urllib3 connection error ("[Errno 111] Connection
    refused"), without the pool's URL (whose query may hold a token)."""
    reason: BaseException = error
    seen = 0
    while seen < 5:
        seen += 1
        inner = getattr(reason, "reason", None) or (reason.args[0] if reason.args else None)
        if not isinstance(inner, BaseException):
            break
        reason = inner
    text = str(reason)
    # urllib3's NewConnectionError reads "<connection>: Failed to establish ...: [Errno 111] ...".
    return text.split(": ", 1)[1] if text.startswith(("HTTPConnection", "HTTPSConnection")) else text


# --- Dispatcher -------------------------------------------------------------------------

_STOP = object()


class _Worker:
    def __init__(self, sender: WebhookSender, queue_size: int) -> None:
        self.sender = sender
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.thread = threading.Thread(target=self._run, name=f"webhook-{sender.settings.name}", daemon=True)
        self.thread.start()

    def submit(self, event_id: str, body: bytes, payload: Mapping[str, Any]) -> None:
        try:
            self.queue.put_nowait((event_id, body, payload))
        except queue.Full:
            error = f"queue full ({self.queue.maxsize} events waiting)"
            self.sender._dead_letter(event_id, payload, DeliveryResult(False, 0, None, error), QUEUE_FULL)

    def abandon_queued(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                event_id, _, payload = item
                error = "cancelled: the dispatcher closed before delivery"
                self.sender._dead_letter(event_id, payload, DeliveryResult(False, 0, None, error), CANCELLED)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            event_id = item[0]
            try:
                self.sender._deliver(*item)
            except Exception:  # a bug must not stop the webhook's thread
                log.exception("webhook %s: delivering event %s failed", self.sender.settings.name, event_id)


class WebhookDispatcher:
    """Fans events out to webhooks without blocking: one thread and one bounded queue each.

    submit() returns at once; an event that finds a webhook's queue full is dead-lettered for
    that webhook ("queue full"). close(timeout) drains the queues: whatever is still waiting or
    retrying when the timeout runs out is dead-lettered as "cancelled".
    """

    def __init__(
        self,
        webhooks: Iterable[WebhookSettings],
        on_dead_letter: Callable[[DeadLetter], None] | None = None,
        observe: Callable[[str, float], None] | None = None,
        *,
        queue_size: int = 1000,
    ) -> None:
        webhooks = list(webhooks)
        names = [w.name for w in webhooks]
        if len(set(names)) != len(names):
            raise ValueError(f"webhook names must be unique, got {names}")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._lock = threading.Lock()
        self._closed = False
        self._workers = [_Worker(WebhookSender(w, on_dead_letter, observe), queue_size) for w in webhooks]

    def submit(self, event_id: str, payload: Mapping[str, Any]) -> None:
        """Queue `payload` for every webhook. Raises ValueError/TypeError for a bad event id or
        a non-JSON payload, RuntimeError after close()."""
        _check_event_id(event_id)
        body = encode_payload(payload)
        with self._lock:
            if self._closed:
                raise RuntimeError("the webhook dispatcher is closed")
            for worker in self._workers:
                worker.submit(event_id, body, payload)

    def close(self, timeout: float = 10.0) -> bool:
        """Deliver what is queued within `timeout` seconds, then stop. True if everything was
        delivered or dead-lettered in the normal course; False if some was cancelled."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            try:
                worker.queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                pass
        clean = True
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            if worker.thread.is_alive():
                clean = False
                worker.sender.cancel()
                worker.abandon_queued()
                worker.queue.put(_STOP)  # room now: the queue was just emptied
        for worker in self._workers:
            if worker.thread.is_alive():  # the request in flight, bounded by its timeout
                worker.thread.join(worker.sender.settings.timeout_s + 1.0)
            worker.sender.close()
        return clean

    def __enter__(self) -> WebhookDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
