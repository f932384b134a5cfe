"""`vigil users` and `vigil tokens` against a real `vigil api` process on the real broker: a
token made on the command line authenticates within a second, a revoked one is refused within a
second, expiry and roles hold, the last admin stays, a new API process honours every change,
the first admin's token is printed once on stdout, and no token or digest is ever logged."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
import yaml

from vigil.pipelines.identities import token_digest
from vigil.services.broker.local import free_loopback_port

VIGIL = str(Path(sys.executable).with_name("vigil"))


def environment(settings) -> dict[str, str]:
    return {
        **os.environ,
        "VIGIL_KAFKA_BOOTSTRAP": settings.bootstrap,
        "VIGIL_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
        "VIGIL_LOG_LEVEL": "DEBUG",  # the most a log can say: still no secret
    }


def vigil(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [VIGIL, *args], capture_output=True, text=True, timeout=60, env=environment(settings)
    )


class ApiProcess:
    """`vigil api` as its own process, its stdout and stderr (the log) kept in files."""

    def __init__(self, settings, config: Path, port: int, folder: Path, name: str) -> None:
        self.stdout, self.stderr = folder / f"{name}.out", folder / f"{name}.log"
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                [VIGIL, "api", "--config", str(config)], stdout=out, stderr=err, env=environment(settings)
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.stderr.read_text()[-3000:]
            assert time.monotonic() < deadline, "the API did not answer within 60 s"
            try:
                requests.get(f"{self.url}/healthz", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.2)

    def status(self, token: str, method: str = "GET", path: str = "/api/v1/me", **kwargs) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=5, **kwargs).status_code

    def within(self, seconds: float, token: str, expected: int) -> float:
        """How long until `token` gets `expected` from /api/v1/me; fails past `seconds`."""
        started = time.monotonic()
        while (status := self.status(token)) != expected:
            assert time.monotonic() - started < seconds, f"still {status} after {seconds} s"
            time.sleep(0.02)
        return time.monotonic() - started

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def make_token(settings, *args: str) -> tuple[str, str]:
    """(token, token id) from `vigil tokens create`: the token alone on stdout."""
    created = vigil(settings, "tokens", "create", *args)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert len(token) == 43 and token not in created.stderr
    shown = re.search(r"^token (\S+) for ", created.stderr, re.MULTILINE)
    assert shown, created.stderr
    return token, shown[1]


def test_users_and_tokens_from_the_command_line_reach_a_running_api(kafka_settings, tmp_path):
    port = free_loopback_port()
    config = tmp_path / "vigil.yaml"
    api_section = {
        "port": port,
        "metrics_port": 0,
        "alerter_group_id": f"users-cli-{uuid.uuid4().hex[:8]}",
        "token_file": str(tmp_path / "api-token"),
        "signing_key_file": str(tmp_path / "link-key"),
        "thumbnails_dir": str(tmp_path / "thumbnails"),
        "audio_dir": str(tmp_path / "speech"),
    }
    config.write_text(yaml.safe_dump({"api": api_section}))
    outputs: list[str] = []  # everything printed but the one place each token is shown
    api = ApiProcess(kafka_settings, config, port, tmp_path, "first")
    try:
        admin = (tmp_path / "api-token").read_text().strip()
        assert api.status(admin) == 200

        assert vigil(kafka_settings, "users", "add", "ana", "--role", "operator").returncode == 0
        assert vigil(kafka_settings, "users", "add", "vera", "--role", "viewer").returncode == 0
        listed = vigil(kafka_settings, "users", "list")
        assert listed.stdout.splitlines() == [
            "admin (the first admin): admin",
            "ana: operator",
            "vera: viewer",
        ]

        ana, ana_id = make_token(kafka_settings, "ana", "--expires", "30d", "--label", "laptop")
        waited_s = api.within(1.0, ana, 200)
        print(f"a token made on the command line authenticated after {waited_s * 1000:.0f} ms")
        vera, _ = make_token(kafka_settings, "vera")
        tokens = vigil(kafka_settings, "tokens", "list", "ana")
        assert tokens.stdout.startswith(f"{ana_id}  ana 'laptop'") and "active" in tokens.stdout
        assert ana not in tokens.stdout and token_digest(ana) not in tokens.stdout
        outputs += [listed.stdout, tokens.stdout, tokens.stderr]

        # Roles: a viewer creates no user; an operator neither; an admin does.
        user = {"name": "eve", "role": "admin"}
        assert api.status(vera, "POST", "/api/v1/users", json=user) == 403
        assert api.status(ana, "POST", "/api/v1/users", json=user) == 403
        assert api.status(admin, "POST", "/api/v1/users", json={"name": "eve", "role": "viewer"}) == 201

        # The last admin stays.
        last = vigil(kafka_settings, "users", "disable", "admin")
        assert last.returncode == 2 and "last admin" in last.stderr and "Traceback" not in last.stderr

        # Revoked and expired tokens are refused within a second.
        revoked = vigil(kafka_settings, "tokens", "revoke", ana_id)
        assert revoked.returncode == 0, revoked.stderr
        waited_s = api.within(1.0, ana, 401)
        print(f"a token revoked on the command line was refused after {waited_s * 1000:.0f} ms")
        brief, _ = make_token(kafka_settings, "vera", "--expires", "2s")
        api.within(1.0, brief, 200)
        api.within(3.0, brief, 401)
        bad = vigil(kafka_settings, "tokens", "create", "vera", "--expires", "soon")
        assert bad.returncode == 2 and "--expires" in bad.stderr
        unknown = vigil(kafka_settings, "tokens", "create", "nobody")
        assert unknown.returncode == 2 and "no user 'nobody'" in unknown.stderr
        outputs += [last.stderr, revoked.stdout, bad.stderr, unknown.stderr]
    finally:
        api.stop()

    # A new API process on the same broker: every change holds; no first admin again.
    api = ApiProcess(kafka_settings, config, port, tmp_path, "second")
    try:
        assert api.status(admin) == 200 and api.status(vera) == 200
        assert api.status(ana) == 401 and api.status(brief) == 401
        disabled = vigil(kafka_settings, "users", "disable", "vera")
        assert disabled.returncode == 0, disabled.stderr
        api.within(1.0, vera, 401)
    finally:
        api.stop()

    first_out, second_out = (tmp_path / "first.out").read_text(), (tmp_path / "second.out").read_text()
    assert first_out.count(admin) == 1 and "shown once" in first_out
    logs = [(tmp_path / "first.log").read_text(), (tmp_path / "second.log").read_text()]
    assert "identities" in logs[0] and '"level": "DEBUG"' in logs[0]  # the whole log, at DEBUG
    for secret in (admin, ana, vera, brief):
        for text in [*logs, second_out, *outputs]:
            assert secret not in text and token_digest(secret) not in text
