"""Signing in and out of the web page through the built-in issuer's login
page: the session cookie, its idle timeout, sign-out, and a denial across
projects that lands in the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from strongroom.services.common import totp
from tests.browser.helpers import (
    SIGN_IN_TIMEOUT_MS,
    add_member,
    make_project,
    make_user,
    open_login_page,
    sign_in,
    upload_texts,
)
from tests.e2e.harness import SESSION_COOKIE, Strongroom, isolated_env, wait_for

# Six seconds without a request ends a session on the brief platform: long
# enough for the sign-in's own requests on a busy machine, short to wait out.
BRIEF_IDLE_MINUTES = "0.1"


@pytest.fixture(scope="module")
def people(strongroom: Strongroom, admin: httpx.Client) -> dict:
    ours = make_project(admin, name="Ours", labels=["PERSON"])
    theirs = make_project(admin, name="Theirs", labels=["PERSON"])
    subject, password = make_user(admin, "si-annotator", "annotator")
    add_member(admin, ours["id"], "si-annotator", subject, "annotator")
    _auditor, auditor_password = make_user(admin, "si-auditor", "auditor")
    upload_texts(admin, theirs["id"], {"theirs.txt": "Seen by Dr. Ana Silva.\n"})
    tasks = admin.get(f"/api/v1/projects/{theirs['id']}/tasks").json()["tasks"]
    return {
        "password": password,
        "auditor": strongroom.client(strongroom.token("si-auditor", auditor_password)),
        "their_task": tasks[0]["id"],
    }


@pytest.fixture(scope="module")
def brief(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strongroom]:
    """A platform of its own whose sessions end after six idle seconds."""
    root = tmp_path_factory.mktemp("brief")
    env = isolated_env(
        root / "home", STRONGROOM_SESSION_IDLE_MINUTES=BRIEF_IDLE_MINUTES
    )
    instance = Strongroom(data_dir=root / "data", env=env)
    instance.start()
    wait_for(
        lambda: httpx.get(f"{instance.url}/readyz", timeout=10).status_code == 200,
        timeout=60,
        interval=0.2,
    )
    yield instance
    instance.stop()


def _session_cookie(page: Page) -> dict:
    (cookie,) = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    return dict(cookie)


def test_sign_in_through_the_built_in_login_page(
    strongroom: Strongroom, page: Page, people: dict, tmp_path: Path
) -> None:
    sign_in(page, strongroom, "si-annotator", people["password"])

    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.locator("#project-list")).to_contain_text("Ours")
    expect(page.locator("#project-list")).not_to_contain_text("Theirs")
    cookie = _session_cookie(page)
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    # Nothing the page's scripts can read holds a token or the session.
    stored = page.evaluate(
        "() => [document.cookie, JSON.stringify(sessionStorage),"
        " JSON.stringify(localStorage)]"
    )
    assert stored == ["", "{}", "{}"]
    page.screenshot(path=str(tmp_path / "signed-in.png"))


def test_a_wrong_password_gets_a_generic_error(
    strongroom: Strongroom, page: Page, people: dict
) -> None:
    messages = []
    for username in ("si-annotator", "nobody-here"):
        open_login_page(page, strongroom)
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        alert = page.get_by_role("alert")
        expect(alert).to_be_visible()
        messages.append(alert.inner_text())

    assert messages == ["The username or password is wrong."] * 2
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]


def test_an_idle_session_ends_and_the_page_asks_to_sign_in_again(
    brief: Strongroom, browser: Browser
) -> None:
    assert brief.admin_password
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, brief, "admin", brief.admin_password)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()

    page.wait_for_timeout(7000)
    page.get_by_role("button", name="Projects").click()

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("session has ended")
    expect(page.locator("#who")).to_be_empty()
    admin = brief.client(brief.token("admin", brief.admin_password))
    expired = wait_for(
        lambda: admin.get(
            "/api/v1/audit/events", params={"action": "auth.session.expire"}
        ).json()["events"]
    )
    assert expired[0]["reason"] == "idle_timeout"
    assert expired[0]["actor"]["username"] == "admin"
    sign_in(page, brief, "admin", brief.admin_password)  # and back in
    context.close()


def test_sign_out_ends_the_session(
    strongroom: Strongroom, page: Page, people: dict
) -> None:
    sign_in(page, strongroom, "si-annotator", people["password"])
    old = _session_cookie(page)["value"]
    cookie = {"cookie": f"{SESSION_COOKIE}={old}"}
    assert httpx.get(f"{strongroom.url}/api/v1/me", headers=cookie).status_code == 200

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    after = httpx.get(f"{strongroom.url}/api/v1/me", headers=cookie)
    assert after.status_code == 401
    assert after.json()["code"] == "session_missing"


def test_another_projects_task_is_denied_and_the_denial_audited(
    strongroom: Strongroom, page: Page, people: dict
) -> None:
    sign_in(page, strongroom, "si-annotator", people["password"])

    answer = page.goto(f"{strongroom.url}/api/v1/tasks/{people['their_task']}")

    assert answer is not None and answer.status in (403, 404)
    assert "Ana Silva" not in page.content()
    request_id = answer.headers["x-request-id"]
    denials = wait_for(
        lambda: (
            people["auditor"]
            .get("/api/v1/audit/events", params={"request_id": request_id})
            .json()["events"]
        )
    )
    assert [(e["action"], e["outcome"]) for e in denials] == [("rpc.GetTask", "denied")]
    assert denials[0]["actor"]["username"] == "si-annotator"


def test_an_account_with_a_second_factor_signs_in_with_its_code(
    strongroom: Strongroom, admin: httpx.Client, page: Page
) -> None:
    _subject, password = make_user(admin, "si-totp", "annotator")
    person = strongroom.client(strongroom.token("si-totp", password))
    secret = person.post("/api/v1/users/me/totp").json()["secret"]
    key = totp.decode_secret(secret)
    step = totp.time_step()
    confirmed = person.post(
        "/api/v1/users/me/totp/confirm", json={"code": totp.hotp(key, step)}
    )
    assert confirmed.status_code == 200, confirmed.text

    # Without the code the page asks for it, and lets no one in.
    open_login_page(page, strongroom)
    page.get_by_label("Username").fill("si-totp")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]

    # With the next step's code (a used code never counts twice) it does.
    page.get_by_label("Username").fill("si-totp")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("One-time code").fill(totp.hotp(key, step + 1))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{strongroom.url}/", timeout=SIGN_IN_TIMEOUT_MS)
    expect(page.locator("#who")).to_contain_text("si-totp")
