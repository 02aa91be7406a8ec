"""An annotator labels a span with the keyboard and submits, in a real browser."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.harness import Strongroom, wait_for

TEXT = "Dr. Alice Moreau saw the patient on 2021-03-14 about chronic asthma.\n"


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom, tmp_path_factory: pytest.TempPathFactory) -> dict:
    assert strongroom.admin_password
    admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
    project = admin.post(
        "/api/v1/projects",
        json={"name": "Respiratory", "labels": ["PERSON", "DIAGNOSIS"]},
    ).json()
    password = admin.post(
        "/api/v1/users", json={"username": "ui-annotator", "roles": ["annotator"]}
    ).json()["password"]
    admin.post(
        f"/api/v1/projects/{project['id']}/members",
        json={"username": "ui-annotator", "role": "annotator"},
    ).raise_for_status()
    path = Path(tmp_path_factory.mktemp("ui")) / "visit.txt"
    path.write_text(TEXT)
    with path.open("rb") as handle:
        admin.post(
            f"/api/v1/projects/{project['id']}/documents",
            files={"file": ("visit.txt", handle)},
        ).raise_for_status()
    wait_for(
        lambda: (
            admin.get(f"/api/v1/projects/{project['id']}/tasks").json()["total"] == 1
        )
    )
    return {"admin": admin, "project": project, "password": password}


def select_text(page: Page, word: str) -> None:
    """Select a word in the task text, as a drag with the mouse would."""
    page.evaluate(
        """(word) => {
            const node = document.getElementById("task-text").firstChild;
            const start = node.textContent.indexOf(word);
            const range = document.createRange();
            range.setStart(node, start);
            range.setEnd(node, start + word.length);
            const selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
        }""",
        word,
    )


def test_annotator_labels_with_the_keyboard_and_submits(
    strongroom: Strongroom, setup: dict, page: Page, tmp_path: Path
) -> None:
    outside: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url) if not r.url.startswith(strongroom.url) else None
        ),
    )
    page.goto(strongroom.url)

    page.get_by_label("Username").fill("ui-annotator")
    page.get_by_label("Password").fill(setup["password"])
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Respiratory").click()

    text = page.locator("#task-text")
    expect(text).to_contain_text("chronic asthma")
    expect(text).to_contain_text("[DATE]")
    expect(text).not_to_contain_text("2021-03-14")
    select_text(page, "chronic asthma")
    page.keyboard.press("2")
    expect(page.locator("#task-text mark")).to_have_text("chronic asthma")
    page.screenshot(path=str(tmp_path / "annotating.png"))
    page.keyboard.press("Control+Enter")
    expect(page.get_by_role("status")).to_contain_text("No task is waiting")

    annotations = (
        setup["admin"]
        .get(f"/api/v1/projects/{setup['project']['id']}/annotations")
        .json()["annotations"]
    )
    assert len(annotations) == 1
    [span] = annotations[0]["spans"]
    assert span["label"] == "DIAGNOSIS"
    task_text = TEXT.replace("2021-03-14", "[DATE]")
    assert task_text[span["start"] : span["end"]] == "chronic asthma"
    assert outside == []


def test_page_is_usable_with_the_keyboard_alone(
    strongroom: Strongroom, page: Page, setup: dict
) -> None:
    page.goto(strongroom.url)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("nobody")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("wrong-password-1")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("username or password is wrong")


def test_pages_carry_a_strict_content_security_policy(strongroom: Strongroom) -> None:
    response = httpx.get(strongroom.url)
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy
