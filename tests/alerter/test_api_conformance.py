"""The HTTP API against its own OpenAPI document, with schemathesis, beside a real alerter
(real broker, real uvicorn, real espeak-ng audio and a real thumbnail).

Every operation is fuzzed (positive and negative data: the examples, coverage and fuzzing phases)
twice: without credentials (schemathesis makes up tokens; every answer must be a documented
refusal) and with an operator's bearer token (the routes past their 401). Then the answers that
need a known alert (200, 206, 409, 416, a viewer's 403, signed links, the live stream's events)
are asked for by hand and held to the same checks. Each response must pass:

- status_code_conformance: its status is documented for the operation;
- content_type_conformance: its Content-Type is documented for that status;
- response_schema_conformance: its body (JSON, or each event of the stream) fits the schema;
- response_headers_conformance: the headers documented as required are there and fit;
- not_a_server_error: no 5xx.

The runs are bounded and reproducible (`MAX_EXAMPLES` per operation and phase, schemathesis's
deterministic mode, no example database, the stateful phase off): about a minute for the module.
The event stream never ends by itself: its responses are read until one event or `STREAM_READ_S`
of silence, and what came is validated (each event against the document's itemSchema).

The fuzzing runs go through `schemathesis run` (the CLI, on a config file written per run), not
the pytest plugin: `schemathesis.pytest.from_fixture` (needed for a server started by a fixture)
fails on pytest 9.2 (`'Function' object has no attribute '_nodeid'`). The hand-made cases use the
Python API. They run first: the fuzzer finds the alert through GET /api/v1/alerts and
acknowledges it too (then 409s).
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import pytest
import schemathesis
from alerter_support import Stack, api_settings_for, make_hit, standing_query
from api_fuzzing import run_schemathesis
from PIL import Image
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from vigil.models.registry import EncoderSettings, create_encoder
from vigil.services.alerter.config import AlerterSettings
from vigil.services.alerter.service import alert_id_for
from vigil.services.alerter.speech import SpeechSettings
from vigil.services.api.alerts import alert_view
from vigil.services.common.auth import ApiToken
from vigil.services.common.contract import encode_json
from vigil.services.common.kafka import ResilientProducer, publish_query
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.detector.store import HitStore, StoreSettings

CAMERA, QUERY = "gate-7", "climber"
VIEWER, OPERATOR = "viewer-token-conformance-0123", "operator-token-conformance-0123"
SIGNING_KEY = "link-signing-key-conformance-0123456789"
MAX_EXAMPLES = 20
STREAM_READ_S = 0.5
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    not_a_server_error,
]
STREAM = "/api/v1/alerts/stream"


@dataclass(frozen=True)
class Api:
    url: str
    alert_id: str
    audio: str
    thumbnail: str
    thumbnail_url: str
    thumbnail_bytes: bytes


@pytest.fixture(scope="module")
def alerter_api(new_kafka_settings, tmp_path_factory) -> Iterator[Api]:
    """A real alerter with viewer and operator tokens and one open alert (audio, thumbnail)."""
    tmp = tmp_path_factory.mktemp("conformance")
    settings = new_kafka_settings()
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (30, 200, 30)).save(buffer, format="JPEG")
    start_ms = int(time.time() * 1000) - 5_000
    reference = ThumbnailStore(tmp / "thumbnails").save(CAMERA, start_ms + 500, buffer.getvalue())
    hit = make_hit(CAMERA, QUERY, start_ms, peak_after_ms=500, thumbnail=reference)
    with ResilientProducer(settings) as producer:
        publish_query(producer, settings.topics, standing_query(QUERY, "a person climbing the fence"))
        producer.send(settings.topics.hits, encode_json(hit), key=CAMERA)
        producer.flush()
    config = AlerterSettings(
        group_id=f"alerter-conformance-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        speech=SpeechSettings(cache_dir=tmp / "speech", engines=["espeak-ng"]),
        cameras={CAMERA: "gate 7"},
    )
    api = api_settings_for(
        config,
        tmp,
        signing_key=SIGNING_KEY,
        tokens=[
            ApiToken(name="vera", role="viewer", token=VIEWER),
            ApiToken(name="olga", role="operator", token=OPERATOR),
        ],
    )
    # The search routes read the detector's store: a store owned here, as the detector would.
    dim = create_encoder(EncoderSettings(kind="auto")).info.dim
    store_settings = StoreSettings(uri=str(tmp / "milvus"), dim=dim, thumbnails_dir=tmp / "thumbnails")
    with pytest.MonkeyPatch.context() as env, HitStore(store_settings):
        env.setenv("VIGIL_MILVUS_URI", store_settings.uri)
        env.setenv("VIGIL_MILVUS_THUMBNAILS_DIR", str(tmp / "thumbnails"))
        yield from _serve(config, api, settings, hit, reference, buffer.getvalue())


def _serve(config, api, settings, hit, reference: str, thumbnail_bytes: bytes) -> Iterator[Api]:
    running = Stack(config, settings, api)
    try:
        alert_id = alert_id_for(hit.hit_id)
        deadline = time.monotonic() + 30
        while not running.api.service.alerts.records():
            assert time.monotonic() < deadline, f"no alert {alert_id} within 30 s"
            time.sleep(0.1)
        record = running.api.service.alerts.get(alert_id)
        assert record.alert.audio, "the alert has no spoken audio"
        view = alert_view(running.api.service.links, record)
        yield Api(
            url=running.url,
            alert_id=alert_id,
            audio=record.alert.audio,
            thumbnail=reference,
            thumbnail_url=view.thumbnail_url,
            thumbnail_bytes=thumbnail_bytes,
        )
    finally:
        running.stop()


def run_schemathesis_on(api: Api, tmp_path, token: str | None) -> None:
    """The whole document, the live stream read until one event or STREAM_READ_S of silence."""
    stream = f"""
# An open stream never ends: read it until one event or STREAM_READ_S of silence.
[[operations]]
include-path = "{STREAM}"
request-timeout = {STREAM_READ_S}
max-stream-events = 1
"""
    run_schemathesis(
        api.url, tmp_path, token=token, max_examples=MAX_EXAMPLES, extra_config=stream, timeout_s=240
    )


def load_schema(api: Api) -> schemathesis.BaseSchema:
    """The running API's document, for hand-made cases (the same checks, `CHECKS`)."""
    config = {
        "checks": {"enabled": False, **{check.__name__: {"enabled": True} for check in CHECKS}},
        # The stream cases here end at their first event; the timeout only bounds a failure.
        "operations": [{"include-path": STREAM, "request-timeout": 5, "max-stream-events": 1}],
    }
    return schemathesis.openapi.from_url(
        f"{api.url}/openapi.json", config=schemathesis.Config.from_dict(config), timeout=10
    )


def test_answers_about_a_known_alert_are_documented(alerter_api: Api):
    api = alerter_api
    schema = load_schema(api)

    def check(method: str, template: str, expected: int, token: str | None = OPERATOR, **case):
        """One hand-made request, held to CHECKS; its status must be `expected`."""
        headers = dict(case.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = schema[template][method].Case(headers=headers, **case).call_and_validate(checks=CHECKS)
        assert response.status_code == expected, (method, template, case, response.text[:300])
        return response

    listed = check("GET", "/api/v1/alerts", 200, query={"status": "all"})
    assert [a["alert_id"] for a in listed.json()["alerts"]] == [api.alert_id]
    assert check("GET", "/api/v1/me", 200).json() == {"name": "olga", "role": "operator"}
    by_id = {"path_parameters": {"alert_id": api.alert_id}}
    check("GET", "/api/v1/alerts/{alert_id}", 200, **by_id)
    # A viewer may read but not acknowledge; an operator acknowledges once, then 409 says who.
    acknowledge = "/api/v1/alerts/{alert_id}/acknowledge"
    check("POST", acknowledge, 403, VIEWER, **by_id)
    check("POST", acknowledge, 200, **by_id)
    assert check("POST", acknowledge, 409, **by_id).json()["acknowledged_by"] == "olga"

    # Media: a token or a signed link (for that path only), whole or in ranges.
    thumbnail = {"path_parameters": {"reference": api.thumbnail}}
    link = dict(parse_qsl(urlsplit(api.thumbnail_url).query))
    assert check("GET", "/media/thumbnails/{reference}", 200, **thumbnail).content == api.thumbnail_bytes
    linked = check("GET", "/media/thumbnails/{reference}", 200, None, query=link, **thumbnail)
    assert linked.content == api.thumbnail_bytes
    forged = {**link, "signature": "0" * 64}
    check("GET", "/media/thumbnails/{reference}", 403, None, query=forged, **thumbnail)
    audio = {"path_parameters": {"name": api.audio}}
    check("GET", "/media/audio/{name}", 200, **audio)
    part = check("GET", "/media/audio/{name}", 206, headers={"Range": "bytes=0-3"}, **audio)
    assert part.content == b"RIFF"
    check("GET", "/media/audio/{name}", 206, headers={"Range": "bytes=0-1,8-11"}, **audio)
    check("GET", "/media/audio/{name}", 416, headers={"Range": "bytes=99999999-"}, **audio)
    check("GET", "/media/audio/{name}", 400, headers={"Range": "pages=1-2"}, **audio)

    # The live stream: a client from another alerter process is told to reload (one event).
    resync = check("GET", STREAM, 200, VIEWER, headers={"Last-Event-ID": "0badc0de-7"})
    assert b"event: resync" in resync.content
    # An id that is not one of ours, whatever its characters (a latin-1 "²" is a digit to
    # str.isdigit but not to int()), is the same: resync, not a broken stream.
    odd = check("GET", STREAM, 200, VIEWER, headers={"Last-Event-ID": "0badc0de-\u00b2"})
    assert b"event: resync" in odd.content


def test_without_credentials_every_answer_is_documented(alerter_api: Api, tmp_path):
    run_schemathesis_on(alerter_api, tmp_path, None)


def test_with_an_operator_token_every_answer_is_documented(alerter_api: Api, tmp_path):
    run_schemathesis_on(alerter_api, tmp_path, OPERATOR)
