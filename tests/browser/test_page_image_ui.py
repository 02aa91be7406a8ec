"""An annotator draws boxes on a scanned page's redacted image with the mouse,
labels them by hotkey and removes one with Delete; the boxes arrive as
fractions of the page."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.helpers import (
    add_member,
    make_project,
    make_user,
    open_view,
    sign_in,
)
from tests.e2e.harness import Strongroom, upload_file, wait_for
from tests.fixtures.ingestion import corpus

LINES = ("Delivery note 4471", "Received in good order", "Signed at the ward desk")


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Scans",
        schema={
            "spans": [{"name": "PERSON", "hotkey": "1"}],
            "boxes": [
                {"name": "STAMP", "hotkey": "7", "description": "An ink stamp"},
                {"name": "SIGNATURE", "hotkey": "8", "description": "A signature"},
            ],
        },
        overlap=1,
        review=True,
    )
    subject, password = make_user(admin, "pg-annotator", "annotator")
    add_member(admin, project["id"], "pg-annotator", subject, "annotator")
    reviewer, reviewer_password = make_user(admin, "pg-reviewer", "reviewer")
    add_member(admin, project["id"], "pg-reviewer", reviewer, "reviewer")
    scan = corpus.image_bytes(corpus.scan_image(LINES), "PNG")
    upload_file(admin, project["id"], "delivery.png", scan).raise_for_status()
    annotator = strongroom.client(strongroom.token("pg-annotator", password))

    def leased_with_pages() -> dict | None:
        response = annotator.post(f"/api/v1/projects/{project['id']}/tasks/next")
        task: dict = response.json()
        return task if response.status_code == 200 and task.get("pages") else None

    task = wait_for(leased_with_pages, timeout=90, interval=0.5)
    return {
        "admin": admin,
        "project": project,
        "password": password,
        "reviewer_password": reviewer_password,
        "task": task,
    }


def drag(
    page: Page, image: Locator, start: tuple[float, float], end: tuple[float, float]
) -> None:
    """Drag the mouse across the image between two points given as fractions."""
    image.scroll_into_view_if_needed()
    box = image.bounding_box()
    assert box is not None

    def at(point: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + box["width"] * point[0], box["y"] + box["height"] * point[1]

    page.mouse.move(*at(start))
    page.mouse.down()
    page.mouse.move(*at(end), steps=8)
    page.mouse.up()


def test_annotator_draws_labels_and_deletes_boxes_on_a_page_image(
    strongroom: Strongroom, setup: dict, page: Page, browser: Browser, tmp_path: Path
) -> None:
    sign_in(page, strongroom, "pg-annotator", setup["password"])
    open_view(page, "Scans", "Annotate")
    image = page.get_by_role("img", name="Redacted page image")
    expect(image).to_be_visible()
    wait_for(lambda: image.evaluate("(img) => img.naturalWidth") > 0)

    drag(page, image, (0.10, 0.20), (0.50, 0.60))
    boxes = page.get_by_role("list", name="Boxes").get_by_role("listitem")
    expect(boxes).to_have_count(1)
    expect(boxes.first).to_contain_text("STAMP, page 1")
    page.keyboard.press("8")
    expect(boxes.first).to_contain_text("SIGNATURE, page 1")

    drag(page, image, (0.60, 0.10), (0.90, 0.90))
    expect(boxes).to_have_count(2)
    page.keyboard.press("Delete")
    expect(boxes).to_have_count(1)
    page.screenshot(path=str(tmp_path / "boxes.png"))

    page.locator("#task-text").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Submitted")

    project_id = setup["project"]["id"]
    [answer] = (
        setup["admin"].get(f"/api/v1/projects/{project_id}/annotations").json()
    )["annotations"]
    [drawn] = answer["boxes"]
    assert drawn["label"] == "SIGNATURE" and drawn["page"] == 1
    for name, expected in (("x", 0.10), ("y", 0.20), ("width", 0.40), ("height", 0.40)):
        assert abs(drawn[name] - expected) < 0.02, (name, drawn)

    # The reviewer sees the box on the page image next to the answer.
    context = browser.new_context()
    reviewer = context.new_page()
    sign_in(reviewer, strongroom, "pg-reviewer", setup["reviewer_password"])
    open_view(reviewer, "Scans", "Review")
    column = reviewer.locator("#review-columns article")
    expect(column.get_by_role("img", name="Redacted page 1")).to_be_visible()
    expect(column.locator("rect.box title")).to_have_text(["SIGNATURE"])
    context.close()
