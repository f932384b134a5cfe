"""`vigil queries` and `vigil up`'s config checks, through the real CLI and the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

VIGIL = str(Path(sys.executable).with_name("vigil"))


def vigil(settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "VIGIL_KAFKA_BOOTSTRAP": settings.bootstrap,
        "VIGIL_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
    }
    return subprocess.run([VIGIL, *args], capture_output=True, text=True, timeout=timeout, env=environment)


def test_standing_queries_are_added_listed_and_deleted(kafka_settings):
    added = vigil(
        kafka_settings, "queries", "add", "một xe máy màu đỏ", "--id", "red-bike", "--camera", "gate-1"
    )
    assert added.returncode == 0, added.stderr
    vigil(
        kafka_settings, "queries", "add", "a person climbing the fence", "--id", "fence", "--threshold", "0.8"
    )
    listed = vigil(kafka_settings, "queries", "list", "--json")
    queries = {q["query_id"]: q for q in json.loads(listed.stdout)}
    assert set(queries) == {"red-bike", "fence"}
    assert queries["red-bike"]["text"] == "một xe máy màu đỏ" and queries["red-bike"]["cameras"] == ["gate-1"]
    assert queries["fence"]["threshold"] == 0.8
    assert vigil(kafka_settings, "queries", "delete", "fence").returncode == 0
    listed = vigil(kafka_settings, "queries", "list", "--json")
    assert [q["query_id"] for q in json.loads(listed.stdout)] == ["red-bike"]


def test_a_querys_own_schedule_is_set_shown_and_dropped(kafka_settings):
    added = vigil(
        kafka_settings, "queries", "add", "a person climbing the fence", "--id", "fence",
        "--armed", "mon-fri 18:00-07:00", "--armed", "sat,sun 00:00-24:00", "--timezone", "Asia/Ho_Chi_Minh",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = vigil(kafka_settings, "queries", "list")
    assert "armed mon-fri 18:00-07:00, sat-sun 00:00-24:00 (Asia/Ho_Chi_Minh)" in listed.stdout, listed.stdout
    quiet = vigil(kafka_settings, "queries", "edit", "fence", "--quiet", "23:00-06:00")
    assert quiet.returncode == 0, quiet.stderr
    [fence] = json.loads(vigil(kafka_settings, "queries", "list", "--json").stdout)
    assert fence["schedule"]["timezone"] == "Asia/Ho_Chi_Minh" and len(fence["schedule"]["armed"]) == 2
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert fence["schedule"]["quiet_hours"] == [{"days": every_day, "start": "23:00", "end": "06:00"}]
    assert vigil(kafka_settings, "queries", "edit", "fence", "--always").returncode == 0
    [fence] = json.loads(vigil(kafka_settings, "queries", "list", "--json").stdout)
    assert fence["schedule"] is None


def test_bad_queries_are_one_clear_line(kafka_settings):
    for args, expected in [
        (("add", "a cat", "--id", "cat", "--threshold", "1.5"), "threshold"),
        (("add", "a cat", "--id", "bad id!"), "query_id"),
        (("add", "   ", "--id", "blank"), "text"),
        (("delete", "no-such-query"), "no standing query 'no-such-query'"),
        (("add", "a cat", "--id", "cat", "--armed", "22:00"), "is not a window"),
        (
            ("add", "a cat", "--id", "cat", "--armed", "00:00-24:00", "--timezone", "Mars/Base"),
            "unknown time zone",
        ),
    ]:
        result = vigil(kafka_settings, "queries", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("vigil: error:") and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_vigil_up_checks_every_section_before_starting_anything(kafka_settings, tmp_path):
    config = tmp_path / "vigil.yaml"
    config.write_text(
        "cameras:\n  - {id: hall, url: rtsp://127.0.0.1:1/x}\n"
        "detector: {max_lag_s: -1}\n"
        "queries:\n  - {id: cat, text: a cat}\n"
    )
    result = vigil(kafka_settings, "up", "--config", str(config))
    assert result.returncode == 2 and "max_lag_s" in result.stderr, result.stderr
    config.write_text("cameras:\n  - {id: hall, url: rtsp://127.0.0.1:1/x}\nqueries:\n  - {id: cat}\n")
    result = vigil(kafka_settings, "up", "--config", str(config))
    assert result.returncode == 2 and "queries[0]" in result.stderr and "text" in result.stderr, result.stderr
    for alerter, field in [
        ("{policy: {cooldown_s: -5}}", "alerter: policy.cooldown_s"),
        ("{speech: {engines: [festival]}}", "alerter: speech.engines"),
        ("{no_such_setting: 1}", "alerter: no_such_setting"),
    ]:
        config.write_text(
            f"cameras:\n  - {{id: hall, url: rtsp://127.0.0.1:1/x}}\nalerter: {alerter}\n"
            "queries:\n  - {id: cat, text: a cat}\n"
        )
        result = vigil(kafka_settings, "up", "--config", str(config))
        assert result.returncode == 2 and field in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


def test_queries_are_edited_and_their_history_names_who_and_what(kafka_settings):
    assert vigil(kafka_settings, "queries", "add", "a cat", "--id", "cat").returncode == 0
    edited = vigil(
        kafka_settings, "queries", "edit", "cat", "--severity", "critical", "--camera", "hall", "--disable"
    )
    assert edited.returncode == 0, edited.stderr
    listed = {q["query_id"]: q for q in json.loads(vigil(kafka_settings, "queries", "list", "--json").stdout)}
    cat = listed["cat"]
    assert (cat["text"], cat["severity"], cat["cameras"], cat["enabled"]) == (
        "a cat",
        "critical",
        ["hall"],
        False,
    )
    assert vigil(kafka_settings, "queries", "delete", "cat").returncode == 0
    history = vigil(kafka_settings, "queries", "history", "cat", "--json")
    assert history.returncode == 0, history.stderr
    changes = json.loads(history.stdout)
    assert [c["action"] for c in changes] == ["created", "updated", "deleted"]
    assert changes[1]["query"]["severity"] == "critical" and changes[2]["query"] is None
    assert len({c["by"] for c in changes}) == 1
    for args, expected in [
        (("edit", "no-such-query", "--severity", "info"), "no standing query 'no-such-query'"),
        (("history", "no-such-query"), "no standing query 'no-such-query'"),
    ]:
        result = vigil(kafka_settings, "queries", *args)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
