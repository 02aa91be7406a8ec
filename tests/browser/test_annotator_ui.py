"""An annotator works through tasks in a real browser: a span by keyboard and
one by mouse, a class by hotkey, undo, submit, the next task at once, and a
reopened answer after submitting."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    add_member,
    caret_to,
    drag_over,
    make_project,
    make_user,
    open_view,
    sign_in,
    upload_texts,
)
from tests.e2e.harness import Strongroom

# No names: the redaction stage masks them, and the labels here are not
# personal data.
TEXTS = {
    "visit.txt": "Seen on 2021-03-14: salbutamol started for chronic asthma.\n",
    "ward.txt": "On 2021-04-02 the ward noted chronic asthma; budesonide was added.\n",
}
DRUGS = {"visit.txt": "salbutamol", "ward.txt": "budesonide"}


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Respiratory",
        schema={
            "spans": [
                {"name": "DRUG", "hotkey": "1", "description": "A medicine"},
                {"name": "DIAGNOSIS", "hotkey": "2", "description": "A condition"},
            ],
            "classes": [
                {"name": "routine", "hotkey": "q", "description": ""},
                {"name": "urgent", "hotkey": "u", "description": ""},
            ],
            "multi_label": False,
        },
        guidelines="Label every person and every diagnosis.",
        overlap=1,
        # Under review an answer can be taken back until a reviewer opens it.
        review=True,
    )
    subject, password = make_user(admin, "ui-annotator", "annotator")
    add_member(admin, project["id"], "ui-annotator", subject, "annotator")
    documents = upload_texts(admin, project["id"], TEXTS)
    return {
        "admin": admin,
        "project": project,
        "password": password,
        "documents": {d["id"]: d for d in documents},
    }


def shown_document(page: Page) -> str:
    text = page.locator("#task-text").inner_text()
    return "visit.txt" if "salbutamol" in text else "ward.txt"


def redacted(name: str) -> str:
    text = TEXTS[name]
    for day in ("2021-03-14", "2021-04-02"):
        text = text.replace(day, "[DATE]")
    return text


def annotations(setup: dict) -> list[dict]:
    project_id = setup["project"]["id"]
    found: list[dict] = (
        setup["admin"].get(f"/api/v1/projects/{project_id}/annotations").json()
    )["annotations"]
    return found


def test_annotator_labels_submits_undoes_and_takes_the_next(
    strongroom: Strongroom, setup: dict, page: Page, tmp_path: Path
) -> None:
    outside: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url) if not r.url.startswith(strongroom.url) else None
        ),
    )
    sign_in(page, strongroom, "ui-annotator", setup["password"])
    # An annotator's page offers annotating only.
    for view in ("New project", "People", "Audit trail"):
        expect(page.get_by_role("button", name=view)).to_be_hidden()
    project_row = page.get_by_role("listitem").filter(has_text="Respiratory")
    expect(project_row.get_by_role("button")).to_have_text(["Annotate"])
    open_view(page, "Respiratory", "Annotate")

    text = page.locator("#task-text")
    expect(text).to_contain_text("chronic asthma")
    expect(text).to_contain_text("[DATE]")
    expect(text).not_to_contain_text("2021-")
    expect(page.locator("#guidelines")).to_contain_text("every diagnosis")
    first = shown_document(page)

    # A span by keyboard: the caret moves word by word, Shift extends it.
    caret_to(page, "chronic")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("2")
    diagnosis = text.locator("mark", has_text="chronic asthma")
    expect(diagnosis).to_have_attribute("data-tag", "DIAGNOSIS")
    # With nothing selected, a label's key relabels the chosen span.
    page.keyboard.press("1")
    expect(diagnosis).to_have_attribute("data-tag", "DRUG")
    page.keyboard.press("2")
    expect(diagnosis).to_have_attribute("data-tag", "DIAGNOSIS")
    # A span by mouse: a drag over the medicine, then the label's key.
    drag_over(page, "#task-text", DRUGS[first])
    page.keyboard.press("1")
    expect(text.locator("mark", has_text=DRUGS[first])).to_have_attribute(
        "data-tag", "DRUG"
    )
    # A class by hotkey, undone with Ctrl+Z, chosen again.
    urgent = page.get_by_role("radio", name="urgent")
    page.keyboard.press("u")
    expect(urgent).to_have_attribute("aria-checked", "true")
    page.keyboard.press("Control+z")
    expect(urgent).to_have_attribute("aria-checked", "false")
    expect(page.locator("#task-text-spans li")).to_have_count(2)
    page.keyboard.press("u")
    page.screenshot(path=str(tmp_path / "annotating.png"))

    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Submitted (2 span(s))")
    second = "ward.txt" if first == "visit.txt" else "visit.txt"
    expect(text).to_contain_text(DRUGS[second])
    expect(page.locator("#task-text-spans li")).to_have_count(0)

    [answer] = annotations(setup)
    window = redacted(first)
    assert sorted(
        (window[s["start"] : s["end"]], s["label"]) for s in answer["spans"]
    ) == sorted([("chronic asthma", "DIAGNOSIS"), (DRUGS[first], "DRUG")])
    assert answer["classes"] == ["urgent"]
    assert answer["seconds"] > 0

    # Undo after submitting reopens the answer; Delete drops the chosen span.
    page.keyboard.press("Control+z")
    expect(text).to_contain_text(DRUGS[first])
    expect(page.locator("#task-text-spans li")).to_have_count(2)
    text.locator("mark", has_text=DRUGS[first]).click()
    page.keyboard.press("Delete")
    expect(page.locator("#task-text-spans li")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(text).to_contain_text(DRUGS[second])

    [answer] = annotations(setup)
    assert [s["label"] for s in answer["spans"]] == ["DIAGNOSIS"]

    # The last task, submitted with nothing marked.
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("No task is waiting")
    assert len(annotations(setup)) == 2
    assert outside == []


def test_shortcuts_open_with_the_question_mark(
    strongroom: Strongroom, setup: dict, page: Page
) -> None:
    sign_in(page, strongroom, "ui-annotator", setup["password"])
    open_view(page, "Respiratory", "Annotate")
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()


def test_page_is_usable_with_the_keyboard_alone(
    strongroom: Strongroom, page: Page, setup: dict
) -> None:
    page.goto(strongroom.url)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.keyboard.press("Enter")
    # The login page puts the caret in the username field itself.
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("nobody")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("wrong-password-1")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("username or password is wrong")


def test_pages_carry_a_strict_content_security_policy(strongroom: Strongroom) -> None:
    response = httpx.get(strongroom.url)
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy
    for name in ("app.js", "api.js", "editor.js", "annotate.js", "review.js"):
        script = httpx.get(f"{strongroom.url}/static/{name}")
        assert script.status_code == 200, name
        assert "javascript" in script.headers["content-type"], name


@pytest.fixture(scope="module")
def dated(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Dated letters",
        schema={"spans": [{"name": "DATE", "hotkey": "1"}, {"name": "DRUG"}]},
        review=True,
    )
    subject, password = make_user(admin, "ui-dates", "annotator")
    add_member(admin, project["id"], "ui-dates", subject, "annotator")
    upload_texts(
        admin,
        project["id"],
        {"dates.txt": "Admitted 2021-03-14, discharged 2021-03-20 by the ward.\n"},
    )
    return {"project": project, "password": password}


def test_suggestions_are_accepted_one_by_one_and_all_at_once(
    strongroom: Strongroom, admin: httpx.Client, dated: dict, page: Page
) -> None:
    sign_in(page, strongroom, "ui-dates", dated["password"])
    open_view(page, "Dated letters", "Annotate")
    text = page.locator("#task-text")
    expect(text.locator("mark.suggestion")).to_have_count(2)
    expect(text.locator("mark.suggestion").first).to_have_text("[DATE]")
    page.keyboard.press("a")
    expect(text.locator("mark.span")).to_have_count(1)
    expect(text.locator("mark.suggestion")).to_have_count(1)
    page.keyboard.press("Control+z")
    expect(text.locator("mark.suggestion")).to_have_count(2)
    page.keyboard.press("Shift+A")
    expect(text.locator("mark.span")).to_have_count(2)
    expect(text.locator("mark.suggestion")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Submitted (2 span(s))")

    project_id = dated["project"]["id"]
    [answer] = admin.get(f"/api/v1/projects/{project_id}/annotations").json()[
        "annotations"
    ]
    assert answer["suggestions_accepted"] == 2
    task = admin.get(
        f"/api/v1/tasks/{answer['task_id']}", params={"include_text": "true"}
    ).json()
    assert [task["text"][s["start"] : s["end"]] for s in answer["spans"]] == [
        "[DATE]",
        "[DATE]",
    ]
