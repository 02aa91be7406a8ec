"""A manager switches model assistance on and trains a model from the
dashboard; its learning curve appears, and an annotator accepts the model's
dashed suggestion with one key; a suggested class is outlined dashed and
accepted the same way. A manager switches binary review on, and an annotator
accepts one suggestion, rejects the other, and the task submits by itself."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from strongroom.services.common.grpc_clients import caller_metadata
from strongroom.v1 import tasks_pb2, tasks_pb2_grpc
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


@pytest.fixture(scope="module")
def dated(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Dated review",
        schema={"spans": [{"name": "DATE", "hotkey": "1"}]},
    )
    passwords = {}
    for name, role in (("br-manager", "manager"), ("br-annotator", "annotator")):
        subject, password = make_user(admin, name, role)
        add_member(admin, project["id"], name, subject, role)
        passwords[name] = password
    # The redaction stage's two date findings become two suggestions.
    upload_texts(
        admin,
        project["id"],
        {"dates.txt": "Admitted 2021-03-14, discharged 2021-03-20 by the ward.\n"},
    )
    return {"project": project, "passwords": passwords}


def test_binary_review_accepts_rejects_and_submits_by_itself(
    strongroom: Strongroom, admin: httpx.Client, dated: dict, page: Page
) -> None:
    sign_in(page, strongroom, "br-manager", dated["passwords"]["br-manager"])
    open_view(page, "Dated review", "Dashboard")
    page.get_by_text("Model assistance and learning curve").click()
    page.get_by_label("Suggestion review").select_option("binary")
    expect(page.locator("#model-result")).to_have_text("Saved.")
    expect(page.get_by_label("Suggestion review")).to_have_value("binary")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, strongroom, "br-annotator", dated["passwords"]["br-annotator"])
    open_view(page, "Dated review", "Annotate")
    text = page.locator("#task-text")
    bar = page.locator(".suggestion-bar")
    expect(text.locator("mark.suggestion")).to_have_count(2)
    expect(text.locator("mark.suggestion.focused")).to_have_count(1)
    expect(bar).to_contain_text('Suggestion 1 of 2: DATE "[DATE]"')
    page.keyboard.press("1")
    expect(page.get_by_role("status")).to_contain_text("Decide the suggestion first")
    expect(text.locator("mark.span")).to_have_count(0)
    page.keyboard.press("a")
    expect(text.locator("mark.span")).to_have_count(1)
    expect(bar).to_contain_text("Suggestion 2 of 2: DATE")
    page.keyboard.press("x")
    expect(page.get_by_role("status")).to_contain_text("Submitted (1 span(s))")
    expect(page.get_by_role("status")).to_contain_text("No task is waiting")

    project_id = dated["project"]["id"]
    [answer] = admin.get(f"/api/v1/projects/{project_id}/annotations").json()[
        "annotations"
    ]
    assert (answer["suggestions_accepted"], answer["suggestions_rejected"]) == (1, 1)
    task = admin.get(
        f"/api/v1/tasks/{answer['task_id']}", params={"include_text": "true"}
    ).json()
    first = min(s["start"] for s in task["suggestions"])
    assert [(s["start"], s["label"]) for s in answer["spans"]] == [(first, "DATE")]


def test_a_suggested_class_is_accepted_with_one_key(
    strongroom: Strongroom, admin: httpx.Client, page: Page
) -> None:
    project = make_project(
        admin, name="Triage", schema={"classes": ["Urgent", "Routine"]}
    )
    subject, password = make_user(admin, "cs-annotator", "annotator")
    add_member(admin, project["id"], "cs-annotator", subject, "annotator")
    upload_texts(admin, project["id"], {"note.txt": "Chest pain since noon.\n"})
    [task] = admin.get(f"/api/v1/projects/{project['id']}/tasks").json()["tasks"]
    assert strongroom.admin_password
    token = strongroom.token("admin", strongroom.admin_password)
    with strongroom.channel(strongroom.addresses()["tasks"]) as channel:
        tasks_pb2_grpc.TaskServiceStub(channel).SetSuggestions(
            tasks_pb2.SetSuggestionsRequest(
                task_id=task["id"],
                source="model",
                suggestions=[tasks_pb2.Suggestion(label="Urgent", score=0.9)],
            ),
            metadata=caller_metadata(token),
        )

    sign_in(page, strongroom, "cs-annotator", password)
    open_view(page, "Triage", "Annotate")
    urgent = page.get_by_role("radio", name="Urgent")
    expect(urgent).to_have_class("suggested")
    expect(urgent).to_have_attribute("aria-checked", "false")
    expect(page.locator(".suggestion-bar")).to_contain_text("1 suggestion(s)")
    page.keyboard.press("a")
    expect(urgent).to_have_attribute("aria-checked", "true")
    expect(urgent).not_to_have_class("suggested")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Submitted")

    [answer] = admin.get(f"/api/v1/projects/{project['id']}/annotations").json()[
        "annotations"
    ]
    assert (answer["classes"], answer["suggestions_accepted"]) == (["Urgent"], 1)
