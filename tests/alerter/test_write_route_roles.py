"""Every write route of the API, as its own OpenAPI document lists them (each POST, PUT, PATCH and
DELETE), answers 401 without a token, 403 to every role below its minimum, and does its work for
the minimum role. On a real alerter and API (real broker, real uvicorn).

A route added later must be entered in WRITE_ROUTES (its minimum role and one request that
succeeds): the test fails naming any route of the document missing there, or any entry that is
no longer a route, so no write route goes untested for its roles.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import requests
from alerter_support import Stack, api_settings_for, make_hit, standing_query, wait_for

from vigil.services.alerter.config import AlerterSettings
from vigil.services.alerter.service import alert_id_for
from vigil.services.alerter.speech import SpeechSettings
from vigil.services.common.auth import ROLE_RANK, ApiToken, Role
from vigil.services.common.contract import encode_json
from vigil.services.common.kafka import ResilientProducer, publish_query

WRITE_METHODS = ("post", "put", "patch", "delete")
TOKENS = {role: f"{role}-token-roles-0123456789" for role in ROLE_RANK}
CAMERA, QUERY = "gate-9", "climber"


@dataclass
class Write:
    """A write route's minimum role, and how to call it so that it succeeds: path parameters,
    a JSON body, and `prepare(api)` run first (e.g. creating what the call changes; it may return
    path parameters known only once it has run, such as a new token's id)."""

    role: Role
    path_parameters: dict[str, str] = field(default_factory=dict)
    body: dict | None = None
    prepare: Callable[[Api], dict[str, str] | None] | None = None


@dataclass(frozen=True)
class Api:
    url: str
    alert_id: str

    def call(self, method: str, path: str, role: Role | None, body: dict | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        return requests.request(method, f"{self.url}{path}", json=body, headers=headers, timeout=10)


def a_query(query_id: str) -> Callable[[Api], None]:
    def prepare(api: Api) -> None:
        body = {"query_id": query_id, "text": f"a {query_id}"}
        assert api.call("POST", "/api/v1/queries", "admin", body).status_code == 201

    return prepare


def a_user(name: str) -> Callable[[Api], None]:
    def prepare(api: Api) -> None:
        body = {"name": name, "role": "viewer"}
        assert api.call("POST", "/api/v1/users", "admin", body).status_code == 201

    return prepare


def a_camera(camera_id: str) -> Callable[[Api], None]:
    def prepare(api: Api) -> None:
        body = {"camera_id": camera_id, "url": "rtsp://127.0.0.1:1/roles"}
        assert api.call("POST", "/api/v1/cameras", "admin", body).status_code == 201

    return prepare


def a_token(api: Api) -> dict[str, str]:
    a_user("roles-token-holder")(api)
    issued = api.call("POST", "/api/v1/users/roles-token-holder/tokens", "admin", {})
    assert issued.status_code == 201, issued.text
    return {"token_id": issued.json()["token_id"]}


# (method, path template) -> the minimum role and a request that succeeds for it.
WRITE_ROUTES: dict[tuple[str, str], Write] = {
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): Write("operator", {"alert_id": "<the alert>"}),
    ("POST", "/api/v1/queries"): Write("operator", body={"query_id": "roles-new", "text": "a ladder"}),
    ("PUT", "/api/v1/queries/{query_id}"): Write(
        "operator", {"query_id": "roles-put"}, {"text": "a tall ladder"}, a_query("roles-put")
    ),
    ("DELETE", "/api/v1/queries/{query_id}"): Write(
        "operator", {"query_id": "roles-delete"}, None, a_query("roles-delete")
    ),
    ("POST", "/api/v1/users"): Write("admin", body={"name": "roles-new-user", "role": "viewer"}),
    ("PUT", "/api/v1/users/{name}"): Write(
        "admin", {"name": "roles-put-user"}, {"role": "operator"}, a_user("roles-put-user")
    ),
    ("DELETE", "/api/v1/users/{name}"): Write(
        "admin", {"name": "roles-gone-user"}, None, a_user("roles-gone-user")
    ),
    ("POST", "/api/v1/users/{name}/tokens"): Write(
        "admin", {"name": "roles-token-user"}, {}, a_user("roles-token-user")
    ),
    ("DELETE", "/api/v1/tokens/{token_id}"): Write("admin", prepare=a_token),
    ("POST", "/api/v1/cameras"): Write(
        "admin", body={"camera_id": "roles-new-cam", "url": "rtsp://127.0.0.1:1/x"}
    ),
    ("PUT", "/api/v1/cameras/{camera_id}"): Write(
        "admin", {"camera_id": "roles-put-cam"}, {"url": "rtsp://127.0.0.1:1/y"}, a_camera("roles-put-cam")
    ),
    ("DELETE", "/api/v1/cameras/{camera_id}"): Write(
        "admin", {"camera_id": "roles-gone-cam"}, None, a_camera("roles-gone-cam")
    ),
}


@pytest.fixture(scope="module")
def api(new_kafka_settings, tmp_path_factory):
    """A running alerter with a token of every role and one open alert."""
    settings = new_kafka_settings()
    tmp = tmp_path_factory.mktemp("roles")
    hit = make_hit(CAMERA, QUERY, int(time.time() * 1000) - 5_000)
    with ResilientProducer(settings) as producer:
        publish_query(producer, settings.topics, standing_query(QUERY, "a person climbing"))
        producer.send(settings.topics.hits, encode_json(hit), key=CAMERA)
        producer.flush()
    config = AlerterSettings(
        group_id=f"alerter-roles-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        speech=SpeechSettings(cache_dir=tmp / "speech", engines=["espeak-ng"], warm_up=False),
    )
    tokens = [ApiToken(name=f"{role}-user", role=role, token=token) for role, token in TOKENS.items()]
    running = Stack(config, settings, api_settings_for(config, tmp, tokens=tokens))
    try:
        alert_id = alert_id_for(hit.hit_id)
        wait_for(lambda: running.api.service.alerts.records(), 30, "the alert at the API")
        yield Api(running.url, alert_id)
    finally:
        running.stop()


def write_routes(api: Api) -> list[tuple[str, str]]:
    document = requests.get(f"{api.url}/openapi.json", timeout=10).json()
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in WRITE_METHODS
    )


def test_every_write_route_has_a_minimum_role_in_the_table(api):
    routes = set(write_routes(api))
    missing = sorted(routes - set(WRITE_ROUTES))
    assert not missing, f"write routes with no entry in WRITE_ROUTES (add their minimum role): {missing}"
    stale = sorted(set(WRITE_ROUTES) - routes)
    assert not stale, f"WRITE_ROUTES names routes the API no longer has: {stale}"


def test_every_write_route_refuses_a_missing_token_and_a_role_below_its_minimum(api):
    checked = []
    for method, template in write_routes(api):
        write = WRITE_ROUTES.get((method, template))
        if write is None:
            continue  # the test above names it
        parameters = {
            name: api.alert_id if value == "<the alert>" else value
            for name, value in write.path_parameters.items()
        }
        if write.prepare is not None:
            parameters.update(write.prepare(api) or {})
        path = template.format(**parameters)
        anonymous = api.call(method, path, None, write.body)
        assert anonymous.status_code == 401, (method, template, anonymous.text)
        assert anonymous.headers.get("www-authenticate") == "Bearer"
        for role in ROLE_RANK:
            if ROLE_RANK[role] < ROLE_RANK[write.role]:
                refused = api.call(method, path, role, write.body)
                assert refused.status_code == 403, (method, template, role, refused.text)
                assert write.role in refused.json()["detail"]
        done = api.call(method, path, write.role, write.body)
        assert 200 <= done.status_code < 300, (method, template, write.role, done.status_code, done.text)
        checked.append((method, template))
    assert checked == sorted(WRITE_ROUTES), "every route of the table was called"


def test_the_roles_above_the_minimum_may_write_too(api):
    """An admin does what an operator may: here, adding and deleting a query."""
    body = {"query_id": "admin-writes", "text": "a forklift"}
    assert api.call("POST", "/api/v1/queries", "admin", body).status_code == 201
    assert api.call("DELETE", "/api/v1/queries/admin-writes", "admin").status_code == 204
