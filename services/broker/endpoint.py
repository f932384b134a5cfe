"""Where Kafka is for a run, and `vigil broker`: a configured cluster as it is, else the local
broker of the embedded default (services/broker/local.py), started durable with its store
keeper when none answers on its address."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vigil.services.broker.keeper import StoreKeeper
from vigil.services.broker.local import DEFAULT_PORT, LocalBroker, durable_broker_dir
from vigil.services.common.kafka import KafkaSettings, broker_reachable, ensure_topics, split_host_port


@dataclass
class KafkaEndpoint:
    """Where the services find Kafka, and the local broker this process started (if any)."""

    bootstrap: str
    broker: LocalBroker | None = None
    keeper: StoreKeeper | None = None

    @property
    def embedded(self) -> bool:
        return self.broker is not None

    def revive(self) -> bool:
        """Restart the local broker this process started if any part of it died; True when it
        did (the caller re-ensures topics). A cluster or someone else's broker is not ours."""
        return self.broker is not None and self.broker.revive()

    def close(self) -> None:
        """Stop the broker this process started; a cluster or someone else's broker stays."""
        if self.keeper is not None:
            self.keeper.stop()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> KafkaEndpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_local_broker(
    settings: KafkaSettings, *, log_dir: Path | None = None, data_dir: Path | None = None
) -> KafkaEndpoint:
    """A local broker on settings.bootstrap with Vigil's topics; durable (with its StoreKeeper)
    when `data_dir` is given. The returned endpoint owns both: close() stops them."""
    host, port = split_host_port(settings.bootstrap)
    endpoint = KafkaEndpoint(
        settings.bootstrap, LocalBroker(port, host=host, log_dir=log_dir, data_dir=data_dir)
    )
    try:
        endpoint.broker.start()
        ensure_topics(settings)
        if endpoint.broker.store is not None:
            endpoint.keeper = StoreKeeper(settings, endpoint.broker.store.endpoint).start()
    except BaseException:
        endpoint.close()
        raise
    return endpoint


def resolve_bootstrap(
    settings: KafkaSettings, *, log_dir: Path | None = None, data_dir: Path | None = None
) -> KafkaEndpoint:
    """Decide where Kafka is for this run.

    - bootstrap configured (VIGIL_KAFKA_BOOTSTRAP or config): that cluster, nothing started.
    - otherwise the embedded default, 127.0.0.1:19092: a broker already answering there (a
      `vigil broker` in another terminal) is used; if none does, a durable one is started in
      `data_dir` (default durable_broker_dir()), owned by the returned endpoint (close() stops
      it). Either way the topics are created.
    """
    if "bootstrap" in settings.model_fields_set:
        return KafkaEndpoint(settings.bootstrap)
    if not broker_reachable(settings.bootstrap, timeout_s=0.5):
        return start_local_broker(settings, log_dir=log_dir, data_dir=data_dir or durable_broker_dir())
    ensure_topics(settings)
    return KafkaEndpoint(settings.bootstrap)


def run_broker(
    port: int = DEFAULT_PORT,
    *,
    log_dir: Path | None = None,
    memory: bool = False,
    stop: threading.Event | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run the local broker in the foreground, with Vigil's topics, until Ctrl-C or SIGTERM
    (or `stop` is set); then stop tansu cleanly. Durable in durable_broker_dir() unless
    `memory`; a part that dies is restarted."""
    stop = stop or threading.Event()
    announce = announce or _print_now
    settings = KafkaSettings(bootstrap=f"127.0.0.1:{port}")
    data_dir = None if memory else durable_broker_dir()
    with _stop_on_signals(stop), start_local_broker(settings, log_dir=log_dir, data_dir=data_dir) as endpoint:
        broker = endpoint.broker
        assert broker is not None
        storage = f"durable in {data_dir}" if data_dir else "in memory"
        forgets = "" if data_dir else " (and forgets every message)"
        announce(
            f"Kafka-protocol broker (tansu, {storage}) at {broker.bootstrap}; log {broker.log_path}. "
            f"Ctrl-C stops it{forgets}."
        )
        while not stop.wait(0.5):
            if endpoint.revive():
                ensure_topics(settings)
                announce(f"the broker had stopped on its own; restarted (log {broker.log_path})")
    announce(f"broker on 127.0.0.1:{port} stopped")


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_now(line: str) -> None:
    print(line, flush=True)  # at once, also when stdout is a pipe: scripts wait for this line


def broker_command(port: int = DEFAULT_PORT, memory: bool = False) -> None:
    """`vigil broker [--port 19092] [--memory]`: the local broker in the foreground until Ctrl-C."""
    run_broker(port, memory=memory)
