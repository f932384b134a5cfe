"""What every long-running service does at its edges: stop on a signal, close what it opened."""

from __future__ import annotations

import logging
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)

# util-linux's setpriv sets the parent-death signal in the child itself, between fork and exec,
# with no Python running there. A `preexec_fn` did it before, and made Python fork() rather than
# vfork(), which runs every library's fork handlers in the child: gRPC's (Milvus lite's, in the
# same process) aborted 5 children in 300, and the local broker "exited with code -6 while
# starting". Python's own docs warn that preexec_fn is unsafe with threads.
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def dying_with_parent(command: list[str]) -> list[str]:
    """`command` made to get SIGTERM when its parent dies, SIGKILL included (Linux, through
    `setpriv --pdeathsig`; where setpriv is missing, the command as it is). Strictly, when the
    parent *thread* that started it exits: start it with `popen_dying_with_parent`. The child
    keeps the pid Popen reports (setpriv execs the command)."""
    if _SETPRIV is None:
        return command
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *command]


# The parent-death signal fires when the thread that forked the child ends, not the process: a
# broker restarted from a thread that then returned was SIGTERMed at once. So every helper is
# forked by one daemon thread that lives as long as the process.
_spawn_requests: queue.SimpleQueue = queue.SimpleQueue()
_spawner_lock = threading.Lock()
_spawner: threading.Thread | None = None


def _serve_spawns() -> None:
    while True:
        future, command, options = _spawn_requests.get()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(subprocess.Popen(dying_with_parent(command), **options))
            except BaseException as error:  # the caller's to handle, as Popen's own
                future.set_exception(error)


def popen_dying_with_parent(command: list[str], **options: object) -> subprocess.Popen:
    """subprocess.Popen(dying_with_parent(command), **options), forked by the spawner thread so
    that the child dies with this process, whichever thread asked."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_serve_spawns, name="helper-spawner", daemon=True)
            _spawner.start()
    future: Future[subprocess.Popen] = Future()
    _spawn_requests.put((future, command, options))
    return future.result()


def start_logged_child(command: list[str], log_path: Path, environment: dict[str, str]) -> subprocess.Popen:
    """Start a helper process (the local broker, its object store) in a session of its own,
    appending its output to `log_path` after a line naming the command.

    Own session: a Ctrl-C in the terminal reaches Vigil, which stops the helper after the
    services have flushed, not before; and it dies with Vigil, even when Vigil is killed by
    SIGKILL (dying_with_parent)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        log_file.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(command)}\n".encode())
        log_file.flush()
        return popen_dying_with_parent(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )


def wait_until_ready(process: subprocess.Popen, ready: Callable[[], bool], timeout_s: float) -> int | None:
    """Poll `ready()` until it holds (None) or `process` exits (its exit code); TimeoutError
    after `timeout_s`. For a helper process that must answer before it is used."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        exit_code = process.poll()
        if exit_code is not None:
            return exit_code
        if ready():
            return None
        time.sleep(0.05)
    raise TimeoutError(f"not ready within {timeout_s:.0f} s")


class Closers:
    """What a service has opened so far, closed newest first; one failure does not stop the rest
    (closing the others matters more), and closing twice closes nothing twice."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._closers: list[Callable[[], object]] = []

    def push(self, close: Callable[[], object]) -> None:
        self._closers.insert(0, close)

    def close(self) -> None:
        closers, self._closers = self._closers, []
        for close in closers:
            try:
                close()
            except Exception as error:
                log.warning("while closing the %s: %s", self.what, error)


def serve_metrics(port: int, registry: CollectorRegistry) -> Callable[[], None]:
    """Prometheus /metrics on `port` in a thread; returns what stops it and frees the port."""
    server, _ = start_http_server(port, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGINT or SIGTERM sets while the block runs; the previous handlers are put
    back after it. Call from the main thread (Python delivers signals there only)."""
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
