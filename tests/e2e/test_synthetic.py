"""Synthetic examples as a manager meets them: made over REST and the CLI,
never queued, marked in every export format, only ever in train, and
counted in the dataset card."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import spacy
from spacy.tokens import DocBin

from tests.e2e.harness import Strongroom, upload_file, wait_for

DRUGS = ["aspirin", "ibuprofen", "metformin", "warfarin", "atenolol"]
FORMATS = ["jsonl", "conll", "prodigy", "spacy", "parquet", "label-studio"]


@pytest.fixture(scope="module")
def project(strongroom: Strongroom, admin: httpx.Client) -> dict[str, Any]:
    created = admin.post(
        "/api/v1/projects", json={"name": "Synthetic", "labels": ["DRUG"]}
    )
    created.raise_for_status()
    project: dict[str, Any] = created.json()
    password = admin.post(
        "/api/v1/users", json={"username": "syn-ann", "roles": ["annotator"]}
    ).json()["password"]
    admin.post(
        f"/api/v1/projects/{project['id']}/members",
        json={"username": "syn-ann", "role": "annotator"},
    ).raise_for_status()
    for n, drug in enumerate(DRUGS):
        note = f"Day {n}: the patient takes {drug} every morning.\n".encode()
        assert upload_file(admin, project["id"], f"n{n}.txt", note).status_code == 201
    wait_for(
        lambda: (
            admin.get(f"/api/v1/projects/{project['id']}/tasks").json()["total"]
            == len(DRUGS)
        ),
        timeout=90,
    )
    ann = strongroom.client(strongroom.token("syn-ann", password))
    for _ in DRUGS:
        task = ann.post(f"/api/v1/projects/{project['id']}/tasks/next").json()
        text = task["text"]
        drug = next(d for d in DRUGS if d in text)
        start = task["window_start"] + text.index(drug)
        ann.post(
            f"/api/v1/tasks/{task['id']}/annotations",
            json={
                "spans": [{"start": start, "end": start + len(drug), "label": "DRUG"}]
            },
        ).raise_for_status()
    project["ann"] = ann
    return project


@pytest.fixture(scope="module")
def synthesized(admin: httpx.Client, project: dict[str, Any]) -> dict[str, Any]:
    made = admin.post(
        f"/api/v1/projects/{project['id']}/synthetic",
        json={"method": "entity_swap", "count": 4, "seed": 11},
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def _export(
    admin: httpx.Client, project_id: str, name: str, **filters: bool
) -> dict[str, Any]:
    created = admin.post(
        f"/api/v1/projects/{project_id}/exports",
        json={"name": name, "formats": FORMATS, "filter": filters},
    )
    assert created.status_code == 202, created.text

    def ready() -> dict[str, Any] | None:
        export: dict[str, Any] = admin.get(
            f"/api/v1/exports/{created.json()['id']}"
        ).json()
        return export if export["state"] != "building" else None

    export: dict[str, Any] = wait_for(ready, timeout=180)
    assert export["state"] == "ready", export
    return export


def _file(admin: httpx.Client, export: dict[str, Any], name: str) -> bytes:
    response = admin.get(f"/api/v1/exports/{export['id']}/files/{name}")
    response.raise_for_status()
    return response.content


def _names(export: dict[str, Any], prefix: str) -> list[str]:
    return [f["name"] for f in export["files"] if f["name"].startswith(prefix)]


def test_synthetic_examples_are_tasks_marked_and_never_queued(
    admin: httpx.Client, project: dict[str, Any], synthesized: dict[str, Any]
) -> None:
    assert synthesized["sources"] == len(DRUGS)
    assert len(synthesized["task_ids"]) == 4
    tasks = admin.get(f"/api/v1/projects/{project['id']}/tasks").json()["tasks"]
    real = {t["id"] for t in tasks if not t["synthetic"]}
    made = [t for t in tasks if t["synthetic"]]
    assert {t["id"] for t in made} == set(synthesized["task_ids"])
    for task in made:
        assert task["synthetic"] == "entity_swap"
        assert task["synthetic_source_task_id"] in real
        assert task["state"] == "completed"
    nothing = project["ann"].post(f"/api/v1/projects/{project['id']}/tasks/next")
    assert nothing.status_code == 404
    stats = admin.get(f"/api/v1/projects/{project['id']}/stats").json()
    assert all("synthetic" not in a["username"] for a in stats["annotators"])


def test_every_format_marks_them_and_keeps_them_in_train(
    admin: httpx.Client, project: dict[str, Any], synthesized: dict[str, Any]
) -> None:
    export = _export(admin, project["id"], "with-synthetic")
    ids = set(synthesized["task_ids"])

    records = [
        json.loads(line)
        for name in _names(export, "jsonl/")
        for line in _file(admin, export, name).decode().splitlines()
    ]
    flagged = [r for r in records if r["synthetic"]]
    assert {r["task_id"] for r in flagged} == ids
    assert {r["split"] for r in flagged} == {"train"}
    for record in flagged:
        (span,) = record["spans"]
        assert record["text"][span["start"] : span["end"]] in DRUGS

    prodigy = [
        json.loads(line)
        for name in _names(export, "prodigy/")
        for line in _file(admin, export, name).decode().splitlines()
    ]
    assert sum(1 for r in prodigy if r["meta"]["synthetic"]) == len(ids)

    tasks = json.loads(_file(admin, export, "label-studio/tasks.json"))
    marked = [
        answer
        for task in tasks
        for answer in task["meta"]["strongroom"]["answers"]
        if answer["synthetic"]
    ]
    assert len(marked) == len(ids)

    rows = [
        row
        for name in _names(export, "data/")
        for row in pq.read_table(io.BytesIO(_file(admin, export, name))).to_pylist()
    ]
    assert sum(row["synthetic"] for row in rows) == len(ids)

    nlp = spacy.blank("en")
    docs = [
        doc
        for name in _names(export, "spacy/")
        for doc in DocBin().from_bytes(_file(admin, export, name)).get_docs(nlp.vocab)
    ]
    assert sum(d.user_data["strongroom"]["synthetic"] for d in docs) == len(ids)

    assert _names(export, "conll/train-synthetic.conll")
    conll = _file(admin, export, "conll/train-synthetic.conll").decode()
    assert conll.count("-DOCSTART-") == len(ids)

    card = json.loads(_file(admin, export, "dataset-card.json"))
    assert card["composition"]["synthetic_records"] == len(ids)


def test_synthetic_examples_can_be_left_out(
    admin: httpx.Client, project: dict[str, Any], synthesized: dict[str, Any]
) -> None:
    export = _export(admin, project["id"], "real-only", exclude_synthetic=True)
    assert export["annotation_count"] == len(DRUGS)


def test_the_cli_makes_them_and_refusals_say_why(
    strongroom: Strongroom, admin: httpx.Client, project: dict[str, Any]
) -> None:
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
    made = strongroom.cli(
        "synthesize", "--project", project["id"], "--method", "template", "--count", "2"
    )
    assert "Made 2 synthetic example(s) from 5 real one(s)." in made.stdout

    refused = admin.post(
        f"/api/v1/projects/{project['id']}/synthetic",
        json={"method": "tabular", "count": 2},
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "synthesis_unsupported"

    def audited() -> bool:
        runs = admin.get(
            "/api/v1/audit/events", params={"action": "synthesis.run"}
        ).json()["events"]
        refusals = admin.get(
            "/api/v1/audit/events", params={"action": "rpc.Synthesize"}
        ).json()["events"]
        return len(runs) >= 2 and bool(refusals)

    wait_for(audited, timeout=30)
