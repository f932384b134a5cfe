"""One webhook's settings (an entry of the `alerter:` section's webhook list), and the URL as logs
and dead letters show it: without userinfo, query values masked (`redact_url`)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from vigil.services.common.contract import ID_PATTERN

MIN_SECRET_LENGTH = 16


class WebhookSettings(BaseModel):
    """One webhook (an entry of the `alerter:` section's webhook list)."""

    # hide_input_in_errors: a rejected secret or URL must not be echoed by the error message.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field("webhook", max_length=128, pattern=ID_PATTERN, description="shown in logs and metrics")
    url: str = Field(description="http(s) URL the alerts are POSTed to")
    secret: SecretStr = Field(description=f"HMAC-SHA256 key, at least {MIN_SECRET_LENGTH} characters")
    timeout_s: float = Field(5.0, gt=0, le=120, description="connect and read timeout of each attempt")
    max_attempts: int = Field(4, ge=1, le=20, description="tries before the event is dead-lettered")
    backoff_initial_s: float = Field(0.5, ge=0, le=60, description="wait after the first failed try")
    backoff_max_s: float = Field(10.0, ge=0, le=600, description="longest wait between tries")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError(f"url must be an http:// or https:// URL, not scheme {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("url has no host")
        try:
            parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
        except ValueError:
            raise ValueError("url has an invalid port") from None
        return url

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        length = len(secret.get_secret_value())
        if length < MIN_SECRET_LENGTH:
            raise ValueError(
                f"secret must be at least {MIN_SECRET_LENGTH} characters long (got {length}); generate "
                "one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return secret

    @model_validator(mode="after")
    def _backoff_order(self) -> WebhookSettings:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) is less than "
                f"backoff_initial_s ({self.backoff_initial_s})"
            )
        return self

    @property
    def safe_url(self) -> str:
        """The URL for logs and dead letters: no userinfo, query values masked."""
        return redact_url(self.url)

    def __repr_args__(self):  # repr/str show safe_url; SecretStr already masks the secret
        for name, value in super().__repr_args__():
            yield name, (self.safe_url if name == "url" else value)


def redact_url(url: str) -> str:
    """`url` without user:password@ and with every query value replaced by ***, no fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    query = "&".join(f"{key}=***" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
