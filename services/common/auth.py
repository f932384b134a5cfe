"""Who may do what over HTTP: named bearer tokens with roles, and signed links to media.

    authority = TokenAuthority([ApiToken(name="an", role="operator", token="...")])
    authority.identify("...")            # Principal(name="an", role="operator") or None

Roles are ordered, each including the ones before it:
- viewer: read alerts, follow the live stream, fetch thumbnails and audio;
- operator: also acknowledge alerts;
- admin: everything.

A token is presented as `Authorization: Bearer <token>`, or as `?access_token=<token>` where a
client cannot set headers (a browser's EventSource). Tokens are compared in constant time on
their SHA-256, and a token never reaches a log: services log request paths without query strings.

With no token configured, `load_or_create_secret` generates one admin token into a file readable
only by its owner (under VIGIL_HOME), so a fresh install is never open to writes; the log names
the file, never the token.

Media (thumbnails, spoken audio) is also reachable through signed links, `UrlSigner`: a path, an
expiry and an HMAC-SHA256 over both, so that an <img> or <audio> element, or a webhook receiver
that has no token, can fetch exactly that file until the link expires, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from vigil.errors import VigilError

log = logging.getLogger(__name__)

Role = Literal["viewer", "operator", "admin"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}
MIN_SECRET_CHARS = 16


class ApiToken(BaseModel):
    """One API client: its name (recorded as the user on what it does), role and secret token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$", description="who, e.g. a login")
    role: Role
    token: SecretStr = Field(min_length=MIN_SECRET_CHARS, description="the bearer token (at least 16 chars)")


@dataclass(frozen=True)
class Principal:
    """Who made a request, as established from their token."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenAuthority:
    """Bearer tokens to principals. Two clients may not share a token (it would make the user
    recorded on an acknowledgement ambiguous)."""

    def __init__(self, tokens: list[ApiToken]) -> None:
        self._principals: list[tuple[bytes, Principal]] = []
        seen: dict[bytes, str] = {}
        for token in tokens:
            digest = _digest(token.token.get_secret_value())
            if digest in seen:
                raise ValueError(f"API tokens of {seen[digest]!r} and {token.name!r} are the same token")
            seen[digest] = token.name
            self._principals.append((digest, Principal(token.name, token.role)))

    def identify(self, presented: str | None) -> Principal | None:
        """The principal holding `presented`, or None. Every configured token is compared (in
        constant time), so the time taken says nothing about which one nearly matched."""
        if not presented:
            return None
        digest = _digest(presented)
        found = None
        for candidate, principal in self._principals:
            if hmac.compare_digest(candidate, digest):
                found = principal
        return found

    def __len__(self) -> int:
        return len(self._principals)


class SecretFileError(VigilError):
    """A secret file (API token, link-signing key) is unreadable, too short or open to others."""


def load_or_create_secret(path: Path, what: str) -> str:
    """The secret stored in `path`, generated there (mode 0600) if the file does not exist.

    Refuses a file that others can read or write, as ssh does with keys: a secret anyone on the
    machine can read protects nothing."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path, what)
    except OSError as error:
        raise SecretFileError(f"cannot create {path} for the {what}: {error}") from None
    secret = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secret + "\n")
    log.warning("generated the %s in %s (readable by this user only)", what, path)
    return secret


def _read_secret(path: Path, what: str) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"{path} ({what}) is open to other users (mode {stat.filemode(mode)}); run: chmod 600 {path}"
        )
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SecretFileError(f"cannot read {what} from {path}: {error}") from None
    if len(secret) < MIN_SECRET_CHARS:
        raise SecretFileError(f"{path} ({what}) holds fewer than {MIN_SECRET_CHARS} characters")
    return secret


class LinkError(VigilError):
    """A signed link that is malformed, tampered with or expired."""


class UrlSigner:
    """Signed, expiring links to paths: "/media/x?" + signed_query("/media/x", now) is a link that
    `verify` accepts until it expires.

    The signature covers the path and the expiry, so changing either breaks it."""

    def __init__(self, key: str, ttl_s: int) -> None:
        if len(key) < MIN_SECRET_CHARS:
            raise ValueError(f"the link-signing key needs at least {MIN_SECRET_CHARS} characters")
        if ttl_s <= 0:
            raise ValueError("the link lifetime must be positive")
        self._key = key.encode("utf-8")
        self.ttl_s = int(ttl_s)

    def _signature(self, path: str, expires: int) -> str:
        message = f"{path}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def signed_query(self, path: str, now_s: float) -> str:
        """The query string ("expires=..&signature=..") that makes a link to `path` (unquoted,
        as the server will see it decoded) valid for `ttl_s` from `now_s`."""
        expires = int(now_s) + self.ttl_s
        return urlencode({"expires": expires, "signature": self._signature(path, expires)})

    def verify(self, path: str, expires: str | None, signature: str | None, now_s: float) -> None:
        """Raises LinkError unless the link for `path` is genuine and unexpired."""
        if expires is None or signature is None:
            raise LinkError("the link has no expires/signature")
        try:
            expiry = int(expires)
        except ValueError:
            raise LinkError(f"expires={expires!r} is not a Unix time") from None
        if not hmac.compare_digest(self._signature(path, expiry), signature):
            raise LinkError("the link's signature does not match")
        if expiry < now_s:
            raise LinkError("the link has expired; fetch the alert again for a fresh one")
