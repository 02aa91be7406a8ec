"""A manager switches model assistance on and trains a model from the
dashboard; its learning curve appears, and an annotator accepts the model's
dashed suggestion with one key."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    add_member,
    make_project,
    make_user,
    open_view,
    sign_in,
    upload_texts,
)
from tests.e2e.harness import Strongroom, wait_for

DRUGS = ["aspirin", "metformin", "warfarin", "insulin"]
SENTENCES = [
    "Please stop {} before the operation.",
    "Continue {} at the same dose.",
    "The patient was started on {} this morning.",
]
ANSWERED = 12


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Assisted",
        labels=[{"name": "DRUG", "hotkey": "1"}],
        window={"kind": "paragraph"},
    )
    passwords = {}
    for name, role in (("ma-manager", "manager"), ("ma-annotator", "annotator")):
        subject, password = make_user(admin, name, role)
        add_member(admin, project["id"], name, subject, role)
        passwords[name] = password
    note = "\n\n".join(
        SENTENCES[i % len(SENTENCES)].format(DRUGS[i % len(DRUGS)])
        for i in range(ANSWERED + 2)
    )
    upload_texts(admin, project["id"], {"drugs.txt": note + "\n"})
    wait_for(
        lambda: (
            admin.get(f"/api/v1/projects/{project['id']}/tasks").json()["total"]
            == ANSWERED + 2
        ),
        timeout=60,
    )
    annotator = strongroom.client(
        strongroom.token("ma-annotator", passwords["ma-annotator"])
    )
    for _ in range(ANSWERED):
        task = annotator.post(f"/api/v1/projects/{project['id']}/tasks/next").json()
        drug = next(d for d in DRUGS if d in task["text"])
        at = task["window_start"] + task["text"].index(drug)
        annotator.post(
            f"/api/v1/tasks/{task['id']}/annotations",
            json={"spans": [{"start": at, "end": at + len(drug), "label": "DRUG"}]},
        ).raise_for_status()
    return {"project": project, "passwords": passwords}


def test_a_manager_trains_and_an_annotator_accepts_a_suggestion(
    strongroom: Strongroom, setup: dict, page: Page
) -> None:
    sign_in(page, strongroom, "ma-manager", setup["passwords"]["ma-manager"])
    open_view(page, "Assisted", "Dashboard")
    page.get_by_text("Model assistance and learning curve").click()
    expect(page.locator("#learning-curve")).to_contain_text("No model yet.")
    page.get_by_label("Model assistance on").check()
    expect(page.locator("#model-result")).to_have_text("Saved.")
    page.get_by_role("button", name="Train now").click()
    expect(page.locator("#model-result")).to_contain_text("Version 1")

    project_id = setup["project"]["id"]
    manager = strongroom.client(
        strongroom.token("ma-manager", setup["passwords"]["ma-manager"])
    )
    # Training and prediction run in the background; wait for them over the
    # API, then see them on the page.
    wait_for(
        lambda: manager.get(f"/api/v1/projects/{project_id}/models").json()["models"][
            0
        ]["predicted_tasks"],
        timeout=240,
        interval=1,
    )
    page.get_by_role("button", name="Refresh").click()
    rows = page.locator("#model-table tbody tr")
    expect(rows.first.locator("td").nth(1)).to_have_text("ready", timeout=30_000)
    expect(page.locator("#learning-curve svg polyline")).to_have_count(2)

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, strongroom, "ma-annotator", setup["passwords"]["ma-annotator"])
    open_view(page, "Assisted", "Annotate")
    text = page.locator("#task-text")
    expect(text.locator("mark.suggestion")).to_have_count(1)
    page.keyboard.press("a")
    expect(text.locator("mark.span")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Submitted (1 span(s))")
    answers = manager.get(f"/api/v1/projects/{project_id}/annotations").json()
    assert max(a["suggestions_accepted"] for a in answers["annotations"]) == 1
