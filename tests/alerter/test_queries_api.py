"""Standing queries over the HTTP API, on a real alerter (real broker, real uvicorn): writes reach
"queries" (what detectors follow) before they are answered, bad input is a 422 naming the field,
409/404, the history names who changed what and survives a new app over the same broker."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from alerter_support import RunningApi, TopicReader, api_settings_for, wait_for

from vigil.services.alerter.config import AlerterSettings
from vigil.services.api.queries import MAX_QUERY_TEXT
from vigil.services.common.auth import ApiToken
from vigil.services.common.kafka import QueryTableReader

VIEWER, OPERATOR = "viewer-token-queries-0123456789", "operator-token-queries-0123456789"
TOKENS = [
    ApiToken(name="vera", role="viewer", token=VIEWER),
    ApiToken(name="olga", role="operator", token=OPERATOR),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start_api(settings, tmp_path) -> RunningApi:
    """The API service alone: standing queries need no alerter."""
    config = AlerterSettings(group_id=f"alerter-queries-{uuid.uuid4().hex[:8]}")
    return RunningApi(api_settings_for(config, tmp_path, tokens=TOKENS), settings)


@pytest.fixture(scope="module")
def api(new_kafka_settings, tmp_path_factory):
    """A running API's URL and its Kafka settings (shared by the tests of this module: each
    uses query ids of its own)."""
    settings = new_kafka_settings()
    running = start_api(settings, tmp_path_factory.mktemp("queries-api"))
    try:
        yield running.url, settings
    finally:
        running.stop()


def test_add_edit_delete_reach_the_queries_topic_before_the_answer(api):
    url, settings = api
    queries = f"{url}/api/v1/queries"
    added = requests.post(
        queries,
        json={"text": "Một xe máy màu đỏ", "language": "vi", "cameras": ["gate-1"], "threshold": 0.7},
        headers=bearer(OPERATOR),
        timeout=10,
    )
    assert added.status_code == 201, added.text
    query = added.json()
    assert query["query_id"] == "mot-xe-may-mau-do" and query["kind"] == "semantic"
    assert query["created_by"] == "olga" and query["cameras"] == ["gate-1"] and query["threshold"] == 0.7
    # Answered only once on the broker: a fresh reader of "queries" (as a detector's) has it now.
    with QueryTableReader(settings) as reader:
        standing = reader.load().get("mot-xe-may-mau-do")
    assert standing is not None and standing.text == "Một xe máy màu đỏ" and standing.language == "vi"
    listed = requests.get(queries, headers=bearer(VIEWER), timeout=5).json()["queries"]
    assert "mot-xe-may-mau-do" in [q["query_id"] for q in listed]

    edited = requests.put(
        f"{queries}/mot-xe-may-mau-do",
        json={
            "text": "một xe máy màu đỏ đỗ trước cổng",
            "language": "vi",
            "severity": "critical",
            "enabled": False,
        },
        headers=bearer(OPERATOR),
        timeout=10,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["severity"] == "critical" and edited.json()["cameras"] == []
    with QueryTableReader(settings) as reader:
        standing = reader.load().get("mot-xe-may-mau-do")
    assert standing.severity == "critical" and not standing.enabled and standing.created_by == "olga"

    deleted = requests.delete(f"{queries}/mot-xe-may-mau-do", headers=bearer(OPERATOR), timeout=10)
    assert deleted.status_code == 204 and deleted.content == b""
    with QueryTableReader(settings) as reader:
        assert "mot-xe-may-mau-do" not in reader.load()
    # What a consumer of "queries" saw, in order: the query, its edit, a tombstone.
    topic = TopicReader(settings, settings.topics.queries)
    try:

        def mine() -> list:
            return [record for record in topic.poll() if record.key == b"mot-xe-may-mau-do"]

        wait_for(lambda: len(mine()) >= 3, 10, "three records of the query")
        assert [record.value is None for record in mine()] == [False, False, True]
    finally:
        topic.close()

    history = requests.get(f"{queries}/mot-xe-may-mau-do/history", headers=bearer(VIEWER), timeout=5)
    assert history.status_code == 200, history.text
    changes = history.json()["changes"]
    assert [(c["action"], c["by"]) for c in changes] == [
        ("created", "olga"),
        ("updated", "olga"),
        ("deleted", "olga"),
    ]
    assert changes[1]["query"]["severity"] == "critical" and changes[2]["query"] is None
    assert changes[0]["ts_ms"] <= changes[1]["ts_ms"] <= changes[2]["ts_ms"]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"text": "   "}, "text", "at least 1 character"),
        ({"text": "x" * (MAX_QUERY_TEXT + 1)}, "text", f"at most {MAX_QUERY_TEXT} characters"),
        ({"text": "a cat", "threshold": 1.5}, "threshold", "number from 0 to 1"),
        ({"text": "a cat", "threshold": "high"}, "threshold", "number from 0 to 1"),
        ({"text": "a cat", "threshold": True}, "threshold", "number from 0 to 1"),
        ({"text": "EXIT GATE 3", "kind": "text"}, "kind", "comes later"),
        ({"text": "text: EXIT GATE 3"}, "text", "OCR, which comes later"),
        ({"text": "a cat", "cameras": ["gate 1"]}, "cameras", "should match pattern"),
        ({"text": "a cat", "cameras": ["../etc"]}, "cameras", "should match pattern"),
        ({"text": "a cat", "cameras": ["a", "a"]}, "cameras", "more than once"),
        ({"text": "a cat", "query_id": "bad id!"}, "query_id", "should match pattern"),
        ({"text": "a cat", "language": "fr"}, "language", "'auto', 'en' or 'vi'"),
        ({"text": "a cat", "created_by": "mallory"}, "created_by", "Extra inputs"),
        ({"text": "a\u0000cat"}, "text", "printable"),
        ({"text": "a cat", "schedule": {"timezone": "Mars/Olympus"}}, "timezone", "unknown time zone"),
        ({"text": "a cat", "schedule": {"armed": []}}, "armed", "never arm"),
        (
            {"text": "a cat", "schedule": {"armed": [{"start": "22:00", "end": "22:00"}]}},
            "armed",
            "whole day",
        ),
        (
            {"text": "a cat", "schedule": {"quiet_hours": [{"start": "9", "end": "10:00"}]}},
            "start",
            "time of day",
        ),
        (
            {"text": "a cat", "schedule": {"armed": [{"days": ["noday"], "start": "01:00", "end": "02:00"}]}},
            "days",
            "not a weekday",
        ),
    ],
)
def test_bad_queries_are_422_naming_the_field(api, body, field, says):
    url, _ = api
    answer = requests.post(f"{url}/api/v1/queries", json=body, headers=bearer(OPERATOR), timeout=5)
    assert answer.status_code == 422, answer.text
    problems = answer.json()["detail"]
    assert any(field in map(str, problem["loc"]) and says in problem["msg"] for problem in problems), problems


def test_conflicts_and_unknown_ids(api):
    url, _ = api
    queries = f"{url}/api/v1/queries"
    body = {"query_id": "fence-conflict", "text": "a person climbing the fence"}
    assert requests.post(queries, json=body, headers=bearer(OPERATOR), timeout=10).status_code == 201
    again = requests.post(queries, json=body, headers=bearer(OPERATOR), timeout=10)
    assert again.status_code == 409 and "fence-conflict" in again.json()["detail"]
    for method in ("put", "delete"):
        unknown = requests.request(
            method, f"{queries}/no-such-query", json={"text": "a cat"}, headers=bearer(OPERATOR), timeout=5
        )
        assert unknown.status_code == 404 and "no-such-query" in unknown.json()["detail"], method
    assert (
        requests.get(f"{queries}/no-such-query/history", headers=bearer(VIEWER), timeout=5).status_code == 404
    )
    mismatch = requests.put(
        f"{queries}/fence-conflict",
        json={"query_id": "other", "text": "a cat"},
        headers=bearer(OPERATOR),
        timeout=5,
    )
    assert mismatch.status_code == 422 and "path" in mismatch.json()["detail"][0]["msg"]
    # A viewer reads but does not write.
    assert (
        requests.post(queries, json={"text": "a dog"}, headers=bearer(VIEWER), timeout=5).status_code == 403
    )


def test_history_survives_a_new_app_over_the_same_broker(kafka_settings, tmp_path):
    first = start_api(kafka_settings, tmp_path / "first")
    try:
        queries = f"{first.url}/api/v1/queries"
        body = {"query_id": "red-bike", "text": "a red motorbike"}
        assert requests.post(queries, json=body, headers=bearer(OPERATOR), timeout=10).status_code == 201
        body["severity"] = "critical"
        assert (
            requests.put(f"{queries}/red-bike", json=body, headers=bearer(OPERATOR), timeout=10).status_code
            == 200
        )
        before = requests.get(f"{queries}/red-bike/history", headers=bearer(VIEWER), timeout=5).json()
    finally:
        first.stop()
    second = start_api(kafka_settings, tmp_path / "second")
    try:
        queries = f"{second.url}/api/v1/queries"
        after = requests.get(f"{queries}/red-bike/history", headers=bearer(VIEWER), timeout=5).json()
        assert after == before and [c["action"] for c in after["changes"]] == ["created", "updated"]
        standing = requests.get(f"{queries}/red-bike", headers=bearer(VIEWER), timeout=5).json()
        assert standing["severity"] == "critical" and standing["created_by"] == "olga"
    finally:
        second.stop()


def test_a_change_made_elsewhere_shows_within_a_second(api):
    """The API follows "queries": a query added by `vigil queries add` (another producer) is listed."""
    from vigil.services.api.query_catalog import QueryCatalog
    from vigil.services.common.contract import QueryMessage
    from vigil.services.common.kafka import ResilientProducer

    url, settings = api
    with ResilientProducer(settings) as producer, QueryCatalog(settings, producer) as elsewhere:
        elsewhere.load().create(
            QueryMessage(
                query_id="from-cli", text="a cat", created_by="cli", updated_ts_ms=int(time.time() * 1000)
            ),
            by="cli",
        )

    def listed() -> bool:
        answer = requests.get(f"{url}/api/v1/queries", headers=bearer(VIEWER), timeout=5).json()
        return "from-cli" in [q["query_id"] for q in answer["queries"]]

    wait_for(listed, 1.0, "the query added elsewhere")


def test_a_querys_schedule_is_kept_with_it_and_can_be_dropped(api):
    url, settings = api
    queries = f"{url}/api/v1/queries"
    nights = {
        "timezone": "Asia/Ho_Chi_Minh",
        "armed": [{"days": ["mon-fri"], "start": "22:00", "end": "06:00"}],
        "quiet_hours": [{"start": "23:00", "end": "05:00"}],
    }
    added = requests.post(
        queries,
        json={"query_id": "fence-nights", "text": "a person climbing the fence", "schedule": nights},
        headers=bearer(OPERATOR),
        timeout=10,
    )
    assert added.status_code == 201, added.text
    schedule = added.json()["schedule"]
    assert schedule["timezone"] == "Asia/Ho_Chi_Minh" and schedule["quiet_hours"][0]["start"] == "23:00"
    assert schedule["armed"][0]["days"] == ["mon", "tue", "wed", "thu", "fri"]
    with QueryTableReader(settings) as reader:
        standing = reader.load().get("fence-nights")
    assert standing.schedule is not None and standing.schedule.describe() == (
        "armed mon-fri 22:00-06:00; quiet 23:00-05:00 (Asia/Ho_Chi_Minh)"
    )
    dropped = requests.put(
        f"{queries}/fence-nights",
        json={"text": "a person climbing the fence", "schedule": None},
        headers=bearer(OPERATOR),
        timeout=10,
    )
    assert dropped.status_code == 200 and dropped.json()["schedule"] is None
    with QueryTableReader(settings) as reader:
        assert reader.load().get("fence-nights").schedule is None
