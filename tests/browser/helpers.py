"""What the browser tests share: people, projects and documents made over the
API, signing in through the login page, and a real mouse drag over a word of
the task text."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.harness import Strongroom, upload_file, wait_for


def make_user(admin: httpx.Client, username: str, *roles: str) -> tuple[str, str]:
    """Create a user; returns (subject, the generated password)."""
    response = admin.post("/api/v1/users", json={"username": username, "roles": roles})
    response.raise_for_status()
    created = response.json()
    return created["subject"], created["password"]


def add_member(
    admin: httpx.Client, project_id: str, username: str, subject: str, role: str
) -> None:
    admin.post(
        f"/api/v1/projects/{project_id}/members",
        json={"subject": subject, "username": username, "role": role},
    ).raise_for_status()


def make_project(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = admin.post("/api/v1/projects", json=fields)
    assert response.status_code == 201, (response.status_code, response.text)
    project: dict[str, Any] = response.json()
    return project


def upload_texts(
    admin: httpx.Client, project_id: str, texts: dict[str, str]
) -> list[dict[str, Any]]:
    documents = []
    for name, text in texts.items():
        response = upload_file(admin, project_id, name, text.encode())
        assert response.status_code == 201, (response.status_code, response.text)
        documents.append(response.json())
    wait_for(
        lambda: (
            admin.get(f"/api/v1/projects/{project_id}/tasks").json()["total"]
            >= len(texts)
        ),
        timeout=60,
    )
    return documents


SIGN_IN_TIMEOUT_MS = 30_000


def sign_in(page: Page, strongroom: Strongroom, username: str, password: str) -> None:
    """Sign in as a person would: the page's button, then the built-in
    issuer's login page, which sends the browser back signed in."""
    open_login_page(page, strongroom)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")
    # Three redirects and a code exchange: more than a click on a busy machine.
    page.wait_for_url(f"{strongroom.url}/", timeout=SIGN_IN_TIMEOUT_MS)
    expect(page.locator("#who")).to_contain_text(username, timeout=SIGN_IN_TIMEOUT_MS)


def open_login_page(page: Page, strongroom: Strongroom) -> None:
    page.goto(strongroom.url)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oidc/authorize?**", timeout=SIGN_IN_TIMEOUT_MS)


def open_view(page: Page, project_name: str, view: str) -> None:
    """Press a project's Annotate, Review or Dashboard button in the list."""
    page.get_by_role("button", name=f"{view}: {project_name}", exact=True).click()


def drag_over(page: Page, container: str, words: str) -> None:
    """Select ``words`` in the container by dragging the mouse across them."""
    box = page.evaluate(
        """([selector, words]) => {
            const container = document.querySelector(selector);
            const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
            let text = "", nodes = [];
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                nodes.push([n, text.length]);
                text += n.textContent;
            }
            const at = text.indexOf(words);
            if (at < 0) return null;
            const locate = (offset) => {
                for (const [node, start] of nodes) {
                    if (offset <= start + node.textContent.length) {
                        return [node, offset - start];
                    }
                }
            };
            const range = document.createRange();
            range.setStart(...locate(at));
            range.setEnd(...locate(at + words.length));
            const rects = range.getClientRects();
            const first = rects[0], last = rects[rects.length - 1];
            return {x0: first.left + 1, y0: first.top + first.height / 2,
                    x1: last.right - 1, y1: last.top + last.height / 2};
        }""",
        [container, words],
    )
    assert box is not None, f"{words!r} is not in the task text"
    page.mouse.move(box["x0"], box["y0"])
    page.mouse.down()
    page.mouse.move(box["x1"], box["y1"], steps=6)
    page.mouse.up()


def caret_to(page: Page, word: str, limit: int = 60) -> None:
    """Move the keyboard caret word by word until it rests on ``word``."""
    page.locator("#task-text").focus()
    for _ in range(limit):
        page.keyboard.press("ArrowRight")
        if caret_text(page) == word:
            return
    raise AssertionError(f"the caret never reached {word!r}")


def caret_text(page: Page) -> str:
    text: str = page.evaluate(
        """() => Array.from(document.querySelectorAll("#task-text .caret"),
                            (n) => n.textContent).join("")"""
    )
    return text


def answer(
    client: httpx.Client,
    project_id: str,
    marks: list[tuple[str, str]],
    classes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Take the next task over the API and submit spans over the given words."""
    task: dict[str, Any] = client.post(
        f"/api/v1/projects/{project_id}/tasks/next"
    ).json()
    spans = []
    for words, label in marks:
        at = task["text"].index(words) + task["window_start"]
        spans.append({"start": at, "end": at + len(words), "label": label})
    client.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={"spans": spans, "classes": list(classes), "seconds": 3.0},
    ).raise_for_status()
    return task
