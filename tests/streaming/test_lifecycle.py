"""The edges every service shares: closing what it opened, /metrics, stopping on a signal."""

from __future__ import annotations

import os
import signal
import socket
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from vigil.services.broker.local import free_loopback_port
from vigil.services.common.lifecycle import Closers, serve_metrics, stop_on_signals


def test_closers_close_newest_first_once_and_carry_on_past_a_failure(caplog):
    closed = []
    closers = Closers("test service")
    closers.push(lambda: closed.append("store"))
    closers.push(lambda: 1 / 0)
    closers.push(lambda: closed.append("consumer"))
    closers.close()
    closers.close()
    assert closed == ["consumer", "store"]
    assert "while closing the test service: division by zero" in caplog.text


def test_the_metrics_server_serves_and_then_frees_its_port():
    registry = CollectorRegistry()
    Counter("vigil_test_events", "test", registry=registry).inc(3)
    port = free_loopback_port()
    stop = serve_metrics(port, registry)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "vigil_test_events_total 3.0" in body
    stop()
    with socket.socket() as again:  # the listening socket is closed, not only its loop
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the client's TIME_WAIT
        again.bind(("0.0.0.0", port))


def test_sigterm_sets_the_stop_event_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before
