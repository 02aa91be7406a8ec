"""A whole project in the browser, as a new team would run it: the admin
creates the people and the project (overlap 2, review on), adds the members
and uploads the documents; two annotators label; the reviewer accepts one
answer and rejects another; the dashboard shows agreement and reviews."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import caret_to, drag_over, open_view, sign_in
from tests.e2e.harness import Strongroom, wait_for

TEXTS = {
    "letter-1.txt": "Discharged on salbutamol with chronic asthma.\n",
    "letter-2.txt": "Follow-up found chronic asthma; budesonide added.\n",
}
DRUGS = ("salbutamol", "budesonide")
PROJECT = "Discharge letters"


def create_user(page: Page, username: str, role: str) -> str:
    page.get_by_role("button", name="People").click()
    page.get_by_label("Login name").fill(username)
    page.get_by_role("group", name="Roles").get_by_label(role, exact=True).check()
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("#user-result")).to_contain_text(f"{username} created")
    password = page.locator("#user-result code").inner_text()
    assert len(password) >= 12
    return password


def annotate_all(page: Page, with_drugs: bool) -> int:
    """Label every task waiting for this annotator; returns how many."""
    done = 0
    info = page.locator("#task-info")
    while True:
        text = page.locator("#task-text")
        expect(text).not_to_be_empty()
        caret_to(page, "chronic")
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("2")
        if with_drugs:
            drug = next(d for d in DRUGS if d in text.inner_text())
            drag_over(page, "#task-text", drug)
            page.keyboard.press("1")
        before = info.inner_text()
        page.keyboard.press("Enter")
        done += 1
        expect(info).not_to_have_text(before)
        if not info.inner_text():
            expect(page.get_by_role("status")).to_contain_text("No task is waiting")
            return done


def test_a_team_runs_a_project_in_the_browser(
    strongroom: Strongroom, admin: httpx.Client, browser: Browser, tmp_path: Path
) -> None:
    assert strongroom.admin_password
    boss = browser.new_context().new_page()
    sign_in(boss, strongroom, "admin", strongroom.admin_password)
    passwords = {
        "run-ann1": create_user(boss, "run-ann1", "annotator"),
        "run-ann2": create_user(boss, "run-ann2", "annotator"),
        "run-rev": create_user(boss, "run-rev", "reviewer"),
    }

    boss.get_by_role("button", name="New project").click()
    boss.get_by_label("Name", exact=True).fill(PROJECT)
    boss.get_by_label("Span labels").fill(
        "DRUG | #1f77b4 | 1 | A medicine\nDIAGNOSIS | #d62728 | 2 | A condition"
    )
    boss.get_by_label("Guidelines").fill("Mark medicines and diagnoses.")
    boss.get_by_label("Annotations per task (overlap)").fill("2")
    expect(boss.get_by_label("Review stage")).to_be_checked()
    boss.get_by_role("button", name="Create project").click()
    expect(boss.get_by_role("heading", name=f"Dashboard: {PROJECT}")).to_be_visible()

    boss.get_by_text("Members", exact=True).click()
    for username, role in (
        ("run-ann1", "annotator"),
        ("run-ann2", "annotator"),
        ("run-rev", "reviewer"),
    ):
        boss.get_by_label("Member", exact=True).fill(username)
        boss.get_by_label("Role", exact=True).select_option(role)
        boss.get_by_role("button", name="Add member").click()
        expect(boss.locator("#member-result")).to_have_text(
            f"{username} added as {role}."
        )
    expect(boss.locator("#member-list li")).to_have_count(3)

    files = []
    for name, text in TEXTS.items():
        path = tmp_path / name
        path.write_text(text)
        files.append(path)
    boss.get_by_text("Documents", exact=True).click()
    boss.get_by_label("Files").set_input_files(files)
    boss.get_by_role("button", name="Upload").click()
    expect(boss.locator("#upload-result")).to_contain_text("2 of 2 document(s)")
    [project] = [
        p
        for p in admin.get("/api/v1/projects").json()["projects"]
        if p["name"] == PROJECT
    ]
    assert project["overlap"] == 2 and project["review"] is True
    wait_for(
        lambda: (
            admin.get(f"/api/v1/projects/{project['id']}/tasks").json()["total"] == 2
        ),
        timeout=60,
    )

    for username, with_drugs in (("run-ann1", True), ("run-ann2", False)):
        page = browser.new_context().new_page()
        sign_in(page, strongroom, username, passwords[username])
        open_view(page, PROJECT, "Annotate")
        assert annotate_all(page, with_drugs) == 2
        page.context.close()

    reviewer = browser.new_context().new_page()
    sign_in(reviewer, strongroom, "run-rev", passwords["run-rev"])
    open_view(reviewer, PROJECT, "Review")
    columns = reviewer.locator("#review-columns article")
    expect(columns).to_have_count(2)
    expect(reviewer.locator("#review-columns")).to_contain_text("run-ann1")
    expect(reviewer.locator("#review-columns")).to_contain_text("run-ann2")
    # The differences: the medicine only run-ann1 marked.
    one = columns.filter(has_text="run-ann1")
    two = columns.filter(has_text="run-ann2")
    expect(one.locator("mark[data-tag='DRUG ≠']")).to_have_count(1)
    expect(two.locator("mark[data-tag='DRUG missing']")).to_have_count(1)
    reviewer.screenshot(path=str(tmp_path / "review.png"))
    reviewer.keyboard.press("a")
    expect(reviewer.get_by_role("status")).to_contain_text("Accepted")
    expect(columns).to_have_count(2)
    reviewer.keyboard.press("2")
    expect(columns.nth(1)).to_have_class("answer chosen")
    reviewer.keyboard.press("r")
    reviewer.keyboard.type("Please also mark the medicine.")
    reviewer.keyboard.press("Enter")
    expect(reviewer.get_by_role("status")).to_contain_text("Returned to")

    boss.get_by_role("button", name="Refresh").click()
    spans = boss.locator('table[data-section="spans"]')
    # Per task one diagnosis both marked and one medicine only one marked: 2/3.
    expect(spans.get_by_role("row", name="all labels")).to_contain_text("0.667")
    counts = boss.locator("#review-counts")
    expect(counts.locator(".figure", has_text="Accepted").locator("dd")).to_have_text(
        "1"
    )
    expect(counts.locator(".figure", has_text="Rejected").locator("dd")).to_have_text(
        "1"
    )
    expect(boss.locator("#annotator-table tbody tr")).to_have_count(2)
    boss.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)


CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">
    <Label value="DRUG" background="#1f77b4" hotkey="1"/>
  </Labels>
  <Choices name="kind" toName="text" choice="multiple">
    <Choice value="urgent"/>
    <Choice value="routine"/>
  </Choices>
  {extra}
</View>"""


def test_a_label_studio_config_pasted_into_a_new_project(
    strongroom: Strongroom, admin: httpx.Client, page: Page
) -> None:
    assert strongroom.admin_password
    sign_in(page, strongroom, "admin", strongroom.admin_password)
    page.get_by_role("button", name="New project").click()
    page.get_by_label("Name", exact=True).fill("Imported")
    config = page.get_by_label("Or a Label Studio labeling config (XML)")
    config.fill(CONFIG.format(extra='<Rating name="r" toName="text"/>'))
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#project-result")).to_contain_text("<Rating>")

    config.fill(CONFIG.format(extra=""))
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Dashboard: Imported")).to_be_visible()
    [project] = [
        p
        for p in admin.get("/api/v1/projects").json()["projects"]
        if p["name"] == "Imported"
    ]
    schema = project["schema"]
    assert [label["name"] for label in schema["spans"]] == ["DRUG"]
    assert [label["name"] for label in schema["classes"]] == ["urgent", "routine"]
    assert schema["multi_label"] is True
