"""The alerter's settings: spoken camera names per language, API tokens checked up front."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vigil.services.alerter.config import AlertApiSettings, AlerterSettings


def test_a_camera_is_spoken_by_its_name_in_the_alerts_language():
    config = AlerterSettings(cameras={"hall": {"vi": "sảnh chính", "en": "main hall"}, "gate-1": "cổng 1"})
    assert config.camera_name("hall", "en") == "main hall"
    assert config.camera_name("hall", "vi") == "sảnh chính"
    assert config.camera_name("hall") == "sảnh chính"  # no language: the first name
    assert config.camera_name("gate-1", "en") == "cổng 1"  # one name for every language
    assert config.camera_name("lobby", "en") == "lobby"  # not configured: its id
    with pytest.raises(ValidationError, match="hall: the display name is empty"):
        AlerterSettings(cameras={"hall": {"vi": " "}})
    with pytest.raises(ValidationError, match="cameras.hall"):
        AlerterSettings(cameras={"hall": {"fr": "le hall"}})


def test_api_tokens_are_checked_when_the_settings_load():
    token = {"role": "viewer", "token": "same-token-0123456789"}
    with pytest.raises(ValidationError, match="'a' and 'b' are the same token"):
        AlertApiSettings(tokens=[{"name": "a", **token}, {"name": "b", **token}])
    with pytest.raises(ValidationError, match="names must be unique; repeated: a"):
        other = {"role": "admin", "token": "another-token-0123456789"}
        AlertApiSettings(tokens=[{"name": "a", **token}, {"name": "a", **other}])
    with pytest.raises(ValidationError, match="public_url is a base URL"):
        AlertApiSettings(public_url="https://vigil.example.com/?x=1")
    assert AlertApiSettings(public_url="https://vigil.example.com/").base_url() == "https://vigil.example.com"
    assert AlertApiSettings(port=8200).base_url() == "http://127.0.0.1:8200"
    assert AlertApiSettings(port=0).describe() is None


def test_webhook_names_are_unique():
    hook = {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32}
    with pytest.raises(ValidationError, match="webhook names must be unique; repeated: ops"):
        AlerterSettings(webhooks=[{"name": "ops", **hook}, {"name": "ops", **hook}])
