"""The edges every service shares: closing what it opened, /metrics, stopping on a signal,
starting helper processes that die with their parent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from vigil.services.broker.local import free_loopback_port
from vigil.services.common.lifecycle import Closers, serve_metrics, start_logged_child, stop_on_signals
from vigil.services.detector.store import HitStore, StoreSettings


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


def test_helpers_start_while_milvus_lite_s_grpc_threads_run_in_the_same_process(tmp_path):
    """Milvus lite serves gRPC from threads of the process that opened it. A child started with a
    Python `preexec_fn` ran gRPC's fork handlers between fork and exec, and about 1 in 80 aborted
    (exit -6): the chaos bench's local broker died that way while starting."""
    settings = StoreSettings(uri=str(tmp_path / "milvus"), thumbnails_dir=tmp_path / "thumbnails")
    with HitStore(settings.model_copy(update={"dim": 8})):
        codes = [start_logged_child(["true"], tmp_path / "child.log", {}).wait() for _ in range(600)]
    assert {code: codes.count(code) for code in set(codes)} == {0: 600}


def test_a_helper_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path):
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from pathlib import Path
                from vigil.services.common.lifecycle import start_logged_child
                child = start_logged_child(["sleep", "120"], Path({str(tmp_path / "child.log")!r}), {{}})
                print(child.pid, flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    child_pid = int(parent.stdout.readline())
    assert process_alive(child_pid)
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while process_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(child_pid), "the helper outlived its killed parent"


def test_a_helper_started_from_a_thread_outlives_that_thread(tmp_path):
    """The parent-death signal follows the thread that forked the child: a broker a supervisor
    thread restarted was SIGTERMed as soon as that thread returned."""
    started: list[subprocess.Popen] = []

    def start_then_return() -> None:
        started.append(start_logged_child(["sleep", "120"], tmp_path / "child.log", {}))
        time.sleep(0.5)  # the child has set its parent-death signal by then

    starter = threading.Thread(target=start_then_return)
    starter.start()
    starter.join()
    child = started[0]
    try:
        time.sleep(1.0)
        assert child.poll() is None, f"the helper ended with its starting thread (code {child.returncode})"
    finally:
        child.kill()
        child.wait()


def process_alive(pid: int) -> bool:
    """Running, not a zombie waiting for its (dead) parent's reaper."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
