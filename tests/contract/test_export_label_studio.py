"""The Label Studio export against a real Label Studio: import, then export.

Starts Label Studio 1.23.2 (installed once into its own virtual environment
by ``benchmarks.labeling_queue``), creates a project with the emitted
``label_config.xml``, imports the emitted ``tasks.json`` through the import
API and reads the project back through the export API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.labeling_queue import LabelStudio
from tests.unit.test_export_formats import RECORDS, TEXT_VISIT, write

ADMIN = "admin@strongroom.example"
PASSWORD = "contract-only-password-1"


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    server = LabelStudio(tmp_path_factory.mktemp("label-studio"), ADMIN, PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(server: LabelStudio) -> httpx.Client:
    token = server.access_token(server.personal_token(ADMIN, PASSWORD, sign_up=False))
    return httpx.Client(
        base_url=server.url,
        timeout=120.0,
        headers={"authorization": f"Bearer {token}"},
    )


def _results(task: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        result
        for annotation in task["annotations"]
        for result in annotation["result"]
        if result["type"] == kind
    ]


def test_label_studio_imports_and_exports_the_tasks(
    label_studio: LabelStudio, tmp_path: Path
) -> None:
    write("label-studio", tmp_path)
    config = (tmp_path / "label-studio/label_config.xml").read_text("utf-8")
    written = json.loads((tmp_path / "label-studio/tasks.json").read_text("utf-8"))

    with _client(label_studio) as client:
        created = client.post(
            "/api/projects/", json={"title": "Export", "label_config": config}
        )
        assert created.status_code == 201, created.text
        project = created.json()["id"]
        imported = client.post(f"/api/projects/{project}/import", json=written)
        assert imported.status_code == 201, imported.text
        exported = client.get(
            f"/api/projects/{project}/export", params={"exportType": "JSON"}
        )
        assert exported.status_code == 200, exported.text
    tasks = sorted(exported.json(), key=lambda t: t["meta"]["strongroom"]["task_id"])
    by_task = {t["meta"]["strongroom"]["task_id"]: t for t in tasks}

    assert sorted(by_task) == sorted({r.task_id for r in RECORDS})
    visit = by_task["t1"]
    assert visit["data"]["text"] == TEXT_VISIT
    assert len(visit["annotations"]) == 2
    spans = [
        (
            r["value"]["start"],
            r["value"]["end"],
            r["value"]["text"],
            r["value"]["labels"],
        )
        for r in _results(visit, "labels")
    ]
    expected = [
        (s.start, s.end, TEXT_VISIT[s.start : s.end], [s.label])
        for record in RECORDS[:2]
        for s in record.spans
    ]
    assert sorted(spans) == sorted(expected)
    assert sorted(r["value"]["choices"] for r in _results(visit, "choices")) == [
        ["Routine"],
        ["Urgent", "Followup"],
    ]
    assert [r["labels"] for r in _results(visit, "relation")] == [["works_at"]]
    assert [r["value"]["text"] for r in _results(visit, "textarea")] == [["A visit."]]
    (box,) = _results(by_task["t2"], "rectanglelabels")
    assert box["value"]["rectanglelabels"] == ["signature"]
    assert box["value"]["x"] == pytest.approx(10.0)
