"""`vigil up`: the embedded default in one command, on one machine.

    run_embedded(Path("vigil.yaml"), on_hit=print)

One YAML file configures it all: the ingest service's cameras (top level, as for `vigil ingest`),
the detector's `detector:` section, and the standing `queries:` registered at start. `vigil up`

1. finds Kafka: VIGIL_KAFKA_BOOTSTRAP when set, else the local broker on 127.0.0.1:19092,
   started here when none answers (services/broker);
2. registers the file's standing queries on "queries" (id, text, language, cameras, threshold,
   severity; an existing query with the same id is replaced);
3. runs `vigil ingest` and `vigil detector` as child processes on that config, restarting one
   that dies (a crash of one stage must not take the others down; each keeps its own cores,
   which two CPU-heavy stages in one Python process would not);
4. follows "hits" and hands each to `on_hit` as it arrives, until `stop` is set, `seconds`
   have passed, or SIGINT / SIGTERM; then stops the children (they checkpoint) and the broker.

Milvus lite lives in the detector (one owner per directory); the encoder is the detector's
choice: CLIP when an export of real weights is present, else the offline encoder (it logs which).
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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vigil.models.errors import VigilError
from vigil.services.broker.local import resolve_bootstrap
from vigil.services.common.contract import (
    HitMessage,
    Identifier,
    QueryMessage,
    Severity,
    describe_validation_error,
)
from vigil.services.common.kafka import (
    ResilientProducer,
    assign_all_partitions,
    load_kafka_settings,
    make_consumer,
    publish_query,
)
from vigil.services.detector.config import load_detector_config
from vigil.services.ingest.config import load_config

log = logging.getLogger(__name__)

# A child that dies is restarted after this, doubling up to the cap while it keeps dying.
_RESTART_DELAY_S = (1.0, 30.0)


class StandingQueryConfig(BaseModel):
    """A standing query as written in the config file (the rest of QueryMessage is filled in)."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    text: str = Field(min_length=1, max_length=500)
    language: str = Field("auto", pattern="^(auto|en|vi)$")
    cameras: list[Identifier] = Field(default_factory=list)
    threshold: str | float = "auto"
    severity: Severity = "warning"

    def message(self, now_ms: int) -> QueryMessage:
        return QueryMessage.model_validate(
            {
                "query_id": self.id,
                "text": self.text,
                "language": self.language,
                "cameras": self.cameras,
                "threshold": self.threshold,
                "severity": self.severity,
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
            queries.append(StandingQueryConfig.model_validate(entry).message(now_ms))
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
        self.process = subprocess.Popen(self.command, env=self.environment)
        self.started_at = time.monotonic()

    def check(self) -> None:
        """Restart the child if it died (with backoff while it keeps dying)."""
        if self.process is None or self.process.poll() is None:
            return
        now = time.monotonic()
        if not self.next_start:
            if now - self.started_at > 60:
                self.delay_s = _RESTART_DELAY_S[0]  # it had been running fine: a fresh failure
            log.warning(
                "%s exited with code %s; restarting in %.0f s",
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


def run_embedded(
    config_path: Path,
    *,
    on_hit: Callable[[HitMessage], None],
    seconds: float | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """See the module docstring. `on_ready(bootstrap)` is called once the children are started."""
    config_path = Path(config_path).resolve()
    load_config(config_path)  # every section is checked before anything starts
    load_detector_config(config_path)
    queries = load_standing_queries(config_path)
    kafka_settings = load_kafka_settings()
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    endpoint = resolve_bootstrap(kafka_settings)
    settings = kafka_settings.model_copy(update={"bootstrap": endpoint.bootstrap})
    environment = {**os.environ, "VIGIL_KAFKA_BOOTSTRAP": endpoint.bootstrap}
    vigil = [str(Path(sys.executable).with_name("vigil"))]  # the console script of this environment
    children = [
        _Child("ingest", [*vigil, "ingest", "--config", str(config_path)], environment),
        _Child("detector", [*vigil, "detector", "--config", str(config_path)], environment),
    ]
    hits = None
    try:
        with ResilientProducer(settings) as producer:
            for query in queries:
                publish_query(producer, settings.topics, query)
        if queries:
            log.info(
                "registered %d standing queries: %s", len(queries), ", ".join(q.query_id for q in queries)
            )
        hits = make_consumer(settings, group_id=None)
        partitions = assign_all_partitions(hits, settings.topics.hits)
        hits.seek_to_end(*partitions)
        for child in children:
            child.start()
        if on_ready is not None:
            on_ready(endpoint.bootstrap)
        deadline = None if seconds is None else time.monotonic() + seconds
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            for records in hits.poll(timeout_ms=250).values():
                for record in records:
                    try:
                        on_hit(HitMessage.model_validate_json(record.value))
                    except ValidationError as error:
                        log.warning("skipped a bad hits record: %s", describe_validation_error(error))
            for child in children:
                child.check()
    finally:
        for child in reversed(children):  # the detector first: it checkpoints what ingest sent
            child.stop()
        if hits is not None:
            hits.close(autocommit=False)
        endpoint.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
