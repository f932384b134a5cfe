"""Who may do what over HTTP: named bearer tokens with roles, and signed links to media.

    authority = TokenAuthority([ApiToken(name="an", role="operator", token="...")], directory)
    authority.identify("...")            # Principal(name="an", role="operator") or None

Roles are ordered, each including the ones before it (pipelines/identities.py):
- viewer: read alerts, follow the live stream, fetch thumbnails and audio;
- operator: also standing queries and acknowledging alerts;
- admin: everything, users and tokens included.

Tokens come from two places: the alerter's settings (`tokens`, for existing deployments and
tests: hashed in memory here) and the users and tokens on the "identities" topic, stored
hashed (`directory`, services/common/identities.py).

A token is presented as `Authorization: Bearer <token>`, or as `?access_token=<token>` where a
client cannot set headers (a browser's EventSource). Tokens are compared in constant time on
their SHA-256, and a token never reaches a log: services log request paths without query strings.

With no token configured and no user on "identities", the first admin's token is generated with
`load_or_create_secret` into a file readable only by its owner (under VIGIL_HOME) and stored
hashed (services/common/identities.py, `ensure_first_admin`), so a fresh install is never open
to writes; the log names the file, never the token.

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
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from vigil.errors import VigilError

# Re-exported: the HTTP side imports roles and principals from here.
from vigil.pipelines.identities import ROLE_RANK as ROLE_RANK
from vigil.pipelines.identities import USER_NAME_PATTERN
from vigil.pipelines.identities import Principal as Principal
from vigil.pipelines.identities import Role as Role

log = logging.getLogger(__name__)

MIN_SECRET_CHARS = 16


class ApiToken(BaseModel):
    """One API client: its name (recorded as the user on what it does), role and secret token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=USER_NAME_PATTERN, description="who, e.g. a login")
    role: Role
    token: SecretStr = Field(min_length=MIN_SECRET_CHARS, description="the bearer token (at least 16 chars)")


class TokenDirectory(Protocol):
    """Tokens kept elsewhere (services/common/identities.py: the users and tokens on Kafka)."""

    def identify(self, presented: str) -> Principal | None: ...


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenAuthority:
    """Bearer tokens to principals: the configured ones (settings), then the `directory`'s (the
    users and tokens on Kafka). Two configured clients may not share a token (it would make the
    user recorded on an acknowledgement ambiguous)."""

    def __init__(self, tokens: list[ApiToken], directory: TokenDirectory | None = None) -> None:
        self.directory = directory
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
        if found is None and self.directory is not None:
            found = self.directory.identify(presented)
        return found

    @property
    def configured_admins(self) -> int:
        """How many configured tokens are admins' (a way in that no stored change removes)."""
        return sum(1 for _digest, principal in self._principals if principal.role == "admin")

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
