"""Who signs users in: the built-in issuer, or an external OIDC provider.

With ``identity = "local"`` the gateway is the OIDC issuer itself. With
``identity = "oidc"`` (Keycloak in a cluster) the provider owns users and
passwords; the gateway verifies its tokens, relays the CLI's and the web
page's password sign-in to the provider's token endpoint, and remembers who
has signed in so that project members can be added by username.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.gateway.sessions import MIGRATIONS as SESSION_MIGRATIONS
from strongroom.services.common.adapters.local_oidc import (
    MIGRATIONS as LOCAL_USER_MIGRATIONS,
)
from strongroom.services.common.adapters.local_oidc import LocalOidcIssuer, User
from strongroom.services.common.audit_trail import record_sign_in
from strongroom.services.common.auth import OidcTokenVerifier, Principal
from strongroom.services.common.config import Settings
from strongroom.services.common.database import (
    Migration,
    create_database_engine,
    migrate,
    utc_now,
)
from strongroom.services.common.errors import (
    DependencyUnavailable,
    FailedPrecondition,
    NotFound,
    Unauthenticated,
)


class GatewayIdentity(Protocol):
    engine: Engine

    def verify(self, token: str) -> Principal: ...

    def login(self, username: str, password: str, client_address: str = "") -> str: ...

    def create_user(
        self, username: str, password: str, roles: set[str], actor: Principal
    ) -> User: ...

    def find_user(self, username: str) -> User: ...

    def list_users(self) -> list[User]: ...

    def discovery_document(self) -> dict[str, Any]: ...

    def jwks(self) -> dict[str, Any]: ...


def open_identity(settings: Settings) -> GatewayIdentity:
    engine = open_identity_database(settings)
    if settings.identity == "oidc":
        return ExternalIdentity(settings, engine)
    return LocalOidcIssuer(
        settings.service_dir("identity"),
        engine,
        settings.oidc_issuer,
        settings.oidc_audience,
        settings.token_lifetime_seconds,
        client_id=settings.oidc_client_id,
        redirect_uris=frozenset({f"{settings.web_url()}/auth/callback"}),
        refresh_lifetime_seconds=int(settings.session_absolute_hours * 3600),
    )


_DIRECTORY_MIGRATIONS = (
    Migration(
        100,
        "users seen at sign-in",
        (
            """CREATE TABLE known_users (
                subject TEXT PRIMARY KEY,
                username TEXT NOT NULL,
                roles TEXT NOT NULL,
                seen_at TEXT NOT NULL
            )""",
            "CREATE INDEX known_users_username ON known_users (username)",
        ),
    ),
)


def open_identity_database(settings: Settings) -> Engine:
    """The gateway's own database: local users, or who signed in through OIDC."""
    if settings.database_url_template:
        return create_database_engine(settings.database_url("identity"))
    path = settings.service_dir("identity") / "identity.db"
    return create_database_engine(f"sqlite:///{path}")


def identity_migrations(settings: Settings) -> Sequence[Migration]:
    if settings.identity == "oidc":
        return (*_DIRECTORY_MIGRATIONS, *SESSION_MIGRATIONS)
    return (*LOCAL_USER_MIGRATIONS, *SESSION_MIGRATIONS)


class ExternalIdentity:
    """Tokens from an external OIDC provider, verified by discovery and JWKS."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.verifier = OidcTokenVerifier(
            settings.oidc_issuer, settings.oidc_audience, settings.tls_ca_file
        )
        self._known: set[str] = set()
        migrate(engine, _DIRECTORY_MIGRATIONS)

    def verify(self, token: str) -> Principal:
        principal = self.verifier.verify(token)
        if principal.subject not in self._known:
            self._remember(principal)
        return principal

    def login(self, username: str, password: str, client_address: str = "") -> str:
        """Relay a password sign-in to the provider and audit its outcome.

        Raises:
            Unauthenticated: the provider refused the username or password.
            DependencyUnavailable: the provider cannot be reached.
        """
        try:
            response = httpx.post(
                self._token_endpoint(),
                data={
                    "grant_type": "password",
                    "client_id": self.settings.oidc_client_id,
                    "username": username,
                    "password": password,
                    "scope": "openid",
                },
                timeout=10.0,
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                "The identity provider cannot be reached.", code="identity_unavailable"
            ) from exc
        if response.status_code in (400, 401):
            attempt = Principal("", "", frozenset(), client_address=client_address)
            record_sign_in(self.engine, attempt, is_refused=True)
            raise Unauthenticated(
                "The username or password is wrong.", code="bad_credentials"
            )
        if response.is_error:
            raise DependencyUnavailable(
                "The identity provider refused to answer.", code="identity_unavailable"
            )
        token: str = response.json()["access_token"]
        principal = self.verify(token)
        signed_in = Principal(
            principal.subject,
            principal.username,
            principal.roles,
            client_address=client_address,
        )
        record_sign_in(self.engine, signed_in, is_refused=False)
        return token

    def create_user(
        self, username: str, password: str, roles: set[str], actor: Principal
    ) -> User:
        raise FailedPrecondition(
            "Users are managed in the identity provider, not in Strongroom.",
            code="users_managed_externally",
        )

    def find_user(self, username: str) -> User:
        """Raises: NotFound: nobody with that username has signed in yet."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT subject, username, roles FROM known_users "
                    "WHERE username = :u ORDER BY seen_at DESC LIMIT 1"
                ),
                {"u": username},
            ).first()
        if row is None:
            raise NotFound(
                "No user with that username has signed in to Strongroom yet.",
                code="user_not_found",
            )
        return User(row.subject, row.username, frozenset(json.loads(row.roles)))

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT subject, username, roles FROM known_users ORDER BY username"
                )
            ).all()
        return [
            User(r.subject, r.username, frozenset(json.loads(r.roles))) for r in rows
        ]

    def discovery_document(self) -> dict[str, Any]:
        raise NotFound(
            "Tokens are issued by the external identity provider.",
            code="issuer_external",
        )

    def jwks(self) -> dict[str, Any]:
        return self.discovery_document()

    def _remember(self, principal: Principal) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO known_users (subject, username, roles, seen_at) "
                    "VALUES (:s, :u, :r, :at) ON CONFLICT (subject) DO UPDATE SET "
                    "username = excluded.username, roles = excluded.roles, "
                    "seen_at = excluded.seen_at"
                ),
                {
                    "s": principal.subject,
                    "u": principal.username,
                    "r": json.dumps(sorted(principal.roles)),
                    "at": utc_now(),
                },
            )
        self._known.add(principal.subject)

    def _token_endpoint(self) -> str:
        url = (
            f"{self.settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration"
        )
        try:
            response = httpx.get(url, timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                "The identity provider cannot be reached.", code="identity_unavailable"
            ) from exc
        endpoint: str = response.json()["token_endpoint"]
        return endpoint
