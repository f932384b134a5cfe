"""Helpers shared by the alerter and API tests: a real webhook receiver, an alerter and an API
service each running in a thread (or both: `Stack`), a group-less topic reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry

from vigil.services.alerter.config import AlerterServiceSettings, AlerterSettings
from vigil.services.alerter.service import AlerterService
from vigil.services.alerter.webhooks import SIGNATURE_HEADER, verify_signature
from vigil.services.api.config import ApiServiceSettings
from vigil.services.api.service import ApiService
from vigil.services.broker.local import free_loopback_port
from vigil.services.common.api_settings import ApiSettings
from vigil.services.common.contract import HitMessage, QueryMessage, derive_hit_id
from vigil.services.common.kafka import assign_all_partitions, make_consumer
from vigil.services.common.thumbnail_store import ThumbnailSettings

SECRET = "s3cr3t-HMAC-key-0123456789abcdef"


@dataclass
class Response:
    status: int = 200
    delay_s: float = 0.0  # before answering; cut short at teardown
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    at: float


class Receiver:
    """A webhook receiver: verifies each request's signature, records it, answers per the plan
    (one Response per request in order, then the last one again)."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.plan: list[Response] = [Response()]
        self.received: list[Received] = []
        self.release = threading.Event()
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = verify_signature(receiver.secret, body, self.headers.get(SIGNATURE_HEADER))
                with receiver._cond:
                    index = len(receiver.received)
                    receiver.received.append(Received(dict(self.headers), body, ok, time.monotonic()))
                    receiver._cond.notify_all()
                answer = receiver.plan[min(index, len(receiver.plan) - 1)]
                if answer.delay_s:
                    receiver.release.wait(answer.delay_s)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:  # the sender timed out and hung up
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.received) >= count, timeout), self.received

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class TopicReader:
    """Every record of a topic from its first, without joining a group."""

    def __init__(self, settings, topic: str) -> None:
        self.consumer = make_consumer(settings, group_id=None)
        assign_all_partitions(self.consumer, topic)
        self.consumer.seek_to_beginning()
        self.records: list = []

    def poll(self) -> list:
        for records in self.consumer.poll(timeout_ms=100).values():
            self.records.extend(records)
        return self.records

    def close(self) -> None:
        self.consumer.close(autocommit=False)


class Looping:
    """A service looping in a thread; an exception there fails the test at stop()."""

    def __init__(self, open_service: Callable[[CollectorRegistry], object]) -> None:
        self.registry = CollectorRegistry()
        self.service = open_service(self.registry)
        self.stop_event = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.service.run(self.stop_event)
        except BaseException as error:  # reported by stop()
            self.errors.append(error)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(30)
        self.service.close()
        assert not self.thread.is_alive()
        assert not self.errors, self.errors


class Running(Looping):
    """An AlerterService looping in a thread; `api` is where its webhooks' links point (none: off)."""

    def __init__(self, config: AlerterSettings, settings, api: ApiSettings | None = None) -> None:
        service_settings = AlerterServiceSettings(
            alerter=config, kafka=settings, api=api if api is not None else ApiSettings(port=0)
        )
        super().__init__(lambda registry: AlerterService(service_settings, metrics_registry=registry))


class RunningApi(Looping):
    """An ApiService (the HTTP API) looping in a thread; `url` is where it answers."""

    def __init__(self, api: ApiSettings, settings) -> None:
        service_settings = ApiServiceSettings(api=api, kafka=settings, thumbnails=ThumbnailSettings())
        super().__init__(lambda registry: ApiService(service_settings, metrics_registry=registry))
        self.url = self.service.http.url


def api_settings_for(config: AlerterSettings, tmp_path, **api) -> ApiSettings:
    """The API of the alerter configured by `config`: its group's book, its speech cache, a free
    port, and its token and key files under `tmp_path` unless given."""
    return ApiSettings(
        **{
            "port": free_loopback_port(),
            "metrics_port": 0,
            "alerter_group_id": config.group_id,
            "audio_dir": config.speech.cache_dir,
            "thumbnails_dir": tmp_path / "thumbnails",
            "token_file": tmp_path / "api-token",
            "signing_key_file": tmp_path / "link-signing-key",
            **api,
        }
    )


class Stack:
    """An alerter and its HTTP API (an ApiService), both real, each looping in its own thread:
    `service` is the alerter's, `api` the API's, `url` where the API answers."""

    def __init__(self, config: AlerterSettings, settings, api: ApiSettings) -> None:
        self.config, self.settings, self.api_settings = config, settings, api
        self.alerter = Running(config, settings, api)
        try:
            self.api = RunningApi(api, settings)
        except BaseException:
            self.alerter.stop()
            raise
        self.url = self.api.url

    @property
    def service(self) -> AlerterService:
        return self.alerter.service  # type: ignore[return-value]

    def metric(self, name: str, **labels: str) -> float:
        """A metric of the alerter's, else of the API's."""
        return self.alerter.metric(name, **labels) or self.api.metric(name, **labels)

    def stop(self) -> None:
        try:
            self.api.stop()
        finally:
            self.alerter.stop()


def make_hit(
    camera_id: str,
    query_id: str,
    start_ms: int,
    *,
    end_ms: int | None = None,
    peak_after_ms: int = 1_000,
    thumbnail: str | None = None,
    score: float = 0.83,
) -> HitMessage:
    """A hit as the detector publishes it (its thumbnail reference by default made up)."""
    return HitMessage(
        hit_id=derive_hit_id(camera_id, query_id, start_ms),
        camera_id=camera_id,
        query_id=query_id,
        event_start_ts_ms=start_ms,
        peak_ts_ms=start_ms + peak_after_ms,
        end_ts_ms=end_ms,
        peak_score=score,
        thumbnail=thumbnail or f"{camera_id}/{start_ms + peak_after_ms}.jpg",
        encoder="offline-test",
    )


def standing_query(query_id: str, text: str, **fields) -> QueryMessage:
    """A standing query as `vigil queries add` registers it, updated now."""
    return QueryMessage(
        query_id=query_id, text=text, created_by="test", updated_ts_ms=int(time.time() * 1000), **fields
    )
