"""Users, roles and API tokens as folded from the compacted "identities" topic (pure).

    table = IdentityTable()
    table.apply(record)                                   # key "user:<name>" / "token:<id>"
    table.identify("the presented token", now_ms)         # Principal("an", "operator") or None
    user = table.user_to_add("an", "operator", None, by="ada", now_ms=now_ms)

The last value per key wins and a tombstone (value None) deletes, as for "queries": readers keep
the table themselves because compaction is not guaranteed (tansu never compacts; Kafka compacts
lazily). A record that does not decode is refused with its reason and changes nothing.

Roles are ordered, each including the ones before it: viewer (reads), operator (also standing
queries and acknowledgements), admin (also cameras, users and tokens).

A token is stored as the SHA-256 of its secret, never the secret. The secrets are 256 random
bits (secrets.token_urlsafe(32)), so there is nothing to guess that a slow password hash
(bcrypt, scrypt) would protect; one SHA-256 is enough, and lets every request be checked in
microseconds. Tokens are found by their digest in a dict: the timing of that lookup tells an
attacker nothing useful, since they cannot choose the digest of what they present.

A token authenticates while it is neither revoked nor expired and its user exists and is not
disabled; the principal carries the user's role now, so a demotion applies to every token at
once. The decisions the API and the CLI take on the table are its `*_to_*` / `*_revoked`
methods: each returns the records to publish, or raises an IdentityError naming why not (an
unknown user, a name taken, the last admin removed or demoted).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vigil.errors import VigilError, describe_validation_error
from vigil.pipelines.query_table import KeyedRecord

Role = Literal["viewer", "operator", "admin"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
TOKEN_ID_PATTERN = r"^[A-Za-z0-9_-]{6,64}$"
USER_KEY_PREFIX = "user:"
TOKEN_KEY_PREFIX = "token:"
UserName = Annotated[str, Field(pattern=USER_NAME_PATTERN, description="a login: letters, digits, . _ @ -")]
TokenId = Annotated[str, Field(pattern=TOKEN_ID_PATTERN, description="a token's public id")]
TimestampMs = Annotated[int, Field(ge=0, description="ms since the Unix epoch")]


@dataclass(frozen=True)
class Principal:
    """Who made a request, as established from their token."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class User(BaseModel):
    """A user: who acts (their name is recorded on what they do) and with which role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: UserName
    role: Role
    display_name: str | None = Field(None, max_length=100)
    disabled: bool = False
    created_ts_ms: TimestampMs
    updated_ts_ms: TimestampMs
    updated_by: str = Field(max_length=200, description="who made the last change")


class StoredToken(BaseModel):
    """An API token as stored: its public id, whose it is, when it stops working, and the
    SHA-256 of the secret (never the secret itself)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_id: TokenId
    user: UserName
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    label: str | None = Field(None, max_length=100)
    created_ts_ms: TimestampMs
    created_by: str = Field(max_length=200)
    expires_ts_ms: TimestampMs | None = None
    revoked_ts_ms: TimestampMs | None = None
    revoked_by: str | None = Field(None, max_length=200)

    def live(self, now_ms: int) -> bool:
        """Neither revoked nor expired at `now_ms` (the user's state is the table's to check)."""
        return self.revoked_ts_ms is None and (self.expires_ts_ms is None or now_ms < self.expires_ts_ms)


class IdentityError(VigilError):
    """A change to users or tokens that cannot be made; the message says why."""


class UnknownUserError(IdentityError):
    pass


class UnknownTokenError(IdentityError):
    pass


class IdentityConflictError(IdentityError):
    """The change contradicts the table as it is: a name taken, a disabled user, the last admin."""


def token_digest(token: str) -> str:
    """The stored form of a token: its SHA-256, hex (see the module docstring for why no KDF)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def user_key(name: str) -> str:
    return USER_KEY_PREFIX + name


def token_key(token_id: str) -> str:
    return TOKEN_KEY_PREFIX + token_id


def encode_identity(record: User | StoredToken) -> tuple[str, bytes]:
    """The key and value of `record` on "identities"."""
    key = user_key(record.name) if isinstance(record, User) else token_key(record.token_id)
    return key, record.model_dump_json().encode("utf-8")


class IdentityTable:
    """Users and tokens, the last value per key of "identities"; see the module docstring."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._tokens: dict[str, StoredToken] = {}
        self._by_digest: dict[str, str] = {}  # sha256 -> token_id
        self.version = 0  # bumps on every change

    # --- reading the topic ---------------------------------------------------------------

    def apply(self, record: KeyedRecord) -> str | None:
        """Apply one "identities" record. Returns None, or why the record is bad (a bad record
        leaves the table as it was). The reason never quotes the value: it holds a digest."""
        if record.key is None:
            return "identities record has no key"
        try:
            key = record.key.decode("utf-8")
        except UnicodeDecodeError:
            return "identities record key is not UTF-8"
        if key.startswith(USER_KEY_PREFIX):
            return self._apply_user(key[len(USER_KEY_PREFIX) :], record.value)
        if key.startswith(TOKEN_KEY_PREFIX):
            return self._apply_token(key[len(TOKEN_KEY_PREFIX) :], record.value)
        return f"identities record key {key!r} is neither user:<name> nor token:<id>"

    def _apply_user(self, name: str, value: bytes | None) -> str | None:
        if value is None:
            if self._users.pop(name, None) is not None:
                self.version += 1
            return None
        try:
            user = User.model_validate_json(value)
        except ValidationError as error:
            return f"user {name!r}: {describe_validation_error(error, whole='record')}"
        if user.name != name:
            return f"user {user.name!r} does not match its record key {name!r}"
        self._users[name] = user
        self.version += 1
        return None

    def _apply_token(self, token_id: str, value: bytes | None) -> str | None:
        if value is None:
            self._forget_token(token_id)
            return None
        try:
            token = StoredToken.model_validate_json(value)
        except ValidationError as error:
            return f"token {token_id!r}: {describe_validation_error(error, whole='record')}"
        if token.token_id != token_id:
            return f"token {token.token_id!r} does not match its record key {token_id!r}"
        self._forget_token(token_id)
        self._tokens[token_id] = token
        self._by_digest[token.sha256] = token_id
        self.version += 1
        return None

    def _forget_token(self, token_id: str) -> None:
        previous = self._tokens.pop(token_id, None)
        if previous is not None:
            if self._by_digest.get(previous.sha256) == token_id:
                del self._by_digest[previous.sha256]
            self.version += 1

    # --- authentication ------------------------------------------------------------------

    def identify(self, presented: str, now_ms: int) -> Principal | None:
        """The principal a presented token stands for now, or None (unknown, revoked, expired,
        or its user gone or disabled)."""
        token_id = self._by_digest.get(token_digest(presented))
        token = self._tokens.get(token_id) if token_id is not None else None
        if token is None or not token.live(now_ms):
            return None
        user = self._users.get(token.user)
        if user is None or user.disabled:
            return None
        return Principal(user.name, user.role)

    # --- reading the table ---------------------------------------------------------------

    def user(self, name: str) -> User | None:
        return self._users.get(name)

    def token(self, token_id: str) -> StoredToken | None:
        return self._tokens.get(token_id)

    def users(self) -> list[User]:
        return sorted(self._users.values(), key=lambda user: user.name)

    def tokens(self, user: str | None = None) -> list[StoredToken]:
        """Tokens (of `user`, or everyone's), oldest first."""
        chosen = [t for t in self._tokens.values() if user is None or t.user == user]
        return sorted(chosen, key=lambda token: (token.created_ts_ms, token.token_id))

    @property
    def has_users(self) -> bool:
        return bool(self._users)

    def _admins(self) -> set[str]:
        return {user.name for user in self._users.values() if user.role == "admin" and not user.disabled}

    # --- decisions: the records a change publishes ----------------------------------------

    def _existing(self, name: str) -> User:
        user = self._users.get(name)
        if user is None:
            raise UnknownUserError(f"no user {name!r}")
        return user

    def _keep_an_admin(self, name: str, role: Role, disabled: bool, other_admins: int) -> None:
        """Refuses to leave no enabled admin: `other_admins` are admins outside the table (the
        tokens configured in the settings), through which nobody is locked out."""
        losing = name in self._admins() and (role != "admin" or disabled)
        if losing and len(self._admins()) == 1 and other_admins == 0:
            raise IdentityConflictError(f"{name!r} is the last admin: make another user admin first")

    def user_to_add(self, name: str, role: Role, display_name: str | None, by: str, now_ms: int) -> User:
        """A new user; IdentityConflictError if the name is taken (even by a disabled user)."""
        if name in self._users:
            raise IdentityConflictError(f"user {name!r} exists; change it instead")
        return User(
            name=name,
            role=role,
            display_name=display_name,
            created_ts_ms=now_ms,
            updated_ts_ms=now_ms,
            updated_by=by,
        )

    def user_changed(
        self,
        name: str,
        *,
        role: Role,
        display_name: str | None,
        disabled: bool,
        by: str,
        now_ms: int,
        other_admins: int = 0,
    ) -> User:
        """`name` with a new role, display name or disabled flag; refuses to remove the last admin."""
        user = self._existing(name)
        self._keep_an_admin(name, role, disabled, other_admins)
        changes = {"role": role, "display_name": display_name, "disabled": disabled}
        return user.model_copy(update={**changes, "updated_ts_ms": now_ms, "updated_by": by})

    def user_disabled(
        self, name: str, by: str, now_ms: int, other_admins: int = 0
    ) -> tuple[User, list[StoredToken]]:
        """The user disabled, and each of their live tokens revoked (the last admin refused)."""
        user = self._existing(name)
        disabled = self.user_changed(
            name,
            role=user.role,
            display_name=user.display_name,
            disabled=True,
            by=by,
            now_ms=now_ms,
            other_admins=other_admins,
        )
        revoked = [
            token.model_copy(update={"revoked_ts_ms": now_ms, "revoked_by": by})
            for token in self.tokens(name)
            if token.revoked_ts_ms is None
        ]
        return disabled, revoked

    def token_to_issue(
        self,
        user: str,
        *,
        token_id: str,
        digest: str,
        label: str | None,
        expires_ts_ms: int | None,
        by: str,
        now_ms: int,
    ) -> StoredToken:
        """A new token for an existing, enabled user (the secret is the caller's to make)."""
        holder = self._existing(user)
        if holder.disabled:
            raise IdentityConflictError(f"user {user!r} is disabled: enable them first")
        if token_id in self._tokens:
            raise IdentityConflictError(f"token id {token_id!r} exists")
        if expires_ts_ms is not None and expires_ts_ms <= now_ms:
            raise IdentityConflictError("the token would have expired already")
        return StoredToken(
            token_id=token_id,
            user=user,
            sha256=digest,
            label=label,
            created_ts_ms=now_ms,
            created_by=by,
            expires_ts_ms=expires_ts_ms,
        )

    def token_revoked(self, token_id: str, by: str, now_ms: int) -> StoredToken:
        """The token revoked now; a token revoked before stays as it was (revoking is idempotent)."""
        token = self._tokens.get(token_id)
        if token is None:
            raise UnknownTokenError(f"no token {token_id!r}")
        if token.revoked_ts_ms is not None:
            return token
        return token.model_copy(update={"revoked_ts_ms": now_ms, "revoked_by": by})
