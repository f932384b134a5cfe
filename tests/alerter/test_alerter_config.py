"""The alerter's settings: spoken camera names per language; the API's `api:` section (tokens
checked up front), which the alerter reads too for its webhooks' links."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vigil.errors import VigilError
from vigil.services.alerter.config import AlerterServiceSettings, AlerterSettings
from vigil.services.common.api_settings import ApiSettings


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
        ApiSettings(tokens=[{"name": "a", **token}, {"name": "b", **token}])
    with pytest.raises(ValidationError, match="names must be unique; repeated: a"):
        other = {"role": "admin", "token": "another-token-0123456789"}
        ApiSettings(tokens=[{"name": "a", **token}, {"name": "a", **other}])
    with pytest.raises(ValidationError, match="public_url is a base URL"):
        ApiSettings(public_url="https://vigil.example.com/?x=1")
    assert ApiSettings(public_url="https://vigil.example.com/").base_url() == "https://vigil.example.com"
    assert ApiSettings(port=8200).base_url() == "http://127.0.0.1:8200"
    assert ApiSettings(port=0).describe() is None


def test_webhook_names_are_unique():
    hook = {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32}
    with pytest.raises(ValidationError, match="webhook names must be unique; repeated: ops"):
        AlerterSettings(webhooks=[{"name": "ops", **hook}, {"name": "ops", **hook}])


def test_the_alerter_reads_the_api_section_for_its_links_and_refuses_the_old_place(tmp_path):
    path = tmp_path / "vigil.yaml"
    path.write_text(
        "alerter:\n  group_id: g1\napi:\n  port: 8200\n  public_url: https://vigil.example.com/\n"
        "  alerter_group_id: g1\n",
        encoding="utf-8",
    )
    settings = AlerterServiceSettings.load(path)
    assert settings.api.base_url() == "https://vigil.example.com" and settings.api.alerter_group_id == "g1"
    path.write_text("alerter:\n  api:\n    port: 8200\n", encoding="utf-8")
    with pytest.raises(VigilError, match="alerter.*api"):
        AlerterServiceSettings.load(path)
