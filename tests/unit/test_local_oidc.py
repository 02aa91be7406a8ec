"""The built-in OIDC issuer: users, password hashing and signed tokens."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.services.common.adapters import local_oidc
from strongroom.services.common.adapters.local_oidc import (
    CODE_LIFETIME_SECONDS,
    AuthorizationRequest,
    LocalOidcIssuer,
    pkce_challenge,
)
from strongroom.services.common.auth import ADMIN, ANNOTATOR, MANAGER
from strongroom.services.common.database import create_database_engine
from strongroom.services.common.errors import (
    Conflict,
    InvalidArgument,
    Unauthenticated,
)

ISSUER = "http://127.0.0.1:1/oidc"
AUDIENCE = "strongroom"
PASSWORD = "correct horse battery"
CALLBACK = "http://127.0.0.1:1/auth/callback"


def _issuer(
    directory: Path,
    engine: Engine,
    audience: str = AUDIENCE,
    lifetime: int = 60,
) -> LocalOidcIssuer:
    return LocalOidcIssuer(
        directory=directory,
        engine=engine,
        issuer=ISSUER,
        audience=audience,
        token_lifetime_seconds=lifetime,
    )


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return create_database_engine(f"sqlite:///{tmp_path / 'id.db'}")


@pytest.fixture(scope="module")
def signing_key_pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # RSA key generation is slow, so most tests start from one shared key.
    directory = tmp_path_factory.mktemp("shared-keys")
    engine = create_database_engine(f"sqlite:///{directory / 'id.db'}")
    _issuer(directory, engine)
    return (directory / "signing-key.pem").read_bytes()


@pytest.fixture
def issuer(tmp_path: Path, engine: Engine, signing_key_pem: bytes) -> LocalOidcIssuer:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "signing-key.pem").write_bytes(signing_key_pem)
    return _issuer(keys, engine)


def _stored_hashes(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT username, password_hash FROM users"))
        return {row.username: row.password_hash for row in rows}


def test_login_returns_token_that_verifies(issuer: LocalOidcIssuer) -> None:
    user = issuer.create_user("mia", PASSWORD, {MANAGER, ANNOTATOR})

    token = issuer.login("mia", PASSWORD)
    principal = issuer.verify(token)

    assert principal.subject == user.subject
    assert principal.username == "mia"
    assert principal.roles == frozenset({MANAGER, ANNOTATOR})
    assert principal.token == token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    ("username", "password"),
    [("mia", "wrong password!"), ("nobody", PASSWORD), ("MIA", PASSWORD)],
)
def test_login_refuses_bad_credentials(
    issuer: LocalOidcIssuer, username: str, password: str
) -> None:
    issuer.create_user("mia", PASSWORD, {ADMIN})

    with pytest.raises(Unauthenticated) as caught:
        issuer.login(username, password)

    assert caught.value.code == "bad_credentials"


@pytest.mark.parametrize(
    ("username", "password", "roles", "code"),
    [
        ("mia", "short", {ADMIN}, "password_too_short"),
        ("mia", "elevenchars", {ADMIN}, "password_too_short"),
        ("mia", PASSWORD, {"superuser"}, "role_unknown"),
        ("mia", PASSWORD, set(), "role_unknown"),
        ("", PASSWORD, {ADMIN}, "username_invalid"),
        ("m" * 65, PASSWORD, {ADMIN}, "username_invalid"),
        ("mia\n", PASSWORD, {ADMIN}, "username_invalid"),
    ],
)
def test_create_user_refuses_bad_input(
    issuer: LocalOidcIssuer,
    username: str,
    password: str,
    roles: set[str],
    code: str,
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        issuer.create_user(username, password, roles)

    assert caught.value.code == code
    assert not issuer.has_users()


def test_create_user_refuses_taken_username(issuer: LocalOidcIssuer) -> None:
    issuer.create_user("mia", PASSWORD, {ADMIN})

    with pytest.raises(Conflict) as caught:
        issuer.create_user("mia", "another long password", {ANNOTATOR})

    assert caught.value.code == "username_taken"
    assert [u.username for u in issuer.list_users()] == ["mia"]


def test_token_with_altered_signature_is_refused(issuer: LocalOidcIssuer) -> None:
    issuer.create_user("mia", PASSWORD, {ADMIN})
    token = issuer.login("mia", PASSWORD)
    header, payload, signature = token.split(".")
    # A middle character: the last one may only carry padding bits.
    middle = len(signature) // 2
    changed = "A" if signature[middle] != "A" else "B"
    forged_signature = signature[:middle] + changed + signature[middle + 1 :]

    with pytest.raises(Unauthenticated) as caught:
        issuer.verify(f"{header}.{payload}.{forged_signature}")

    assert caught.value.code == "token_invalid"


def test_token_from_another_issuer_key_is_refused(
    issuer: LocalOidcIssuer, tmp_path: Path
) -> None:
    other_engine = create_database_engine(f"sqlite:///{tmp_path / 'other.db'}")
    other = _issuer(tmp_path / "other-keys", other_engine)
    other.create_user("mia", PASSWORD, {ADMIN})
    foreign = other.login("mia", PASSWORD)

    assert other.verify(foreign).username == "mia"
    with pytest.raises(Unauthenticated) as caught:
        issuer.verify(foreign)
    assert caught.value.code == "token_invalid"


def test_token_for_another_audience_is_refused(
    issuer: LocalOidcIssuer, tmp_path: Path, engine: Engine
) -> None:
    # Same key and users, different audience: only the aud claim differs.
    other = _issuer(tmp_path / "keys", engine, audience="another-app")
    other.create_user("mia", PASSWORD, {ADMIN})
    token = other.login("mia", PASSWORD)

    with pytest.raises(Unauthenticated) as caught:
        issuer.verify(token)

    assert caught.value.code == "token_invalid"
    assert issuer.key_id == other.key_id


def test_expired_token_is_refused(
    issuer: LocalOidcIssuer, tmp_path: Path, engine: Engine
) -> None:
    issuer.create_user("mia", PASSWORD, {ADMIN})
    expired_issuer = _issuer(tmp_path / "keys", engine, lifetime=-10)
    token = expired_issuer.login("mia", PASSWORD)

    with pytest.raises(Unauthenticated) as caught:
        issuer.verify(token)

    assert caught.value.code == "token_expired"


@pytest.mark.parametrize(
    ("token", "code"),
    [("", "token_missing"), ("not-a-jwt", "token_invalid"), ("a.b.c", "token_invalid")],
)
def test_malformed_token_is_refused(
    issuer: LocalOidcIssuer, token: str, code: str
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        issuer.verify(token)

    assert caught.value.code == code


def test_password_hashes_are_salted(issuer: LocalOidcIssuer, engine: Engine) -> None:
    issuer.create_user("mia", PASSWORD, {ADMIN})
    issuer.create_user("ann", PASSWORD, {ANNOTATOR})

    hashes = _stored_hashes(engine)

    assert set(hashes) == {"mia", "ann"}
    assert all(PASSWORD not in stored for stored in hashes.values())
    assert hashes["mia"] != hashes["ann"]
    assert issuer.verify(issuer.login("ann", PASSWORD)).username == "ann"


def test_jwks_publishes_the_signing_key(issuer: LocalOidcIssuer) -> None:
    issuer.create_user("mia", PASSWORD, {ADMIN})
    token = issuer.login("mia", PASSWORD)

    (key,) = issuer.jwks()["keys"]

    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert key["kid"] == jwt.get_unverified_header(token)["kid"]
    assert "d" not in key
    public_key = jwt.PyJWK(key).key
    claims = jwt.decode(token, public_key, algorithms=["RS256"], audience=AUDIENCE)
    assert claims["preferred_username"] == "mia"


def test_signing_key_file_is_private_and_reused(tmp_path: Path, engine: Engine) -> None:
    created = _issuer(tmp_path / "new-keys", engine)

    key_file = tmp_path / "new-keys" / "signing-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _issuer(tmp_path / "new-keys", engine).key_id == created.key_id


def _code_request(issuer: LocalOidcIssuer, verifier: str) -> AuthorizationRequest:
    issuer.redirect_uris = frozenset({CALLBACK})
    return issuer.check_authorization_request(
        {
            "client_id": "strongroom",
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "state": "s",
            "nonce": "n",
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )


def test_a_code_gives_tokens_whose_id_token_carries_the_nonce(
    issuer: LocalOidcIssuer,
) -> None:
    issuer.create_user("coder", PASSWORD, {ANNOTATOR})
    verifier = "v" * 43
    user = issuer.authenticate("coder", PASSWORD)
    code = issuer.create_authorization_code(user, _code_request(issuer, verifier))

    tokens = issuer.redeem_authorization_code(code, "strongroom", CALLBACK, verifier)

    claims = jwt.decode(tokens.id_token, options={"verify_signature": False})
    assert claims["nonce"] == "n" and claims["aud"] == "strongroom"
    assert issuer.verify(tokens.access_token).username == "coder"
    assert issuer.refresh(tokens.refresh_token).access_token


def test_a_code_expires_after_a_minute(
    issuer: LocalOidcIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer.create_user("late", PASSWORD, {ANNOTATOR})
    verifier = "w" * 43
    user = issuer.authenticate("late", PASSWORD)
    code = issuer.create_authorization_code(user, _code_request(issuer, verifier))
    later = time.time() + CODE_LIFETIME_SECONDS + 1
    monkeypatch.setattr(local_oidc.time, "time", lambda: later)

    with pytest.raises(InvalidArgument) as refused:
        issuer.redeem_authorization_code(code, "strongroom", CALLBACK, verifier)

    assert refused.value.code == "invalid_grant"


def test_a_plain_pkce_challenge_is_refused(issuer: LocalOidcIssuer) -> None:
    issuer.redirect_uris = frozenset({CALLBACK})
    with pytest.raises(InvalidArgument) as refused:
        issuer.check_authorization_request(
            {
                "client_id": "strongroom",
                "redirect_uri": CALLBACK,
                "response_type": "code",
                "code_challenge": "p" * 43,
                "code_challenge_method": "plain",
            }
        )

    assert refused.value.code == "pkce_required"
