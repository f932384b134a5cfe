"""Users and API tokens on Kafka: `IdentityDirectory` keeps an IdentityTable (pipelines/identities.py:
the records, the rules and the decisions) in step with the compacted "identities" topic and
publishes changes to it; `ensure_first_admin` makes the first admin of a fresh install.

    directory = IdentityDirectory(settings, producer)      # producer None: read-only
    directory.load()                                       # the whole topic, at start
    directory.follow()                                     # then a thread applies what comes
    directory.identify(token)                              # Principal or None (TokenAuthority asks)
    stored, secret = directory.issue_token("an", by="ada")  # the secret exists only in the result

Kafka is the one source of truth: every process that authenticates (the alerter's API today)
loads the topic at start and then follows it, polling every FOLLOW_POLL_MS, so a token created
or revoked anywhere (the API of another process, `vigil tokens`) is honoured or refused within
a second everywhere. A change is published, waited for until the broker has it, and only then
applied to this process's own table, so the writer reads its own write at once. Changes made
through one directory are serialised by a lock, so the last-admin rule holds within a process;
two processes changing the same user at the same instant: the last write wins.

A secret never leaves `issue_token`'s return value: the topic holds its SHA-256, and nothing
here logs a token or a digest (bad records are logged by key and field names).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka import errors as kafka_errors

from vigil.errors import VigilError
from vigil.pipelines.identities import (
    IdentityTable,
    Principal,
    Role,
    StoredToken,
    User,
    encode_identity,
    token_digest,
)
from vigil.services.common.auth import ApiToken, TokenAuthority, load_or_create_secret
from vigil.services.common.kafka import (
    KafkaSettings,
    ResilientProducer,
    assign_all_partitions,
    make_consumer,
    replay_to_end,
)

log = logging.getLogger(__name__)

FOLLOW_POLL_MS = 200
_WRITE_TIMEOUT_S = 10.0
FIRST_ADMIN = "admin"
# Fixed, so that two processes making the first admin at once write one token, not two.
FIRST_ADMIN_TOKEN_ID = "first-admin"


class IdentityStoreError(VigilError):
    """A change to users or tokens that Kafka did not confirm (the broker is away)."""


@dataclass(frozen=True)
class _Record:
    """A record as this process published it, applied to its own table."""

    key: bytes | None
    value: bytes | None


def new_token() -> str:
    """A fresh bearer token: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def new_token_id() -> str:
    """A token's public id: random, unrelated to the secret (it is shown and logged freely)."""
    return secrets.token_hex(8)


class IdentityDirectory:
    """The users and tokens of "identities", read and changed; see the module docstring.

    `other_admins`: admin tokens outside the topic (the configured ones), which make it safe to
    disable or demote the last admin user."""

    def __init__(
        self, settings: KafkaSettings, producer: ResilientProducer | None = None, *, other_admins: int = 0
    ) -> None:
        self.settings = settings
        self.topic = settings.topics.identities
        self.producer = producer
        self.other_admins = other_admins
        self.table = IdentityTable()
        self._lock = threading.RLock()  # the table, between the follower and readers
        self._write_lock = threading.Lock()  # check, publish, apply: one change at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer = make_consumer(settings, group_id=None)
        try:
            self._partitions = assign_all_partitions(self._consumer, self.topic)
        except BaseException:
            self._consumer.close()
            raise

    # --- following the topic -------------------------------------------------------------

    def load(self, timeout_s: float = 30.0) -> IdentityDirectory:
        """Rebuild the table from the first record to the end of the topic as of now."""
        replay_to_end(
            self._consumer, self._partitions, self._poll, self.settings, "loading users and tokens", timeout_s
        )
        with self._lock:
            users, tokens = len(self.table.users()), len(self.table.tokens())
        log.info("identities: %d users, %d tokens", users, tokens)
        return self

    def follow(self) -> None:
        """Apply what arrives on the topic from now on, in a daemon thread, until close()."""
        self._thread = threading.Thread(target=self._follow, name="identities", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll(FOLLOW_POLL_MS)
            except Exception as error:  # the consumer reconnects by itself; keep following
                log.warning("identities: could not read %s: %s", self.topic, type(error).__name__)
                self._stop.wait(1.0)

    def _poll(self, timeout_ms: int) -> int:
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        count = 0
        for records in batches.values():
            for record in records:
                count += 1
                with self._lock:
                    reason = self.table.apply(record)
                if reason is not None:
                    log.warning(
                        "skipped identities record %d@%d: %s", record.partition, record.offset, reason
                    )
        return count

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._consumer.close(autocommit=False)

    def __enter__(self) -> IdentityDirectory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reading -------------------------------------------------------------------------

    def identify(self, presented: str) -> Principal | None:
        with self._lock:
            return self.table.identify(presented, _now_ms())

    def users(self) -> list[User]:
        with self._lock:
            return self.table.users()

    def user(self, name: str) -> User | None:
        with self._lock:
            return self.table.user(name)

    def tokens(self, user: str | None = None) -> list[StoredToken]:
        with self._lock:
            return self.table.tokens(user)

    @property
    def has_users(self) -> bool:
        with self._lock:
            return self.table.has_users

    # --- changing ------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, display_name: str | None, by: str) -> User:
        """A new user (IdentityConflictError if the name is taken)."""
        with self._write_lock:
            with self._lock:
                user = self.table.user_to_add(name, role, display_name, by, _now_ms())
            self._publish([user])
        log.info("user %s added (%s) by %s", name, role, by)
        return user

    def change_user(
        self, name: str, *, role: Role, display_name: str | None, disabled: bool, by: str
    ) -> User:
        """A user's role, display name or disabled flag (not the last admin's role or flag)."""
        with self._write_lock:
            with self._lock:
                user = self.table.user_changed(
                    name,
                    role=role,
                    display_name=display_name,
                    disabled=disabled,
                    by=by,
                    now_ms=_now_ms(),
                    other_admins=self.other_admins,
                )
            self._publish([user])
        log.info("user %s changed (%s%s) by %s", name, role, ", disabled" if disabled else "", by)
        return user

    def disable_user(self, name: str, by: str) -> User:
        """Disable a user and revoke their tokens (not the last admin)."""
        with self._write_lock:
            with self._lock:
                user, revoked = self.table.user_disabled(name, by, _now_ms(), self.other_admins)
            self._publish([user, *revoked])
        log.info("user %s disabled by %s, %d tokens revoked", name, by, len(revoked))
        return user

    def issue_token(
        self,
        user: str,
        by: str,
        *,
        label: str | None = None,
        expires_in_s: float | None = None,
        token_id: str | None = None,
        secret: str | None = None,
    ) -> tuple[StoredToken, str]:
        """A new token for `user`: its stored record and the secret, which is shown once and
        kept nowhere (only its SHA-256 is published)."""
        secret = secret or new_token()
        now_ms = _now_ms()
        expires_ts_ms = None if expires_in_s is None else now_ms + int(expires_in_s * 1000)
        with self._write_lock:
            with self._lock:
                stored = self.table.token_to_issue(
                    user,
                    token_id=token_id or new_token_id(),
                    digest=token_digest(secret),
                    label=label,
                    expires_ts_ms=expires_ts_ms,
                    by=by,
                    now_ms=now_ms,
                )
            self._publish([stored])
        log.info("token %s issued to %s by %s", stored.token_id, user, by)
        return stored, secret

    def revoke_token(self, token_id: str, by: str) -> StoredToken:
        """Revoke a token (UnknownTokenError); revoking it again changes nothing."""
        with self._write_lock:
            with self._lock:
                before = self.table.token(token_id)
                revoked = self.table.token_revoked(token_id, by, _now_ms())
            if revoked is not before:
                self._publish([revoked])
                log.info("token %s of %s revoked by %s", token_id, revoked.user, by)
        return revoked

    def _publish(self, records: Sequence[User | StoredToken]) -> None:
        """Publish, wait until the broker has every record, then apply them here."""
        if self.producer is None:
            raise RuntimeError("this identity directory was opened read-only (no producer)")
        encoded = [encode_identity(record) for record in records]
        try:
            futures = [self.producer.send(self.topic, value, key=key) for key, value in encoded]
            for future in futures:
                future.get(timeout=_WRITE_TIMEOUT_S)
        except (VigilError, kafka_errors.KafkaError) as error:
            # The error's type only: a message could quote the record, which holds a digest.
            raise IdentityStoreError(
                f"the change was not confirmed by Kafka at {self.settings.bootstrap} "
                f"({type(error).__name__}); try again"
            ) from None
        with self._lock:
            for key, value in encoded:
                self.table.apply(_Record(key.encode("utf-8"), value))


def ensure_first_admin(directory: IdentityDirectory, token_file: Path) -> str | None:
    """With no user at all: the "admin" user and a token whose secret is kept in `token_file`
    (mode 0600; an existing file's token is adopted, so the admin token of an install from before
    users keeps working). Returns that secret when it made the admin (the caller shows it once),
    else None."""
    if directory.has_users:
        return None
    secret = load_or_create_secret(token_file, "first admin API token")
    directory.add_user(FIRST_ADMIN, "admin", "the first admin", by="setup")
    directory.issue_token(
        FIRST_ADMIN, "setup", label="made at setup", token_id=FIRST_ADMIN_TOKEN_ID, secret=secret
    )
    log.info("made the first admin user %r; its API token is in %s", FIRST_ADMIN, token_file)
    return secret


def open_token_authority(
    settings: KafkaSettings, producer: ResilientProducer, tokens: list[ApiToken], token_file: Path
) -> tuple[TokenAuthority, IdentityDirectory]:
    """An API's authority: the configured `tokens`, then the users' tokens on "identities",
    loaded and followed. With no token configured, the first admin is made if there is no user
    (its token printed to the terminal, once). Close the directory when done."""
    authority = TokenAuthority(tokens)
    directory = IdentityDirectory(settings, producer, other_admins=authority.configured_admins)
    try:
        directory.load()
        if not tokens:
            first = ensure_first_admin(directory, token_file)
            if first is not None:  # the terminal's, once; never a log's
                print(first_admin_announcement(first, token_file), flush=True)
            log.info("API tokens: none configured; the first admin's token is in %s", token_file)
        directory.follow()
    except BaseException:
        directory.close()
        raise
    authority.directory = directory
    return authority, directory


def first_admin_token(settings: KafkaSettings, token_file: Path) -> str | None:
    """`ensure_first_admin` on its own connection (for `vigil up`, before the services start)."""
    with ResilientProducer(settings) as producer, IdentityDirectory(settings, producer) as directory:
        return ensure_first_admin(directory.load(), token_file)


def first_admin_announcement(secret: str, token_file: Path) -> str:
    """What the terminal shows, once, when the first admin is made (never a log line)."""
    return (
        f"The first admin's API token (shown once; also in {token_file}, readable by you only):\n"
        f"    {secret}\n"
        "Add users and tokens with `vigil users add` and `vigil tokens create`."
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
