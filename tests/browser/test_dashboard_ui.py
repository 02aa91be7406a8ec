"""The manager's dashboard shows the agreement of two annotators on a task
with overlap 2 as soon as the second answer is in."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    add_member,
    answer,
    make_project,
    make_user,
    open_view,
    sign_in,
    upload_texts,
)
from tests.e2e.harness import Strongroom, wait_for

TEXT = "The patient on salbutamol has chronic asthma.\n"


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Overlap two",
        schema={
            "spans": [
                {"name": "DRUG", "hotkey": "1"},
                {"name": "DIAGNOSIS", "hotkey": "2"},
            ],
            "classes": [{"name": "urgent"}, {"name": "routine"}],
        },
        overlap=2,
        review=False,
    )
    clients = {}
    passwords = {}
    for name, role in (
        ("db-manager", "manager"),
        ("db-one", "annotator"),
        ("db-two", "annotator"),
    ):
        subject, password = make_user(admin, name, role)
        add_member(admin, project["id"], name, subject, role)
        passwords[name] = password
        clients[name] = strongroom.client(strongroom.token(name, password))
    upload_texts(admin, project["id"], {"note.txt": TEXT})
    return {"project": project, "passwords": passwords, "clients": clients}


def test_dashboard_shows_the_new_agreement(
    strongroom: Strongroom, setup: dict, page: Page
) -> None:
    sign_in(page, strongroom, "db-manager", setup["passwords"]["db-manager"])
    open_view(page, "Overlap two", "Dashboard")
    total = page.locator("#progress .figure").filter(has_text="Tasks")
    expect(total.locator("dd")).to_have_text("1")
    expect(page.locator("#no-agreement")).to_be_visible()

    project_id = setup["project"]["id"]
    # Both mark the diagnosis; only one marks the medicine.
    answer(
        setup["clients"]["db-one"],
        project_id,
        [("chronic asthma", "DIAGNOSIS"), ("salbutamol", "DRUG")],
        classes=("urgent",),
    )
    answer(
        setup["clients"]["db-two"],
        project_id,
        [("chronic asthma", "DIAGNOSIS")],
        classes=("routine",),
    )

    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#no-agreement")).to_be_hidden()
    spans = page.locator('table[data-section="spans"]')
    # Exact F1 over both labels: 1 match, 1 span only one of them has: 2/3.
    expect(spans.get_by_role("row", name="all labels")).to_contain_text("0.667")
    expect(spans.get_by_role("row", name="DIAGNOSIS")).to_contain_text("1.000")
    expect(spans.get_by_role("row", name="DRUG")).to_contain_text("0.000")
    pairs = page.locator('table[data-section="spans-pairs"]')
    expect(pairs).to_contain_text("db-one")
    expect(pairs).to_contain_text("db-two")
    rows = page.locator("#annotator-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="db-one")).to_contain_text("1")
    expect(page.locator("#agreement-counts")).to_contain_text("1 of 1 task(s)")
    # "urgent" as present/absent: one rater yes, one no, on one task.
    # Cohen: observed 0, expected 1*0 + 0*1 = 0, so 0. Fleiss: P = 0,
    # Pe = 0.5^2 + 0.5^2 = 0.5, so (0 - 0.5) / 0.5 = -1. Alpha: Do = 1,
    # De = 2 * 1 * 1 / (2 * 1) = 1, so 0.
    classes = page.locator('table[data-section="classification"] tbody tr')
    expect(classes).to_have_count(3)
    expect(classes.filter(has_text="urgent").get_by_role("cell")).to_have_text(
        ["0.000", "-1.000", "0.000", "1"]
    )

    # The manager raises the task's priority from the dashboard.
    page.get_by_text("Tasks and priorities", exact=True).click()
    priority = page.get_by_role("spinbutton", name="Priority of task")
    expect(priority).to_have_value("0")
    priority.fill("5")
    page.get_by_role("button", name="Set", exact=True).click()
    expect(page.locator("#task-result")).to_contain_text("now has priority 5")
    [task] = (
        setup["clients"]["db-manager"]
        .get(f"/api/v1/projects/{project_id}/tasks")
        .json()["tasks"]
    )
    assert task["priority"] == 5


def test_synthetic_examples_are_marked_in_the_task_list(
    strongroom: Strongroom, admin: httpx.Client, setup: dict, page: Page
) -> None:
    project_id = setup["project"]["id"]
    upload_texts(
        admin, project_id, {"second.txt": "The patient on ibuprofen has mild gout.\n"}
    )
    wait_for(
        lambda: admin.get(f"/api/v1/projects/{project_id}/tasks").json()["total"] == 2,
        timeout=60,
    )
    for name in ("db-one", "db-two"):
        answer(
            setup["clients"][name],
            project_id,
            [("mild gout", "DIAGNOSIS"), ("ibuprofen", "DRUG")],
            classes=("routine",),
        )
    made = setup["clients"]["db-manager"].post(
        f"/api/v1/projects/{project_id}/synthetic",
        json={"method": "entity_swap", "count": 1, "seed": 3},
    )
    assert made.status_code == 201, made.text

    sign_in(page, strongroom, "db-manager", setup["passwords"]["db-manager"])
    open_view(page, "Overlap two", "Dashboard")
    page.get_by_text("Tasks and priorities", exact=True).click()
    rows = page.locator("#task-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="synthetic (entity swap)")).to_have_count(1)
