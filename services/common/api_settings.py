"""The HTTP API's settings: the `api:` section of the YAML file, under VIGIL_API_*.

    vigil api --config vigil.yaml               # its `api:` section
    VIGIL_API_PORT=8200 VIGIL_API_PUBLIC_URL=https://vigil.example.com vigil api

The API runs as a process of its own (services/api/service.py), but the alerter reads this
section too: the links to thumbnails and audio it puts in webhook payloads point at the API
(`base_url`) and are signed with the API's key (`link_signer`), so a receiver fetches them
there without a token. Hence it lives here, where both services can import it.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from vigil.errors import VigilError
from vigil.paths import var_dir
from vigil.pipelines.alerting import require_unique_names
from vigil.services.common.auth import (
    MIN_SECRET_CHARS,
    ApiToken,
    TokenAuthority,
    UrlSigner,
    load_or_create_secret,
)
from vigil.services.common.settings import SectionSettings


class ApiConfigError(VigilError):
    """The API's settings file or environment is invalid; the message names the field."""


class ApiSettings(SectionSettings):
    """The HTTP API. Without `tokens`, one admin token is generated into `token_file`."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_API_")
    section = "api"
    error = ApiConfigError

    host: str = Field("127.0.0.1", min_length=1, description="listen address; 0.0.0.0 for every interface")
    port: int = Field(8110, ge=0, le=65535, description="0 = no HTTP API")
    public_url: AnyHttpUrl | None = Field(
        None, description="how clients and webhook receivers reach this API (default http://host:port)"
    )
    tokens: list[ApiToken] = Field(default_factory=list, description="API clients: name, role, token")
    token_file: Path = Field(
        default_factory=lambda: var_dir() / "api-token",
        description="where the generated admin token is kept when no `tokens` are configured",
    )
    signing_key: SecretStr | None = Field(
        None,
        min_length=MIN_SECRET_CHARS,
        description="HMAC key of signed media links; the same on every replica (default: signing_key_file)",
    )
    signing_key_file: Path = Field(default_factory=lambda: var_dir() / "link-signing-key")
    link_ttl_s: int = Field(86_400, ge=60, le=30 * 86_400, description="how long a signed media link works")
    replay_changes: int = Field(
        1000, ge=1, le=100_000, description="changes kept for event-stream clients that reconnect"
    )
    thumbnails_dir: Path | None = Field(
        None, description="the detector's thumbnails (default: VIGIL_MILVUS_THUMBNAILS_DIR, var/thumbnails)"
    )
    audio_dir: Path = Field(
        default_factory=lambda: var_dir() / "speech",
        description="the alerter's speech cache, whose files it serves (`alerter: speech: cache_dir`)",
    )
    alerter_group_id: str = Field(
        "vigil-alerter",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="the alerter's consumer group, whose alert records on alert-state the API follows",
    )
    acknowledge_timeout_s: float = Field(
        10.0, gt=0, le=120, description="how long an acknowledgement waits for the alerter to apply it"
    )
    hits_kept: int = Field(10_000, ge=1, le=1_000_000, description="the newest hits GET /api/v1/hits lists")
    metrics_port: int = Field(9111, ge=0, le=65535, description="Prometheus /metrics; 0 = off")

    @field_validator("tokens")
    @classmethod
    def _unique_names(cls, tokens: list[ApiToken]) -> list[ApiToken]:
        require_unique_names([token.name for token in tokens], "API token")
        TokenAuthority(tokens)  # two clients with one token: it names them
        return tokens

    @field_validator("public_url")
    @classmethod
    def _bare_base(cls, url: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if url is not None and (url.query or url.fragment):
            raise ValueError("public_url is a base URL: no query or fragment")
        return url

    @property
    def serves_links(self) -> bool:
        """Whether media links can point somewhere: the API is on, or reached at `public_url`."""
        return bool(self.port) or self.public_url is not None

    def describe(self) -> str | None:
        """Where the API is and how to get in, for a terminal; None with the API off."""
        if not self.port:
            return None
        tokens = "the configured tokens" if self.tokens else f"the admin token in {self.token_file}"
        base = self.base_url()
        return (
            f"console {base}/console/, alerts API {base}/docs, live stream {base}/api/v1/alerts/stream "
            f"(bearer: {tokens})"
        )

    def base_url(self, bound_port: int | None = None) -> str:
        """Absolute base of links, without a trailing slash."""
        if self.public_url is not None:
            return str(self.public_url).rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{bound_port or self.port}"

    def link_signer(self) -> UrlSigner:
        """The signer of media links: `signing_key`, else the key in `signing_key_file` (made there
        by the first process that needs it)."""
        if self.signing_key is not None:
            key = self.signing_key.get_secret_value()
        else:
            key = load_or_create_secret(self.signing_key_file, "media link signing key")
        return UrlSigner(key, self.link_ttl_s)
