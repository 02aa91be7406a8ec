"""The built-in issuer's authorization endpoint and its login page.

Rendered on the server as plain HTML with the page's own stylesheet and no
script, so the content security policy needs no exception. A refused
password gets the same words whether or not the username exists.
"""

from __future__ import annotations

from html import escape
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from strongroom.services.common.adapters.local_oidc import (
    AuthorizationRequest,
    LocalOidcIssuer,
)
from strongroom.services.common.errors import InvalidArgument, Unauthenticated

# The authorization request's own parameters, carried through the form.
_CARRIED = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)
_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign in - Strongroom</title>
  <link rel="stylesheet" href="/static/app.css">
</head>
<body>
  <header><h1>Strongroom</h1></header>
  <main>
    <section aria-labelledby="sign-in-title">
      <h2 id="sign-in-title">Sign in</h2>
      {body}
    </section>
  </main>
</body>
</html>
"""
_FORM = """{error}<form id="login-form" method="post" action="{action}">
        {hidden}
        <label>Username <input name="username" autocomplete="username" required
          autofocus maxlength="256"></label>
        <label>Password <input name="password" type="password"
          autocomplete="current-password" required maxlength="1024"></label>
        <label>One-time code, if you use one <input name="totp"
          autocomplete="one-time-code" inputmode="numeric" maxlength="16"></label>
        <button type="submit">Sign in</button>
      </form>"""


def login_page_router(issuer: LocalOidcIssuer) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    action = "/oidc/authorize"

    @router.get("/oidc/authorize")
    def authorize_page(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            issuer.check_authorization_request(params)
        except InvalidArgument as exc:
            return _refusal(exc)
        return _login_form(action, params, error="")

    @router.post("/oidc/authorize")
    def authorize(
        request: Request,
        username: Annotated[str, Form(max_length=256)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        totp: Annotated[str, Form(max_length=16)] = "",
        client_id: Annotated[str, Form(max_length=256)] = "",
        redirect_uri: Annotated[str, Form(max_length=2048)] = "",
        response_type: Annotated[str, Form(max_length=64)] = "",
        scope: Annotated[str, Form(max_length=256)] = "",
        state: Annotated[str, Form(max_length=512)] = "",
        nonce: Annotated[str, Form(max_length=512)] = "",
        code_challenge: Annotated[str, Form(max_length=256)] = "",
        code_challenge_method: Annotated[str, Form(max_length=16)] = "",
    ) -> Response:
        params = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": response_type,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": code_challenge_method,
        }
        try:
            accepted = issuer.check_authorization_request(params)
        except InvalidArgument as exc:
            return _refusal(exc)
        address = request.client.host if request.client else ""
        try:
            user = issuer.authenticate(username, password, address, totp=totp)
        except Unauthenticated as exc:
            return _login_form(action, params, error=exc.message, status=401)
        code = issuer.create_authorization_code(user, accepted)
        return RedirectResponse(_redirect_with_code(accepted, code), status_code=303)

    return router


def _redirect_with_code(accepted: AuthorizationRequest, code: str) -> str:
    query = urlencode({"code": code, "state": accepted.state})
    separator = "&" if "?" in accepted.redirect_uri else "?"
    return f"{accepted.redirect_uri}{separator}{query}"


def _login_form(
    action: str, params: dict[str, str], error: str, status: int = 200
) -> HTMLResponse:
    hidden = "\n        ".join(
        f'<input type="hidden" name="{name}" value="{escape(params.get(name, ""))}">'
        for name in _CARRIED
    )
    shown = (
        f'<p class="error" role="alert">{escape(error)}</p>\n      ' if error else ""
    )
    body = _FORM.format(error=shown, action=action, hidden=hidden)
    return HTMLResponse(_PAGE.format(body=body), status_code=status)


def _refusal(exc: InvalidArgument) -> HTMLResponse:
    # Never redirected: the redirect URI itself may be what is wrong
    # (RFC 6749 4.1.2.1).
    body = f'<p class="error" role="alert">{escape(exc.message)}</p>'
    return HTMLResponse(_PAGE.format(body=body), status_code=400)
