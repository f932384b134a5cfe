"""Users, roles and tokens over the alerter's HTTP API (real broker, real uvicorn): the first admin
is made once, admins manage users and tokens, roles are enforced, the last admin stays, tokens
expire and are revoked, everything survives a restart, and no secret or digest reaches a log."""

from __future__ import annotations

import logging
import stat
import time
import uuid

import pytest
import requests
from alerter_support import RunningApi

from vigil.pipelines.identities import token_digest
from vigil.services.broker.local import free_loopback_port
from vigil.services.common.api_settings import ApiSettings


def config_for(tmp_path, group_id: str, port: int) -> ApiSettings:
    """The API service's settings (users and tokens need no alerter)."""
    return ApiSettings(
        port=port,
        metrics_port=0,
        alerter_group_id=group_id,
        token_file=tmp_path / "home" / "api-token",
        signing_key_file=tmp_path / "home" / "link-key",
        thumbnails_dir=tmp_path / "thumbnails",
        audio_dir=tmp_path / "speech",
    )


class Client:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, method: str, path: str, token: str | None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def me(self, token: str) -> int:
        return self("GET", "/api/v1/me", token).status_code


def new_token(api: Client, admin: str, user: str, **body) -> tuple[str, str]:
    made = api("POST", f"/api/v1/users/{user}/tokens", admin, json=body)
    assert made.status_code == 201, made.text
    return made.json()["token_id"], made.json()["token"]


def test_users_tokens_and_roles_through_the_api(kafka_settings, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    config = config_for(tmp_path, f"users-api-{uuid.uuid4().hex[:8]}", free_loopback_port())
    secrets_seen: list[str] = []
    running = RunningApi(config, kafka_settings)
    try:
        api = Client(running.url)
        # The first admin: made because there is no user and no configured token, shown once.
        token_file = config.token_file
        admin = token_file.read_text().strip()
        secrets_seen.append(admin)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert capsys.readouterr().out.count(admin) == 1
        assert api("GET", "/api/v1/me", admin).json() == {"name": "admin", "role": "admin"}

        # Admins add users; a name is taken once.
        for name, role in (("ana", "operator"), ("vera", "viewer")):
            added = api("POST", "/api/v1/users", admin, json={"name": name, "role": role})
            assert added.status_code == 201 and added.json()["role"] == role, added.text
        again = api("POST", "/api/v1/users", admin, json={"name": "ana", "role": "admin"})
        assert again.status_code == 409 and "exists" in again.json()["detail"]
        bad = api("POST", "/api/v1/users", admin, json={"name": "no spaces", "role": "viewer"})
        assert bad.status_code == 422
        users = api("GET", "/api/v1/users", admin).json()["users"]
        assert [(u["name"], u["role"]) for u in users] == [
            ("admin", "admin"),
            ("ana", "operator"),
            ("vera", "viewer"),
        ]

        # Tokens: the secret once, in the creating response; listed by id and metadata only.
        ana_id, ana = new_token(api, admin, "ana", label="laptop")
        _vera_id, vera = new_token(api, admin, "vera")
        secrets_seen += [ana, vera]
        assert api("GET", "/api/v1/me", ana).json() == {"name": "ana", "role": "operator"}
        listed = api("GET", "/api/v1/users/ana/tokens", admin)
        assert [t["token_id"] for t in listed.json()["tokens"]] == [ana_id]
        assert listed.json()["tokens"][0]["label"] == "laptop"
        assert ana not in listed.text and token_digest(ana) not in listed.text and "sha256" not in listed.text
        assert api("GET", "/api/v1/users/nobody/tokens", admin).status_code == 404
        assert api("POST", "/api/v1/users/nobody/tokens", admin, json={}).status_code == 404

        # Roles: only admins manage users; an operator acknowledges, a viewer reads.
        assert api("POST", "/api/v1/users", vera, json={"name": "eve", "role": "admin"}).status_code == 403
        assert api("GET", "/api/v1/users", ana).status_code == 403
        assert api("POST", "/api/v1/users/vera/tokens", ana, json={}).status_code == 403
        assert api("DELETE", f"/api/v1/tokens/{ana_id}", vera).status_code == 403
        assert api("GET", "/api/v1/alerts", vera).status_code == 200
        assert api("POST", "/api/v1/alerts/alert:none/acknowledge", vera).status_code == 403
        assert api("POST", "/api/v1/alerts/alert:none/acknowledge", ana).status_code == 404  # past the role
        assert api("GET", "/api/v1/users", "made-up-token-0123456789").status_code == 401

        # The last admin is neither removed nor demoted; with another admin, they can be.
        last = api("DELETE", "/api/v1/users/admin", admin)
        assert last.status_code == 409 and "last admin" in last.json()["detail"]
        demote = api("PUT", "/api/v1/users/admin", admin, json={"role": "operator"})
        assert demote.status_code == 409
        promoted = api("PUT", "/api/v1/users/ana", admin, json={"role": "admin", "display_name": "Ana"})
        assert promoted.status_code == 200 and promoted.json()["display_name"] == "Ana"
        assert api("GET", "/api/v1/users", ana).status_code == 200  # her token has her new role at once
        assert api("DELETE", "/api/v1/users/admin", ana).status_code == 204
        assert api.me(admin) == 401  # disabled, its token revoked
        assert api("GET", "/api/v1/users/admin/tokens", ana).json()["tokens"][0]["revoked_by"] == "ana"
        assert api("POST", "/api/v1/users/admin/tokens", ana, json={}).status_code == 409  # disabled
        assert api("DELETE", "/api/v1/users/nobody", ana).status_code == 404

        # Expiry and revocation.
        short_id, short = new_token(api, ana, "vera", expires_in_s=1)
        secrets_seen.append(short)
        assert api.me(short) == 200
        time.sleep(1.1)
        assert api.me(short) == 401
        assert api("DELETE", f"/api/v1/tokens/{short_id}", ana).status_code == 204
        assert api("DELETE", f"/api/v1/tokens/{short_id}", ana).status_code == 204  # again: still revoked
        assert api("DELETE", "/api/v1/tokens/no-such-token", ana).status_code == 404
    finally:
        running.stop()

    # A new API process on the same broker: every change is there, and no first admin is made again.
    restarted = RunningApi(config, kafka_settings)
    try:
        api = Client(restarted.url)
        assert api("GET", "/api/v1/me", ana).json() == {"name": "ana", "role": "admin"}
        assert api.me(vera) == 200 and api.me(admin) == 401 and api.me(short) == 401
        assert capsys.readouterr().out == ""
    finally:
        restarted.stop()

    # kafka-python's DEBUG lines dump request bytes (records included); Vigil's services keep
    # the "kafka" loggers at CRITICAL whatever the level (vigil/logs.py), so they are not output.
    logged = "\n".join(
        f"{record.getMessage()} {record.__dict__}"
        for record in caplog.records
        if not record.name.startswith("kafka")
    )
    assert "identities" in logged and "token" in logged  # the grep below reads the real lines
    for secret in secrets_seen:
        assert secret not in logged and token_digest(secret) not in logged


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_a_configured_admin_token_keeps_the_old_way_working(kafka_settings, tmp_path, role):
    """Tokens configured in the settings authenticate as before, beside the stored ones, and
    no first admin is made for them."""
    from vigil.services.common.auth import ApiToken

    configured = f"configured-{role}-token-0123456789"
    config = config_for(tmp_path, f"users-api-{uuid.uuid4().hex[:8]}", free_loopback_port())
    config = config.model_copy(update={"tokens": [ApiToken(name="cfg", role=role, token=configured)]})
    running = RunningApi(config, kafka_settings)
    try:
        api = Client(running.url)
        assert api("GET", "/api/v1/me", configured).json() == {"name": "cfg", "role": role}
        assert not config.token_file.exists() and running.service.identities.users() == []
        expected = 200 if role == "admin" else 403
        assert api("GET", "/api/v1/users", configured).status_code == expected
    finally:
        running.stop()
