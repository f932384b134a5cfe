"""Bearer tokens with roles, signed media links and secret files (services/common/auth.py)."""

from __future__ import annotations

import stat

import pytest
from pydantic import ValidationError

from vigil.services.common.auth import (
    ApiToken,
    LinkError,
    Principal,
    SecretFileError,
    TokenAuthority,
    UrlSigner,
    load_or_create_secret,
)

VIEWER, OPERATOR = "viewer-token-0123456789", "operator-token-0123456789"


def authority() -> TokenAuthority:
    return TokenAuthority(
        [
            ApiToken(name="vera", role="viewer", token=VIEWER),
            ApiToken(name="olga", role="operator", token=OPERATOR),
        ]
    )


def test_tokens_identify_their_holder_and_nothing_else():
    tokens = authority()
    assert tokens.identify(VIEWER) == Principal("vera", "viewer")
    assert tokens.identify(OPERATOR) == Principal("olga", "operator")
    assert tokens.identify(OPERATOR + "x") is None
    assert tokens.identify("") is None and tokens.identify(None) is None


def test_roles_include_the_lower_ones():
    assert Principal("a", "admin").may("operator") and Principal("a", "admin").may("viewer")
    assert Principal("o", "operator").may("viewer") and not Principal("o", "operator").may("admin")
    assert not Principal("v", "viewer").may("operator")


def test_a_token_must_be_long_unique_and_hidden():
    with pytest.raises(ValidationError, match="at least 16"):
        ApiToken(name="x", role="viewer", token="short")
    with pytest.raises(ValidationError, match="name"):
        ApiToken(name="../etc", role="viewer", token=VIEWER)
    with pytest.raises(ValueError, match="'a' and 'b' are the same token"):
        TokenAuthority([ApiToken(name=n, role="viewer", token=VIEWER) for n in ("a", "b")])
    assert VIEWER not in repr(ApiToken(name="vera", role="viewer", token=VIEWER))


def test_signed_links_work_until_they_expire_and_only_for_their_path():
    signer = UrlSigner("k" * 32, ttl_s=60)
    query = dict(part.split("=") for part in signer.signed_query("/media/audio/a.wav", 1000).split("&"))
    signer.verify("/media/audio/a.wav", query["expires"], query["signature"], now_s=1059)
    with pytest.raises(LinkError, match="expired"):
        signer.verify("/media/audio/a.wav", query["expires"], query["signature"], now_s=1061)
    with pytest.raises(LinkError, match="signature"):
        signer.verify("/media/audio/b.wav", query["expires"], query["signature"], now_s=1001)
    with pytest.raises(LinkError, match="signature"):  # a later expiry is not the signed one
        signer.verify("/media/audio/a.wav", str(int(query["expires"]) + 9999), query["signature"], 1001)
    with pytest.raises(LinkError, match="signature"):  # another key
        UrlSigner("j" * 32, 60).verify("/media/audio/a.wav", query["expires"], query["signature"], 1001)
    with pytest.raises(LinkError, match="not a Unix time"):
        signer.verify("/media/audio/a.wav", "soon", query["signature"], 1001)
    with pytest.raises(LinkError, match="no expires"):
        signer.verify("/media/audio/a.wav", None, None, 1001)


def test_a_secret_file_is_created_private_and_then_reused(tmp_path):
    path = tmp_path / "home" / "api-token"
    secret = load_or_create_secret(path, "test token")
    assert len(secret) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path, "test token") == secret


def test_a_secret_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "api-token"
    path.write_text("x" * 40)
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="open to other users.*chmod 600"):
        load_or_create_secret(path, "test token")
    path.chmod(0o600)
    path.write_text("short")
    with pytest.raises(SecretFileError, match="fewer than 16"):
        load_or_create_secret(path, "test token")
