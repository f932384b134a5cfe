"""Prometheus metrics of the alerter (`vigil_alerter_*`).

`vigil_alerter_hit_to_alert_seconds` runs from the capture of the hit's peak frame (the moment
the thing was seen) to the alert being sent to "alerts" (on the broker a few ms later, the
producer's linger): detection, the detector's confirmation delay, Kafka and speech synthesis
included.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0)
_SPEECH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)


class AlerterMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else REGISTRY
        self.alerts = Counter(
            "vigil_alerter_alerts",
            "Alerts raised, by query and final severity",
            ["query", "severity"],
            registry=r,
        )
        self.suppressed = Counter(
            "vigil_alerter_suppressed",
            "Hits that raised no alert; reason: duplicate, cooldown, disarmed",
            ["query", "reason"],
            registry=r,
        )
        self.muted = Counter(
            "vigil_alerter_muted", "Alerts raised muted (quiet hours)", ["query"], registry=r
        )
        self.acknowledged = Counter(
            "vigil_alerter_acknowledged", "Alerts acknowledged by an operator", ["query"], registry=r
        )
        self.bad_hits = Counter("vigil_alerter_bad_hits", "Hits sent to the dead-letter topic", registry=r)
        self.bad_commands = Counter(
            "vigil_alerter_bad_commands",
            "Commands (alert-commands) sent to the dead-letter topic",
            registry=r,
        )
        self.hit_to_alert_seconds = Histogram(
            "vigil_alerter_hit_to_alert_seconds",
            "Seconds from the capture of a hit's peak frame to its alert being sent",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.speech_seconds = Histogram(
            "vigil_alerter_speech_synthesis_seconds",
            "Seconds of one speech engine attempt (cache hits not included)",
            ["engine", "ok"],
            buckets=_SPEECH_BUCKETS,
            registry=r,
        )
        self.speech_engine = Counter(
            "vigil_alerter_speech",
            "Alerts spoken, by the engine whose audio was used (cached or not); none = no audio",
            ["engine"],
            registry=r,
        )
        self.webhooks = Counter(
            "vigil_alerter_webhook_deliveries",
            "Webhook deliveries by outcome: delivered, rejected, exhausted, queue_full, cancelled",
            ["webhook", "outcome"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "vigil_alerter_webhook_seconds",
            "Seconds from the first webhook attempt to its outcome, backoff included",
            ["webhook"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def observe_speech(self, engine: str, seconds: float, ok: bool) -> None:
        self.speech_seconds.labels(engine, "true" if ok else "false").observe(seconds)

    def webhook_observer(self, webhook: str):
        def observe(outcome: str, seconds: float) -> None:
            self.webhooks.labels(webhook, outcome).inc()
            self.webhook_seconds.labels(webhook).observe(seconds)

        return observe
