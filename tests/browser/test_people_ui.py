"""An admin manages accounts on the People page: disable, enable and reset a
password; each change reaches the account at once."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.helpers import make_user, sign_in
from tests.e2e.harness import Strongroom


def test_admin_disables_enables_and_resets_an_account(
    page: Page,
    strongroom: Strongroom,
    admin: httpx.Client,
) -> None:
    assert strongroom.admin_password
    _, password = make_user(admin, "ppl-ann", "annotator")
    token_url = f"{strongroom.url}/oidc/token"
    sign_in(page, strongroom, "admin", strongroom.admin_password)
    page.get_by_role("button", name="People").click()
    row = page.locator("#user-list tr", has_text="ppl-ann")
    expect(row).to_contain_text("active")

    page.get_by_role("button", name="Disable ppl-ann").click()

    expect(page.locator("#user-result")).to_have_text("ppl-ann is disabled.")
    expect(row).to_contain_text("disabled")
    refused = httpx.post(token_url, data={"username": "ppl-ann", "password": password})
    assert refused.status_code == 401

    page.get_by_role("button", name="Enable ppl-ann").click()
    expect(page.locator("#user-result")).to_have_text("ppl-ann can sign in again.")
    page.get_by_role("button", name="Reset password ppl-ann").click()

    expect(page.locator("#user-result")).to_contain_text("shown once")
    one_time = page.locator("#user-result code").inner_text()
    assert len(one_time) >= 12
    assert (
        httpx.post(
            token_url, data={"username": "ppl-ann", "password": one_time}
        ).status_code
        == 200
    )
