"""`WebhookSender`: delivers events to one webhook, blocking, with the retry policy.

Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter
(Retry-After honoured, capped at backoff_max_s); any other status, redirects included (they
are not followed), is a permanent failure, and so is a delivery still failing after
max_attempts: it becomes a `DeadLetter` handed to `on_dead_letter`. Every attempt is signed
afresh. Error texts are scrubbed of the secret, the URL's password and its query values.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from vigil.services.alerter.webhooks.outcomes import (
    CANCELLED,
    DELIVERED,
    EXHAUSTED,
    REJECTED,
    DeadLetter,
    DeliveryResult,
)
from vigil.services.alerter.webhooks.settings import WebhookSettings
from vigil.services.alerter.webhooks.signing import (
    ATTEMPT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    check_event_id,
    encode_payload,
    sign,
)

# The package's one logger, named as it was before the package was split into modules.
log = logging.getLogger("vigil.services.alerter.webhooks")

USER_AGENT = "vigil-webhooks/1"
_SNIPPET_BYTES = 512  # of an error response's body, kept for the dead letter
_MAX_BODY_READ = 64 * 1024  # of a success response's body, read so the connection can be reused


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
    seconds) once per event (outcomes: outcomes.py's DELIVERED ... CANCELLED), seconds from the
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
        check_event_id(event_id)
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
