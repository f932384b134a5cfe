"""`vigil up`: the embedded default in one command, on one machine.

    run_embedded(Path("vigil.yaml"), on_hit=print, on_alert=print)

One YAML file configures it all: the ingest service's cameras (top level, as for `vigil ingest`),
the detector's `detector:` section, the alerter's `alerter:` section, the API's `api:` section
and the standing `queries:` registered at start. Every section is validated before anything starts. `vigil up`

1. finds Kafka: VIGIL_KAFKA_BOOTSTRAP when set, else the local broker on 127.0.0.1:19092,
   started here when none answers (services/broker), durable in <VIGIL_HOME>/broker;
2. seeds "queries" with the file's standing queries (id, text, language, cameras, threshold,
   severity) that the topic has no record of, each with a "created" entry in the query history;
   one the topic knows is left as it is, and so is one deleted through the API (the topic wins,
   as for cameras: an operator's edit survives a restart); with the alerts API on, no
   `tokens` configured and no user on "identities", makes the first admin and shows its token
   once (`on_first_admin`: `vigil up` prints it on stdout, never in the log);
3. runs `vigil ingest`, `vigil detector`, `vigil alerter` and (with `api: port` set) `vigil api`
   as child processes on that config, the API after the alerter (it serves the alerter's
   speech cache, `alerter: speech: cache_dir`, unless `api: audio_dir` says otherwise),
   restarting one that dies (a crash of one stage must not take the others down; each keeps
   its own cores, which two CPU-heavy stages in one Python process would not). They run in
   their own session, so a Ctrl-C in the terminal reaches `vigil up` alone, which then stops
   them in pipeline order (below); on Linux each also gets SIGTERM should `vigil up` die;
4. follows "hits" and "alerts" and hands each hit to `on_hit` and each alert to `on_alert` as
   it arrives, until `stop` is set, `seconds` have passed, or SIGINT / SIGTERM; meanwhile it
   restarts the local broker it started should it die, and seeds the file's standing queries
   again whenever Kafka comes back without any record of them (services/broker/watch.py);
5. then stops the API (no new acknowledgements), then the children upstream first: ingest,
   then the detector (it finishes its batch and checkpoints; the hits it published last are on
   "hits"), then, once the alerter's group has committed every hit seen on "hits" (at most
   ALERTER_CATCH_UP_S), the alerter; the last hits and alerts are still handed on before the
   broker stops.

Milvus lite lives in the detector (one owner per directory); the encoder is the detector's
choice: CLIP when an export of real weights is present, else the offline encoder (it logs which).
The alerter speaks each alert to a file in its speech cache (`alerter: speech: cache_dir`);
`AlertMessage.audio` is that file's name (`alert_audio_path` gives the whole path).

A little over 400 lines because it is one thing, the supervisor of the steps above (the
broker's own keeping and watching are services/broker/).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from kafka import KafkaAdminClient, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vigil.errors import VigilError
from vigil.paths import var_dir
from vigil.pipelines.alerting.schedules import WeeklySchedule
from vigil.services.alerter.config import AlerterServiceSettings, AlerterSettings
from vigil.services.broker.endpoint import resolve_bootstrap
from vigil.services.broker.local import durable_broker_dir
from vigil.services.broker.watch import BrokerWatch
from vigil.services.common.api_settings import ApiSettings
from vigil.services.common.contract import (
    AlertMessage,
    CameraStatusMessage,
    HitMessage,
    Identifier,
    QueryMessage,
    Severity,
    describe_validation_error,
)
from vigil.services.common.disk import check_free_disk
from vigil.services.common.identities import first_admin_announcement, first_admin_token
from vigil.services.common.kafka import (
    KafkaSettings,
    assign_all_partitions,
    make_consumer,
    seed_standing_queries,
)
from vigil.services.common.lifecycle import popen_dying_with_parent
from vigil.services.detector.config import DetectorServiceSettings
from vigil.services.detector.store import StoreSettings
from vigil.services.ingest.config import IngestServiceSettings

log = logging.getLogger(__name__)

# A child that dies is restarted after this, doubling up to the cap while it keeps dying.
# Short at first: a killed detector or alerter must be back in service within 10 s.
_RESTART_DELAY_S = (0.5, 30.0)
# At stop: how long the alerter may take to handle the hits already on "hits" (it commits after
# each batch; a new phrase costs at most ~6 s of gTTS timeouts where Google is unreachable).
ALERTER_CATCH_UP_S = 10.0
# At stop: records still arriving this soon after the last one are handed on too.
_DRAIN_QUIET_MS = 500
_DRAIN_MAX_S = 5.0


class StandingQuerySettings(BaseModel):
    """A standing query as written in the config file (the rest of QueryMessage is filled in)."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    text: str = Field(min_length=1, max_length=500)
    language: str = Field("auto", pattern="^(auto|en|vi)$")
    cameras: list[Identifier] = Field(default_factory=list)
    threshold: str | float = "auto"
    severity: Severity = "warning"
    schedule: WeeklySchedule | None = None  # {timezone, armed: [{days, start, end}], quiet_hours}

    def message(self, now_ms: int) -> QueryMessage:
        return QueryMessage.model_validate(
            {
                "query_id": self.id,
                "text": self.text,
                "language": self.language,
                "cameras": self.cameras,
                "threshold": self.threshold,
                "severity": self.severity,
                "schedule": self.schedule,
                "created_by": "config",
                "updated_ts_ms": now_ms,
            }
        )


def load_standing_queries(path: Path) -> list[QueryMessage]:
    """The `queries:` section of the config file, validated as the contract's QueryMessage."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise VigilError(f"cannot read {path}: {error}") from None
    raw = document.get("queries") or [] if isinstance(document, dict) else []
    if not isinstance(raw, list):
        raise VigilError(f"{path}: queries: expected a list of standing queries")
    now_ms = int(time.time() * 1000)
    queries = []
    for index, entry in enumerate(raw):
        try:
            queries.append(StandingQuerySettings.model_validate(entry).message(now_ms))
        except ValidationError as error:
            raise VigilError(f"{path}: queries[{index}]: {describe_validation_error(error)}") from None
    return queries


@dataclass
class _Child:
    name: str
    command: list[str]
    environment: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    delay_s: float = _RESTART_DELAY_S[0]
    started_at: float = 0.0

    def start(self) -> None:
        # Own session: a Ctrl-C in the terminal reaches `vigil up` only, which stops the
        # children in pipeline order (run_embedded) instead of all of them at once.
        self.process = popen_dying_with_parent(self.command, env=self.environment, start_new_session=True)
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> None:
        """Restart the child if it died (with backoff while it keeps dying)."""
        if self.process is None or self.process.poll() is None:
            return
        now = time.monotonic()
        if not self.next_start:
            if now - self.started_at > 60:
                self.delay_s = _RESTART_DELAY_S[0]  # it had been running fine: a fresh failure
            log.warning(
                "%s exited with code %s; restarting in %.1f s",
                self.name,
                self.process.returncode,
                self.delay_s,
            )
            self.next_start = now + self.delay_s
            self.delay_s = min(self.delay_s * 2, _RESTART_DELAY_S[1])
        elif now >= self.next_start:
            self.next_start = 0.0
            self.restarts += 1
            self.start()

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, timeout_s)
            self.process.kill()
            self.process.wait()


class _Follower:
    """Hands each new record of "hits" (and "alerts", with `on_alert`; "camera-status", with
    `on_status`) to its callback: one group-less consumer from the end of those topics, so it
    commits and disturbs nothing."""

    def __init__(
        self,
        settings: KafkaSettings,
        on_hit: Callable[[HitMessage], None],
        on_alert: Callable[[AlertMessage], None] | None,
        on_status: Callable[[CameraStatusMessage], None] | None = None,
    ) -> None:
        topics = settings.topics
        self.hits_topic = topics.hits
        self.handlers: dict[str, tuple[type, Callable]] = {topics.hits: (HitMessage, on_hit)}
        if on_alert is not None:
            self.handlers[topics.alerts] = (AlertMessage, on_alert)
        if on_status is not None:
            self.handlers[topics.camera_status] = (CameraStatusMessage, on_status)
        self.consumer = make_consumer(settings, group_id=None)
        try:
            # assign_all_partitions checks that each topic exists; then all of them at once.
            partitions = [tp for topic in self.handlers for tp in assign_all_partitions(self.consumer, topic)]
            self.consumer.assign(partitions)
            self.consumer.seek_to_end(*partitions)
        except BaseException:
            self.close()
            raise
        self.hits_read: dict[TopicPartition, int] = {}  # next offset after the last hit handed on

    def poll(self, timeout_ms: int) -> int:
        """Hand on what arrives within `timeout_ms`, oldest first (a hit before its alert);
        returns how many records that was."""
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        records = sorted(
            (record for batch in polled.values() for record in batch), key=lambda record: record.timestamp
        )
        for record in records:
            if record.topic == self.hits_topic:
                tp = TopicPartition(record.topic, record.partition)
                self.hits_read[tp] = max(self.hits_read.get(tp, 0), record.offset + 1)
            message_type, handler = self.handlers[record.topic]
            try:
                message = message_type.model_validate_json(record.value)
            except ValidationError as error:
                log.warning("skipped a bad %s record: %s", record.topic, describe_validation_error(error))
                continue
            handler(message)
        return len(records)

    def drain(self, max_s: float = _DRAIN_MAX_S) -> None:
        """Hand on what is still arriving, until a quiet `_DRAIN_QUIET_MS` (at most `max_s`)."""
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline and self.poll(_DRAIN_QUIET_MS):
            pass

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def _wait_for_alerter(
    follower: _Follower, settings: KafkaSettings, group_id: str, alerter: _Child, timeout_s: float
) -> None:
    """Until the alerter's group has committed every hit the follower has seen (it commits
    after its alerts are flushed), handing on hits and alerts meanwhile; at most `timeout_s`.

    The comparison is with offsets of records actually read, not with the partitions' end
    offsets, which tansu reports wrongly for a batch of several records (see replay_to_end)."""
    follower.drain()  # the detector has stopped: its last hits are on "hits"
    if not follower.hits_read or not alerter.running:
        return
    started = time.monotonic()
    deadline = started + timeout_s
    admin = KafkaAdminClient(
        **settings.client_config(), client_id=f"{settings.client_id}-admin", bootstrap_timeout_ms=5_000
    )
    try:
        while True:
            wanted = dict(follower.hits_read)
            committed = admin.list_group_offsets({group_id: list(wanted)}).get(group_id, {})
            behind = {
                tp: end
                for tp, end in wanted.items()
                if committed.get(tp) is None or committed[tp].offset < end
            }
            if not behind:
                log.info("the alerter has handled every hit (waited %.1f s)", time.monotonic() - started)
                return
            if time.monotonic() >= deadline or not alerter.running:
                log.warning(
                    "the alerter had not handled every hit within %.0f s (%s); stopping it anyway",
                    timeout_s,
                    ", ".join(f"partition {tp.partition} at {end}" for tp, end in sorted(behind.items())),
                )
                return
            follower.poll(200)
    finally:
        admin.close()


def _folders_written(alerter_config: AlerterSettings, store: StoreSettings) -> list[Path]:
    """Where `vigil up` and its children write: var/, the broker's log, Milvus lite,
    thumbnails and the speech cache."""
    folders = [
        var_dir(),
        durable_broker_dir(),
        Path(store.thumbnails_dir),
        Path(alerter_config.speech.cache_dir),
    ]
    if store.is_lite:
        folders.append(Path(store.uri))
    return folders


def alert_audio_path(alert: AlertMessage, config: AlerterSettings) -> Path | None:
    """The spoken alert's file (in the alerter's speech cache); None when it went out without."""
    return None if alert.audio is None else Path(config.speech.cache_dir).resolve() / alert.audio


def run_embedded(
    config_path: Path,
    *,
    on_hit: Callable[[HitMessage], None],
    on_alert: Callable[[AlertMessage], None] | None = None,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
    on_status: Callable[[CameraStatusMessage], None] | None = None,
    on_first_admin: Callable[[str], None] | None = None,
) -> None:
    """See the module docstring. `on_ready(bootstrap)` is called once the children are started;
    `on_status` gets every camera status ingest publishes from then on; `on_first_admin` the
    announcement of the first admin's API token, when this start made it (shown once, never logged)."""
    config_path = Path(config_path).resolve()
    # Every service's settings are checked before anything starts.
    IngestServiceSettings.load(config_path)
    detector_settings = DetectorServiceSettings.load(config_path)
    detector_config = detector_settings.detector
    alerter_config = AlerterServiceSettings.load(config_path).alerter
    api_config = ApiSettings.load(config_path)
    queries = load_standing_queries(config_path)
    kafka_settings = detector_settings.kafka
    # Before anything starts, not mid-write later.
    check_free_disk(_folders_written(alerter_config, detector_settings.store))
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    endpoint = resolve_bootstrap(kafka_settings)
    settings = kafka_settings.model_copy(update={"bootstrap": endpoint.bootstrap})
    environment = {**os.environ, "VIGIL_KAFKA_BOOTSTRAP": endpoint.bootstrap}
    vigil = [str(Path(sys.executable).with_name("vigil"))]  # the console script of this environment
    # One detector here: it takes every partition itself, so a restart resumes without a group
    # join (services/detector/config.py, `assignment`), unless the file or the shell says otherwise.
    detector_environment = dict(environment)
    if "assignment" not in detector_config.model_fields_set:
        detector_environment["VIGIL_DETECTOR_ASSIGNMENT"] = "all"
    # The API serves the audio the alerter speaks: the same folder unless the file says otherwise.
    api_environment = dict(environment)
    if "audio_dir" not in api_config.model_fields_set:
        api_environment["VIGIL_API_AUDIO_DIR"] = str(alerter_config.speech.cache_dir)
    ingest, detector, alerter, api = (
        _Child(name, [*vigil, name, "--config", str(config_path)], child_environment)
        for name, child_environment in (
            ("ingest", environment),
            ("detector", detector_environment),
            ("alerter", environment),
            ("api", api_environment),
        )
    )
    children = [ingest, detector, alerter] + ([api] if api_config.port else [])
    follower = None
    finished = False
    try:
        seeded_by = f"vigil up ({config_path.name})"
        seeded = seed_standing_queries(settings, queries, seeded_by)
        if seeded:
            log.info("registered %d standing queries of the config: %s", len(seeded), ", ".join(seeded))
        kept = [query.query_id for query in queries if query.query_id not in seeded]
        if kept:
            log.info(
                "kept %d standing queries as the queries topic has them (changed or deleted since, through "
                "the API or `vigil queries`, which win over the file): %s",
                len(kept),
                ", ".join(kept),
            )
        if api_config.port or api_config.public_url is not None:
            # Made here, once, before the alerter and the API would both make it.
            api_config.link_signer()
        if on_first_admin is not None and api_config.port and not api_config.tokens:
            first = first_admin_token(settings, api_config.token_file)
            if first is not None:
                on_first_admin(first_admin_announcement(first, api_config.token_file))
        follower = _Follower(settings, on_hit, on_alert, on_status)
        watch = BrokerWatch(endpoint, settings, queries, seeded_by=seeded_by)
        for child in children:
            child.start()
        if on_ready is not None:
            on_ready(endpoint.bootstrap)
        deadline = None if seconds is None else time.monotonic() + seconds
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            follower.poll(250)
            watch.check()
            for child in children:
                child.check()
        finished = True
    finally:
        # Upstream first, so that what each stage published last is handled downstream before
        # that stage stops: ingest (no new frames), then the detector (it scores its batch and
        # checkpoints; its last hits are on "hits"), then the alerter once it has handled those
        # hits (its group's commit follows its alerts' flush). The reverse order would stop the
        # alerter while the detector may still publish hits that no alert is raised for.
        api.stop()  # first: no acknowledgement left waiting on an alerter about to stop
        ingest.stop()
        detector.stop()
        if finished and follower is not None:
            try:
                _wait_for_alerter(follower, settings, alerter_config.group_id, alerter, ALERTER_CATCH_UP_S)
            except Exception as error:  # a broker gone away: stop the alerter regardless
                log.warning("could not wait for the alerter to catch up: %s", error)
        alerter.stop()
        if follower is not None:
            if finished:
                try:
                    follower.drain()  # the alerts raised last
                except Exception as error:
                    log.warning("could not read the last hits and alerts: %s", error)
            follower.close()
        endpoint.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
