"""The built-in OIDC issuer: local users, slow salted hashes, signed JWTs.

It publishes a discovery document and a JWKS like any OIDC provider, and puts
roles where Keycloak does (``realm_access.roles``), so services verify its
tokens with the same generic verifier they use against Keycloak. Besides the
password grant (CLI, API clients) it serves the authorization code flow with
PKCE (RFC 7636, S256 only) for the web page: single-use codes that live a
minute, bound to the client, the exact redirect URI and the code challenge.
It keeps no sign-in session of its own: its login page asks every time.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import Engine

from strongroom.services.common.audit_trail import (
    SYSTEM,
    record_sign_in,
    stage_audit,
)
from strongroom.services.common.auth import ROLES, Principal, TokenSet, decode_token
from strongroom.services.common.database import Migration, migrate, utc_now
from strongroom.services.common.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)

# scrypt at N=2^15, r=8: about 32 MiB and tens of milliseconds per guess.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_USERNAME_MAX = 64
# RFC 6749 section 10.5 asks for short-lived codes; a browser redirect takes
# well under a second.
CODE_LIFETIME_SECONDS = 60
_REFRESH_TOKEN_TYPE = "refresh"

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
)


@dataclass(frozen=True)
class User:
    subject: str
    username: str
    roles: frozenset[str]


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
        migrate(engine, MIGRATIONS)
        self._private_key = _load_or_create_key(directory / "signing-key.pem")
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
        """Check a token this issuer signed, without fetching its own JWKS.

        Raises:
            Unauthenticated: the token is missing, expired, forged or foreign.
        """
        if not token:
            raise Unauthenticated("A bearer token is required.", code="token_missing")
        return decode_token(
            token, self._private_key.public_key(), self.issuer, self.audience
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

    def create_user(
        self, username: str, password: str, roles: set[str], actor: Principal = SYSTEM
    ) -> User:
        """Create a local user.

        Raises:
            InvalidArgument: the username, password or a role is not acceptable.
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
            stage_audit(
                conn,
                service="gateway",
                action="user.create",
                actor=actor,
                resource_type="user",
                resource_id=user.subject,
                details={"roles": ",".join(sorted(roles))},
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
            row = conn.execute(
                sa.text(
                    "SELECT subject, username, roles FROM users WHERE username = :u"
                ),
                {"u": username},
            ).first()
        if row is None:
            raise NotFound("No user has that username.", code="user_not_found")
        return User(row.subject, row.username, frozenset(json.loads(row.roles)))

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT subject, username, roles FROM users ORDER BY username")
            ).all()
        return [
            User(r.subject, r.username, frozenset(json.loads(r.roles))) for r in rows
        ]

    def login(self, username: str, password: str, client_address: str = "") -> str:
        """Check a password and return a signed access token.

        Raises:
            Unauthenticated: the username or password is wrong (never says which).
        """
        return self.issue_token(self.authenticate(username, password, client_address))

    def authenticate(
        self, username: str, password: str, client_address: str = ""
    ) -> User:
        """Check a password and audit the sign-in, accepted or refused.

        Raises:
            Unauthenticated: the username or password is wrong (never says which).
        """
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT subject, username, password_hash, roles FROM users "
                    "WHERE username = :u"
                ),
                {"u": username[:_USERNAME_MAX]},
            ).first()
        is_valid = check_password(
            password, row.password_hash if row else _UNKNOWN_USER_HASH
        )
        if row is None or not is_valid:
            attempt = Principal(
                subject=row.subject if row else "",
                username="",
                roles=frozenset(),
                client_address=client_address,
            )
            record_sign_in(self.engine, attempt, is_refused=True)
            raise Unauthenticated(
                "The username or password is wrong.", code="bad_credentials"
            )
        user = User(row.subject, row.username, frozenset(json.loads(row.roles)))
        signed_in = Principal(
            user.subject, user.username, user.roles, client_address=client_address
        )
        record_sign_in(self.engine, signed_in, is_refused=False)
        return user

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

    def refresh(self, refresh_token: str) -> TokenSet:
        """A fresh access token for the holder of a refresh token.

        Raises:
            InvalidArgument: the refresh token is expired, forged or its user
                is gone (``invalid_grant``).
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
        if claims["typ"] != _REFRESH_TOKEN_TYPE or user is None:
            raise InvalidArgument(
                "The refresh token is not valid.", code="invalid_grant"
            )
        return TokenSet(
            access_token=self.issue_token(user),
            expires_in=self.token_lifetime_seconds,
        )

    def issue_token(self, user: User) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user.subject,
            "preferred_username": user.username,
            "realm_access": {"roles": sorted(user.roles)},
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
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT subject, username, roles FROM users WHERE subject = :s"
                ),
                {"s": subject},
            ).first()
        if row is None:
            return None
        return User(row.subject, row.username, frozenset(json.loads(row.roles)))


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
    if len(password) < 12:
        raise InvalidArgument(
            "A password must have at least 12 characters.", code="password_too_short"
        )
    unknown = roles - ROLES
    if unknown or not roles:
        raise InvalidArgument(
            f"Roles must be a non-empty subset of {', '.join(sorted(ROLES))}.",
            code="role_unknown",
        )


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
