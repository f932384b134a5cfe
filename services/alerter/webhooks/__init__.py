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

settings.py    WebhookSettings (one webhook) and redact_url
signing.py     the request's body, headers and signature; verify_signature for receivers
outcomes.py    DELIVERED ... CANCELLED, DeliveryResult, DeadLetter
sender.py      WebhookSender: one webhook, blocking, with the retry policy
dispatcher.py  WebhookDispatcher: a thread and a bounded queue per webhook
"""

from vigil.services.alerter.webhooks.dispatcher import WebhookDispatcher
from vigil.services.alerter.webhooks.outcomes import (
    CANCELLED,
    DELIVERED,
    EXHAUSTED,
    QUEUE_FULL,
    REJECTED,
    DeadLetter,
    DeliveryResult,
)
from vigil.services.alerter.webhooks.sender import USER_AGENT, WebhookSender
from vigil.services.alerter.webhooks.settings import MIN_SECRET_LENGTH, WebhookSettings, redact_url
from vigil.services.alerter.webhooks.signing import (
    ATTEMPT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_VERSION,
    SecretLike,
    encode_payload,
    sign,
    verify_signature,
)

__all__ = [
    "ATTEMPT_HEADER",
    "CANCELLED",
    "DELIVERED",
    "EVENT_ID_HEADER",
    "EXHAUSTED",
    "MIN_SECRET_LENGTH",
    "QUEUE_FULL",
    "REJECTED",
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "USER_AGENT",
    "DeadLetter",
    "DeliveryResult",
    "SecretLike",
    "WebhookDispatcher",
    "WebhookSender",
    "WebhookSettings",
    "encode_payload",
    "redact_url",
    "sign",
    "verify_signature",
]
