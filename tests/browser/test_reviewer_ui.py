"""A reviewer rejects one answer with a comment and corrects another, by
keyboard; the annotator finds the comment on the returned task."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import (
    add_member,
    answer,
    make_project,
    make_user,
    open_view,
    sign_in,
    upload_texts,
)
from tests.e2e.harness import Strongroom

TEXTS = {
    "a.txt": "Reviewed the chronic asthma plan with salbutamol.\n",
    "b.txt": "Reported chronic asthma symptoms after budesonide.\n",
}
COMMENT = "Mark the medicine too: salbutamol is a DRUG."


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Asthma review",
        labels=[
            {"name": "DRUG", "hotkey": "1"},
            {"name": "DIAGNOSIS", "hotkey": "2"},
        ],
        overlap=1,
        review=True,
    )
    people = {}
    for name, role in (("rv-annotator", "annotator"), ("rv-reviewer", "reviewer")):
        subject, password = make_user(admin, name, role)
        add_member(admin, project["id"], name, subject, role)
        people[name] = password
    upload_texts(admin, project["id"], TEXTS)
    annotator = strongroom.client(
        strongroom.token("rv-annotator", people["rv-annotator"])
    )
    for _ in TEXTS:
        answer(
            annotator,
            project["id"],
            [("chronic asthma", "DIAGNOSIS")],
        )
    return {"admin": admin, "project": project, "people": people}


def test_reviewer_rejects_and_corrects_and_the_annotator_sees_the_comment(
    strongroom: Strongroom, setup: dict, page: Page, browser: Browser
) -> None:
    sign_in(page, strongroom, "rv-reviewer", setup["people"]["rv-reviewer"])
    project_row = page.get_by_role("listitem").filter(has_text="Asthma review")
    expect(project_row.get_by_role("button")).to_have_text(["Review"])
    open_view(page, "Asthma review", "Review")
    columns = page.locator("#review-columns article")
    expect(columns).to_have_count(1)
    expect(columns.first).to_contain_text("rv-annotator")
    expect(columns.first.locator("mark")).to_have_text(["chronic asthma"])

    page.keyboard.press("r")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    page.keyboard.type(COMMENT)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Returned to rv-annotator")

    # The other task: correct it by keyboard and save the correction as gold.
    expect(columns).to_have_count(1)
    page.keyboard.press("c")
    editor = page.locator("#correct-text")
    expect(editor).to_be_focused()
    editor.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("1")
    expect(page.locator("#correct-text-spans li")).to_have_count(2)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Correction saved as gold")
    expect(page.get_by_role("status")).to_contain_text("No task is waiting for review")

    stats = (
        setup["admin"].get(f"/api/v1/projects/{setup['project']['id']}/stats").json()
    )
    assert stats["reviews"]["rejected"] == 1
    assert stats["reviews"]["corrected"] == 1

    context = browser.new_context()
    annotator = context.new_page()
    sign_in(annotator, strongroom, "rv-annotator", setup["people"]["rv-annotator"])
    open_view(annotator, "Asthma review", "Annotate")
    banner = annotator.locator("#review-comment")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(COMMENT)
    expect(annotator.locator("#task-text mark")).to_have_text(["chronic asthma"])
    context.close()
