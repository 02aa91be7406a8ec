"""A data scientist takes a reviewed project out of Strongroom: builds signed
versions in every format over the CLI and REST, reads each with its own
library, hands the card and the verified manifest on, and finds every step
in the audit trail."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Strongroom, upload_file, wait_for

NOTES = {
    "note-1.txt": "Started aspirin for the chronic migraine.\n",
    "note-2.txt": "Ibuprofen eased the acute back pain.\n",
    "note-3.txt": "Metformin continued; the diabetes is stable.\n",
    "note-4.txt": "Paracetamol given for the fever overnight.\n",
    "note-5.txt": "Call (415) 555-0134: insulin dose raised for the diabetes.\n",
    "note-6.txt": "Amoxicillin for the chest infection, seven days.\n",
}
DRUGS = ("aspirin", "Ibuprofen", "Metformin", "Paracetamol", "insulin", "Amoxicillin")
EVERY_FORMAT = ("jsonl", "label-studio", "prodigy", "spacy", "conll", "parquet", "csv")


def _user(admin: httpx.Client, name: str, role: str) -> dict[str, Any]:
    made = admin.post("/api/v1/users", json={"username": name, "roles": [role]})
    made.raise_for_status()
    user: dict[str, Any] = made.json()
    return user


def _answer(client: httpx.Client, project_id: str, with_disease: bool) -> None:
    task = client.post(f"/api/v1/projects/{project_id}/tasks/next").json()
    text, start = task["text"], task["window_start"]
    drug = next(d for d in DRUGS if d in text)
    spans = [
        {
            "start": start + text.index(drug),
            "end": start + text.index(drug) + len(drug),
            "label": "DRUG",
        }
    ]
    if with_disease:
        found = re.search(r"the (?:\w+ )?(\w+)\W*$|the (\w+)", text)
        assert found is not None
        word = found.group(1) or found.group(2)
        at = text.rindex(word)
        spans.append(
            {"start": start + at, "end": start + at + len(word), "label": "DISEASE"}
        )
    client.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={"spans": spans, "classes": ["routine"], "seconds": 4.0},
    ).raise_for_status()


@pytest.fixture(scope="module")
def project(strongroom: Strongroom, admin: httpx.Client) -> dict[str, Any]:
    people = {
        "ann": _user(admin, "exp-ann", "annotator"),
        "ben": _user(admin, "exp-ben", "annotator"),
        "rev": _user(admin, "exp-rev", "reviewer"),
    }
    clients = {
        key: strongroom.client(strongroom.token(p["username"], p["password"]))
        for key, p in people.items()
    }
    made = admin.post(
        "/api/v1/projects",
        json={
            "name": "Medication notes",
            "schema": {
                "spans": [
                    {"name": "DRUG", "description": "A medicine"},
                    {"name": "DISEASE", "description": "A condition"},
                ],
                "classes": [{"name": "urgent"}, {"name": "routine"}],
            },
            "overlap": 2,
            "review": True,
            "guidelines": "Mark every medicine and the condition it treats.",
        },
    )
    assert made.status_code == 201, made.text
    project_id = made.json()["id"]
    for key, role in (("ann", "annotator"), ("ben", "annotator"), ("rev", "reviewer")):
        admin.post(
            f"/api/v1/projects/{project_id}/members",
            json={"username": people[key]["username"], "role": role},
        ).raise_for_status()
    for name, text in NOTES.items():
        response = upload_file(admin, project_id, name, text.encode())
        assert response.status_code == 201, response.text
    wait_for(
        lambda: (
            admin.get(f"/api/v1/projects/{project_id}/tasks").json()["total"]
            == len(NOTES)
        ),
        timeout=90,
    )
    for _ in NOTES:
        _answer(clients["ann"], project_id, with_disease=True)
        _answer(clients["ben"], project_id, with_disease=False)
    for _ in NOTES:
        review = clients["rev"].post(f"/api/v1/projects/{project_id}/reviews/next")
        assert review.status_code == 200, review.text
        body = review.json()
        chosen = next(
            a for a in body["annotations"] if a["annotator_name"] == "exp-ann"
        )
        clients["rev"].post(
            f"/api/v1/tasks/{body['task']['id']}/review",
            json={"decision": "accept", "annotation_id": chosen["id"]},
        ).raise_for_status()
    return {"id": project_id, "people": people, "clients": clients}


def _ready(admin: httpx.Client, export_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        export: dict[str, Any] = admin.get(f"/api/v1/exports/{export_id}").json()
        return export if export["state"] != "building" else None

    export: dict[str, Any] = wait_for(finished, timeout=180)
    return export


@pytest.fixture(scope="module")
def gold(
    strongroom: Strongroom,
    project: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The reviewed version, built and downloaded over the CLI."""
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
    out = tmp_path_factory.mktemp("exports")
    args = ["export", "create", "--project", project["id"], "--name", "gold-1"]
    for name in EVERY_FORMAT:
        args += ["--format", name]
    made = strongroom.cli(
        *args,
        "--gold-only",
        "--intended-use",
        "Train a medicine tagger for discharge notes.",
        "--out",
        str(out),
    )
    key = out / "export-key.pem"
    key.write_text(strongroom.cli("export", "key").stdout)
    return {"dir": out / "gold-1", "key": key, "output": made.stdout}


def test_the_cli_builds_downloads_and_verifies_a_signed_version(
    strongroom: Strongroom, gold: dict[str, Any]
) -> None:
    assert "Export gold-1" in gold["output"] and "6 record(s)" in gold["output"]
    verified = strongroom.cli(
        "export", "verify", str(gold["dir"]), "--public-key", str(gold["key"])
    )
    assert "signature good" in verified.stdout
    manifest = json.loads((gold["dir"] / "manifest.json").read_text())
    assert manifest["counts"]["records"] == 6
    assert manifest["filter"]["gold_only"] is True
    assert manifest["pipeline"]["redaction"]["model_versions"]
    assert manifest["pipeline"]["labeling"]["overlap"] == 2
    listed = {f["name"] for f in manifest["files"]}
    assert {"dataset-card.md", "dataset-card.json", "label-studio/tasks.json"} <= listed


def test_a_tampered_copy_fails_verification(
    strongroom: Strongroom, gold: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(gold["dir"], copy)
    target = next(copy.glob("jsonl/*.jsonl"))
    target.write_text(target.read_text().replace("DRUG", "DOSE", 1))
    failed = strongroom.cli(
        "export", "verify", str(copy), "--public-key", str(gold["key"]), check=False
    )
    assert failed.returncode == 1
    assert f"content differs: jsonl/{target.name}" in failed.stderr


def test_each_format_loads_in_its_own_library(
    gold: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import spacy
    from datasets import load_dataset
    from spacy.tokens import DocBin

    directory = gold["dir"]
    nlp = spacy.blank("en")
    docs = [
        doc
        for path in sorted(directory.glob("spacy/*/*.spacy"))
        for doc in DocBin().from_disk(path).get_docs(nlp.vocab)
    ]
    assert len(docs) == 6
    drugs = {ent.text for doc in docs for ent in doc.ents if ent.label_ == "DRUG"}
    assert drugs == set(DRUGS)
    assert all(doc.cats.get("routine") == 1.0 for doc in docs)

    files = {
        path.stem.split("-")[0]: str(path) for path in directory.glob("data/*.parquet")
    }
    loaded = load_dataset(
        "parquet", data_files=files, cache_dir=str(tmp_path / "cache")
    )
    assert sum(len(split) for split in loaded.values()) == 6

    conll = "".join(p.read_text() for p in directory.glob("conll/*.conll"))
    assert conll.count("B-DRUG") == 6 and "-DOCSTART-" in conll

    tasks = json.loads((directory / "label-studio" / "tasks.json").read_text())
    results = [r for t in tasks for a in t["annotations"] for r in a["result"]]
    spans = [r["value"] for r in results if r["type"] == "labels"]
    assert all(s["text"] in DRUGS or "DISEASE" in s["labels"] for s in spans)

    prodigy = [
        json.loads(line)
        for path in directory.glob("prodigy/*.jsonl")
        for line in path.read_text().splitlines()
    ]
    for example in prodigy:
        for span in example["spans"]:
            first = example["tokens"][span["token_start"]]
            assert first["start"] == span["start"]


def test_the_card_documents_the_data_without_people_or_text(
    gold: dict[str, Any], project: dict[str, Any]
) -> None:
    card = json.loads((gold["dir"] / "dataset-card.json").read_text())
    markdown = (gold["dir"] / "dataset-card.md").read_text()
    composition = card["composition"]
    assert composition["records"] == 6 and composition["documents"] == 6
    assert sum(composition["splits"].values()) == 6
    assert {row["name"]: row["count"] for row in composition["labels"]}["DRUG"] == 6
    assert card["motivation"]["intended_use"].startswith("Train a medicine tagger")
    assert card["collection"]["sources"]["media_types"] == {"text/plain": 6}
    assert card["preprocessing"]["redaction"]["counts_by_type"].get("PHONE") == 1
    assert card["preprocessing"]["review_coverage"] == 1.0
    assert card["annotators"]["count"] == 1, "gold answers, all from one reviewer"
    assert "## Known gaps and biases (Art. 10(2)(f), (g), (h))" in markdown
    everything = markdown + json.dumps(card)
    for person in project["people"].values():
        assert person["username"] not in everything
        assert person["subject"] not in everything
    assert "555-0134" not in everything and "(415)" not in everything
    assert "aspirin" not in everything, "the card counts, it never quotes"


def test_every_answer_goes_out_by_default_and_filters_narrow_it(
    admin: httpx.Client, project: dict[str, Any]
) -> None:
    everything = admin.post(f"/api/v1/projects/{project['id']}/exports", json={})
    assert everything.status_code == 202, everything.text
    assert everything.json()["state"] == "building"
    ready = _ready(admin, everything.json()["id"])
    assert ready["state"] == "ready", ready
    assert ready["annotation_count"] == 18, "12 answers and 6 gold"
    assert ready["progress_done"] == ready["progress_total"] == 6
    assert sum(ready["split_counts"].values()) == 18

    drugs = admin.post(
        f"/api/v1/projects/{project['id']}/exports",
        json={"formats": ["jsonl"], "filter": {"labels": ["DRUG"], "gold_only": True}},
    )
    ready = _ready(admin, drugs.json()["id"])
    lines = []
    for entry in ready["files"]:
        if entry["name"].startswith("jsonl/"):
            body = admin.get(f"/api/v1/exports/{ready['id']}/files/{entry['name']}")
            lines += body.text.splitlines()
    labels = {s["label"] for line in lines for s in json.loads(line)["spans"]}
    assert labels == {"DRUG"} and len(lines) == 6

    # The same document lands in the same split in every version.
    def splits_of(export: dict[str, Any]) -> dict[str, str]:
        found = {}
        for entry in export["files"]:
            if entry["name"].startswith("jsonl/"):
                text = admin.get(
                    f"/api/v1/exports/{export['id']}/files/{entry['name']}"
                ).text
                for line in text.splitlines():
                    record = json.loads(line)
                    found[record["document_id"]] = record["split"]
        return found

    assert splits_of(ready) == {
        d: s for d, s in splits_of(_ready(admin, everything.json()["id"])).items()
    }


def test_bad_requests_get_typed_refusals(
    admin: httpx.Client, project: dict[str, Any]
) -> None:
    url = f"/api/v1/projects/{project['id']}/exports"
    unknown = admin.post(url, json={"formats": ["xlsx"]})
    assert (unknown.status_code, unknown.json()["code"]) == (
        400,
        "export_format_unknown",
    )
    boxes = admin.post(url, json={"formats": ["coco"]})
    assert (boxes.status_code, boxes.json()["code"]) == (
        400,
        "export_format_unsuitable",
    )
    splits = admin.post(url, json={"splits": {"train": 0, "dev": 1, "test": 0}})
    assert (splits.status_code, splits.json()["code"]) == (400, "export_splits_invalid")
    taken = admin.post(url, json={"name": "gold-1"})
    assert (taken.status_code, taken.json()["code"]) == (409, "export_name_taken")
    annotator = project["clients"]["ann"].post(url, json={})
    assert annotator.status_code == 403
    missing = admin.get("/api/v1/exports/no-such-export")
    assert (missing.status_code, missing.json()["code"]) == (404, "export_not_found")


def test_building_and_downloading_are_in_the_audit_trail(
    strongroom: Strongroom,
    admin: httpx.Client,
    project: dict[str, Any],
    gold: dict[str, Any],
) -> None:
    audrey = _user(admin, "exp-audrey", "auditor")
    auditor = strongroom.client(strongroom.token("exp-audrey", audrey["password"]))

    def actions() -> set[str]:
        found = auditor.get(
            "/api/v1/audit/events",
            params={"project_id": project["id"], "limit": 500},
        ).json()["events"]
        return {e["action"] for e in found if e["action"].startswith("export.")}

    seen = wait_for(
        lambda: (
            a
            if {"export.create", "export.build", "export.download", "export.contents"}
            <= (a := actions())
            else None
        ),
        timeout=60,
    )
    assert "export.read" in seen


def test_spacy_trains_straight_from_the_exported_docbin(
    gold: dict[str, Any], tmp_path: Path
) -> None:
    import spacy
    from spacy.cli.init_config import init_config

    config = tmp_path / "config.cfg"
    init_config(lang="en", pipeline=["ner"], optimize="efficiency").to_disk(config)
    shards = gold["dir"] / "spacy"
    # Six documents may leave dev empty; train doubles as dev here.
    trained = subprocess.run(
        [
            sys.executable, "-m", "spacy", "train", str(config),
            "--output", str(tmp_path / "model"),
            "--paths.train", str(shards),
            "--paths.dev", str(shards),
            "--training.max_steps", "20",
            "--training.eval_frequency", "10",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    model = spacy.load(tmp_path / "model" / "model-last")
    assert set(model.get_pipe("ner").labels) == {"DRUG", "DISEASE"}


def test_boxes_on_a_scanned_page_export_as_coco_with_their_image(
    strongroom: Strongroom, admin: httpx.Client, tmp_path: Path
) -> None:
    from pycocotools.coco import COCO

    from tests.fixtures.ingestion import corpus

    made = admin.post(
        "/api/v1/projects",
        json={
            "name": "Scanned forms",
            "schema": {"boxes": [{"name": "STAMP"}, {"name": "SIGNATURE"}]},
        },
    )
    assert made.status_code == 201, made.text
    project_id = made.json()["id"]
    box_annotator = _user(admin, "exp-boxes", "annotator")
    admin.post(
        f"/api/v1/projects/{project_id}/members",
        json={"username": "exp-boxes", "role": "annotator"},
    ).raise_for_status()
    scan = corpus.image_bytes(
        corpus.scan_image(("Delivery note", "Received in good order")), "PNG"
    )
    upload_file(admin, project_id, "delivery.png", scan).raise_for_status()
    client = strongroom.client(strongroom.token("exp-boxes", box_annotator["password"]))

    def leased() -> dict[str, Any] | None:
        response = client.post(f"/api/v1/projects/{project_id}/tasks/next")
        task: dict[str, Any] = response.json()
        return task if response.status_code == 200 and task.get("pages") else None

    task = wait_for(leased, timeout=90, interval=0.5)
    page = task["pages"][0]
    client.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={
            "boxes": [
                {"page": page["page"], "x": 0.5, "y": 0.25, "width": 0.25,
                 "height": 0.5, "label": "SIGNATURE"},
            ]
        },
    ).raise_for_status()  # fmt: skip

    export = admin.post(
        f"/api/v1/projects/{project_id}/exports", json={"formats": ["coco"]}
    ).json()
    ready = _ready(admin, export["id"])
    assert ready["state"] == "ready", ready
    names = {f["name"] for f in ready["files"]}
    (coco_file,) = [n for n in names if n.startswith("coco/")]
    (image_name,) = [n for n in names if n.startswith("images/")]
    for name in (coco_file, image_name):
        body = admin.get(f"/api/v1/exports/{ready['id']}/files/{name}")
        assert body.status_code == 200
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(body.content)

    coco = COCO(str(tmp_path / coco_file))
    (image,) = coco.loadImgs(coco.getImgIds())
    assert image["file_name"] == image_name
    assert (image["width"], image["height"]) == (page["width"], page["height"])
    (box,) = coco.loadAnns(coco.getAnnIds())
    assert coco.loadCats(box["category_id"])[0]["name"] == "SIGNATURE"
    assert box["bbox"] == pytest.approx(
        [0.5 * page["width"], 0.25 * page["height"],
         0.25 * page["width"], 0.5 * page["height"]], abs=1
    )  # fmt: skip
    # The image is the redacted page the annotator saw.
    shown = admin.get(f"/api/v1/tasks/{task['id']}/pages/{page['page']}")
    assert shown.status_code == 200
    assert (tmp_path / image_name).read_bytes() == shown.content
