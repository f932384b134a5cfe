"""Kafka settings: environment names, validation that names the field, no password in sight."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from vigil.services.common.kafka import MIB, KafkaSettings, topic_specs


def test_settings_come_from_vigil_kafka_environment_variables(monkeypatch):
    monkeypatch.setenv("VIGIL_KAFKA_BOOTSTRAP", "kafka-0:9092, kafka-1:9092")
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_PREFIX", "site-a.")
    monkeypatch.setenv("VIGIL_KAFKA_FRAME_PARTITIONS", "12")
    settings = KafkaSettings()
    assert settings.bootstrap_servers == ["kafka-0:9092", "kafka-1:9092"]
    assert settings.topics.frames == "site-a.frames"
    assert settings.topics.dead_letters == "site-a.dead-letters"
    assert settings.frame_partitions == 12
    assert "bootstrap" in settings.model_fields_set  # configured: resolve_bootstrap starts nothing


def test_the_default_is_the_embedded_broker_on_loopback(monkeypatch):
    monkeypatch.delenv("VIGIL_KAFKA_BOOTSTRAP", raising=False)
    settings = KafkaSettings()
    assert settings.bootstrap == "127.0.0.1:19092"
    assert "bootstrap" not in settings.model_fields_set


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"bootstrap": "kafka-0"}, "bootstrap"),
        ({"bootstrap": "kafka-0:http"}, "bootstrap"),
        ({"frame_partitions": 0}, "frame_partitions"),
        ({"topic_prefix": "a b"}, "topic_prefix"),
        ({"max_message_bytes": 100}, "max_message_bytes"),
    ],
)
def test_a_bad_setting_is_named(values, field):
    with pytest.raises(ValidationError) as caught:
        KafkaSettings(**values)
    assert caught.value.errors()[0]["loc"] == (field,)


def test_sasl_needs_mechanism_user_and_password_and_never_shows_the_password():
    with pytest.raises(ValidationError, match="needs sasl_mechanism, sasl_username, sasl_password"):
        KafkaSettings(security_protocol="SASL_SSL")
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="vigil",
        sasl_password="hunter2",
    )
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert "hunter2" not in settings.model_dump_json()
    assert settings.client_config()["sasl_plain_password"] == "hunter2"  # handed to the client only


def test_topic_specs_give_frames_their_partitions_and_size_and_compact_the_tables():
    specs = topic_specs(KafkaSettings(frame_partitions=8, topic_prefix="p-"))
    assert set(specs) == {
        "p-frames", "p-queries", "p-hits", "p-alerts", "p-camera-status", "p-dead-letters",
        "p-detector-state", "p-alert-state", "p-alert-commands", "p-query-history",
        "p-identities", "p-cameras",
    }  # fmt: skip
    frames = specs["p-frames"]
    assert frames["num_partitions"] == 8
    assert frames["configs"]["retention.ms"] == str(3_600_000)
    assert int(frames["configs"]["max.message.bytes"]) >= 10 * MIB
    assert specs["p-queries"]["configs"]["cleanup.policy"] == "compact"
    assert specs["p-camera-status"]["configs"]["cleanup.policy"] == "compact"
    assert specs["p-detector-state"]["configs"]["cleanup.policy"] == "compact"
    assert specs["p-detector-state"]["num_partitions"] == 1
    assert specs["p-alert-state"]["configs"]["cleanup.policy"] == "compact"
    assert specs["p-alert-state"]["num_partitions"] == 1
    assert specs["p-identities"]["configs"]["cleanup.policy"] == "compact"
    assert specs["p-identities"]["num_partitions"] == 1
    # One table of cameras whose deletes are remembered (the YAML file must not seed them back).
    assert specs["p-cameras"]["configs"]["cleanup.policy"] == "compact"
    assert specs["p-cameras"]["num_partitions"] == 1
    assert int(specs["p-cameras"]["configs"]["delete.retention.ms"]) >= 5 * 365 * 24 * 3600 * 1000
    # So are the standing queries' deletes (vigil up's file must not seed a deleted query back).
    assert int(specs["p-queries"]["configs"]["delete.retention.ms"]) >= 5 * 365 * 24 * 3600 * 1000
    # Acknowledgements from the API to the alerter: kept like the events.
    assert specs["p-alert-commands"]["configs"]["cleanup.policy"] == "delete"
    assert int(specs["p-hits"]["configs"]["retention.ms"]) > int(frames["configs"]["retention.ms"])
    # The audit trail of standing queries: append-only, one partition (loaded whole, in order), a year.
    history = specs["p-query-history"]
    assert history["num_partitions"] == 1 and history["configs"]["cleanup.policy"] == "delete"
    assert int(history["configs"]["retention.ms"]) == 365 * 86_400_000
    assert int(specs["p-dead-letters"]["configs"]["max.message.bytes"]) > int(
        frames["configs"]["max.message.bytes"]
    )


def test_the_password_stays_out_of_kafka_pythons_debug_log(caplog):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaTimeoutError

    from vigil.services.broker import free_loopback_port

    settings = KafkaSettings(
        bootstrap=f"127.0.0.1:{free_loopback_port()}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="vigil",
        sasl_password="hunter2",
    )
    with caplog.at_level(logging.DEBUG, logger="kafka"), pytest.raises(KafkaTimeoutError):
        KafkaAdminClient(**settings.client_config(), bootstrap_timeout_ms=100)  # nothing listens there
    assert caplog.records, "kafka-python logged nothing at DEBUG: this test no longer proves anything"
    assert "hunter2" not in caplog.text
