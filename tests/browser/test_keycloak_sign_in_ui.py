"""Signing in to the web page through Keycloak in cluster mode, and out again.

One platform on the real backends (Kafka, PostgreSQL, S3, OpenSearch and
Keycloak, started by tests/backends); the browser meets Keycloak's own login
page, and sign-out ends the Keycloak session as well as the gateway's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.backends.keycloak import KeycloakServer
from tests.e2e.cluster import ADMIN, ANNOTATOR, Cluster, start_cluster
from tests.e2e.harness import SESSION_COOKIE, wait_for


@pytest.fixture(scope="module", autouse=True)
def ready() -> None:
    """Replaces the embedded platform's readiness wait: none runs here."""


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server,
    kafka_server,
    s3_server,
    opensearch_server,
    keycloak_server,
) -> Iterator[Cluster]:
    started = start_cluster(
        tmp_path_factory.mktemp("keycloak-sign-in"),
        postgres=postgres_server,
        kafka=kafka_server,
        s3=s3_server,
        opensearch=opensearch_server,
        keycloak=keycloak_server,
    )
    try:
        yield started
    finally:
        started.strongroom.stop()


def _keycloak_login(page: Page, keycloak: KeycloakServer, who: tuple[str, str]) -> None:
    page.wait_for_url(f"{keycloak.base_url}/**")
    expect(page.locator("#kc-form-login")).to_be_visible()
    page.locator("#username").fill(who[0])
    page.locator("#password").fill(who[1])
    page.locator("#kc-login").click()


def test_sign_in_through_keycloak_and_sign_out_at_keycloak_too(
    cluster: Cluster, keycloak_server: KeycloakServer, page: Page, tmp_path: Path
) -> None:
    strongroom = cluster.strongroom
    page.goto(strongroom.url)
    page.get_by_role("button", name="Sign in").click()
    _keycloak_login(page, keycloak_server, ANNOTATOR)

    expect(page.locator("#who")).to_contain_text("ann (annotator)")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.screenshot(path=str(tmp_path / "keycloak-signed-in.png"))
    (cookie,) = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    as_page = httpx.Client(
        base_url=strongroom.url,
        headers={"cookie": f"{SESSION_COOKIE}={cookie['value']}"},
    )
    assert as_page.get("/api/v1/me").json()["username"] == "ann"
    refused = as_page.post("/api/v1/projects", json={"name": "x", "labels": ["X"]})
    assert refused.json()["code"] == "csrf_failed"

    page.get_by_role("button", name="Sign out").click()

    page.wait_for_url(f"{strongroom.url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert as_page.get("/api/v1/me").status_code == 401
    # Keycloak's session ended too: signing in asks for the password again.
    page.get_by_role("button", name="Sign in").click()
    _keycloak_login(page, keycloak_server, ANNOTATOR)
    expect(page.locator("#who")).to_contain_text("ann (annotator)")

    admin = strongroom.client(strongroom.token(*ADMIN))

    def events(action: str, count: int) -> list[dict]:
        found: list[dict] = admin.get(
            "/api/v1/audit/events", params={"action": action, "username": "ann"}
        ).json()["events"]
        return found if len(found) >= count else []

    started = wait_for(lambda: events("auth.session.start", 2))
    ended = wait_for(lambda: events("auth.session.end", 1))
    assert [e["outcome"] for e in started] == ["success", "success"]
    assert [e["reason"] for e in ended] == ["sign_out"]
