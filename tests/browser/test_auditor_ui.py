"""An auditor finds every access to one document and every action of one
person in the web page, downloads the report and verifies the chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import SIGN_IN_TIMEOUT_MS, open_login_page
from tests.e2e.harness import Strongroom, wait_for

TEXT = "Ward round: Noor Haddad, bed 12, seen 2022-07-01.\n"


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom) -> dict:
    assert strongroom.admin_password
    admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
    project = admin.post(
        "/api/v1/projects", json={"name": "Wards", "labels": ["PERSON"]}
    ).json()
    passwords = {
        name: admin.post(
            "/api/v1/users", json={"username": name, "roles": [role]}
        ).json()["password"]
        for name, role in (("ui-auditor", "auditor"), ("ui-reader", "annotator"))
    }
    admin.post(
        f"/api/v1/projects/{project['id']}/members",
        json={"username": "ui-reader", "role": "annotator"},
    ).raise_for_status()
    document = admin.post(
        f"/api/v1/projects/{project['id']}/documents",
        files={"file": ("round.txt", TEXT.encode(), "text/plain")},
    ).json()
    reader = strongroom.client(strongroom.token("ui-reader", passwords["ui-reader"]))
    wait_for(
        lambda: (
            reader.post(f"/api/v1/projects/{project['id']}/tasks/next").status_code
            == 200
        )
    )
    return {"document": document, "password": passwords["ui-auditor"]}


def sign_in(page: Page, strongroom: Strongroom, password: str) -> None:
    open_login_page(page, strongroom)
    page.get_by_label("Username").fill("ui-auditor")
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible(
        timeout=SIGN_IN_TIMEOUT_MS
    )


def test_auditor_follows_a_document_and_downloads_the_report(
    strongroom: Strongroom, setup: dict, page: Page, tmp_path: Path
) -> None:
    outside: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url) if not r.url.startswith(strongroom.url) else None
        ),
    )
    sign_in(page, strongroom, setup["password"])

    page.get_by_label("Document").fill(setup["document"]["id"])
    page.get_by_role("button", name="Lineage of this document").click()

    rows = page.locator("#audit-results tbody tr")
    expect(rows.filter(has_text="document.ingest")).to_have_count(1)
    expect(rows.filter(has_text="task.lease")).to_contain_text("ui-reader")
    expect(page.locator("#audit-summary")).to_contain_text("touched this document")
    expect(page.locator("#audit-results")).not_to_contain_text("Noor Haddad")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download report (PDF)").click()
    saved = tmp_path / "report.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-")
    page.screenshot(path=str(tmp_path / "lineage.png"))
    assert outside == []


def test_auditor_sees_one_persons_actions_and_verifies_the_chain(
    strongroom: Strongroom, setup: dict, page: Page
) -> None:
    sign_in(page, strongroom, setup["password"])

    page.get_by_label("Person").fill("ui-reader")
    page.get_by_role("button", name="Activity of this person").click()
    rows = page.locator("#audit-results tbody tr")
    expect(rows.filter(has_text="task.lease")).to_have_count(1)
    expect(rows.filter(has_text="admin")).to_have_count(0)

    page.get_by_label("Person").fill("")
    page.get_by_label("Outcome").select_option("denied")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#audit-summary")).to_contain_text("matching event(s)")

    page.get_by_role("button", name="Verify the chain").click()
    expect(page.get_by_role("status")).to_contain_text("Audit chain intact")
