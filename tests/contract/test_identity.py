"""The IdentityProvider contract, run against the built-in issuer and Keycloak.

Both kinds are checked the way services check them in a cluster: an
``OidcTokenVerifier`` that knows only the issuer URL and the audience, and
finds the keys through the discovery document and the JWKS over HTTP.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI

from strongroom.services.common.adapters.local_oidc import LocalOidcIssuer, User
from strongroom.services.common.auth import (
    ADMIN,
    ANNOTATOR,
    AUDITOR,
    ROLES,
    OidcTokenVerifier,
    Principal,
)
from strongroom.services.common.database import create_database_engine
from strongroom.services.common.errors import DependencyUnavailable, Unauthenticated
from strongroom.services.common.ports import IdentityProvider
from tests.backends.base import free_port
from tests.backends.keycloak import KeycloakServer

IDENTITY_KINDS = ["local", "keycloak"]
AUDIENCE = "strongroom"
# The realm file's test users, with the Strongroom roles each one holds.
USER_ROLES = {"admin": {ADMIN}, "ann": {ANNOTATOR}, "aud": {AUDITOR}}
SERVICE_CLIENTS = [
    f"strongroom-{name}"
    for name in ("ingestion", "redaction", "tasks", "labeling", "export", "audit")
]
# PyJWKClient's refetch cooldown for unknown key ids, plus a margin.
JWKS_REFETCH_WAIT = 45.0

# The first Keycloak test also fetches, unpacks and first-starts Keycloak.
pytestmark = pytest.mark.timeout(900)


class IdentityKind(Protocol):
    """What each kind of issuer hands the contract tests."""

    issuer: str

    def user_token(self, username: str) -> str: ...

    def subject_of(self, username: str) -> str: ...

    def foreign_token(self) -> str:
        """A well-formed token from another issuer, signed with its own key."""

    def wrong_issuer_token(self) -> str:
        """A token signed with this issuer's key that names another ``iss``."""

    def other_audience_token(self) -> str:
        """A token from this issuer meant for another client."""

    def expired_token(self) -> str: ...


class LocalKind:
    """A LocalOidcIssuer served over real HTTP on a loopback port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/oidc"
        self.directory = directory
        self.engine = create_database_engine(f"sqlite:///{directory / 'id.db'}")
        self.local = self._issuer_with(self.issuer, AUDIENCE, 300)
        self.users: dict[str, User] = {
            username: self.local.create_user(
                username, f"dev-only-{username}-password", roles
            )
            for username, roles in USER_ROLES.items()
        }

    def user_token(self, username: str) -> str:
        return self.local.issue_token(self.users[username])

    def subject_of(self, username: str) -> str:
        return self.users[username].subject

    def foreign_token(self) -> str:
        other_directory = self.directory / "other-issuer"
        other = LocalOidcIssuer(
            other_directory,
            create_database_engine(f"sqlite:///{self.directory / 'other.db'}"),
            f"http://127.0.0.1:{free_port()}/oidc",
            AUDIENCE,
            300,
        )
        return other.issue_token(self.users["admin"])

    def wrong_issuer_token(self) -> str:
        # Same key file, so the same kid and a valid signature.
        elsewhere = self._issuer_with(f"http://127.0.0.1:{self.port}/other", AUDIENCE)
        return elsewhere.issue_token(self.users["admin"])

    def other_audience_token(self) -> str:
        return self._issuer_with(self.issuer, "another-app").issue_token(
            self.users["admin"]
        )

    def expired_token(self) -> str:
        return self._issuer_with(self.issuer, AUDIENCE, -60).issue_token(
            self.users["admin"]
        )

    def _issuer_with(
        self, issuer: str, audience: str, lifetime: int = 300
    ) -> LocalOidcIssuer:
        return LocalOidcIssuer(self.directory, self.engine, issuer, audience, lifetime)


class KeycloakKind:
    """The Keycloak test server's ``strongroom`` realm."""

    def __init__(self, server: KeycloakServer) -> None:
        self.server = server
        self.issuer = server.issuer

    def user_token(self, username: str) -> str:
        return self.server.token(username, self.server.passwords[username])

    def subject_of(self, username: str) -> str:
        return self.server.user_id(username)

    def foreign_token(self) -> str:
        # The master realm signs with keys of its own.
        return self.server.admin_token()

    def wrong_issuer_token(self) -> str:
        return self.server.token_naming_another_issuer("admin")

    def other_audience_token(self) -> str:
        return self.server.token_for_another_audience("admin")

    def expired_token(self) -> str:
        return self.server.expired_token()


@pytest.fixture(scope="module")
def local_kind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKind]:
    kind = LocalKind(tmp_path_factory.mktemp("local-oidc"))
    app = FastAPI()
    app.add_api_route(
        "/oidc/.well-known/openid-configuration", kind.local.discovery_document
    )
    app.add_api_route("/oidc/jwks", kind.local.jwks)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=kind.port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("The local OIDC issuer's HTTP server did not start.")
        time.sleep(0.05)
    yield kind
    server.should_exit = True
    thread.join(10)


@pytest.fixture(params=IDENTITY_KINDS)
def kind(request: pytest.FixtureRequest) -> IdentityKind:
    if request.param == "local":
        local: LocalKind = request.getfixturevalue("local_kind")
        return local
    return KeycloakKind(request.getfixturevalue("keycloak_server"))


@pytest.fixture
def verifier(kind: IdentityKind) -> IdentityProvider:
    return OidcTokenVerifier(kind.issuer, AUDIENCE)


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _refused_code(verifier: IdentityProvider, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    return caught.value.code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("username", sorted(USER_ROLES))
def test_user_token_gives_subject_username_and_roles(
    kind: IdentityKind, verifier: IdentityProvider, username: str
) -> None:
    token = kind.user_token(username)

    principal = verifier.verify(token)

    assert principal.subject == kind.subject_of(username)
    assert principal.username == username
    assert principal.roles == USER_ROLES[username]
    assert principal.token == token


def test_keycloak_roles_outside_strongroom_are_dropped(
    keycloak_server: KeycloakServer,
) -> None:
    token = KeycloakKind(keycloak_server).user_token("ann")

    principal = OidcTokenVerifier(keycloak_server.issuer, AUDIENCE).verify(token)

    raw_roles = set(_claims(token)["realm_access"]["roles"])
    assert raw_roles - ROLES, "Keycloak adds its default roles to every user"
    assert principal.roles == {ANNOTATOR}


def test_missing_token_is_refused(verifier: IdentityProvider) -> None:
    assert _refused_code(verifier, "") == "token_missing"


def test_tampered_signature_is_refused(
    kind: IdentityKind, verifier: IdentityProvider
) -> None:
    header, payload, signature = kind.user_token("ann").split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01

    forged = f"{header}.{payload}.{_b64(bytes(raw))}"

    assert _refused_code(verifier, forged) == "token_invalid"


def test_tampered_claims_are_refused(
    kind: IdentityKind, verifier: IdentityProvider
) -> None:
    genuine = kind.user_token("ann")
    header, _payload, signature = genuine.split(".")
    claims = {**_claims(genuine), "realm_access": {"roles": [ADMIN]}}

    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"

    assert _refused_code(verifier, forged) == "token_invalid"


def test_unsigned_token_is_refused(
    kind: IdentityKind, verifier: IdentityProvider
) -> None:
    genuine = kind.user_token("ann")
    header = {
        "alg": "none",
        "typ": "JWT",
        "kid": jwt.get_unverified_header(genuine)["kid"],
    }
    claims = {**_claims(genuine), "realm_access": {"roles": [ADMIN]}}

    forged = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."

    assert _refused_code(verifier, forged) == "token_invalid"


def test_token_from_another_issuer_is_refused(
    kind: IdentityKind, verifier: IdentityProvider
) -> None:
    assert _refused_code(verifier, kind.foreign_token()) == "token_invalid"


def test_token_naming_another_issuer_is_refused(
    kind: IdentityKind, verifier: IdentityProvider
) -> None:
    token = kind.wrong_issuer_token()

    assert _claims(token)["iss"] != kind.issuer
    assert _refused_code(verifier, token) == "token_invalid"


def test_token_for_another_audience_is_refused(
    kind: IdentityKind, verifier: IdentityProvider
) -> None:
    token = kind.other_audience_token()

    audience = _claims(token).get("aud", [])
    assert AUDIENCE not in ([audience] if isinstance(audience, str) else audience)
    assert _refused_code(verifier, token) == "token_invalid"


def test_expired_token_is_refused(
    kind: IdentityKind, verifier: IdentityProvider
) -> None:
    assert _refused_code(verifier, kind.expired_token()) == "token_expired"


def test_unreachable_issuer_is_a_dependency_failure() -> None:
    verifier = OidcTokenVerifier(f"http://127.0.0.1:{free_port()}/oidc", AUDIENCE)

    with pytest.raises(DependencyUnavailable) as caught:
        verifier.verify("any.bearer.token")

    assert caught.value.code == "identity_unavailable"


def test_keycloak_key_rotation_keeps_old_and_new_tokens_valid(
    keycloak_server: KeycloakServer,
) -> None:
    kind = KeycloakKind(keycloak_server)
    verifier = OidcTokenVerifier(keycloak_server.issuer, AUDIENCE)
    old_token = kind.user_token("ann")
    verifier.verify(old_token)

    _add_rsa_key_provider(keycloak_server)
    new_token = kind.user_token("ann")

    old_kid = jwt.get_unverified_header(old_token)["kid"]
    assert jwt.get_unverified_header(new_token)["kid"] != old_kid
    assert _verify_within(verifier, new_token, JWKS_REFETCH_WAIT).username == "ann"
    assert verifier.verify(old_token).username == "ann"


def _verify_within(verifier: IdentityProvider, token: str, seconds: float) -> Principal:
    # PyJWKClient refetches the JWKS for an unknown kid at most once per
    # cooldown (30 s after its last fetch), so a key that signs from the moment
    # it is added is refused until then.
    deadline = time.monotonic() + seconds
    while True:
        try:
            return verifier.verify(token)
        except Unauthenticated:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _add_rsa_key_provider(server: KeycloakServer) -> None:
    realm = server.admin("GET", server.realm).json()
    keys = server.admin("GET", f"{server.realm}/keys").json()["keys"]
    top_priority = max(int(key.get("providerPriority", 0)) for key in keys)
    server.admin(
        "POST",
        f"{server.realm}/components",
        {
            "name": f"rsa-rotated-{top_priority + 100}",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"],
            "config": {
                "priority": [str(top_priority + 100)],
                "keySize": ["2048"],
                "algorithm": ["RS256"],
                "active": ["true"],
                "enabled": ["true"],
            },
        },
    )


@pytest.mark.parametrize("client_id", SERVICE_CLIENTS)
def test_keycloak_service_account_token_verifies(
    keycloak_server: KeycloakServer, client_id: str
) -> None:
    token = keycloak_server.service_token(client_id)

    principal = OidcTokenVerifier(keycloak_server.issuer, AUDIENCE).verify(token)

    assert principal.username == f"service-account-{client_id}"
    assert "service" in _claims(token)["realm_access"]["roles"]
    # Principal keeps Strongroom's user roles only, so "service" is not in it.
    assert principal.roles == frozenset()


def test_keycloak_public_client_requires_pkce_s256(
    keycloak_server: KeycloakServer,
) -> None:
    authorize = f"{keycloak_server.issuer}/protocol/openid-connect/auth"
    request = {
        "client_id": "strongroom",
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": "http://127.0.0.1:8470/callback",
    }

    without_pkce = httpx.get(authorize, params=request, timeout=30.0)
    with_pkce = httpx.get(
        authorize,
        params={
            **request,
            "code_challenge": _b64(b"s" * 32),
            "code_challenge_method": "S256",
        },
        timeout=30.0,
    )

    assert without_pkce.status_code == 302
    assert "error=invalid_request" in without_pkce.headers["location"]
    assert with_pkce.status_code == 200
    assert 'id="kc-form-login"' in with_pkce.text
