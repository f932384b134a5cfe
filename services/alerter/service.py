"""The alerter service: hits from Kafka in, spoken alerts to "alerts", webhooks and the speaker out.

It stands on the consumer-service skeleton (services/common/consumer_service.py: poll,
snapshot, flush, commit, rebalance, run). What it decides is in pipelines/ (the policy, the
wording, the book); its state records are services/alerter/state.py. Over 400 lines because
what is left is one thing, an alert's life in the book, from raised (spoken, sent, kept)
through ended to acknowledged.

    run_alerter(Path("vigil.yaml"))     # `vigil alerter`; until SIGINT / SIGTERM

One loop, one thread (webhooks have their own threads):

1. standing queries: "queries" is loaded whole at start and followed every `query_refresh_ms`,
   for each hit's query text, language and severity;
2. a batch from the consumer group's "hits" and "alert-commands"; a hit or a command that does
   not decode goes to the dead-letter topic; a command (an acknowledgement the API sent,
   services/api/acknowledgements.py) is applied to the book once (`acknowledge`; a second one,
   or one for an unknown alert, is logged and changes nothing);
3. each hit is judged by the `AlertPolicy` (dedupe by hit id, schedules, escalation, cooldown;
   pipelines/alerting/), with the record's Kafka timestamp as its clock so a replay decides
   the same, at its query's severity (a query no longer standing: warning). A raised hit
   whose alert is not in the book yet becomes an alert with the deterministic id
   `alert:<hit_id>` (pipelines/alert_book.py): its sentence in the query's language (a query
   no longer standing: its id in the default language; pipelines/alert_wording.py), spoken to
   a cached audio file (a speech failure is logged and the alert goes out without audio), an
   `AlertMessage` on "alerts" (key = camera_id), an `AlertRecord` on "alert-state", every
   webhook, and (with `play_locally`, unless muted) the local speaker. The closed version of
   an alerted hit records the event's end time on its record;
4. every `commit_interval_s` (and at stop) the policy's memory goes to "alert-state": the
   hit ids it remembers one record each as they change (key "<group>:seen:<hit_id>", a
   tombstone when forgotten), the rest whole (key "<group>:policy"); the producer is flushed,
   and only then are the hits' offsets committed.

The HTTP API is a process of its own (`vigil api`, services/api/service.py): it mirrors the book
from "alert-state" and sends acknowledgements as commands. The links in webhook payloads point at
it: its `api:` section's public address, signed with its key. A `SpeechWarmer` thread speaks
each standing query's sentence for each known camera as soon as the query (or a new camera)
appears, so the alert finds its audio cached. Once a minute, alerts older than `retention_days`
(by the wall clock: `retention_cutoff_ms`) are forgotten (book and a tombstone on "alert-state").

So a restarted alerter (same group) loads the policy memory and the alert records first:
replayed hits are duplicates to it and raise nothing again, and acknowledgements survive.
Should it crash between publishing an alert and the flush, the alert may be published once
more under the same alert_id (at-least-once: consumers de-duplicate on it).

One alerter per consumer group: the policy's memory is one snapshot for the whole group.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry

from vigil.pipelines.admission import capture_time_problem
from vigil.pipelines.alert_book import (
    AlertBook,
    AlertRecord,
    AlertStatus,
    AlreadyAcknowledgedError,
    UnknownAlertError,
    alert_id_for,
    retention_cutoff_ms,
)
from vigil.pipelines.alert_wording import AlertWording, alert_wording
from vigil.pipelines.alerting import (
    UNKNOWN_QUERY_SEVERITY,
    AlertPolicy,
    Decision,
    decision_clock_ms,
    severity_of,
)
from vigil.services.alerter.config import AlerterServiceSettings
from vigil.services.alerter.metrics import AlerterMetrics
from vigil.services.alerter.speech import SpeechError, SpeechResult, SpeechSynthesizer, SpeechWarmer
from vigil.services.alerter.state import (
    forget_alert_record,
    restore_alerter_state,
    save_alert_record,
    save_policy_memory,
)
from vigil.services.alerter.webhooks import DeadLetter, WebhookDispatcher
from vigil.services.common.consumer_service import ConsumerService, run_service
from vigil.services.common.contract import (
    AcknowledgeCommand,
    AlertMessage,
    BadMessageError,
    HitMessage,
    QueryMessage,
    decode_json,
    encode_json,
)
from vigil.services.common.kafka import (
    KafkaRecord,
    QueryTableReader,
    send_json_dead_letter,
    send_to_dead_letter,
)
from vigil.services.common.media_links import AlertLinks
from vigil.services.common.state_log import GroupStateLog

log = logging.getLogger(__name__)

_IDLE_POLL_MS = 100
# What an alert repeats of the hit that raised it.
_FROM_THE_HIT = frozenset(
    ("hit_id", "camera_id", "query_id", "event_start_ts_ms", "peak_ts_ms", "peak_score", "thumbnail", "box")
)
_PRUNE_INTERVAL_S = 60.0


class AlerterService(ConsumerService):
    """Hits and acknowledgements in, alerts out, and the book of alerts (see the module
    docstring); `run(stop)` until `stop` is set, then `close()`."""

    def __init__(
        self,
        settings: AlerterServiceSettings,
        *,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.config = config = settings.alerter
        kafka_settings = settings.kafka
        self.metrics = AlerterMetrics(metrics_registry)
        super().__init__("alerter", kafka_settings, self.metrics.registry, config.commit_interval_s)
        self.policy = AlertPolicy(config.policy)
        self.book = AlertBook[AlertMessage]()
        # Webhooks' links to the media, served by the API process (none with the API off).
        api = settings.api
        self.links = AlertLinks(api.base_url(), api.link_signer()) if api.serves_links else None
        self.speech = SpeechSynthesizer(config.speech, observe=self.metrics.observe_speech)
        self.warmer: SpeechWarmer | None = None
        self._cameras: set[str] = set(config.cameras)  # configured, and every camera seen on a hit
        self._lock = threading.RLock()  # the book, between the loop and callers of acknowledge()
        self._last_refresh = 0.0
        self._last_prune = float("-inf")
        self.prune_interval_s = _PRUNE_INTERVAL_S
        with self.opening():
            self.open_kafka()
            # Webhooks: one dispatcher per webhook, so outcomes are counted by webhook.
            self.dispatchers: list[WebhookDispatcher] = []
            for webhook in config.webhooks:
                dispatcher = WebhookDispatcher(
                    [webhook], self._webhook_dead_letter, self.metrics.webhook_observer(webhook.name)
                )
                self.dispatchers.append(dispatcher)
                self.on_close(dispatcher.close)
            self.queries = QueryTableReader(kafka_settings, dead_letters=self.producer)
            self.on_close(self.queries.close)
            self.queries.load()
            if config.speech.warm_up:
                self.warmer = SpeechWarmer(self.speech)
                self.on_close(self.warmer.close)
                self._warm_up()
            self.state_log = GroupStateLog(
                kafka_settings, self.producer, self.topics.alert_state, config.group_id, "alerter state"
            )
            restore_alerter_state(self.state_log.load(), self.policy, self.book)
            self.open_consumer(
                [self.topics.hits, self.topics.alert_commands],
                config.group_id,
                max_poll_records=config.batch_max_hits,
            )
            self.serve_metrics(config.metrics_port)

    # --- the loop ------------------------------------------------------------------------

    def running_message(self) -> str:
        return f"alerter running: group {self.config.group_id}, {len(self.queries.table)} standing queries"

    def step(self) -> int:
        """One turn: follow the queries, handle one batch of hits and commands, checkpoint.
        Returns the records read."""
        self._refresh_queries()
        self._forget_old_alerts()
        records = self.poll(_IDLE_POLL_MS, max_records=self.config.batch_max_hits)
        if not records:
            self.checkpoint()  # commit what came before, once the interval is up
            return 0
        raised: list[tuple[AlertMessage, int]] = []
        for record in records:
            if record.topic == self.topics.alert_commands:
                self._apply_command(record)
            else:
                alert = self._handle(record)
                if alert is not None:
                    raised.append(alert)
            self.consumed([record])
        self.checkpoint()
        now_ms = time.time() * 1000
        for _alert, peak_ts_ms in raised:
            self.metrics.hit_to_alert_seconds.observe(max(0.0, now_ms - peak_ts_ms) / 1000)
        return len(records)

    def _refresh_queries(self) -> None:
        now = time.monotonic()
        if now - self._last_refresh < self.config.query_refresh_ms / 1000:
            return
        self._last_refresh = now
        if self.queries.poll(timeout_ms=0):
            self._warm_up()

    def _wording(
        self, query: QueryMessage | None, query_id: str, camera_id: str, severity: str, escalated: bool
    ) -> AlertWording:
        """The sentence an alert of `query` (None: not standing) on `camera_id` says, and its language."""
        camera_name = partial(self.config.camera_name, camera_id)
        return alert_wording(
            query, query_id, camera_name, self.config.default_language, severity, escalated=escalated
        )

    def _warm_up(self) -> None:
        """Have each standing query's alert for each camera it may fire on spoken ahead of time."""
        if self.warmer is None:
            return
        phrases = [
            self._wording(query, query.query_id, camera_id, query.severity, escalated=False)
            for query in self.queries.table.snapshot().values()
            for camera_id in sorted(query.cameras or self._cameras)
        ]
        queued = self.warmer.want(phrases)
        if queued:
            log.info("speaking %d alert phrases ahead of time", queued)

    def _handle(self, record: KafkaRecord) -> tuple[AlertMessage, int] | None:
        try:
            hit = decode_json(HitMessage, record.value)
        except BadMessageError as error:
            send_to_dead_letter(self.producer, self.topics, record, str(error))
            self.metrics.bad_hits.inc()
            return None
        latest = max(t for t in (hit.event_start_ts_ms, hit.peak_ts_ms, hit.end_ts_ms) if t is not None)
        problem = capture_time_problem(
            latest, record.timestamp, time.time() * 1000, self.config.max_clock_skew_s * 1000, math.inf
        )
        if problem is not None:
            send_to_dead_letter(self.producer, self.topics, record, f"hit {hit.hit_id}: {problem}")
            self.metrics.bad_hits.inc()
            return None
        query = self.queries.table.get(hit.query_id)
        if hit.camera_id not in self._cameras:
            self._cameras.add(hit.camera_id)
            self._warm_up()
        now_ms = decision_clock_ms(record.timestamp, int(time.time() * 1000))
        decision = self.policy.decide(hit, severity_of(query), now_ms, query.schedule if query else None)
        if not decision.raised:
            if decision.close_update and decision.alerted and hit.end_ts_ms is not None:
                self._record_end(alert_id_for(hit.hit_id), hit.end_ts_ms)
            self.metrics.suppressed.labels(hit.query_id, decision.reason).inc()
            return None
        alert_id = alert_id_for(hit.hit_id)
        with self._lock:
            if self.book.raised_before(hit.hit_id):  # a crash lost the policy's snapshot, not the book
                log.info("alert %s was raised before; not raising it again", alert_id)
                return None
        alert = self._raise(hit, query, decision, alert_id)
        return alert, hit.peak_ts_ms

    def _raise(
        self, hit: HitMessage, query: QueryMessage | None, decision: Decision, alert_id: str
    ) -> AlertMessage:
        severity = decision.severity or UNKNOWN_QUERY_SEVERITY
        if query is None:
            log.warning(
                "hit %s names query %s, which is not (or no longer) standing", hit.hit_id, hit.query_id
            )
        text, language = self._wording(query, hit.query_id, hit.camera_id, severity, decision.escalated)
        spoken = self._speak(text, language)
        alert = AlertMessage(
            **hit.model_dump(include=_FROM_THE_HIT),
            alert_id=alert_id,
            severity=severity,
            text=text,
            language=language,
            raised_ts_ms=int(time.time() * 1000),
            escalated=decision.escalated,
            muted=decision.muted,
            query_text=query.text if query is not None else None,
            audio=spoken.path.name if spoken is not None else None,
            speech_engine=spoken.engine if spoken is not None else None,
        )
        self.producer.send(self.topics.alerts, encode_json(alert), key=hit.camera_id)
        record = AlertRecord[AlertMessage](alert=alert, end_ts_ms=hit.end_ts_ms)
        self._keep(record)
        self.metrics.alerts.labels(hit.query_id, severity).inc()
        if decision.muted:
            self.metrics.muted.labels(hit.query_id).inc()
        log.info(
            "alert %s (%s%s%s): %s",
            alert_id,
            severity,
            ", escalated" if decision.escalated else "",
            f", muted by {decision.schedule}" if decision.muted else "",
            text,
            extra={"alert_id": alert_id, "hit_id": hit.hit_id, "audio": alert.audio},
        )
        payload = webhook_payload(alert, self.links)
        for dispatcher in self.dispatchers:
            try:
                dispatcher.submit(alert_id, payload)
            except (ValueError, TypeError, RuntimeError) as error:
                log.warning("alert %s not sent to webhooks: %s", alert_id, error)
        if self.config.play_locally and spoken is not None and not decision.muted:
            self.speech.play(spoken.path)
        return alert

    def _speak(self, text: str, language: str) -> SpeechResult | None:
        try:
            result = self.speech.synthesize(text, language)
        except (SpeechError, ValueError, OSError) as error:
            log.warning("the alert goes out without audio: %s", error)
            self.metrics.speech_engine.labels("none").inc()
            return None
        self.metrics.speech_engine.labels(result.engine).inc()
        return result

    def _record_end(self, alert_id: str, end_ts_ms: int) -> None:
        with self._lock:
            if alert_id not in self.book or self.book.get(alert_id).end_ts_ms is not None:
                return
            self._keep(self.book.close(alert_id, end_ts_ms))

    def _keep(self, record: AlertRecord[AlertMessage]) -> None:
        """Into the book and onto "alert-state" (where the API process reads it)."""
        with self._lock:
            self.book.add(record)
            save_alert_record(self.state_log, record)

    def _webhook_dead_letter(self, dead: DeadLetter) -> None:
        # Called from a webhook thread; the producer is thread-safe.
        try:
            send_json_dead_letter(
                self.producer,
                self.topics,
                dead.to_dict(),
                f"webhook {dead.webhook} {dead.outcome}: {dead.error}",
                f"webhook:{dead.webhook}",
                key=dead.event_id,
            )
        except Exception as error:  # the producer may be closing
            log.warning("could not dead-letter webhook event %s: %s", dead.event_id, error)

    # --- acknowledgements ----------------------------------------------------------------

    def _apply_command(self, record: KafkaRecord) -> None:
        """An acknowledgement from the API: applied once; a repeated one (a replay, or a second
        operator) or one for an unknown alert is logged and writes nothing."""
        try:
            command = decode_json(AcknowledgeCommand, record.value)
        except BadMessageError as error:
            send_to_dead_letter(self.producer, self.topics, record, str(error))
            self.metrics.bad_commands.inc()
            return
        try:
            self.acknowledge(command.alert_id, command.user, command.ts_ms)
        except (UnknownAlertError, AlreadyAcknowledgedError) as error:
            log.info("acknowledgement by %s not applied: %s", command.user, error)

    def acknowledge(self, alert_id: str, user: str, now_ms: int | None = None) -> AlertRecord[AlertMessage]:
        """Acknowledge an alert once and make that durable; raises UnknownAlertError or
        AlreadyAcknowledgedError (naming who and when). Thread-safe."""
        now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
        with self._lock:
            record = self.book.acknowledge(alert_id, user, now_ms)
            self._keep(record)
        self.producer.flush()
        self.metrics.acknowledged.labels(record.alert.query_id).inc()
        log.info("alert %s acknowledged by %s", alert_id, record.acknowledged_by)
        return record

    def open_alerts(self) -> list[AlertRecord[AlertMessage]]:
        with self._lock:
            return self.book.open_alerts()

    def alert_records(
        self,
        status: AlertStatus | Literal["all"] = "all",
        camera_id: str | None = None,
        query_id: str | None = None,
        limit: int | None = None,
    ) -> list[AlertRecord[AlertMessage]]:
        """See AlertBook.records. Thread-safe."""
        with self._lock:
            return self.book.records(status, camera_id, query_id, limit)

    def alert_record(self, alert_id: str) -> AlertRecord[AlertMessage]:
        """Raises UnknownAlertError. Thread-safe."""
        with self._lock:
            return self.book.get(alert_id)

    def _forget_old_alerts(self) -> None:
        """At most once a minute, drop alerts past `retention_days` from the book and (with a
        tombstone) from "alert-state", so neither grows without end."""
        now = time.monotonic()
        if now - self._last_prune < self.prune_interval_s:
            return
        self._last_prune = now
        cutoff_ms = retention_cutoff_ms(time.time() * 1000, self.config.retention_days)
        with self._lock:
            forgotten = self.book.prune(cutoff_ms)
            for alert_id in forgotten:
                forget_alert_record(self.state_log, alert_id)
        if forgotten:
            log.info("forgot %d alerts raised over %g days ago", len(forgotten), self.config.retention_days)

    # --- checkpoints ---------------------------------------------------------------------

    def save_state(self) -> None:
        """The policy's memory, with each checkpoint (services/common/consumer_service.py).

        Between checkpoints, alerts are already out and their records on "alert-state": a crash
        replays the hits since the last commit, and the book (not the older policy snapshot)
        recognises their alert ids, so nothing is raised twice."""
        save_policy_memory(self.state_log, self.policy)


def webhook_payload(alert: AlertMessage, links: AlertLinks | None) -> dict[str, Any]:
    """What webhooks receive for a raised alert: the alert, and signed links to its thumbnail and
    audio at the API process when it is on (the receiver needs no token to fetch them)."""
    media = links.for_alert(alert, time.time()) if links is not None else {}
    return {
        "event": "alert.raised",
        "alert": alert.model_dump(mode="json"),
        "thumbnail_url": media.get("thumbnail_url"),
        "audio_url": media.get("audio_url"),
    }


def run_alerter(config_path: Path | None = None, metrics_port: int | None = None) -> None:
    """`vigil alerter`: run until SIGINT or SIGTERM, then checkpoint and stop."""
    settings = AlerterServiceSettings.load(config_path)
    if metrics_port is not None:
        alerter = settings.alerter.model_copy(update={"metrics_port": metrics_port})
        settings = settings.model_copy(update={"alerter": alerter})
    run_service(lambda: AlerterService(settings))
