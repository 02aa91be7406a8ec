"""A team moves in from Label Studio, Prodigy and Doccano: each file's texts
become redacted documents, its answers those of pseudonymous annotators, and
exporting again gives the same labels back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Strongroom, wait_for

TEXTS = [
    "Aspirin eased the chronic migraine.",
    "Metformin continued for the diabetes.",
    "Call (415) 555-0134 about the insulin dose.",
]


def _span(text: str, words: str, label: str, rid: str) -> dict[str, Any]:
    start = text.index(words)
    return {
        "id": rid,
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "value": {
            "start": start,
            "end": start + len(words),
            "text": words,
            "labels": [label],
        },
    }


def _label_studio_export() -> list[dict[str, Any]]:
    drugs = ["Aspirin", "Metformin", "insulin"]
    diseases = ["migraine", "diabetes", None]
    tasks = []
    for n, text in enumerate(TEXTS):
        results = [_span(text, drugs[n], "DRUG", f"d{n}")]
        if diseases[n]:
            results.append(_span(text, diseases[n], "DISEASE", f"c{n}"))
        results.append(
            {
                "from_name": "urgency",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["routine"]},
            }
        )
        tasks.append(
            {
                "id": 100 + n,
                "data": {"text": text},
                "annotations": [
                    {"id": 1, "completed_by": 7, "result": results},
                    {
                        "id": 2,
                        "completed_by": {"id": 8, "email": "second@example.org"},
                        "result": [
                            results[0],
                            {
                                "from_name": "stars",
                                "to_name": "text",
                                "type": "rating",
                                "value": {"rating": 4},
                            },
                        ],
                    },
                ],
                "predictions": [
                    {"model_version": "tagger-3", "result": [results[0]]},
                ],
            }
        )
    return tasks


@pytest.fixture(scope="module")
def manager(strongroom: Strongroom, admin: httpx.Client) -> dict[str, Any]:
    assert strongroom.admin_password
    strongroom.cli(
        "login",
        "--url",
        strongroom.url,
        "--username",
        "admin",
        "--password",
        strongroom.admin_password,
    )
    return {"admin": admin}


def _project(admin: httpx.Client, name: str) -> str:
    made = admin.post(
        "/api/v1/projects",
        json={
            "name": name,
            "schema": {
                "spans": [{"name": "DRUG"}, {"name": "DISEASE"}],
                "classes": [{"name": "urgent"}, {"name": "routine"}],
            },
            "overlap": 2,
        },
    )
    assert made.status_code == 201, made.text
    project_id: str = made.json()["id"]
    return project_id


def _export(admin: httpx.Client, project_id: str, name: str) -> dict[str, bytes]:
    made = admin.post(
        f"/api/v1/projects/{project_id}/exports", json={"formats": [name]}
    ).json()

    def ready() -> dict[str, Any] | None:
        export: dict[str, Any] = admin.get(f"/api/v1/exports/{made['id']}").json()
        return export if export["state"] == "ready" else None

    export = wait_for(ready, timeout=120)
    return {
        f["name"]: admin.get(
            f"/api/v1/exports/{export['id']}/files/{f['name']}"
        ).content
        for f in export["files"]
        if f["name"].startswith(f"{name}/")
    }


def _labels_by_text(tasks: list[dict[str, Any]]) -> dict[str, list[list[str]]]:
    """Per text, each answer's (span text, label) pairs, sorted."""
    found: dict[str, list[list[str]]] = {}
    for task in tasks:
        text = task["data"]["text"]
        for answer in task["annotations"]:
            pairs = sorted(
                f"{r['value']['text']}={r['value']['labels'][0]}"
                for r in answer["result"]
                if r["type"] == "labels"
            )
            found.setdefault(text, []).append(pairs)
    return {text: sorted(answers) for text, answers in found.items()}


def test_a_label_studio_export_comes_in_and_goes_back_out(
    strongroom: Strongroom, manager: dict[str, Any], tmp_path: Path
) -> None:
    admin = manager["admin"]
    project_id = _project(admin, "From Label Studio")
    source = tmp_path / "label-studio-export.json"
    source.write_text(json.dumps(_label_studio_export()))

    done = strongroom.cli(
        "import", "--project", project_id, "--format", "label-studio", str(source)
    )
    assert (
        "3 item(s), 3 document(s), 6 answer(s) from 2 annotator(s), "
        "3 suggestion(s)." in done.stdout
    )
    assert "Left out: 3 unsupported Label Studio result type: rating" in done.stdout

    tasks = admin.get(f"/api/v1/projects/{project_id}/tasks").json()["tasks"]
    assert len(tasks) == 3 and all(t["submitted"] == 2 for t in tasks)
    # The model's predictions wait in each task as its suggestions.
    for task in tasks:
        shown = admin.get(f"/api/v1/tasks/{task['id']}").json()
        assert [s["source"] for s in shown["suggestions"]] == ["import model:tagger-3"]
    exported = _export(admin, project_id, "label-studio")
    back = json.loads(exported["label-studio/tasks.json"])
    texts = {t["data"]["text"] for t in back}
    # The phone number was redacted on the way in, and the span after it moved.
    assert "Call [PHONE] about the insulin dose." in texts
    assert not any("555-0134" in t for t in texts)
    expected = _labels_by_text(_label_studio_export())
    expected["Call [PHONE] about the insulin dose."] = expected.pop(TEXTS[2])
    assert _labels_by_text(back) == expected
    annotators = {
        a["annotator"] for t in back for a in t["meta"]["strongroom"]["answers"]
    }
    assert len(annotators) == 2, "two people of the source, two pseudonyms"
    assert all(a.startswith("annotator-") for a in annotators)
    everything = json.dumps(back)
    assert "second@example.org" not in everything

    # Strongroom's own Label Studio file comes back in, though it names no one.
    again = tmp_path / "again.json"
    again.write_bytes(exported["label-studio/tasks.json"])
    second = _project(admin, "Back from Label Studio")
    done = strongroom.cli(
        "import", "--project", second, "--format", "label-studio", str(again)
    )
    assert "6 answer(s) from 2 annotator(s)" in done.stdout


def test_prodigy_and_doccano_files_come_in(
    strongroom: Strongroom, manager: dict[str, Any], tmp_path: Path
) -> None:
    admin = manager["admin"]
    project_id = _project(admin, "From Prodigy")
    text = TEXTS[0]
    lines = [
        {
            "text": text,
            "_input_hash": 11,
            "_annotator_id": "team-ann1",
            "answer": "accept",
            "spans": [{"start": 0, "end": 7, "label": "DRUG"}],
        },
        {
            "text": text,
            "_input_hash": 11,
            "_annotator_id": "team-ann2",
            "answer": "accept",
            "spans": [
                {"start": 0, "end": 7, "label": "DRUG"},
                {"start": 26, "end": 34, "label": "DISEASE"},
            ],
        },
        {"text": TEXTS[1], "_input_hash": 12, "answer": "reject", "spans": []},
    ]
    prodigy = tmp_path / "prodigy.jsonl"
    prodigy.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = strongroom.cli(
        "import", "--project", project_id, "--format", "prodigy", str(prodigy)
    )
    assert "2 answer(s) from 2 annotator(s)" in done.stdout
    assert "Left out: 1" in done.stdout and "reject" in done.stdout

    exported = _export(admin, project_id, "prodigy")
    examples = [
        json.loads(line)
        for body in exported.values()
        for line in body.decode().splitlines()
    ]
    assert sorted(
        sorted(text[s["start"] : s["end"]] + "=" + s["label"] for s in e["spans"])
        for e in examples
    ) == [["Aspirin=DRUG"], ["Aspirin=DRUG", "migraine=DISEASE"]]

    doccano_project = _project(admin, "From Doccano")
    doccano = tmp_path / "doccano.jsonl"
    doccano.write_text(
        json.dumps({"text": TEXTS[1], "label": [[0, 9, "DRUG"], [30, 38, "DISEASE"]]})
        + "\n"
    )
    done = strongroom.cli(
        "import", "--project", doccano_project, "--format", "doccano", str(doccano)
    )
    assert "1 item(s), 1 document(s), 1 answer(s)" in done.stdout


def test_unreadable_files_are_refused_with_their_reason(
    manager: dict[str, Any],
) -> None:
    admin = manager["admin"]
    project_id = _project(admin, "Refusals")
    url = f"/api/v1/projects/{project_id}/imports"
    broken = admin.post(
        url, data={"format": "label-studio"}, files={"file": ("x.json", b"[{")}
    )
    assert broken.status_code == 400
    assert broken.json()["code"] == "import_unreadable"
    unknown = admin.post(url, data={"format": "brat"}, files={"file": ("x", b"{}")})
    assert (unknown.status_code, unknown.json()["code"]) == (
        400,
        "import_format_unknown",
    )
    empty = admin.post(url, data={"format": "prodigy"}, files={"file": ("x", b"")})
    assert empty.status_code == 400
    missing = admin.get("/api/v1/imports/no-such-import")
    assert (missing.status_code, missing.json()["code"]) == (404, "import_not_found")
