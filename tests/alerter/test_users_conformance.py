"""The users and tokens routes (services/api/users.py) against the API's OpenAPI document with
an admin's token, past the 401/403 that tests/alerter/test_api_conformance.py fuzzes them to:
every answer documented, fits its schema, no 5xx. Positive and negative data, deterministic,
through `schemathesis run` as there (the pytest plugin fails on pytest 9.2)."""

from __future__ import annotations

import uuid

from alerter_support import RunningApi, api_settings_for
from api_fuzzing import run_schemathesis

from vigil.services.alerter.config import AlerterSettings
from vigil.services.common.auth import ApiToken

ADMIN = "admin-token-users-conformance-0123"


def test_with_an_admin_token_every_answer_of_the_users_routes_is_documented(kafka_settings, tmp_path):
    config = AlerterSettings(group_id=f"users-conformance-{uuid.uuid4().hex[:8]}")
    api = api_settings_for(config, tmp_path, tokens=[ApiToken(name="root", role="admin", token=ADMIN)])
    running = RunningApi(api, kafka_settings)
    try:
        report = run_schemathesis(
            running.url,
            tmp_path,
            token=ADMIN,
            max_examples=20,
            selection=("--include-tag", "users"),
            timeout_s=240,
        )
        assert "7 selected" in report, report  # the seven routes
    finally:
        running.stop()
