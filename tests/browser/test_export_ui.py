"""A manager builds a dataset version from the dashboard, watches it become
ready, reads its dataset card and downloads its signed manifest."""

from __future__ import annotations

import json
from pathlib import Path

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
from tests.e2e.harness import Strongroom

TEXTS = {
    "one.txt": "Salbutamol eased the chronic asthma.\n",
    "two.txt": "Budesonide was added for the asthma.\n",
}


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = make_project(
        admin,
        name="Inhaler notes",
        schema={"spans": [{"name": "DRUG", "description": "A medicine"}]},
        overlap=1,
        review=False,
    )
    passwords = {}
    for name, role in (("ex-manager", "manager"), ("ex-ann", "annotator")):
        subject, password = make_user(admin, name, role)
        add_member(admin, project["id"], name, subject, role)
        passwords[name] = password
    upload_texts(admin, project["id"], TEXTS)
    annotator = strongroom.client(strongroom.token("ex-ann", passwords["ex-ann"]))
    for _ in TEXTS:
        task = annotator.post(f"/api/v1/projects/{project['id']}/tasks/next").json()
        drug = next(w for w in ("Salbutamol", "Budesonide") if w in task["text"])
        at = task["text"].index(drug) + task["window_start"]
        annotator.post(
            f"/api/v1/tasks/{task['id']}/annotations",
            json={"spans": [{"start": at, "end": at + len(drug), "label": "DRUG"}]},
        ).raise_for_status()
    return {"project": project, "passwords": passwords}


def test_a_manager_builds_reads_and_downloads_a_version(
    strongroom: Strongroom, setup: dict, page: Page
) -> None:
    sign_in(page, strongroom, "ex-manager", setup["passwords"]["ex-manager"])
    open_view(page, "Inhaler notes", "Dashboard")
    page.get_by_text("Exports", exact=True).click()
    form = page.locator("#export-form")
    form.get_by_label("Version name").fill("first-look")
    form.get_by_label("spaCy DocBin").check()
    form.get_by_label("Intended use").fill("Try a medicine tagger.")
    form.get_by_role("button", name="Build version").click()
    expect(page.locator("#export-result")).to_have_text("Building first-look.")

    row = page.locator("#export-table tbody tr").filter(has_text="first-look")
    expect(row.locator("td").nth(1)).to_have_text("ready", timeout=60_000)
    expect(row.locator("td").nth(2)).to_have_text("2")

    row.get_by_role("button", name="Dataset card").click()
    card = page.locator("#export-card-text")
    expect(card).to_contain_text("# Dataset card: Inhaler notes, version first-look")
    expect(card).to_contain_text("Try a medicine tagger.")
    expect(card).to_contain_text("| span | DRUG | A medicine | 2 |")

    with page.expect_download() as downloading:
        row.get_by_role("button", name="Download manifest.json of first-look").click()
    manifest = json.loads(downloading.value.path().read_text())
    assert manifest["name"] == "first-look"
    assert manifest["formats"] == ["jsonl", "spacy"]
    assert manifest["counts"]["records"] == 2


def test_a_format_the_project_cannot_use_is_refused_in_the_page(
    strongroom: Strongroom, setup: dict, page: Page
) -> None:
    sign_in(page, strongroom, "ex-manager", setup["passwords"]["ex-manager"])
    open_view(page, "Inhaler notes", "Dashboard")
    page.get_by_text("Exports", exact=True).click()
    page.locator("#export-form").get_by_label("COCO").check()
    page.get_by_role("button", name="Build version").click()
    expect(page.locator("#export-result")).to_contain_text("'coco'")
    expect(page.locator("#export-result")).to_contain_text("box labels")


def test_a_manager_imports_a_prodigy_file_and_reads_the_report(
    strongroom: Strongroom, setup: dict, page: Page, tmp_path: Path
) -> None:
    text = "Formoterol was started for the asthma."
    lines = [
        {"text": text, "_annotator_id": "p-1", "answer": "accept",
         "spans": [{"start": 0, "end": 10, "label": "DRUG"}]},
        {"text": text, "_annotator_id": "p-2", "answer": "accept",
         "spans": [{"start": 31, "end": 37, "label": "DISEASE"}]},
    ]  # fmt: skip
    source = tmp_path / "news.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))

    sign_in(page, strongroom, "ex-manager", setup["passwords"]["ex-manager"])
    open_view(page, "Inhaler notes", "Dashboard")
    page.get_by_text("Import from another tool", exact=True).click()
    page.get_by_label("Export file").set_input_files(source)
    page.locator("#import-form").get_by_label("From").select_option("prodigy")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-result")).to_have_text(
        "Imported 1 item(s) as 1 document(s): 1 answer(s) from 1 annotator(s), "
        "0 suggestion(s).",
        timeout=90_000,
    )
    expect(page.locator("#import-left-out li")).to_contain_text(["Left out: 1"])
