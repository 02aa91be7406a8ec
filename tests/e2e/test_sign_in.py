"""The web page's sign-in over HTTP: the code flow with PKCE at the built-in
issuer, the session cookie, CSRF protection and the security headers."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import httpx
import pytest

from tests.e2e.harness import (
    SESSION_COOKIE,
    BrowserSession,
    Strongroom,
    set_cookies,
    wait_for,
)

CLIENT_ID = "strongroom"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _callback(strongroom: Strongroom) -> str:
    return f"{strongroom.url}/auth/callback"


def _code(strongroom: Strongroom, verifier: str, password: str) -> str:
    """An authorization code from the built-in login page, for ``verifier``."""
    answer = httpx.post(
        f"{strongroom.url}/oidc/authorize",
        data={
            "client_id": CLIENT_ID,
            "redirect_uri": _callback(strongroom),
            "response_type": "code",
            "scope": "openid",
            "state": "s",
            "nonce": "n",
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
            "username": "admin",
            "password": password,
        },
    )
    assert answer.status_code == 303, answer.text
    code: str = httpx.URL(answer.headers["location"]).params["code"]
    return code


def _redeem(strongroom: Strongroom, code: str, verifier: str, **form: str) -> Any:
    return httpx.post(
        f"{strongroom.url}/oidc/token",
        data={
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "redirect_uri": _callback(strongroom),
            "code": code,
            "code_verifier": verifier,
            **form,
        },
    )


@pytest.fixture(scope="module")
def password(strongroom: Strongroom) -> str:
    assert strongroom.admin_password
    return strongroom.admin_password


@pytest.fixture
def session(strongroom: Strongroom, password: str) -> BrowserSession:
    return strongroom.browser_session("admin", password)


def test_the_code_flow_sets_a_session_cookie_with_strict_attributes(
    strongroom: Strongroom, password: str
) -> None:
    with httpx.Client(base_url=strongroom.url) as plain:
        started = plain.get("/auth/login")
        location = httpx.URL(started.headers["location"])
        assert location.path == "/oidc/authorize"
        assert location.params["code_challenge_method"] == "S256"
        assert location.params["state"] and location.params["nonce"]
        assert "code_verifier" not in str(location)

    session = strongroom.browser_session("admin", password)
    me = session.client.get("/api/v1/me").json()

    assert me["username"] == "admin" and me["csrf_token"]
    login = httpx.post(
        f"{strongroom.url}/oidc/authorize",
        data={**dict(location.params), "username": "admin", "password": password},
    )
    back = httpx.get(login.headers["location"])  # no sign-in cookie: refused
    assert back.headers["location"] == "/?sign-in=failed"
    assert SESSION_COOKIE not in set_cookies(back)


def test_session_cookie_is_httponly_secure_lax_and_site_wide(
    strongroom: Strongroom, password: str
) -> None:
    with httpx.Client(base_url=strongroom.url) as plain:
        started = plain.get("/auth/login")
        sign_in = set_cookies(started)["strongroom_sign_in"]
        request = dict(httpx.URL(started.headers["location"]).params)
        login = plain.post(
            "/oidc/authorize",
            data={**request, "username": "admin", "password": password},
        )
        back = plain.get(
            login.headers["location"],
            headers={"cookie": f"strongroom_sign_in={sign_in}"},
        )

    (header,) = [
        h
        for h in back.headers.get_list("set-cookie")
        if h.startswith(f"{SESSION_COOKIE}=")
    ]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert {"httponly", "secure", "samesite", "path"} <= attributes
    assert "samesite=lax" in header.lower() and "path=/" in header.lower()
    value = set_cookies(back)[SESSION_COOKIE]
    assert len(value) >= 40  # a random secret, nothing else


def test_cookie_without_the_csrf_header_is_refused_and_audited(
    strongroom: Strongroom, session: BrowserSession, admin: httpx.Client
) -> None:
    body = {"name": "CSRF probe", "labels": ["PERSON"]}

    refused = session.client.post("/api/v1/projects", json=body)
    wrong = session.client.post(
        "/api/v1/projects", json=body, headers={"x-csrf-token": "x" * 43}
    )
    accepted = session.client.post("/api/v1/projects", json=body, headers=session.csrf)

    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "csrf_failed"
    assert wrong.json()["code"] == "csrf_failed"
    assert accepted.status_code == 201
    assert session.client.get("/api/v1/projects").status_code == 200
    events = wait_for(
        lambda: admin.get(
            "/api/v1/audit/events", params={"action": "auth.csrf"}
        ).json()["events"]
    )
    assert events[0]["outcome"] == "denied"
    assert events[0]["reason"] == "csrf_failed"
    assert events[0]["actor"]["username"] == "admin"


def test_bearer_requests_need_no_csrf_token(admin: httpx.Client) -> None:
    made = admin.post("/api/v1/projects", json={"name": "Bearer", "labels": ["X"]})

    assert made.status_code == 201
    assert admin.get("/api/v1/me").json()["csrf_token"] is None


def test_a_pkce_verifier_that_does_not_match_is_refused(
    strongroom: Strongroom, password: str
) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(strongroom, verifier, password)

    refused = _redeem(strongroom, code, secrets.token_urlsafe(48))

    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_grant"


def test_a_code_works_once(strongroom: Strongroom, password: str) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(strongroom, verifier, password)

    first = _redeem(strongroom, code, verifier)
    second = _redeem(strongroom, code, verifier)

    assert first.status_code == 200
    assert {"access_token", "id_token", "refresh_token"} <= set(first.json())
    assert second.status_code == 400
    assert second.json()["code"] == "invalid_grant"


def test_another_redirect_uri_is_refused(strongroom: Strongroom, password: str) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(strongroom, verifier, password)

    at_token = _redeem(
        strongroom, code, verifier, redirect_uri=f"{strongroom.url}/auth/callback/"
    )
    at_authorize = httpx.get(
        f"{strongroom.url}/oidc/authorize",
        params={
            "client_id": CLIENT_ID,
            "redirect_uri": "http://127.0.0.1:1/auth/callback",
            "response_type": "code",
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        },
    )

    assert at_token.status_code == 400
    assert at_token.json()["code"] == "invalid_grant"
    assert at_authorize.status_code == 400
    assert "redirect URI is not registered" in at_authorize.text


def test_a_challenge_is_required(strongroom: Strongroom) -> None:
    page = httpx.get(
        f"{strongroom.url}/oidc/authorize",
        params={
            "client_id": CLIENT_ID,
            "redirect_uri": _callback(strongroom),
            "response_type": "code",
        },
    )

    assert page.status_code == 400
    assert "PKCE" in page.text


def test_the_login_page_never_says_whether_a_username_exists(
    strongroom: Strongroom,
) -> None:
    request = {
        "client_id": CLIENT_ID,
        "redirect_uri": _callback(strongroom),
        "response_type": "code",
        "state": "s",
        "code_challenge": _challenge(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
    }
    url = f"{strongroom.url}/oidc/authorize"

    wrong_password = httpx.post(
        url, data={**request, "username": "admin", "password": "x"}
    )
    no_such_user = httpx.post(
        url, data={**request, "username": "nobody", "password": "x"}
    )

    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.text == no_such_user.text
    assert "The username or password is wrong." in wrong_password.text
    assert "<script" not in wrong_password.text and "style=" not in wrong_password.text


def test_refresh_grant_gives_a_fresh_access_token(
    strongroom: Strongroom, password: str
) -> None:
    verifier = secrets.token_urlsafe(48)
    tokens = _redeem(strongroom, _code(strongroom, verifier, password), verifier).json()

    renewed = httpx.post(
        f"{strongroom.url}/oidc/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    as_access = httpx.get(
        f"{strongroom.url}/api/v1/me",
        headers={"authorization": f"Bearer {tokens['refresh_token']}"},
    )

    assert renewed.status_code == 200
    me = httpx.get(
        f"{strongroom.url}/api/v1/me",
        headers={"authorization": f"Bearer {renewed.json()['access_token']}"},
    )
    assert me.json()["username"] == "admin"
    assert as_access.status_code == 401  # a refresh token is no access token


def test_sign_out_ends_the_session_and_is_audited(
    session: BrowserSession, admin: httpx.Client
) -> None:
    without_csrf = session.client.post("/auth/logout")
    signed_out = session.client.post("/auth/logout", headers=session.csrf)
    after = session.client.get("/api/v1/me")

    assert without_csrf.status_code == 403
    assert signed_out.status_code == 200
    assert signed_out.json()["redirect"].endswith("/")
    assert after.status_code == 401
    events = wait_for(
        lambda: admin.get(
            "/api/v1/audit/events",
            params={"action": "auth.session.end", "username": "admin"},
        ).json()["events"]
    )
    assert events[0]["reason"] == "sign_out"


def test_every_answer_carries_the_security_headers(
    strongroom: Strongroom, session: BrowserSession
) -> None:
    answers = {
        "page": httpx.get(strongroom.url),
        "api": session.client.get("/api/v1/me"),
        "refusal": httpx.get(f"{strongroom.url}/api/v1/projects"),
        "auth": httpx.get(f"{strongroom.url}/auth/login"),
        "static": httpx.get(f"{strongroom.url}/static/app.js"),
    }

    for name, answer in answers.items():
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, name
        assert "'unsafe-inline'" not in policy, name
        assert "script-src 'self'" in policy, name
        assert answer.headers["referrer-policy"] == "no-referrer", name
        assert answer.headers["x-content-type-options"] == "nosniff", name
    for name in ("api", "refusal", "auth"):
        assert answers[name].headers["cache-control"] == "no-store", name


def test_a_forged_or_stale_cookie_opens_nothing(strongroom: Strongroom) -> None:
    for value in ("", "forged", "x" * 43, "é"):
        answer = httpx.get(
            f"{strongroom.url}/api/v1/me",
            headers={"cookie": f"{SESSION_COOKIE}={value}".encode()},
        )

        assert answer.status_code == 401, value
        assert answer.json()["code"] in ("session_missing", "token_missing"), value
