"""The object store under the local broker's durable log: s3rver (npm), on loopback, with S3's
conditional writes added (objectstore/server.js says why tansu needs them).

tansu keeps a durable log only in an S3-compatible store (its `s3://` engine); s3rver is one
that a package ships, and it keeps each object as a plain file under `directory`, so the data
is backed up by copying that directory (with the broker stopped, or accepting the records of
the last second). Clusters use Apache Kafka and never start this.

Not a general S3 service: no authentication (loopback only) and one bucket, BUCKET.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import requests

from vigil.errors import VigilError
from vigil.paths import REPO_ROOT
from vigil.services.common.lifecycle import start_logged_child, wait_until_ready

log = logging.getLogger("vigil.broker")

BUCKET = "tansu"
# s3rver's own fixed development credentials: it accepts only these signatures.
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
PACKAGE_DIR = REPO_ROOT / "services" / "broker" / "objectstore"


class ObjectStoreError(VigilError):
    """The object store could not start or stopped on its own; the message says why."""


def s3rver_command() -> list[str]:
    """node and our server.js (s3rver with S3's conditional writes, which tansu relies on: see
    its header); s3rver is installed by `make setup` (npm ci in services/broker/objectstore)."""
    node = shutil.which("node")
    if node is None:
        raise ObjectStoreError(
            "the durable local broker needs Node.js (node) for its object store: apt-get install nodejs"
        )
    if not (PACKAGE_DIR / "node_modules" / "s3rver").is_dir():
        raise ObjectStoreError(
            f"the durable local broker needs s3rver, not installed in {PACKAGE_DIR}: run `make setup` "
            "(or `npm ci` there)"
        )
    return [node, str(PACKAGE_DIR / "server.js")]


class ObjectStore:
    """s3rver on 127.0.0.1:`port`, keeping BUCKET under `directory`. start() / stop()."""

    def __init__(
        self, directory: Path, port: int, log_path: Path, *, startup_timeout_s: float = 15.0
    ) -> None:
        self.directory = directory
        self.port = port
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    def tansu_environment(self) -> dict[str, str]:
        """What tansu's `s3://BUCKET/` engine reads to reach this store."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def start(self) -> None:
        if self.running:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        # The bucket is created on the first start; an existing one keeps its objects.
        command = [*s3rver_command(), str(self.directory), "127.0.0.1", str(self.port), BUCKET]
        environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        # As the broker: Vigil stops it after the services have flushed.
        self._process = start_logged_child(command, self.log_path, environment)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        log.info(
            "object store (s3rver) at %s, pid %d, data in %s",
            self.endpoint,
            self._process.pid,
            self.directory,
        )

    def stop(self, grace_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        try:
            exit_code = wait_until_ready(self._process, self._answers, self.startup_timeout_s)
        except TimeoutError:
            raise ObjectStoreError(
                f"s3rver did not answer on {self.endpoint} within {self.startup_timeout_s:.0f} s; "
                f"see {self.log_path}"
            ) from None
        if exit_code is not None:
            raise ObjectStoreError(
                f"s3rver exited with code {exit_code} while starting on {self.endpoint}; "
                f"its log is {self.log_path}"
            )

    def _answers(self) -> bool:
        try:
            return requests.head(f"{self.endpoint}/{BUCKET}", timeout=0.5).status_code == 200
        except requests.RequestException:
            return False
