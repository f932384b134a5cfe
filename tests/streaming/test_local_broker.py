"""The local tansu broker: loopback only, clear errors, a foreground command that stops cleanly,
and the choice between a configured cluster and the embedded default."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from kafka import KafkaAdminClient

from vigil.services.broker import (
    LocalBroker,
    LocalBrokerError,
    free_loopback_port,
    resolve_bootstrap,
)
from vigil.services.common.kafka import KafkaSettings, broker_reachable


def topic_names(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_the_broker_refuses_to_listen_beyond_loopback():
    with pytest.raises(LocalBrokerError, match="loopback only"):
        LocalBroker(19092, host="0.0.0.0")


def test_a_port_already_in_use_is_named(kafka_broker, tmp_path):
    with pytest.raises(LocalBrokerError, match=f"{kafka_broker.bootstrap} is already in use"):
        LocalBroker(kafka_broker.port, log_dir=tmp_path).start()
    assert kafka_broker.running  # the broker already there is untouched


def test_stop_ends_tansu_and_restart_comes_back_on_the_same_address_with_nothing_in_it(tmp_path):
    broker = LocalBroker(0, log_dir=tmp_path)
    with broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics({"kept-until-restart": {}})
        admin.close()
        first_pid = broker.pid
        broker.restart()
        assert broker.running and broker.pid != first_pid
        assert "kept-until-restart" not in topic_names(broker.bootstrap)
    assert not broker.running and not broker_reachable(broker.bootstrap, timeout_s=0.2)
    assert "listening on: tcp://" + broker.bootstrap in broker.log_path.read_text()


def test_the_broker_command_serves_vigils_topics_until_sigterm_then_stops_tansu(tmp_path):
    port = free_loopback_port()
    command = f"from vigil.services.broker import broker_command; broker_command({port})"
    environment = {**os.environ, "VIGIL_HOME": str(tmp_path)}  # its log goes under var/broker
    environment.pop("VIGIL_BROKER_DIR")
    process = subprocess.Popen(
        [sys.executable, "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        banner = process.stdout.readline()
        assert f"127.0.0.1:{port}" in banner and "Ctrl-C" in banner, process.stderr.read()
        assert {"frames", "queries", "hits", "alerts", "camera-status", "dead-letters"} <= topic_names(
            f"127.0.0.1:{port}"
        )
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "stopped" in stdout
    assert not broker_reachable(f"127.0.0.1:{port}", timeout_s=0.2)  # tansu went with it
    assert (tmp_path / "broker" / f"tansu-{port}.log").is_file()
    assert (
        tmp_path / "broker" / "store" / "tansu" / "clusters" / "tansu_cluster" / "topics" / "frames"
    ).is_dir()


def test_a_configured_bootstrap_is_used_as_it_is_and_nothing_is_started():
    nowhere = f"127.0.0.1:{free_loopback_port()}"
    with resolve_bootstrap(KafkaSettings(bootstrap=nowhere)) as endpoint:
        assert endpoint.bootstrap == nowhere and endpoint.broker is None
    assert not broker_reachable(nowhere, timeout_s=0.2)


def embedded_default_at(address: str) -> KafkaSettings:
    """Settings as a user who configured no bootstrap gets them, with the default moved to `address`
    (the real default, 127.0.0.1:19092, may be taken by a developer's own `vigil broker`)."""
    values = KafkaSettings(bootstrap=address, topic_prefix="embedded-").model_dump()
    return KafkaSettings.model_construct(_fields_set={"topic_prefix"}, **values)


def test_the_embedded_default_starts_a_broker_with_the_topics_and_stops_it_on_close(tmp_path):
    address = f"127.0.0.1:{free_loopback_port()}"
    with resolve_bootstrap(embedded_default_at(address), log_dir=tmp_path) as endpoint:
        assert endpoint.embedded and endpoint.bootstrap == address
        assert "embedded-frames" in topic_names(address)
    assert not broker_reachable(address, timeout_s=0.2)


def test_the_embedded_default_uses_a_broker_already_running_there(kafka_broker):
    with resolve_bootstrap(embedded_default_at(kafka_broker.bootstrap)) as endpoint:
        assert endpoint.broker is None and endpoint.bootstrap == kafka_broker.bootstrap
        assert "embedded-queries" in topic_names(kafka_broker.bootstrap)
    assert kafka_broker.running  # not ours to stop
