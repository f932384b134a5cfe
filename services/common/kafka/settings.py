"""Where Kafka is and how to talk to it: `KafkaSettings` (environment: VIGIL_KAFKA_<FIELD>), its
loader, and the sizes and durations the topics and clients are built from.

`split_host_port` lives here because the settings validate the bootstrap list with it; the
reachability check (reachability.py) parses the same addresses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from vigil.services.common.contract import Topics
from vigil.services.common.settings import EnvironmentSettings

DEFAULT_LOCAL_PORT = 19092
DEFAULT_BOOTSTRAP = f"127.0.0.1:{DEFAULT_LOCAL_PORT}"
MIB = 1024 * 1024
# Room for a record's key, headers and batch framing on top of its value.
RECORD_OVERHEAD_BYTES = 64 * 1024
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class KafkaSettings(EnvironmentSettings):
    """Where Kafka is and how to talk to it (environment: VIGIL_KAFKA_<FIELD>).

    Leaving `bootstrap` unset means the embedded default: a local tansu broker on
    127.0.0.1:19092 (services/broker.resolve_bootstrap starts one when none answers there).
    """

    describes = "Kafka"

    model_config = SettingsConfigDict(env_prefix="VIGIL_KAFKA_", extra="forbid", validate_default=True)

    bootstrap: str = Field(DEFAULT_BOOTSTRAP, description="host:port[,host:port...]")
    local_port: int = Field(
        DEFAULT_LOCAL_PORT,
        ge=1,
        le=65_535,
        description="the embedded default's port on 127.0.0.1, when bootstrap is not set",
    )
    client_id: str = Field("vigil", min_length=1, max_length=200)
    topic_prefix: str = Field("", max_length=100, pattern=r"^[A-Za-z0-9._-]*$")

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None

    frame_partitions: int = Field(8, ge=1, le=10_000, description="frames: cameras split over these")
    event_partitions: int = Field(4, ge=1, le=10_000, description="hits, alerts, camera-status, dead-letters")
    replication_factor: int = Field(1, ge=1, le=10, description="3 on a production cluster")
    max_message_bytes: int = Field(10 * MIB, ge=MIB, le=100 * MIB, description="largest record (a frame)")
    frames_retention_ms: int = Field(HOUR_MS, ge=60_000, description="frames are only useful live")
    events_retention_ms: int = Field(30 * DAY_MS, ge=HOUR_MS, description="hits and alerts")
    dead_letters_retention_ms: int = Field(14 * DAY_MS, ge=HOUR_MS)
    query_history_retention_ms: int = Field(
        365 * DAY_MS, ge=DAY_MS, description="who changed which standing query, and when"
    )

    max_block_ms: int = Field(5_000, ge=100, le=120_000, description="longest a send may wait")
    producer_buffer_bytes: int = Field(64 * MIB, ge=MIB, description="unacknowledged bytes per producer")
    linger_ms: int = Field(5, ge=0, le=1_000)
    request_timeout_ms: int = Field(10_000, ge=1_000)
    delivery_timeout_ms: int = Field(60_000, ge=2_000, description="give up on a record after this")
    connect_timeout_s: float = Field(30.0, gt=0, description="how long ensure_topics waits for a broker")
    # tansu completes a group join after half the session timeout: kafka-python 3's default
    # of 45 s makes every consumer start take 23 s there, and 10 s put a restarted detector
    # back in service 14-16 s after a kill -9 (the target is 10). 6 s is the least Apache
    # Kafka accepts; kafka-python heartbeats from its own thread (every 1.5 s here), so a long
    # scoring batch does not miss one, and max_poll_interval_ms bounds a stuck loop.
    consumer_session_timeout_ms: int = Field(6_000, ge=6_000, le=300_000)
    consumer_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=10_000,
        description="longest a fetch waits at the broker for new records. Kafka answers as soon as "
        "one arrives, so lower only costs idle round trips; tansu (the local broker) answers only "
        "when the wait runs out, so a record waits up to this long (kafka-python's 500 ms default "
        "put a median 120 ms between a hit and its alert). Not lower: the durable local broker "
        "reads each stored batch within that wait, and reading a backlog of 30 KB frames went "
        "from 155 records/s at 100 ms to 4 at 50 ms",
    )

    @field_validator("bootstrap")
    @classmethod
    def _host_port_list(cls, bootstrap: str) -> str:
        addresses = [address.strip() for address in bootstrap.split(",") if address.strip()]
        if not addresses:
            raise ValueError("no broker address given (expected host:port[,host:port...])")
        for address in addresses:
            split_host_port(address)
        return ",".join(addresses)

    @model_validator(mode="after")
    def _embedded_default_address(self) -> KafkaSettings:
        if "bootstrap" not in self.model_fields_set:
            # Not recorded as set: resolve_bootstrap still sees the embedded default.
            object.__setattr__(self, "bootstrap", f"127.0.0.1:{self.local_port}")
        return self

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_"):
            missing = [
                f"sasl_{name}"
                for name, value in (
                    ("mechanism", self.sasl_mechanism),
                    ("username", self.sasl_username),
                    ("password", self.sasl_password),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"security_protocol {self.security_protocol} needs {', '.join(missing)}")
        if self.max_message_bytes > self.producer_buffer_bytes:
            raise ValueError("producer_buffer_bytes must be at least max_message_bytes (one frame must fit)")
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms:
            raise ValueError("delivery_timeout_ms must be at least linger_ms + request_timeout_ms")
        return self

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.topic_prefix)

    @property
    def bootstrap_servers(self) -> list[str]:
        return self.bootstrap.split(",")

    def client_config(self) -> dict[str, Any]:
        """Connection options for kafka-python clients. Holds the password: never log it."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            # kafka-python backs off up to 30 s between reconnects by default; a restarted
            # broker should be found again within a second.
            "reconnect_backoff_max_ms": 1_000,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.security_protocol.startswith("SASL_"):
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if self.ssl_cafile is not None:
            config["ssl_cafile"] = str(self.ssl_cafile)
        return config


def load_kafka_settings() -> KafkaSettings:
    """KafkaSettings from the environment; a VigilError naming the bad variable otherwise."""
    return KafkaSettings.load()


def split_host_port(address: str) -> tuple[str, int]:
    host, separator, port = address.rpartition(":")
    host = host.strip("[]")  # IPv6 literals: [::1]:9092
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    return host, int(port)
