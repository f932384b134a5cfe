"""The API service: the HTTP API as a process of its own, `vigil api`, on the consumer-service skeleton.

    run_api(Path("vigil.yaml"))     # until SIGINT / SIGTERM

It serves what services/api/app.py lists (alerts and their stream, acknowledgements, media,
users, queries, hits, cameras, search, the console) from what it follows on Kafka, with no
state of its own:

- "alert-state": the alerter group's alert records (`api: alerter_group_id`), read to the end at
  start into a read-only mirror of the alerter's book (no stream events; /readyz answers 503
  until then), then followed: each new record changes the mirror and is told on the live stream
  (raised, acknowledged, ended; services/api/alert_mirror.py, pipelines/alert_changes.py);
- "hits": from about `hits_kept` records before the end, for GET /api/v1/hits;
- "identities" (users and tokens; the first admin made if there is none and no token is
  configured), "queries" and "query-history", "cameras" and their snapshots on "frames", each by
  its own follower (services/common/identities.py, query_catalog.py, camera_directory.py,
  latest_frames.py).

It is no group member: its follower reads every partition of "alert-state" and "hits" and
commits nothing (the skeleton's `open_follower`), so any number of API processes may run. An
acknowledgement is a command on "alert-commands" that the alerter applies
(services/api/acknowledgements.py). Its metrics (`vigil_api_*`, and the broker's) are served on
`api: metrics_port`, as every service's are.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kafka import TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from vigil.services.api.acknowledgements import command_sender
from vigil.services.api.alert_mirror import MirroredAlerts
from vigil.services.api.app import create_api_app
from vigil.services.api.camera_directory import CameraDirectory
from vigil.services.api.config import ApiServiceSettings
from vigil.services.api.feed import AlertFeed
from vigil.services.api.hits import SeenHit
from vigil.services.api.latest_frames import LatestFrames
from vigil.services.api.query_catalog import QueryCatalog
from vigil.services.common.consumer_service import ConsumerService, run_service
from vigil.services.common.http import HttpServer
from vigil.services.common.identities import open_token_authority
from vigil.services.common.kafka import replay_to_end
from vigil.services.common.media_links import AlertLinks
from vigil.services.common.state_log import GroupStateLog
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.search import LazyFrameSearch

log = logging.getLogger(__name__)

_IDLE_POLL_MS = 100
_MAX_POLL_RECORDS = 500
_LOAD_TIMEOUT_S = 60.0
# How long sending an acknowledgement may wait for the broker.
_SEND_TIMEOUT_S = 5.0


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else REGISTRY
        self.stream_clients = Gauge(
            "vigil_api_stream_clients", "Clients following the live alert stream (SSE)", registry=r
        )
        self.alerts = Gauge("vigil_api_alerts", "Alerts in the API's mirror of the alert book", registry=r)


class ApiService(ConsumerService):
    """See the module docstring; `run(stop)` until `stop` is set, then `close()`."""

    def __init__(
        self, settings: ApiServiceSettings, *, metrics_registry: CollectorRegistry | None = None
    ) -> None:
        self.settings = settings
        self.config = config = settings.api
        kafka_settings = settings.kafka
        self.metrics = ApiMetrics(metrics_registry)
        # Nothing is committed: the interval only paces the skeleton's no-op checkpoints.
        super().__init__("api", kafka_settings, self.metrics.registry, commit_interval_s=60.0)
        self.feed = AlertFeed(config.replay_changes)
        self.state_log = GroupStateLog(
            kafka_settings, None, self.topics.alert_state, config.alerter_group_id, "alert book"
        )
        self.alerts = MirroredAlerts(self.state_log, self.feed, config.hits_kept)
        self.metrics.alerts.set_function(lambda: len(self.alerts))
        self.search = LazyFrameSearch(settings.search)  # opened on its first request
        self.on_close(self.search.close)
        self.thumbnails = ThumbnailStore(config.thumbnails_dir or settings.thumbnails.thumbnails_dir)
        with self.opening():
            self.open_kafka()
            self.send_command = command_sender(self.producer, self.topics.alert_commands, _SEND_TIMEOUT_S)
            # The configured tokens, then the users' on "identities" (the first admin made if none).
            self.authority, self.identities = open_token_authority(
                kafka_settings, self.producer, config.tokens, config.token_file
            )
            self.on_close(self.identities.close)
            self.query_catalog = QueryCatalog(kafka_settings, self.producer).load().follow()
            self.on_close(self.query_catalog.close)
            self.camera_directory = CameraDirectory(kafka_settings)
            self.on_close(self.camera_directory.close)
            self.latest_frames = LatestFrames(kafka_settings)  # the cameras' snapshots
            self.on_close(self.latest_frames.close)
            partitions = self.open_follower(
                [self.topics.alert_state, self.topics.hits], max_poll_records=_MAX_POLL_RECORDS
            )
            # The app needs the links and the links the server's address: filled in once it is bound.
            self.links = AlertLinks("", config.link_signer())
            self.http = HttpServer(create_api_app(self), config.host, config.port, "api")
            self.on_close(self.http.close)
            self.on_close(self.feed.close)  # closed first: open event streams end at once
            self.links.base_url = config.base_url(self.http.port)
            self.serve_metrics(config.metrics_port)
            self._load(partitions)

    def _load(self, partitions: list[TopicPartition]) -> None:
        """The alert book read to its end (no stream events), then "hits" from its last
        `hits_kept` records; /readyz answers 200 from here on."""
        consumer = self.consumer
        book = [tp for tp in partitions if tp.topic == self.topics.alert_state]
        hits = [tp for tp in partitions if tp.topic == self.topics.hits]
        consumer.pause(*hits)

        def poll(timeout_ms: int) -> int:
            records = self.poll(timeout_ms, max_records=_MAX_POLL_RECORDS)
            for record in records:
                self.alerts.take_alert_record(record, publish=False)
            return len(records)

        replay_to_end(consumer, book, poll, self.kafka_settings, "loading the alert book", _LOAD_TIMEOUT_S)
        ends = consumer.end_offsets(hits)
        starts = consumer.beginning_offsets(hits)
        for tp in hits:
            consumer.seek(tp, max(starts[tp], ends[tp] - self.config.hits_kept))
        consumer.resume(*hits)
        self.alerts.loaded.set()
        log.info("api: %d alerts in the book of group %s", len(self.alerts), self.config.alerter_group_id)

    def running_message(self) -> str:
        return f"api running on {self.links.base_url} (console {self.links.base_url}/console/)"

    def step(self) -> int:
        """One turn: what arrived on "alert-state" and "hits" into the mirror."""
        records = self.poll(_IDLE_POLL_MS, max_records=_MAX_POLL_RECORDS)
        for record in records:
            if record.topic == self.topics.alert_state:
                self.alerts.take_alert_record(record)
            else:
                self.alerts.take_hit(record)
        return len(records)

    def seen_hits(self) -> list[SeenHit]:
        return self.alerts.seen_hits({query.query_id: query for query in self.query_catalog.queries()})


def run_api(config_path: Path | None = None, metrics_port: int | None = None) -> None:
    """`vigil api`: run until SIGINT or SIGTERM, then stop."""
    settings = ApiServiceSettings.load(config_path)
    if metrics_port is not None:
        api = settings.api.model_copy(update={"metrics_port": metrics_port})
        settings = settings.model_copy(update={"api": api})
    run_service(lambda: ApiService(settings))
