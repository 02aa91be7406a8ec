"""Who is calling: principals, roles and OIDC token verification.

Tokens are checked the generic OIDC way (discovery document, then JWKS), so
the same verifier serves Strongroom's built-in issuer and Keycloak.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from strongroom.services.common.errors import (
    DependencyUnavailable,
    PermissionDenied,
    Unauthenticated,
)

ADMIN = "admin"
MANAGER = "manager"
ANNOTATOR = "annotator"
REVIEWER = "reviewer"
AUDITOR = "auditor"
# Reads the originals behind a project's redaction surrogates; nothing else.
REIDENTIFIER = "reidentifier"
# Opens uploaded original files, with a stated reason; nothing else. Admins
# do not hold it unless it is granted to them too.
ORIGINAL_READER = "original_reader"
# In the order people meet them, for choices shown to them.
ROLE_ORDER = (
    ADMIN,
    MANAGER,
    ANNOTATOR,
    REVIEWER,
    AUDITOR,
    REIDENTIFIER,
    ORIGINAL_READER,
)
ROLES = frozenset(ROLE_ORDER)

_DISCOVERY_TTL_SECONDS = 300


@dataclass(frozen=True)
class Principal:
    subject: str
    username: str
    roles: frozenset[str]
    # The raw bearer token, forwarded on calls made on the caller's behalf.
    token: str = ""
    client_address: str = ""
    display_name: str = ""

    def has_any_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


def require_role(principal: Principal, *roles: str) -> None:
    """Refuse the call unless the principal holds one of ``roles``.

    Raises:
        PermissionDenied: the principal holds none of them.
    """
    if not principal.has_any_role(*roles):
        raise PermissionDenied(
            f"This action needs one of the roles {', '.join(sorted(roles))}.",
            code="role_required",
        )


def manages(principal: Principal, members: Iterable[tuple[str, str]]) -> bool:
    """Whether the caller administers, or is a manager among ``members``
    (subject, role) of a project."""
    return ADMIN in principal.roles or any(
        subject == principal.subject and role == MANAGER for subject, role in members
    )


def principal_from_claims(claims: dict[str, Any], token: str) -> Principal:
    realm_access = claims.get("realm_access") or {}
    roles = frozenset(r for r in realm_access.get("roles", []) if r in ROLES)
    return Principal(
        subject=str(claims["sub"]),
        username=str(claims.get("preferred_username", "")),
        roles=roles,
        token=token,
        display_name=str(claims.get("name", "")),
    )


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint answers: the access token and what comes with it."""

    access_token: str
    expires_in: int
    id_token: str = ""
    refresh_token: str = ""


def decode_token(token: str, key: Any, issuer: str, audience: str) -> Principal:
    """Check a JWT's signature, issuer, audience and expiry; return its principal.

    Raises:
        Unauthenticated: the token has expired or is not valid.
    """
    return principal_from_claims(decode_claims(token, key, issuer, audience), token)


def decode_claims(token: str, key: Any, issuer: str, audience: str) -> dict[str, Any]:
    """Check a JWT's signature, issuer, audience and expiry; return its claims.

    Raises:
        Unauthenticated: the token has expired or is not valid.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256", "ES256", "EdDSA"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated(
            "The bearer token has expired.", code="token_expired"
        ) from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated(
            "The bearer token is not valid.", code="token_invalid"
        ) from exc
    return claims


class OidcTokenVerifier:
    """Verifies JWTs against an issuer's discovery document and JWKS."""

    def __init__(self, issuer: str, audience: str, ca_file: str = "") -> None:
        """``ca_file``, if given, is the CA bundle an https issuer is checked
        against; otherwise the system's."""
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._ssl = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._lock = threading.Lock()
        self._jwks_client: jwt.PyJWKClient | None = None
        self._fetched_at = 0.0

    def verify(self, token: str) -> Principal:
        return principal_from_claims(self.verify_claims(token), token)

    def verify_claims(self, token: str) -> dict[str, Any]:
        """Check a token against the issuer's keys; return its claims.

        Raises:
            Unauthenticated: the token is missing, expired or not valid.
            DependencyUnavailable: the issuer's keys cannot be fetched.
        """
        if not token:
            raise Unauthenticated("A bearer token is required.", code="token_missing")
        try:
            signing_key = self._client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise DependencyUnavailable(
                "The identity provider's keys could not be fetched.",
                code="identity_unavailable",
            ) from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(
                "The bearer token is not valid.", code="token_invalid"
            ) from exc
        return decode_claims(token, signing_key.key, self.issuer, self.audience)

    def _client(self) -> jwt.PyJWKClient:
        with self._lock:
            is_stale = time.monotonic() - self._fetched_at > _DISCOVERY_TTL_SECONDS
            if self._jwks_client is None or is_stale:
                self._jwks_client = jwt.PyJWKClient(
                    self._jwks_uri(), lifespan=60, ssl_context=self._ssl
                )
                self._fetched_at = time.monotonic()
            return self._jwks_client

    def _jwks_uri(self) -> str:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=5.0, verify=self._ssl or True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                "The identity provider's discovery document could not be fetched.",
                code="identity_unavailable",
            ) from exc
        jwks_uri: str = response.json()["jwks_uri"]
        return jwks_uri
