"""GET /api/v1/alerts and GET /api/v1/hits filtered and paged, on a real alerter (real broker, real
uvicorn, real espeak-ng): six hits on three cameras for two queries of different severities."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from alerter_support import Stack, api_settings_for, make_hit, standing_query, wait_for

from vigil.services.alerter.config import AlerterSettings
from vigil.services.alerter.speech import SpeechSettings
from vigil.services.common.auth import ApiToken
from vigil.services.common.contract import encode_json
from vigil.services.common.kafka import ResilientProducer, publish_query

VIEWER = "viewer-token-lists-0123456789"
CAMERAS = ("gate-1", "gate-2", "gate-3")
SEVERITY = {"fence": "critical", "cat": "info"}


@pytest.fixture(scope="module")
def api(new_kafka_settings, tmp_path_factory):
    """The API's URL and the six hits, once the six alerts are raised."""
    settings = new_kafka_settings()
    tmp = tmp_path_factory.mktemp("lists")
    start_ms = int(time.time() * 1000) - 60_000
    hits = [
        make_hit(camera, query, start_ms + 1_000 * index)
        for index, (camera, query) in enumerate((c, q) for c in CAMERAS for q in SEVERITY)
    ]
    with ResilientProducer(settings) as producer:
        for query_id, severity in SEVERITY.items():
            publish_query(
                producer, settings.topics, standing_query(query_id, f"a {query_id}", severity=severity)
            )
        for hit in hits:
            producer.send(settings.topics.hits, encode_json(hit), key=hit.camera_id)
        producer.flush()
    config = AlerterSettings(
        group_id=f"alerter-lists-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        speech=SpeechSettings(cache_dir=tmp / "speech", engines=["espeak-ng"], warm_up=False),
    )
    api = api_settings_for(config, tmp, tokens=[ApiToken(name="vera", role="viewer", token=VIEWER)])
    running = Stack(config, settings, api)
    try:
        wait_for(lambda: len(running.api.service.alerts) == len(hits), 60, "six alerts at the API")
        yield running.url, hits
    finally:
        running.stop()


def get(url: str, path: str, **params) -> requests.Response:
    return requests.get(
        f"{url}{path}", params=params, headers={"Authorization": f"Bearer {VIEWER}"}, timeout=10
    )


def test_alerts_are_filtered_by_every_given_filter(api):
    url, _ = api
    everything = get(url, "/api/v1/alerts", status="all").json()
    assert everything["total"] == 6 and len(everything["alerts"]) == 6
    raised = [a["alert"]["raised_ts_ms"] for a in everything["alerts"]]
    assert raised == sorted(raised, reverse=True)  # newest first
    critical = get(url, "/api/v1/alerts", status="all", severity="critical").json()
    assert critical["total"] == 3 and {a["alert"]["query_id"] for a in critical["alerts"]} == {"fence"}
    one = get(url, "/api/v1/alerts", status="open", severity="info", camera_id="gate-2").json()
    assert [(a["alert"]["camera_id"], a["alert"]["query_id"]) for a in one["alerts"]] == [("gate-2", "cat")]
    assert get(url, "/api/v1/alerts", status="acknowledged").json() == {
        "alerts": [],
        "total": 0,
        "offset": 0,
        "limit": 100,
    }
    # Since included, until excluded: the window [third newest, newest) holds two alerts.
    since, until = sorted(raised)[3], sorted(raised)[5]
    window = get(url, "/api/v1/alerts", status="all", since_ts_ms=since, until_ts_ms=until).json()
    assert window["total"] == sum(since <= ts < until for ts in raised)
    assert all(since <= a["alert"]["raised_ts_ms"] < until for a in window["alerts"])


def test_alerts_are_paged_with_their_total(api):
    url, _ = api
    everything = [a["alert_id"] for a in get(url, "/api/v1/alerts", status="all").json()["alerts"]]
    first = get(url, "/api/v1/alerts", status="all", limit=4).json()
    second = get(url, "/api/v1/alerts", status="all", limit=4, offset=4).json()
    assert (first["total"], second["total"], len(first["alerts"]), len(second["alerts"])) == (6, 6, 4, 2)
    assert [a["alert_id"] for a in first["alerts"] + second["alerts"]] == everything
    assert get(url, "/api/v1/alerts", status="all", offset=6).json()["alerts"] == []


def test_hits_are_listed_with_the_same_filters(api):
    url, hits = api
    listed = get(url, "/api/v1/hits").json()
    assert listed["total"] == 6
    assert [h["hit_id"] for h in listed["hits"]] == [
        h.hit_id for h in sorted(hits, key=lambda h: -h.event_start_ts_ms)
    ]
    assert all(h["alert_id"] == f"alert:{h['hit_id']}" for h in listed["hits"])
    info = get(url, "/api/v1/hits", severity="info", camera_id="gate-3").json()
    assert [(h["camera_id"], h["query_id"], h["severity"]) for h in info["hits"]] == [
        ("gate-3", "cat", "info")
    ]
    third = sorted(h.event_start_ts_ms for h in hits)[3]
    assert get(url, "/api/v1/hits", since_ts_ms=third).json()["total"] == 3
    assert get(url, "/api/v1/hits", until_ts_ms=third).json()["total"] == 3
    paged = get(url, "/api/v1/hits", limit=5, offset=5).json()
    assert (paged["total"], len(paged["hits"])) == (6, 1)
    assert paged["hits"][0]["thumbnail_url"].startswith("http")


@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v1/hits"])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since_ts_ms": 5_000, "until_ts_ms": 5_000}, "until_ts_ms"),
        ({"since_ts_ms": -1}, "since_ts_ms"),
        ({"severity": "fatal"}, "severity"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"camera_id": "gate 1"}, "camera_id"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(api, path, params, field):
    url, _ = api
    answer = get(url, path, **params)
    assert answer.status_code == 422, answer.text
    assert any(field in map(str, problem["loc"]) for problem in answer.json()["detail"]), answer.json()
