"""Users and tokens as folded from "identities" (pipelines/identities.py): the last value per key
wins, tombstones delete, and a token identifies its user only while it and the user are live."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vigil.pipelines.identities import (
    IdentityConflictError,
    IdentityTable,
    Principal,
    StoredToken,
    UnknownTokenError,
    UnknownUserError,
    User,
    encode_identity,
    token_digest,
)

NOW = 1_800_000_000_000
SECRET = "a-secret-token-of-43-characters-0123456789a"


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None


def put(table: IdentityTable, record: User | StoredToken) -> None:
    key, value = encode_identity(record)
    assert table.apply(Record(key.encode(), value)) is None


def with_users(*users: tuple[str, str]) -> IdentityTable:
    table = IdentityTable()
    for name, role in users:
        put(table, table.user_to_add(name, role, None, by="test", now_ms=NOW))  # type: ignore[arg-type]
    return table


def issue(table: IdentityTable, user: str, secret: str = SECRET, **fields) -> StoredToken:
    token = table.token_to_issue(
        user,
        token_id=fields.pop("token_id", "tok-" + user),
        digest=token_digest(secret),
        label=None,
        expires_ts_ms=fields.pop("expires_ts_ms", None),
        by="test",
        now_ms=NOW,
    )
    put(table, token)
    return token


def test_a_token_stands_for_its_user_with_the_users_role_now():
    table = with_users(("an", "operator"))
    issue(table, "an")
    assert table.identify(SECRET, NOW) == Principal("an", "operator")
    assert table.identify(SECRET + "x", NOW) is None
    put(table, table.user_changed("an", role="viewer", display_name=None, disabled=False, by="t", now_ms=NOW))
    assert table.identify(SECRET, NOW) == Principal("an", "viewer")  # a demotion applies at once


def test_only_the_digest_is_stored():
    table = with_users(("an", "viewer"))
    token = issue(table, "an")
    _key, value = encode_identity(token)
    assert SECRET.encode() not in value and token.sha256 == token_digest(SECRET)
    assert len(token.sha256) == 64


def test_revoked_expired_and_disabled_refuse():
    table = with_users(("an", "viewer"), ("bo", "viewer"), ("cy", "admin"))
    issue(table, "an", "secret-of-an-0123456789")
    issue(table, "bo", "secret-of-bo-0123456789", expires_ts_ms=NOW + 1000)
    put(table, table.token_revoked("tok-an", by="cy", now_ms=NOW))
    assert table.identify("secret-of-an-0123456789", NOW) is None
    assert table.identify("secret-of-bo-0123456789", NOW + 999) == Principal("bo", "viewer")
    assert table.identify("secret-of-bo-0123456789", NOW + 1000) is None
    issue(table, "cy", "secret-of-cy-0123456789")
    disabled, revoked = table.user_disabled("bo", by="cy", now_ms=NOW)
    assert disabled.disabled and [t.token_id for t in revoked] == ["tok-bo"]
    for record in (disabled, *revoked):
        put(table, record)
    assert table.token("tok-bo").revoked_by == "cy"


def test_tombstones_delete_and_the_last_value_wins():
    table = with_users(("an", "viewer"))
    issue(table, "an")
    assert table.apply(Record(b"token:tok-an", None)) is None
    assert table.identify(SECRET, NOW) is None and table.token("tok-an") is None
    assert table.apply(Record(b"user:an", None)) is None
    assert not table.has_users


def test_bad_records_change_nothing_and_never_quote_the_value():
    table = with_users(("an", "viewer"))
    digest = token_digest(SECRET)
    before = table.version
    for record, expected in [
        (Record(None, b"{}"), "no key"),
        (Record(b"\xff", b"{}"), "UTF-8"),
        (Record(b"group:x", b"{}"), "neither"),
        (Record(b"user:an", b"not json"), "user 'an'"),
        (Record(b"user:bo", encode_identity(table.user("an"))[1]), "does not match"),
        (Record(b"token:t1", ('{"token_id": "t1", "sha256": "' + digest + '"}').encode()), "token 't1'"),
    ]:
        reason = table.apply(record)
        assert reason is not None and expected in reason, reason
        assert digest not in reason
    assert table.version == before


def test_the_last_admin_is_neither_disabled_nor_demoted():
    table = with_users(("ada", "admin"), ("an", "viewer"))
    with pytest.raises(IdentityConflictError, match="last admin"):
        table.user_disabled("ada", by="ada", now_ms=NOW)
    with pytest.raises(IdentityConflictError, match="last admin"):
        table.user_changed("ada", role="operator", display_name=None, disabled=False, by="ada", now_ms=NOW)
    table.user_disabled("ada", by="ada", now_ms=NOW, other_admins=1)  # a configured admin token remains
    put(table, table.user_changed("an", role="admin", display_name=None, disabled=False, by="t", now_ms=NOW))
    disabled, _ = table.user_disabled("ada", by="an", now_ms=NOW)
    assert disabled.disabled


def test_decisions_refuse_what_cannot_be():
    table = with_users(("an", "viewer"))
    with pytest.raises(IdentityConflictError, match="exists"):
        table.user_to_add("an", "admin", None, by="t", now_ms=NOW)
    with pytest.raises(UnknownUserError):
        table.user_disabled("nobody", by="t", now_ms=NOW)
    with pytest.raises(UnknownUserError):
        issue(table, "nobody")
    with pytest.raises(UnknownTokenError):
        table.token_revoked("nope", by="t", now_ms=NOW)
    with pytest.raises(IdentityConflictError, match="expired already"):
        issue(table, "an", expires_ts_ms=NOW)
    put(table, table.user_disabled("an", by="t", now_ms=NOW)[0])
    with pytest.raises(IdentityConflictError, match="disabled"):
        issue(table, "an")


def test_revoking_twice_keeps_the_first_revocation():
    table = with_users(("an", "viewer"))
    issue(table, "an")
    first = table.token_revoked("tok-an", by="a", now_ms=NOW)
    put(table, first)
    assert table.token_revoked("tok-an", by="b", now_ms=NOW + 5) == first
