"""The built-in OIDC issuer: users, password hashing and signed tokens."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.services.common import totp
from strongroom.services.common.adapters import local_oidc
from strongroom.services.common.adapters.local_oidc import (
    CODE_LIFETIME_SECONDS,
    AuthorizationRequest,
    LocalOidcIssuer,
    LockoutPolicy,
    pkce_challenge,
)
from strongroom.services.common.audit_trail import SYSTEM
from strongroom.services.common.auth import ADMIN, ANNOTATOR, MANAGER, REVIEWER
from strongroom.services.common.database import create_database_engine
from strongroom.services.common.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    StrongroomError,
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
        lockout=LockoutPolicy(
            threshold=3, window_seconds=60, base_seconds=3, max_seconds=6
        ),
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
        ("mia", "short", {ADMIN}, "password_weak"),
        ("mia", "elevenchars", {ADMIN}, "password_weak"),
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


# --- accounts ------------------------------------------------------------------

NEW_PASSWORD = "tidal ochre lantern"


def _code(issuer: LocalOidcIssuer, error: type[StrongroomError], call: Any) -> str:
    with pytest.raises(error) as caught:
        call()
    return caught.value.code


def _audit_actions(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT payload FROM outbox ORDER BY created_at, event_id")
        ).all()
    return [json.loads(row.payload) for row in rows]


def test_disabled_account_cannot_sign_in_and_its_tokens_stop_working(
    issuer: LocalOidcIssuer,
) -> None:
    issuer.create_user("root", PASSWORD, {ADMIN})
    issuer.create_user("mia", PASSWORD, {ANNOTATOR})
    token = issuer.login("mia", PASSWORD)

    disabled = issuer.disable_user("mia", SYSTEM)

    assert disabled.is_disabled
    login = lambda: issuer.login("mia", PASSWORD)  # noqa: E731
    assert _code(issuer, Unauthenticated, login) == "bad_credentials"
    check = lambda: issuer.verify(token)  # noqa: E731
    assert _code(issuer, Unauthenticated, check) == "account_disabled"

    issuer.enable_user("mia", SYSTEM)

    assert issuer.verify(issuer.login("mia", PASSWORD)).username == "mia"
    assert _code(issuer, Unauthenticated, check) == "token_revoked"


def test_the_last_enabled_admin_cannot_be_disabled_or_demoted(
    issuer: LocalOidcIssuer,
) -> None:
    issuer.create_user("root", PASSWORD, {ADMIN})

    disable = lambda: issuer.disable_user("root", SYSTEM)  # noqa: E731
    demote = lambda: issuer.set_roles("root", {MANAGER}, SYSTEM)  # noqa: E731
    assert _code(issuer, FailedPrecondition, disable) == "last_admin"
    assert _code(issuer, FailedPrecondition, demote) == "last_admin"

    issuer.create_user("second", PASSWORD, {ADMIN})
    assert issuer.disable_user("root", SYSTEM).is_disabled


def test_reset_password_must_be_changed_before_anything_else(
    issuer: LocalOidcIssuer,
) -> None:
    issuer.create_user("mia", PASSWORD, {MANAGER})
    before = issuer.login("mia", PASSWORD)

    one_time = issuer.reset_password("mia", SYSTEM)

    old = lambda: issuer.login("mia", PASSWORD)  # noqa: E731
    assert _code(issuer, Unauthenticated, old) == "bad_credentials"
    assert _code(issuer, Unauthenticated, lambda: issuer.verify(before)) == (
        "token_revoked"
    )
    pending = issuer.login("mia", one_time)
    claims = jwt.decode(pending, options={"verify_signature": False})
    assert claims["realm_access"]["roles"] == []
    use = lambda: issuer.verify(pending)  # noqa: E731
    assert _code(issuer, PermissionDenied, use) == "password_change_required"

    fresh = issuer.change_own_password(pending, one_time, NEW_PASSWORD)

    assert issuer.verify(fresh).roles == frozenset({MANAGER})
    assert _code(issuer, Unauthenticated, use) == "token_revoked"
    assert issuer.verify(issuer.login("mia", NEW_PASSWORD)).username == "mia"


def test_changing_a_password_needs_the_current_one_and_the_policy(
    issuer: LocalOidcIssuer,
) -> None:
    issuer.create_user("mia", PASSWORD, {ANNOTATOR})
    token = issuer.login("mia", PASSWORD)

    cases = [
        ("wrong current one", NEW_PASSWORD, "current_password_wrong"),
        (PASSWORD, "short", "password_weak"),
        (PASSWORD, "mia", "password_weak"),
        (PASSWORD, "password1234", "password_weak"),
        (PASSWORD, PASSWORD, "password_weak"),
    ]
    for current, new, code in cases:
        change = lambda c=current, n=new: issuer.change_own_password(token, c, n)  # noqa: E731
        assert _code(issuer, InvalidArgument, change) == code

    assert issuer.verify(token).username == "mia"
    actions = [(e["action"], e["outcome"]) for e in _audit_actions(issuer.engine)]
    assert ("user.password.change", "denied") in actions
    assert ("user.password.change", "error") in actions
    assert all(PASSWORD not in json.dumps(e) for e in _audit_actions(issuer.engine))


def test_role_changes_apply_from_the_next_sign_in(issuer: LocalOidcIssuer) -> None:
    issuer.create_user("mia", PASSWORD, {ANNOTATOR})
    token = issuer.login("mia", PASSWORD)

    changed = issuer.set_roles("mia", {REVIEWER, MANAGER}, SYSTEM)

    assert changed.roles == frozenset({REVIEWER, MANAGER})
    assert _code(issuer, Unauthenticated, lambda: issuer.verify(token)) == (
        "token_revoked"
    )
    assert issuer.verify(issuer.login("mia", PASSWORD)).roles == changed.roles
    unknown = lambda: issuer.set_roles("mia", {"root"}, SYSTEM)  # noqa: E731
    assert _code(issuer, InvalidArgument, unknown) == "role_unknown"
    (event,) = [
        e for e in _audit_actions(issuer.engine) if e["action"] == "user.roles.set"
    ]
    assert event["details"] == {
        "username": "mia",
        "previous_roles": "annotator",
        "roles": "manager,reviewer",
    }


def test_repeated_failures_lock_known_and_unknown_names_alike(
    issuer: LocalOidcIssuer,
) -> None:
    issuer.create_user("mia", PASSWORD, {ANNOTATOR})

    answers = {}
    for name in ("mia", "nobody"):
        for _ in range(3):
            wrong = lambda n=name: issuer.login(n, "wrong password!")  # noqa: E731
            assert _code(issuer, Unauthenticated, wrong) == "bad_credentials"
        with pytest.raises(Unauthenticated) as caught:
            issuer.login(name, PASSWORD)
        answers[name] = (caught.value.code, caught.value.message)

    assert answers["mia"] == answers["nobody"]
    time.sleep(3.1)
    assert issuer.verify(issuer.login("mia", PASSWORD)).username == "mia"
    lockouts = [
        e for e in _audit_actions(issuer.engine) if e["action"] == "auth.lockout"
    ]
    assert len(lockouts) == 2
    assert lockouts[0]["details"] == {"failures": "3", "delay_seconds": "3"}
    reasons = [
        e["reason"]
        for e in _audit_actions(issuer.engine)
        if e["action"] == "auth.login"
    ]
    assert reasons.count("locked") == 2


def test_delays_double_up_to_the_cap() -> None:
    policy = LockoutPolicy(threshold=5, base_seconds=60, max_seconds=900)

    delays = [policy.delay_after(n) for n in range(1, 12)]

    assert delays == [0, 0, 0, 0, 60, 120, 240, 480, 900, 900, 900]
    assert policy.delay_after(10**6) == 900


def test_totp_enrol_confirm_sign_in_and_disable(
    issuer: LocalOidcIssuer, engine: Engine
) -> None:
    issuer.create_user("root", PASSWORD, {ADMIN})
    issuer.create_user("mia", PASSWORD, {ANNOTATOR})
    mia = issuer.verify(issuer.login("mia", PASSWORD))

    enrolment = issuer.enrol_totp(mia)
    secret = enrolment.secret

    assert enrolment.uri.startswith("otpauth://totp/Strongroom:mia?secret=")
    wrong = lambda: issuer.confirm_totp(mia, "000000")  # noqa: E731
    if totp.totp(secret) != "000000":
        assert _code(issuer, InvalidArgument, wrong) == "totp_invalid"
    assert issuer.confirm_totp(mia, totp.totp(secret)).has_totp
    again = lambda: issuer.enrol_totp(mia)  # noqa: E731
    assert _code(issuer, Conflict, again) == "totp_already_enabled"
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT totp_secret FROM users")).all()
    assert all(secret not in str(row.totp_secret) for row in stored)

    without = lambda: issuer.login("mia", PASSWORD)  # noqa: E731
    assert _code(issuer, Unauthenticated, without) == "totp_required"
    bad = lambda: issuer.login("mia", "wrong password!", totp="123456")  # noqa: E731
    assert _code(issuer, Unauthenticated, bad) == "bad_credentials"
    next_code = totp.totp(secret, time.time() + totp.STEP_SECONDS)
    token = issuer.login("mia", PASSWORD, totp=next_code)
    assert issuer.verify(token).username == "mia"
    replay = lambda: issuer.login("mia", PASSWORD, totp=next_code)  # noqa: E731
    assert _code(issuer, Unauthenticated, replay) == "bad_credentials"

    removed = issuer.remove_totp("mia", SYSTEM)

    assert not removed.has_totp
    assert issuer.verify(issuer.login("mia", PASSWORD)).username == "mia"
    off = lambda: issuer.disable_totp(mia, "123456")  # noqa: E731
    assert _code(issuer, FailedPrecondition, off) == "totp_not_enabled"
    actions = [e["action"] for e in _audit_actions(engine)]
    for action in ("user.totp.enrol", "user.totp.enable", "user.totp.remove"):
        assert action in actions
    assert all(secret not in json.dumps(e) for e in _audit_actions(engine))


def test_own_totp_is_disabled_with_a_current_code(issuer: LocalOidcIssuer) -> None:
    issuer.create_user("mia", PASSWORD, {ANNOTATOR})
    mia = issuer.verify(issuer.login("mia", PASSWORD))
    secret = issuer.enrol_totp(mia).secret
    issuer.confirm_totp(mia, totp.totp(secret))

    reused = lambda: issuer.disable_totp(mia, totp.totp(secret))  # noqa: E731
    assert _code(issuer, InvalidArgument, reused) == "totp_invalid"
    later = totp.totp(secret, time.time() + totp.STEP_SECONDS)

    assert not issuer.disable_totp(mia, later).has_totp
    assert issuer.verify(issuer.login("mia", PASSWORD)).username == "mia"


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


def test_refresh_tokens_end_with_an_account_change(issuer: LocalOidcIssuer) -> None:
    issuer.create_user("root", PASSWORD, {ADMIN})
    mia = issuer.create_user("mia", PASSWORD, {ANNOTATOR})
    refresh_token = issuer.issue_refresh_token(mia)
    assert issuer.verify(issuer.refresh(refresh_token).access_token).username == "mia"

    issuer.disable_user("mia", SYSTEM)

    again = lambda: issuer.refresh(refresh_token)  # noqa: E731
    assert _code(issuer, InvalidArgument, again) == "invalid_grant"
    issuer.enable_user("mia", SYSTEM)
    assert _code(issuer, InvalidArgument, again) == "invalid_grant"
    fresh = issuer.issue_refresh_token(mia)
    assert issuer.verify(issuer.refresh(fresh).access_token).username == "mia"
