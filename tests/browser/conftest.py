from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import admin, strongroom  # noqa: F401  (one platform per module)
from tests.e2e.harness import Strongroom, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless and quiet: no sandbox as root in CI, and no calls home of any kind.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module", autouse=True)
def ready(strongroom: Strongroom) -> None:  # noqa: F811
    """Start each module once every service answers, as a person would find it."""
    wait_for(
        lambda: httpx.get(f"{strongroom.url}/readyz", timeout=10).status_code == 200,
        timeout=60,
        interval=0.2,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page that fails its test on a script error or anything the
    content security policy refused."""
    context = browser.new_context()
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield opened
    context.close()
    assert problems == []
