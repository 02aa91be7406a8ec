"""The gateway as an OIDC client of its provider, for the web page's sign-in.

One code path for both providers: the built-in issuer under /oidc and a
Keycloak realm. Endpoints come from the provider's discovery document; the
flow is the authorization code flow with PKCE (RFC 7636, S256), the ID token
is checked for issuer, audience (the client), expiry, signature and nonce,
and access tokens are renewed with the refresh_token grant.
"""

from __future__ import annotations

import ssl
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from strongroom.services.common.auth import OidcTokenVerifier, TokenSet
from strongroom.services.common.errors import DependencyUnavailable, Unauthenticated

_DISCOVERY_TTL_SECONDS = 300.0
_TIMEOUT_SECONDS = 10.0


class RelyingParty:
    """Sign-in against one provider for one public client and redirect URI."""

    def __init__(
        self, issuer: str, client_id: str, redirect_uri: str, ca_file: str = ""
    ) -> None:
        """``ca_file``, if given, is the CA bundle an https provider is checked
        against; otherwise the system's."""
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.id_tokens = OidcTokenVerifier(self.issuer, client_id, ca_file)
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file else True
        )
        self._lock = threading.Lock()
        self._discovery: dict[str, Any] = {}
        self._fetched_at = 0.0

    def authorization_url(self, state: str, nonce: str, code_challenge: str) -> str:
        """Where to send the browser to sign in.

        Raises:
            DependencyUnavailable: the provider's discovery document is out of reach.
        """
        query = urlencode(
            {
                "client_id": self.client_id,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": self.redirect_uri,
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self._endpoint('authorization_endpoint')}?{query}"

    def exchange_code(self, code: str, code_verifier: str) -> TokenSet:
        """Trade an authorization code for tokens.

        Raises:
            Unauthenticated: the provider refused the code (``sign_in_refused``).
            DependencyUnavailable: the provider cannot be reached.
        """
        return self._token_request(
            {
                "grant_type": "authorization_code",
                "client_id": self.client_id,
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": code_verifier,
            },
            refused=Unauthenticated(
                "The identity provider refused the sign-in.", code="sign_in_refused"
            ),
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        """A fresh access token while the provider's own session lasts.

        Raises:
            Unauthenticated: the provider ended the session (``session_expired``).
            DependencyUnavailable: the provider cannot be reached.
        """
        return self._token_request(
            {
                "grant_type": "refresh_token",
                "client_id": self.client_id,
                "refresh_token": refresh_token,
            },
            refused=Unauthenticated(
                "The session has ended; please sign in again.", code="session_expired"
            ),
        )

    def check_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature, issuer, audience, expiry
        and nonce are right.

        Raises:
            Unauthenticated: the ID token is not valid for this sign-in.
        """
        claims = self.id_tokens.verify_claims(id_token)
        if not nonce or claims.get("nonce") != nonce:
            raise Unauthenticated(
                "The identity provider's answer does not belong to this sign-in.",
                code="sign_in_refused",
            )
        return claims

    def end_session_url(self, id_token: str, post_logout_redirect_uri: str) -> str:
        """Where to send the browser to end the provider's own session; the
        post-logout address itself when the provider keeps none."""
        try:
            endpoint = str(self._discovery_document().get("end_session_endpoint", ""))
        except DependencyUnavailable:
            endpoint = ""
        if not endpoint:
            return post_logout_redirect_uri
        query = {
            "client_id": self.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
        }
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoint}?{urlencode(query)}"

    def _token_request(
        self, form: dict[str, str], refused: Unauthenticated
    ) -> TokenSet:
        endpoint = self._endpoint("token_endpoint")
        try:
            response = httpx.post(
                endpoint, data=form, timeout=_TIMEOUT_SECONDS, verify=self._verify
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                "The identity provider cannot be reached.", code="identity_unavailable"
            ) from exc
        if response.status_code in (400, 401):
            raise refused
        if response.is_error:
            raise DependencyUnavailable(
                "The identity provider refused to answer.", code="identity_unavailable"
            )
        body = response.json()
        return TokenSet(
            access_token=str(body["access_token"]),
            expires_in=int(body.get("expires_in", 300)),
            id_token=str(body.get("id_token", "")),
            refresh_token=str(body.get("refresh_token", "")),
        )

    def _endpoint(self, name: str) -> str:
        endpoint = str(self._discovery_document().get(name, ""))
        if not endpoint:
            raise DependencyUnavailable(
                "The identity provider does not offer the code flow.",
                code="identity_unavailable",
            )
        return endpoint

    def _discovery_document(self) -> dict[str, Any]:
        with self._lock:
            is_stale = time.monotonic() - self._fetched_at > _DISCOVERY_TTL_SECONDS
            if not self._discovery or is_stale:
                self._discovery = self._fetch_discovery()
                self._fetched_at = time.monotonic()
            return self._discovery

    def _fetch_discovery(self) -> dict[str, Any]:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=_TIMEOUT_SECONDS, verify=self._verify)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                "The identity provider cannot be reached.", code="identity_unavailable"
            ) from exc
        document: dict[str, Any] = response.json()
        return document
