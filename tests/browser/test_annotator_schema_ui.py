"""The rest of a label schema in the annotator's view: a relation between two
spans by keyboard, multi-label classes as toggles, a free-text field, and a
skip with a reason."""

from __future__ import annotations

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

TEXTS = {
    "one.txt": "Salbutamol eased the chronic asthma quickly.\n",
    "two.txt": "Budesonide was added for chronic asthma.\n",
}


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Treatments",
        schema={
            "spans": [
                {"name": "DRUG", "hotkey": "1"},
                {"name": "DIAGNOSIS", "hotkey": "2"},
            ],
            "classes": [
                {"name": "follow-up", "hotkey": "f"},
                {"name": "inpatient", "hotkey": "i"},
            ],
            "multi_label": True,
            "relations": [{"name": "treats"}],
            "fields": [{"name": "notes", "description": "Anything odd"}],
        },
        review=True,
    )
    subject, password = make_user(admin, "sc-annotator", "annotator")
    add_member(admin, project["id"], "sc-annotator", subject, "annotator")
    upload_texts(admin, project["id"], TEXTS)
    return {"project": project, "password": password}


def test_relation_classes_field_and_skip(
    strongroom: Strongroom, admin: httpx.Client, setup: dict, page: Page
) -> None:
    sign_in(page, strongroom, "sc-annotator", setup["password"])
    open_view(page, "Treatments", "Annotate")
    text = page.locator("#task-text")
    expect(text).to_contain_text("chronic asthma")
    drug = "Salbutamol" if "Salbutamol" in text.inner_text() else "Budesonide"

    drag_over(page, "#task-text", drug)
    page.keyboard.press("1")
    caret_to(page, "chronic")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("2")
    # The new span is the chosen one; step back to the medicine, relate it.
    page.keyboard.press("[")
    page.keyboard.press("r")
    page.keyboard.press("]")
    page.keyboard.press("r")
    relations = page.get_by_role("list", name="Relations").get_by_role("listitem")
    expect(relations).to_have_count(1)
    expect(relations.first).to_contain_text(
        f'DRUG "{drug}" → treats → DIAGNOSIS "chronic asthma"'
    )

    follow_up = page.get_by_role("button", name="follow-up")
    inpatient = page.get_by_role("button", name="inpatient")
    page.keyboard.press("f")
    page.keyboard.press("i")
    expect(follow_up).to_have_attribute("aria-pressed", "true")
    expect(inpatient).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("i")
    expect(inpatient).to_have_attribute("aria-pressed", "false")

    page.get_by_label("notes").fill("Dose not stated")
    page.keyboard.press("Escape")
    expect(text).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Submitted (2 span(s))")

    page.keyboard.press("s")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.type("Not a clinical note")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(
        "Skipped. No task is waiting in this project."
    )

    project_id = setup["project"]["id"]
    [answer] = admin.get(f"/api/v1/projects/{project_id}/annotations").json()[
        "annotations"
    ]
    labels = [s["label"] for s in answer["spans"]]
    assert answer["relations"] == [
        {
            "from": labels.index("DRUG"),
            "to": labels.index("DIAGNOSIS"),
            "label": "treats",
        }
    ]
    assert answer["classes"] == ["follow-up"]
    assert answer["fields"] == {"notes": "Dose not stated"}
    stats = admin.get(f"/api/v1/projects/{project_id}/stats").json()
    [me] = stats["annotators"]
    assert me["submitted"] == 1 and me["skipped"] == 1


WINDOWED = (
    "The first visit found nothing of note at all, and the notes say so. "
    "The second visit also found nothing worth a label in this text. "
    "The third visit found chronic asthma and more.\n"
)


@pytest.fixture(scope="module")
def windowed(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Windows",
        schema={"spans": [{"name": "DIAGNOSIS", "hotkey": "2"}]},
        window={"kind": "fixed", "size": 100},
        review=False,
    )
    subject, password = make_user(admin, "sc-windows", "annotator")
    add_member(admin, project["id"], "sc-windows", subject, "annotator")
    upload_texts(admin, project["id"], {"visits.txt": WINDOWED})
    return {"project": project, "password": password}


def test_a_span_in_a_later_window_is_stored_at_its_document_offset(
    strongroom: Strongroom, admin: httpx.Client, windowed: dict, page: Page
) -> None:
    sign_in(page, strongroom, "sc-windows", windowed["password"])
    open_view(page, "Windows", "Annotate")
    text = page.locator("#task-text")
    expect(text).not_to_be_empty()
    # Answer the windows in the order they come; mark the diagnosis where
    # it is, submit the other windows empty.
    for _ in range(4):
        if "No task is waiting" in page.get_by_role("status").inner_text():
            break
        before = page.locator("#task-info").inner_text()
        if "chronic asthma" in text.inner_text():
            caret_to(page, "chronic")
            page.keyboard.press("Shift+ArrowRight")
            page.keyboard.press("2")
        page.keyboard.press("Enter")
        expect(page.locator("#task-info")).not_to_have_text(before)
    expect(page.get_by_role("status")).to_contain_text("No task is waiting")

    project_id = windowed["project"]["id"]
    answers = admin.get(f"/api/v1/projects/{project_id}/annotations").json()[
        "annotations"
    ]
    assert len(answers) >= 2
    [span] = [s for a in answers for s in a["spans"]]
    assert span["start"] > 100
    assert WINDOWED[span["start"] : span["end"]] == "chronic asthma"
