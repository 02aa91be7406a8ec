"""The built-in OIDC issuer: local users, slow salted hashes, signed JWTs.

It publishes a discovery document and a JWKS like any OIDC provider, and puts
roles where Keycloak does (``realm_access.roles``), so services verify its
tokens with the same generic verifier they use against Keycloak. Besides the
password grant (CLI, API clients) it serves the authorization code flow with
PKCE (RFC 7636, S256 only) for the web page: single-use codes that live a
minute, bound to the client, the exact redirect URI and the code challenge.
It keeps no sign-in session of its own: its login page asks every time.

It also keeps the accounts: disabling, password resets and changes, roles,
the password policy, lockout after repeated failures, and an optional TOTP
second factor. Every token carries the account's ``ver`` counter, bumped
whenever a token issued before must stop working (account disabled,
password reset or changed, roles changed); ``verify`` checks it, and refresh
tokens carry it too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common import password_policy, totp
from strongroom.services.common.audit_trail import (
    DENIED,
    ERROR,
    SYSTEM,
    record_sign_in,
    stage_audit,
)
from strongroom.services.common.auth import (
    ADMIN,
    ROLES,
    Principal,
    TokenSet,
    decode_token,
)
from strongroom.services.common.database import Migration, migrate, utc_now
from strongroom.services.common.errors import (
    Conflict,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    StrongroomError,
    Unauthenticated,
)

# scrypt at N=2^15, r=8: about 32 MiB and tens of milliseconds per guess.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_USERNAME_MAX = 64
# Service accounts' usernames begin so (service_accounts.py); people's never.
SERVICE_ACCOUNT_PREFIX = "svc-"
# RFC 6749 section 10.5 asks for short-lived codes; a browser redirect takes
# well under a second.
CODE_LIFETIME_SECONDS = 60
_REFRESH_TOKEN_TYPE = "refresh"
# The name authenticator apps show beside the account.
TOTP_ISSUER = "Strongroom"
_TOTP_KEY_FILE = "totp-key"
_USER_COLUMNS = (
    "subject, username, password_hash, roles, is_disabled, token_version, "
    "must_change_password, totp_secret, totp_pending, totp_last_step"
)

MIGRATIONS = (
    Migration(
        100,
        "users",
        (
            """CREATE TABLE users (
                subject TEXT PRIMARY KEY,
                username TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                roles TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        101,
        "authorization codes",
        (
            """CREATE TABLE authorization_codes (
                code_hash TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                redirect_uri TEXT NOT NULL,
                subject TEXT NOT NULL,
                nonce TEXT NOT NULL,
                code_challenge TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    Migration(
        102,
        "account state, second factor and failed sign-ins",
        (
            "ALTER TABLE users ADD COLUMN is_disabled INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL "
            "DEFAULT 0",
            "ALTER TABLE users ADD COLUMN totp_secret TEXT",
            "ALTER TABLE users ADD COLUMN totp_pending TEXT",
            "ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0",
            # Keyed by the username as typed, known or not, so an unknown
            # name is counted and locked exactly like an account.
            """CREATE TABLE sign_in_failures (
                username TEXT PRIMARY KEY,
                failures INTEGER NOT NULL,
                last_failed_at DOUBLE PRECISION NOT NULL,
                locked_until DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
)


@dataclass(frozen=True)
class User:
    subject: str
    username: str
    roles: frozenset[str]
    is_disabled: bool = False
    has_totp: bool = False


@dataclass(frozen=True)
class LockoutPolicy:
    """After ``threshold`` failed sign-ins of one username, each with less
    than ``window_seconds`` since the last failure or lock, sign-ins of it
    are refused for ``base_seconds``, doubling with each further failure up
    to ``max_seconds``."""

    threshold: int = 5
    window_seconds: float = 900.0
    base_seconds: float = 60.0
    max_seconds: float = 900.0

    def delay_after(self, failures: int) -> float:
        if failures < self.threshold:
            return 0.0
        doublings = min(failures - self.threshold, 30)
        return float(min(self.base_seconds * 2**doublings, self.max_seconds))


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    uri: str


@dataclass(frozen=True)
class AuthorizationRequest:
    """The parameters of an authorization request the issuer accepted."""

    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    code_challenge: str


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=_SCRYPT_MAXMEM,
    )
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded[0]}${encoded[1]}"


def check_password(password: str, stored: str) -> bool:
    _scheme, n, r, p, salt, expected = stored.split("$")
    digest = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=_SCRYPT_MAXMEM,
    )
    return hmac.compare_digest(digest, base64.b64decode(expected))


def generate_password() -> str:
    """A password shown once to whoever creates or resets an account."""
    return secrets.token_urlsafe(18)


# Compared against when the username is unknown, so a miss costs the same time.
_UNKNOWN_USER_HASH = hash_password(secrets.token_urlsafe(16))


class LocalOidcIssuer:
    def __init__(
        self,
        directory: Path,
        engine: Engine,
        issuer: str,
        audience: str,
        token_lifetime_seconds: int,
        *,
        client_id: str = "strongroom",
        redirect_uris: frozenset[str] = frozenset(),
        refresh_lifetime_seconds: int = 8 * 3600,
        lockout: LockoutPolicy | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.token_lifetime_seconds = token_lifetime_seconds
        # The one client the code flow serves (the gateway's web page) and the
        # redirect URIs registered for it, compared exactly (RFC 9700 2.1).
        self.client_id = client_id
        self.redirect_uris = redirect_uris
        self.refresh_lifetime_seconds = refresh_lifetime_seconds
        self.engine = engine
        self.lockout = lockout or LockoutPolicy()
        migrate(engine, MIGRATIONS)
        self._private_key = _load_or_create_key(directory / "signing-key.pem")
        self._totp_sealer = AESGCM(_load_or_create_secret(directory / _TOTP_KEY_FILE))
        public_jwk = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self._private_key.public_key())
        )
        self.key_id = _jwk_thumbprint(public_jwk)
        self._public_jwk = {
            **public_jwk,
            "kid": self.key_id,
            "use": "sig",
            "alg": "RS256",
        }

    def verify(self, token: str) -> Principal:
        """Check a token this issuer signed, and that its account still allows it.

        Raises:
            Unauthenticated: the token is missing, expired, forged or foreign,
                its account is disabled (``account_disabled``), or it was
                issued before a password or role change (``token_revoked``).
            PermissionDenied: the account must change its password first
                (``password_change_required``).
        """
        return self._verify(token, allow_password_change=False)

    def _verify(self, token: str, *, allow_password_change: bool) -> Principal:
        if not token:
            raise Unauthenticated("A bearer token is required.", code="token_missing")
        principal = decode_token(
            token, self._private_key.public_key(), self.issuer, self.audience
        )
        # The signature was checked just above; only the counter is read here.
        claims = jwt.decode(token, options={"verify_signature": False})
        self._check_account(
            principal.subject, claims.get("ver", 0), allow_password_change
        )
        return principal

    def _check_account(
        self, subject: str, version: object, allow_password_change: bool
    ) -> None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT is_disabled, token_version, must_change_password "
                    "FROM users WHERE subject = :s"
                ),
                {"s": subject},
            ).first()
        if row is None:
            # Not a person's account: a service account's (client
            # credentials), which has no account state here.
            return
        if row.is_disabled:
            raise Unauthenticated("This account is disabled.", code="account_disabled")
        if row.token_version != version:
            raise Unauthenticated(
                "The bearer token was revoked by an account change; sign in again.",
                code="token_revoked",
            )
        if row.must_change_password and not allow_password_change:
            raise PermissionDenied(
                "The password must be changed before anything else "
                "(POST /api/v1/users/me/password).",
                code="password_change_required",
            )

    def discovery_document(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "token_endpoint": f"{self.issuer}/token",
            "authorization_endpoint": f"{self.issuer}/authorize",
            "grant_types_supported": [
                "password",
                "authorization_code",
                "refresh_token",
            ],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._public_jwk]}

    # --- accounts --------------------------------------------------------------

    def create_user(
        self, username: str, password: str, roles: set[str], actor: Principal = SYSTEM
    ) -> User:
        """Create a local user.

        Raises:
            InvalidArgument: the username or a role is not acceptable, or the
                password breaks the policy (``password_weak``).
            Conflict: the username is taken.
        """
        _check_new_user(username, password, roles)
        user = User(
            subject=str(uuid.uuid4()), username=username, roles=frozenset(roles)
        )
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.text("SELECT 1 FROM users WHERE username = :u"), {"u": username}
            ).first()
            if taken:
                raise Conflict("That username is already taken.", code="username_taken")
            conn.execute(
                sa.text(
                    "INSERT INTO users (subject, username, password_hash, roles, "
                    "created_at) "
                    "VALUES (:s, :u, :h, :r, :at)"
                ),
                {
                    "s": user.subject,
                    "u": username,
                    "h": hash_password(password),
                    "r": json.dumps(sorted(roles)),
                    "at": utc_now(),
                },
            )
            _stage_account_audit(
                conn,
                "user.create",
                actor,
                user,
                {"roles": ",".join(sorted(roles))},
            )
        return user

    def has_users(self) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(sa.text("SELECT 1 FROM users LIMIT 1")).first() is not None
            )

    def find_user(self, username: str) -> User:
        """Raises: NotFound: no user has that username."""
        with self.engine.connect() as conn:
            row = _user_row(conn, "username", username)
        if row is None:
            raise NotFound("No user has that username.", code="user_not_found")
        return _user(row)

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")
            ).all()
        return [_user(r) for r in rows]

    def disable_user(self, username: str, actor: Principal) -> User:
        """Stop an account signing in; its tokens stop working at the gateway.

        Raises:
            NotFound: no user has that username.
            FailedPrecondition: it is the last enabled admin (``last_admin``).
        """
        with self.engine.begin() as conn:
            user = _user(self._existing_row(conn, username))
            if ADMIN in user.roles:
                self._keep_an_admin(conn, user.subject)
            conn.execute(
                sa.text(
                    "UPDATE users SET is_disabled = 1, "
                    "token_version = token_version + 1 WHERE subject = :s"
                ),
                {"s": user.subject},
            )
            _stage_account_audit(conn, "user.disable", actor, user)
        return User(user.subject, user.username, user.roles, True, user.has_totp)

    def enable_user(self, username: str, actor: Principal) -> User:
        """Let a disabled account sign in again, its failed sign-ins forgotten.

        Raises:
            NotFound: no user has that username.
        """
        with self.engine.begin() as conn:
            user = _user(self._existing_row(conn, username))
            conn.execute(
                sa.text("UPDATE users SET is_disabled = 0 WHERE subject = :s"),
                {"s": user.subject},
            )
            _forget_failures(conn, user.username)
            _stage_account_audit(conn, "user.enable", actor, user)
        return User(user.subject, user.username, user.roles, False, user.has_totp)

    def reset_password(self, username: str, actor: Principal) -> str:
        """Give an account a generated one-time password and return it.

        The account must change it at its next sign-in; tokens issued before
        stop working, and failed sign-ins are forgotten.

        Raises:
            NotFound: no user has that username.
        """
        password = generate_password()
        with self.engine.begin() as conn:
            user = _user(self._existing_row(conn, username))
            password_policy.check_password(password, user.username)
            conn.execute(
                sa.text(
                    "UPDATE users SET password_hash = :h, must_change_password = 1, "
                    "token_version = token_version + 1 WHERE subject = :s"
                ),
                {"h": hash_password(password), "s": user.subject},
            )
            _forget_failures(conn, user.username)
            _stage_account_audit(conn, "user.password.reset", actor, user)
        return password

    def set_roles(self, username: str, roles: set[str], actor: Principal) -> User:
        """Replace an account's roles; they apply from its next sign-in.

        Tokens issued before carry the old roles, so they stop working.

        Raises:
            InvalidArgument: a role is unknown or none is given.
            NotFound: no user has that username.
            FailedPrecondition: it would leave no enabled admin (``last_admin``).
        """
        _check_roles(roles)
        with self.engine.begin() as conn:
            user = _user(self._existing_row(conn, username))
            if ADMIN in user.roles and ADMIN not in roles:
                self._keep_an_admin(conn, user.subject)
            conn.execute(
                sa.text(
                    "UPDATE users SET roles = :r, token_version = token_version + 1 "
                    "WHERE subject = :s"
                ),
                {"r": json.dumps(sorted(roles)), "s": user.subject},
            )
            _stage_account_audit(
                conn,
                "user.roles.set",
                actor,
                user,
                {
                    "previous_roles": ",".join(sorted(user.roles)),
                    "roles": ",".join(sorted(roles)),
                },
            )
        return User(
            user.subject,
            user.username,
            frozenset(roles),
            user.is_disabled,
            user.has_totp,
        )

    def change_own_password(
        self, token: str, current: str, new: str, client_address: str = ""
    ) -> str:
        """Change the caller's password, given the current one; return a new token.

        Works for an account that must change its password, too. Every
        token issued before stops working. A wrong current password counts
        as a failed sign-in.

        Raises:
            Unauthenticated: the token is not valid.
            InvalidArgument: the current password is wrong
                (``current_password_wrong``), or the new one breaks the policy
                (``password_weak``).
        """
        caller = self._caller(token, client_address, allow_password_change=True)
        with self.engine.connect() as conn:
            row = self._existing_row(conn, caller.username)
        is_valid = check_password(current, row.password_hash)
        self._refuse_unless(
            is_valid,
            caller,
            "user.password.change",
            InvalidArgument(
                "The current password is wrong.", code="current_password_wrong"
            ),
        )
        try:
            password_policy.check_password(new, caller.username)
            if new == current:
                raise InvalidArgument(
                    "A new password must differ from the current one.",
                    code="password_weak",
                )
        except InvalidArgument as refused:
            self._audit_refusal(caller, "user.password.change", refused, ERROR)
            raise
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE users SET password_hash = :h, must_change_password = 0, "
                    "token_version = token_version + 1 WHERE subject = :s"
                ),
                {"h": hash_password(new), "s": caller.subject},
            )
            _stage_account_audit(conn, "user.password.change", caller, _user(row))
            changed = _user_row(conn, "subject", caller.subject)
        assert changed is not None
        return self._token_for(changed)

    # --- second factor ---------------------------------------------------------

    def enrol_totp(self, caller: Principal) -> TotpEnrolment:
        """Start a TOTP enrolment: a new secret, active once a code confirms it.

        Raises:
            Conflict: the account has an active second factor already.
        """
        secret = totp.new_secret()
        with self.engine.begin() as conn:
            row = self._existing_row(conn, caller.username)
            if row.totp_secret:
                raise Conflict(
                    "This account has a second factor already; disable it first.",
                    code="totp_already_enabled",
                )
            conn.execute(
                sa.text("UPDATE users SET totp_pending = :p WHERE subject = :s"),
                {"p": self._seal(secret, row.subject), "s": row.subject},
            )
            _stage_account_audit(conn, "user.totp.enrol", caller, _user(row))
        uri = totp.provisioning_uri(secret, caller.username, TOTP_ISSUER)
        return TotpEnrolment(secret=secret, uri=uri)

    def confirm_totp(self, caller: Principal, code: str) -> User:
        """Activate the enrolled secret with a first code from the app.

        Raises:
            FailedPrecondition: no enrolment is waiting (``totp_not_enrolled``).
            InvalidArgument: the code is wrong (``totp_invalid``).
        """
        with self.engine.connect() as conn:
            row = self._existing_row(conn, caller.username)
        if not row.totp_pending:
            raise FailedPrecondition(
                "No second factor is waiting for confirmation; enrol first.",
                code="totp_not_enrolled",
            )
        secret = self._unseal(row.totp_pending, row.subject)
        step = totp.matching_step(secret, code, row.totp_last_step)
        self._refuse_unless(
            step is not None,
            caller,
            "user.totp.enable",
            InvalidArgument("That code is not valid.", code="totp_invalid"),
            counts=False,
        )
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, "
                    "totp_last_step = :step WHERE subject = :s"
                ),
                {"step": step, "s": row.subject},
            )
            _stage_account_audit(conn, "user.totp.enable", caller, _user(row))
        return User(row.subject, row.username, _user(row).roles, False, True)

    def disable_totp(self, caller: Principal, code: str) -> User:
        """Turn the caller's second factor off, given a current code.

        A wrong code counts as a failed sign-in.

        Raises:
            FailedPrecondition: the account has no second factor
                (``totp_not_enabled``).
            InvalidArgument: the code is wrong (``totp_invalid``).
        """
        with self.engine.connect() as conn:
            row = self._existing_row(conn, caller.username)
        if not row.totp_secret:
            raise FailedPrecondition(
                "This account has no second factor.", code="totp_not_enabled"
            )
        secret = self._unseal(row.totp_secret, row.subject)
        step = totp.matching_step(secret, code, row.totp_last_step)
        self._refuse_unless(
            step is not None,
            caller,
            "user.totp.disable",
            InvalidArgument("That code is not valid.", code="totp_invalid"),
        )
        with self.engine.begin() as conn:
            _clear_totp(conn, row.subject)
            _stage_account_audit(conn, "user.totp.disable", caller, _user(row))
        return User(row.subject, row.username, _user(row).roles, False, False)

    def remove_totp(self, username: str, actor: Principal) -> User:
        """Remove an account's second factor (an admin's help for a lost phone).

        Raises:
            NotFound: no user has that username.
        """
        with self.engine.begin() as conn:
            user = _user(self._existing_row(conn, username))
            _clear_totp(conn, user.subject)
            _stage_account_audit(
                conn,
                "user.totp.remove",
                actor,
                user,
                {"was_enabled": int(user.has_totp)},
            )
        return User(user.subject, user.username, user.roles, user.is_disabled, False)

    # --- sign-in ----------------------------------------------------------------

    def login(
        self, username: str, password: str, client_address: str = "", totp: str = ""
    ) -> str:
        """Check a password (and a TOTP code, if the account has one); return a
        signed access token.

        Raises:
            Unauthenticated: as ``authenticate``.
        """
        return self.issue_token(
            self.authenticate(username, password, client_address, totp)
        )

    def authenticate(
        self, username: str, password: str, client_address: str = "", totp: str = ""
    ) -> User:
        """Check a password (and a TOTP code, if the account has one) and audit
        the sign-in, accepted or refused.

        A locked username, a disabled account, a wrong password and an
        unknown username are refused alike, after the same password hashing.

        Raises:
            Unauthenticated: ``bad_credentials`` (never says which part was
                wrong, nor whether the account exists or is locked), or
                ``totp_required`` when the password was right and the
                account needs a code that was not given.
        """
        name = username[:_USERNAME_MAX]
        with self.engine.connect() as conn:
            row = _user_row(conn, "username", name)
        is_valid = check_password(
            password, row.password_hash if row else _UNKNOWN_USER_HASH
        )
        now = time.time()
        reason, step = self._sign_in_refusal(name, row, is_valid, totp, now)
        attempt = Principal(
            subject=row.subject if row else "",
            username="",
            roles=frozenset(),
            client_address=client_address,
        )
        if reason == "totp_required":
            record_sign_in(self.engine, attempt, is_refused=True, reason=reason)
            raise Unauthenticated(
                "This account needs a code from its authenticator app.",
                code="totp_required",
            )
        if reason:
            self._count_failure(name, attempt, now, counts=reason != "locked")
            record_sign_in(self.engine, attempt, is_refused=True, reason=reason)
            raise _bad_credentials()
        assert row is not None
        if step is not None and not self._use_totp_step(row.subject, step):
            # Another sign-in used the same code in the meantime.
            self._count_failure(name, attempt, now)
            record_sign_in(self.engine, attempt, is_refused=True, reason="totp_invalid")
            raise _bad_credentials()
        with self.engine.begin() as conn:
            _forget_failures(conn, name)
        user = _user(row)
        signed_in = Principal(
            user.subject, user.username, user.roles, client_address=client_address
        )
        record_sign_in(self.engine, signed_in, is_refused=False)
        return user

    def _use_totp_step(self, subject: str, step: int) -> bool:
        """Record ``step`` as used unless it (or a later one) already was."""
        with self.engine.begin() as conn:
            used = conn.execute(
                sa.text(
                    "UPDATE users SET totp_last_step = :step "
                    "WHERE subject = :s AND totp_last_step < :step"
                ),
                {"step": step, "s": subject},
            )
        return bool(used.rowcount)

    def _sign_in_refusal(
        self, name: str, row: Any, is_valid: bool, code: str, now: float
    ) -> tuple[str, int | None]:
        """Why a sign-in is refused ("" if it is not), and the TOTP step used."""
        if self._is_locked(name, now):
            return "locked", None
        if row is None or not is_valid:
            return "bad_credentials", None
        if row.is_disabled:
            return "account_disabled", None
        if not row.totp_secret:
            return "", None
        if not code:
            return "totp_required", None
        secret = self._unseal(row.totp_secret, row.subject)
        step = totp.matching_step(secret, code, row.totp_last_step, now)
        return ("", step) if step is not None else ("totp_invalid", None)

    def _is_locked(self, name: str, now: float) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT locked_until FROM sign_in_failures WHERE username = :u"
                ),
                {"u": name},
            ).first()
        return row is not None and row.locked_until > now

    def _count_failure(
        self, name: str, actor: Principal, now: float, *, counts: bool = True
    ) -> None:
        """Count a failed sign-in of ``name``; lock it once there are enough."""
        if not counts:
            return
        policy = self.lockout
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT failures, last_failed_at, locked_until "
                    "FROM sign_in_failures WHERE username = :u"
                ),
                {"u": name},
            ).first()
            is_stale = row is not None and (
                max(row.last_failed_at, row.locked_until) + policy.window_seconds < now
            )
            failures = 1 if row is None or is_stale else row.failures + 1
            delay = policy.delay_after(failures)
            locked_until = now + delay if delay else 0.0
            conn.execute(
                sa.text(
                    "INSERT INTO sign_in_failures "
                    "(username, failures, last_failed_at, locked_until) "
                    "VALUES (:u, :f, :at, :until) ON CONFLICT (username) DO UPDATE "
                    "SET failures = excluded.failures, "
                    "last_failed_at = excluded.last_failed_at, "
                    "locked_until = excluded.locked_until"
                ),
                {"u": name, "f": failures, "at": now, "until": locked_until},
            )
            # Names whose failures have all expired, typed once by a scan of
            # guesses, are not kept.
            conn.execute(
                sa.text(
                    "DELETE FROM sign_in_failures WHERE last_failed_at < :stale "
                    "AND locked_until < :stale"
                ),
                {"stale": now - policy.window_seconds},
            )
            if delay:
                stage_audit(
                    conn,
                    service="gateway",
                    action="auth.lockout",
                    actor=actor,
                    resource_type="user",
                    resource_id=actor.subject,
                    outcome=DENIED,
                    reason="too_many_failures",
                    details={"failures": failures, "delay_seconds": int(delay)},
                )

    def _refuse_unless(
        self,
        is_allowed: bool,
        caller: Principal,
        action: str,
        error: StrongroomError,
        *,
        counts: bool = True,
    ) -> None:
        """Refuse a self-service change whose proof (a password, a code) is
        wrong, or whose account is locked, audited and counted as a failure."""
        now = time.time()
        if self._is_locked(caller.username, now):
            self._audit_refusal(caller, action, error, DENIED, reason="locked")
            raise error
        if is_allowed:
            return
        if counts:
            self._count_failure(caller.username, caller, now)
        self._audit_refusal(caller, action, error, DENIED)
        raise error

    def _audit_refusal(
        self,
        caller: Principal,
        action: str,
        error: StrongroomError,
        outcome: str,
        reason: str = "",
    ) -> None:
        with self.engine.begin() as conn:
            stage_audit(
                conn,
                service="gateway",
                action=action,
                actor=caller,
                resource_type="user",
                resource_id=caller.subject,
                outcome=outcome,
                reason=reason or error.code,
                details={"username": caller.username},
            )

    # --- the code flow ----------------------------------------------------------

    def check_authorization_request(
        self, params: dict[str, str]
    ) -> AuthorizationRequest:
        """Accept the parameters of a code-flow request, or say what is wrong.

        Only the registered client, its exact redirect URI, ``response_type``
        ``code`` and a PKCE challenge by S256 are accepted.

        Raises:
            InvalidArgument: a parameter is missing or not acceptable.
        """
        if params.get("client_id") != self.client_id:
            raise InvalidArgument("The client is not known.", code="client_unknown")
        if params.get("redirect_uri") not in self.redirect_uris:
            raise InvalidArgument(
                "The redirect URI is not registered for this client.",
                code="redirect_uri_mismatch",
            )
        if params.get("response_type") != "code":
            raise InvalidArgument(
                "Only response_type=code is supported.", code="unsupported_response"
            )
        challenge = params.get("code_challenge", "")
        if (
            params.get("code_challenge_method") != "S256"
            or not 43 <= len(challenge) <= 128
        ):
            raise InvalidArgument(
                "A PKCE code challenge by S256 is required.", code="pkce_required"
            )
        return AuthorizationRequest(
            client_id=self.client_id,
            redirect_uri=params["redirect_uri"],
            state=params.get("state", "")[:512],
            nonce=params.get("nonce", "")[:512],
            code_challenge=challenge,
        )

    def create_authorization_code(
        self, user: User, request: AuthorizationRequest
    ) -> str:
        """Store a single-use code for ``user``; only its hash is kept."""
        code = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM authorization_codes WHERE expires_at < :now"),
                {"now": time.time()},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO authorization_codes (code_hash, client_id, "
                    "redirect_uri, subject, nonce, code_challenge, expires_at) "
                    "VALUES (:h, :c, :r, :s, :n, :ch, :exp)"
                ),
                {
                    "h": _digest(code),
                    "c": request.client_id,
                    "r": request.redirect_uri,
                    "s": user.subject,
                    "n": request.nonce,
                    "ch": request.code_challenge,
                    "exp": time.time() + CODE_LIFETIME_SECONDS,
                },
            )
        return code

    def redeem_authorization_code(
        self, code: str, client_id: str, redirect_uri: str, code_verifier: str
    ) -> TokenSet:
        """Exchange a code for tokens, once.

        The code is deleted before anything is checked, so a second attempt
        with the same code fails whatever the first one's outcome.

        Raises:
            InvalidArgument: the code is unknown, used, expired, or issued for
                another client, redirect URI or code verifier (``invalid_grant``).
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.text(
                    "DELETE FROM authorization_codes WHERE code_hash = :h "
                    "RETURNING client_id, redirect_uri, subject, nonce, "
                    "code_challenge, expires_at"
                ),
                {"h": _digest(code)},
            ).first()
        is_valid = (
            row is not None
            and row.expires_at >= time.time()
            and row.client_id == client_id
            and row.redirect_uri == redirect_uri
            and 43 <= len(code_verifier) <= 128
            and hmac.compare_digest(pkce_challenge(code_verifier), row.code_challenge)
        )
        user = self._user_by_subject(row.subject) if row and is_valid else None
        if row is None or user is None:
            raise InvalidArgument(
                "The authorization code is not valid for this request.",
                code="invalid_grant",
            )
        return TokenSet(
            access_token=self.issue_token(user),
            expires_in=self.token_lifetime_seconds,
            id_token=self.issue_id_token(user, row.nonce, client_id),
            refresh_token=self.issue_refresh_token(user),
        )

    def grant(self, form: Mapping[str, str]) -> TokenSet:
        """Answer the token endpoint's code or refresh grant from its form.

        Raises:
            InvalidArgument: the grant type is not one of the two
                (``unsupported_grant_type``), or the grant is refused
                (``invalid_grant``).
        """
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            return self.redeem_authorization_code(
                form.get("code", ""),
                form.get("client_id", ""),
                form.get("redirect_uri", ""),
                form.get("code_verifier", ""),
            )
        if grant_type == "refresh_token":
            return self.refresh(form.get("refresh_token", ""))
        raise InvalidArgument(
            "The grant type is not supported here.", code="unsupported_grant_type"
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        """A fresh access token for the holder of a refresh token.

        Raises:
            InvalidArgument: the refresh token is expired, forged, its user
                is gone or disabled, or it was issued before an account change
                (``invalid_grant``).
        """
        try:
            claims = jwt.decode(
                refresh_token,
                self._private_key.public_key(),
                algorithms=["RS256"],
                audience=self.issuer,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "typ"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidArgument(
                "The refresh token is not valid.", code="invalid_grant"
            ) from exc
        user = self._user_by_subject(str(claims["sub"]))
        # A refresh token issued before the account changed (disabled, a
        # password reset or change, new roles) ends with it.
        is_current = user is not None and claims.get("ver", 0) == self._version_of(
            user.subject
        )
        if claims["typ"] != _REFRESH_TOKEN_TYPE or user is None or not is_current:
            raise InvalidArgument(
                "The refresh token is not valid.", code="invalid_grant"
            )
        return TokenSet(
            access_token=self.issue_token(user),
            expires_in=self.token_lifetime_seconds,
        )

    # --- tokens -----------------------------------------------------------------

    def issue_token(self, user: User) -> str:
        """A token for ``user`` as its account stands now (as given, when this
        issuer keeps no such account, which then verifies nowhere but at
        another issuer's generic verifier)."""
        with self.engine.connect() as conn:
            row = _user_row(conn, "subject", user.subject)
        if row is None:
            return self._access_token(
                user.subject, user.username, sorted(user.roles), 0
            )
        return self._token_for(row)

    def _token_for(self, row: Any) -> str:
        # A token issued while the password must change carries no roles, so
        # a service called directly grants it nothing either.
        roles = [] if row.must_change_password else sorted(json.loads(row.roles))
        return self._access_token(row.subject, row.username, roles, row.token_version)

    def _access_token(
        self, subject: str, username: str, roles: list[str], version: int
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "preferred_username": username,
            "realm_access": {"roles": roles},
            "ver": version,
            "iat": now,
            "exp": now + self.token_lifetime_seconds,
            "jti": str(uuid.uuid4()),
        }
        return self._sign(claims)

    def issue_id_token(self, user: User, nonce: str, client_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": client_id,
            "sub": user.subject,
            "preferred_username": user.username,
            "iat": now,
            "exp": now + self.token_lifetime_seconds,
            "nonce": nonce,
        }
        return self._sign(claims)

    def issue_refresh_token(self, user: User) -> str:
        # Addressed to the issuer itself, so no service accepts it as access.
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.issuer,
            "sub": user.subject,
            "typ": _REFRESH_TOKEN_TYPE,
            "ver": self._version_of(user.subject),
            "iat": now,
            "exp": now + self.refresh_lifetime_seconds,
            "jti": str(uuid.uuid4()),
        }
        return self._sign(claims)

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._private_key, algorithm="RS256", headers={"kid": self.key_id}
        )

    def _user_by_subject(self, subject: str) -> User | None:
        """The account with ``subject``, unless it is gone or disabled."""
        with self.engine.connect() as conn:
            row = _user_row(conn, "subject", subject)
        if row is None or row.is_disabled:
            return None
        return _user(row)

    def _version_of(self, subject: str) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT token_version FROM users WHERE subject = :s"),
                {"s": subject},
            ).first()
        return None if row is None else int(row.token_version)

    def _caller(
        self, token: str, client_address: str, *, allow_password_change: bool
    ) -> Principal:
        verified = self._verify(token, allow_password_change=allow_password_change)
        return Principal(
            verified.subject,
            verified.username,
            verified.roles,
            verified.token,
            client_address,
        )

    # --- helpers ----------------------------------------------------------------

    def _existing_row(self, conn: Connection, username: str) -> Any:
        row = _user_row(conn, "username", username)
        if row is None:
            raise NotFound("No user has that username.", code="user_not_found")
        return row

    def _keep_an_admin(self, conn: Connection, subject: str) -> None:
        rows = conn.execute(
            sa.text("SELECT subject, roles FROM users WHERE is_disabled = 0")
        ).all()
        others = [
            r for r in rows if r.subject != subject and ADMIN in json.loads(r.roles)
        ]
        if not others:
            raise FailedPrecondition(
                "This is the last enabled admin; make another admin first.",
                code="last_admin",
            )

    def _seal(self, secret: str, subject: str) -> str:
        nonce = os.urandom(12)
        sealed = self._totp_sealer.encrypt(nonce, secret.encode(), subject.encode())
        return base64.b64encode(nonce + sealed).decode()

    def _unseal(self, stored: str, subject: str) -> str:
        raw = base64.b64decode(stored)
        try:
            opened = self._totp_sealer.decrypt(raw[:12], raw[12:], subject.encode())
        except InvalidTag as exc:
            raise InternalError(
                "A second-factor secret cannot be opened with this issuer's key.",
                code="totp_key_mismatch",
            ) from exc
        return opened.decode()


def _bad_credentials() -> Unauthenticated:
    return Unauthenticated("The username or password is wrong.", code="bad_credentials")


def _user_row(conn: Connection, column: str, value: str) -> Any:
    assert column in ("username", "subject")
    return conn.execute(
        sa.text(f"SELECT {_USER_COLUMNS} FROM users WHERE {column} = :v"),
        {"v": value},
    ).first()


def _user(row: Any) -> User:
    return User(
        row.subject,
        row.username,
        frozenset(json.loads(row.roles)),
        bool(row.is_disabled),
        bool(row.totp_secret),
    )


def _forget_failures(conn: Connection, username: str) -> None:
    conn.execute(
        sa.text("DELETE FROM sign_in_failures WHERE username = :u"), {"u": username}
    )


def _clear_totp(conn: Connection, subject: str) -> None:
    conn.execute(
        sa.text(
            "UPDATE users SET totp_secret = NULL, totp_pending = NULL "
            "WHERE subject = :s"
        ),
        {"s": subject},
    )


def _stage_account_audit(
    conn: Connection,
    action: str,
    actor: Principal,
    target: User,
    details: dict[str, str | int] | None = None,
) -> None:
    stage_audit(
        conn,
        service="gateway",
        action=action,
        actor=actor,
        resource_type="user",
        resource_id=target.subject,
        details={"username": target.username, **(details or {})},
    )


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_new_user(username: str, password: str, roles: set[str]) -> None:
    if not username or len(username) > _USERNAME_MAX or not username.isprintable():
        raise InvalidArgument(
            f"A username must be 1 to {_USERNAME_MAX} printable characters.",
            code="username_invalid",
        )
    if username.startswith(SERVICE_ACCOUNT_PREFIX):
        raise InvalidArgument(
            f"Usernames beginning {SERVICE_ACCOUNT_PREFIX!r} are service accounts'.",
            code="username_invalid",
        )
    password_policy.check_password(password, username)
    _check_roles(roles)


def _check_roles(roles: set[str]) -> None:
    unknown = roles - ROLES
    if unknown or not roles:
        raise InvalidArgument(
            f"Roles must be a non-empty subset of {', '.join(sorted(ROLES))}.",
            code="role_unknown",
        )


def _load_or_create_secret(path: Path) -> bytes:
    """32 random bytes kept in a private file, made on first use."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def _jwk_thumbprint(jwk: dict[str, Any]) -> str:
    # RFC 7638: hash of the required members in lexicographic order.
    members = {k: jwk[k] for k in ("e", "kty", "n")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
