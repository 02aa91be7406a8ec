"""The web page's sign-in: /auth/login, /auth/callback, /auth/logout, and the
cookie that stands for a session afterwards.

The same code serves the built-in issuer and Keycloak; only the provider's
discovery document differs. Requests that carry the session cookie instead
of a bearer token must send the session's CSRF token in ``X-CSRF-Token``
with every state-changing method; the page reads it from ``/api/v1/me``.
"""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from strongroom.gateway.identity import GatewayIdentity
from strongroom.gateway.oidc_client import RelyingParty
from strongroom.gateway.sessions import (
    SIGN_IN_LIFETIME_SECONDS,
    Session,
    SessionStore,
    record_sign_in_refusal,
)
from strongroom.services.common.adapters.local_oidc import pkce_challenge
from strongroom.services.common.audit_trail import DENIED, stage_audit
from strongroom.services.common.auth import Principal
from strongroom.services.common.config import Settings
from strongroom.services.common.errors import PermissionDenied, Unauthenticated

SESSION_COOKIE = "strongroom_session"
SIGN_IN_COOKIE = "strongroom_sign_in"
CSRF_HEADER = "x-csrf-token"
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Access tokens are renewed this long before they expire, so a request never
# reaches a service with a token about to lapse on the way.
_RENEW_MARGIN_SECONDS = 60.0
# OAuth error codes (RFC 6749 4.1.2.1) are short lowercase words; anything
# else a provider sends back is not recorded.
_OAUTH_ERROR = re.compile(r"[a-z_]{1,64}")


class BrowserSignIn:
    """Signs people in through the provider and keeps their sessions."""

    def __init__(
        self, settings: Settings, identity: GatewayIdentity, sessions: SessionStore
    ) -> None:
        self.identity = identity
        self.sessions = sessions
        self.web_url = settings.web_url()
        self.party = RelyingParty(
            settings.oidc_issuer,
            settings.oidc_client_id,
            f"{self.web_url}/auth/callback",
            settings.tls_ca_file,
        )
        self.cookie_max_age = int(sessions.absolute_seconds)

    def has_session_cookie(self, request: Request) -> bool:
        return bool(request.cookies.get(SESSION_COOKIE))

    def principal(self, request: Request, client_address: str) -> Principal:
        """Who the session cookie stands for, with a live access token.

        Raises:
            Unauthenticated: the session is unknown, or it has ended.
            PermissionDenied: a state-changing request without the session's
                CSRF token (``csrf_failed``, audited).
        """
        secret = request.cookies.get(SESSION_COOKIE, "")
        session = self.sessions.resolve(secret)
        if session.access_expires_at - time.time() < _RENEW_MARGIN_SECONDS:
            session = self._renew(secret, session, client_address)
        verified = self.identity.verify(session.tokens.access_token)
        caller = Principal(
            verified.subject,
            verified.username,
            verified.roles,
            verified.token,
            client_address,
            verified.display_name,
        )
        if request.method in STATE_CHANGING_METHODS:
            self._check_csrf(request, secret, session, caller)
        return caller

    def csrf_token(self, request: Request) -> str | None:
        secret = request.cookies.get(SESSION_COOKIE, "")
        return self.sessions.csrf_token(secret) if secret else None

    def router(self) -> APIRouter:
        router = APIRouter(tags=["sign-in"], include_in_schema=False)
        router.add_api_route("/auth/login", self.login, methods=["GET"])
        router.add_api_route("/auth/callback", self.callback, methods=["GET"])
        router.add_api_route("/auth/logout", self.logout, methods=["POST"])
        return router

    # --- routes ----------------------------------------------------------

    def login(self) -> Response:
        """Send the browser to the provider, keeping state, nonce and verifier."""
        pending = self.sessions.begin_sign_in()
        url = self.party.authorization_url(
            pending.state, pending.nonce, pkce_challenge(pending.code_verifier)
        )
        response = RedirectResponse(url, status_code=303)
        self._set_cookie(
            response,
            SIGN_IN_COOKIE,
            pending.browser_secret,
            "/auth",
            SIGN_IN_LIFETIME_SECONDS,
        )
        return response

    def callback(
        self, request: Request, code: str = "", state: str = "", error: str = ""
    ) -> Response:
        """Take the provider's answer, check it and open a session."""
        address = request.client.host if request.client else ""
        anonymous = Principal("", "", frozenset(), client_address=address)
        if error or not code:
            reason = error if _OAUTH_ERROR.fullmatch(error) else "sign_in_refused"
            record_sign_in_refusal(self.identity.engine, anonymous, reason)
            return self._back_to_page("failed")
        try:
            pending = self.sessions.finish_sign_in(
                state[:512], request.cookies.get(SIGN_IN_COOKIE, "")
            )
            tokens = self.party.exchange_code(code[:2048], pending.code_verifier)
            claims = self.party.check_id_token(tokens.id_token, pending.nonce)
            verified = self.identity.verify(tokens.access_token)
            if claims.get("sub") != verified.subject:
                raise Unauthenticated(
                    "The ID token and the access token name different people.",
                    code="sign_in_refused",
                )
        except Unauthenticated as exc:
            record_sign_in_refusal(self.identity.engine, anonymous, exc.code)
            return self._back_to_page("failed")
        person = Principal(
            verified.subject,
            verified.username,
            verified.roles,
            client_address=address,
            display_name=verified.display_name,
        )
        secret, _session = self.sessions.create(person, tokens)
        response = self._back_to_page("")
        self._set_cookie(response, SESSION_COOKIE, secret, "/", self.cookie_max_age)
        response.delete_cookie(SIGN_IN_COOKIE, path="/auth")
        return response

    def logout(self, request: Request) -> Response:
        """End the session here and at the provider; say where to go next.

        Answers JSON with the provider's end-session address, which the page
        opens: a form's redirect to another origin would break the page's
        ``form-action 'self'``.
        """
        address = request.client.host if request.client else ""
        secret = request.cookies.get(SESSION_COOKIE, "")
        next_url = f"{self.web_url}/"
        session = self._session_or_none(secret)
        if session is not None:
            actor = Principal(
                session.subject, session.username, frozenset(), client_address=address
            )
            self._check_csrf(request, secret, session, actor)
            self.sessions.end(session, actor, reason="sign_out")
            next_url = self.party.end_session_url(session.tokens.id_token, next_url)
        response = JSONResponse({"redirect": next_url})
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
        return response

    # --- steps -----------------------------------------------------------

    def _renew(self, secret: str, session: Session, address: str) -> Session:
        actor = Principal(
            session.subject, session.username, frozenset(), client_address=address
        )
        if not session.tokens.refresh_token:
            self.sessions.end(session, actor, reason="token_expired")
            raise Unauthenticated(
                "The session has ended; please sign in again.", code="session_expired"
            )
        try:
            tokens = self.party.refresh(session.tokens.refresh_token)
        except Unauthenticated:
            self.sessions.end(session, actor, reason="provider_session_ended")
            raise
        return self.sessions.renew(secret, session, tokens)

    def _check_csrf(
        self, request: Request, secret: str, session: Session, caller: Principal
    ) -> None:
        if self.sessions.is_csrf_token(secret, request.headers.get(CSRF_HEADER, "")):
            return
        with self.identity.engine.begin() as conn:
            stage_audit(
                conn,
                service="gateway",
                action="auth.csrf",
                actor=caller,
                resource_type="session",
                resource_id=session.id,
                outcome=DENIED,
                reason="csrf_failed",
                details={"method": request.method, "path": request.url.path[:256]},
            )
        raise PermissionDenied(
            "A request from the web page must carry its CSRF token.",
            code="csrf_failed",
        )

    def _session_or_none(self, secret: str) -> Session | None:
        if not secret:
            return None
        try:
            return self.sessions.resolve(secret)
        except Unauthenticated:
            return None

    def _back_to_page(self, sign_in: str) -> RedirectResponse:
        target = f"/?sign-in={sign_in}" if sign_in else "/"
        return RedirectResponse(target, status_code=303)

    def _set_cookie(
        self, response: Response, name: str, value: str, path: str, max_age: int
    ) -> None:
        # Secure even on http://127.0.0.1: browsers treat loopback as a secure
        # context and keep Secure cookies there (docs/access-control.md).
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            secure=True,
            httponly=True,
            samesite="lax",
        )
