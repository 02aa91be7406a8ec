"""The audit trail as an auditor meets it: search, lineage reports, proofs and
verification over REST and the CLI, and tampering found and named."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pypdfium2
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from strongroom.services.audit.domain import (
    GENESIS_HASH,
    ChainHead,
    chain_entry,
    entry_line,
    parse_line,
)
from strongroom.services.audit.merkle import verify_consistency
from tests.e2e.harness import Strongroom, isolated_env, wait_for

NOTE = "Visit on 03/14/2021 for Maria Lopez, phone (555) 201-3344.\n"


@pytest.fixture(scope="module")
def strongroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strongroom]:
    root = tmp_path_factory.mktemp("audit")
    env = isolated_env(
        root / "home",
        STRONGROOM_AUDIT_CHECKPOINT_INTERVAL_SECONDS="0.5",
        # Sign-in records are kept two seconds here, everything else for years.
        STRONGROOM_AUDIT_RETENTION_DAYS_BY_CATEGORY='{"auth": 0.000023}',
        STRONGROOM_AUDIT_EXPIRY_INTERVAL_SECONDS="0.5",
    )
    instance = Strongroom(data_dir=root / "data", env=env)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def trail(strongroom: Strongroom, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One document from upload to export, then an auditor's sign-in."""
    work = tmp_path_factory.mktemp("trail")
    assert strongroom.admin_password
    admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
    project = admin.post(
        "/api/v1/projects", json={"name": "Audited", "labels": ["PERSON"]}
    ).json()
    users = {
        name: admin.post(
            "/api/v1/users", json={"username": name, "roles": [role]}
        ).json()
        for name, role in (("ann", "annotator"), ("audrey", "auditor"))
    }
    admin.post(
        f"/api/v1/projects/{project['id']}/members",
        json={"username": "ann", "role": "annotator"},
    ).raise_for_status()
    note = work / "note.txt"
    note.write_text(NOTE)
    document = admin.post(
        f"/api/v1/projects/{project['id']}/documents",
        files={"file": ("note.txt", note.read_bytes(), "text/plain")},
    ).json()
    ann = strongroom.client(strongroom.token("ann", users["ann"]["password"]))
    task = wait_for(
        lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            ann.post(f"/api/v1/projects/{project['id']}/tasks/next")
        )
    )
    # The name reaches the annotator masked; the mask is what gets labelled.
    start = task["text"].index("[NAME]")
    ann.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={"spans": [{"start": start, "end": start + 6, "label": "PERSON"}]},
    ).raise_for_status()
    wait_for(
        lambda: admin.get(f"/api/v1/tasks/{task['id']}").json()["state"] == "completed"
    )
    export = admin.post(
        f"/api/v1/projects/{project['id']}/exports", json={"format": "jsonl"}
    ).json()
    assert ann.get("/api/v1/audit/events").status_code == 403
    audrey_token = strongroom.token("audrey", users["audrey"]["password"])
    strongroom.cli(
        "login",
        "--url",
        strongroom.url,
        "--username",
        "audrey",
        "--password",
        users["audrey"]["password"],
    )
    audrey = strongroom.client(audrey_token)
    # Wait until the export's contents are chained and a checkpoint seals them.
    wait_for(
        lambda: (
            audrey.get(
                "/api/v1/audit/events", params={"action": "export.contents"}
            ).json()["total"]
            == 1
        )
    )
    wait_for(lambda: audrey.get("/api/v1/audit/verify").json()["checkpoint_count"] >= 1)
    return {
        "admin": admin,
        "ann": ann,
        "audrey": audrey,
        "project": project,
        "document": document,
        "task": task,
        "export": export,
        "work": work,
    }


def test_lineage_tells_the_whole_story_of_one_document(trail: dict) -> None:
    document = trail["document"]["id"]
    story = trail["audrey"].get(f"/api/v1/audit/lineage/documents/{document}").json()

    actions = [event["action"] for event in story["events"]]
    for expected in (
        "document.ingest",
        "document.redact",
        "task.create",
        "task.lease",
        "annotation.submit",
        "export.contents",
    ):
        assert expected in actions, actions
    sequences = [event["sequence"] for event in story["events"]]
    assert sequences == sorted(sequences)
    lease = story["events"][actions.index("task.lease")]
    assert lease["actor"]["username"] == "ann"
    assert lease["actor"]["user_agent"].startswith("python-httpx/")
    contents = story["events"][actions.index("export.contents")]
    assert contents["resource"]["id"] == trail["export"]["id"]
    assert document in contents["documents"]
    assert not story["is_truncated"]


def test_search_filters_by_person_document_outcome_and_period(
    trail: dict, strongroom: Strongroom
) -> None:
    audrey, document = trail["audrey"], trail["document"]["id"]

    by_ann = audrey.get("/api/v1/audit/events", params={"username": "ann"}).json()
    denied = audrey.get(
        "/api/v1/audit/events", params={"outcome": "denied", "username": "ann"}
    ).json()
    on_doc = audrey.get(
        "/api/v1/audit/events", params={"document_id": document, "limit": 500}
    ).json()
    future = audrey.get(
        "/api/v1/audit/events", params={"since": "2999-01-01T00:00:00Z"}
    ).json()

    assert by_ann["total"] >= 3
    assert {e["actor"]["username"] for e in by_ann["events"]} == {"ann"}
    assert [e["action"] for e in denied["events"]] == ["rpc.SearchEvents"]
    assert all(
        document in e["documents"] or e["resource"]["id"] == document
        for e in on_doc["events"]
    )
    assert future["total"] == 0
    naive = audrey.get("/api/v1/audit/events", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 400
    assert naive.json()["code"] == "time_without_offset"

    listed = strongroom.cli("audit", "search", "--document", document)
    assert "document.ingest" in listed.stdout
    # The auditor's own searches on the document are part of its story too.
    count = int(listed.stdout.strip().splitlines()[-1].split()[0])
    assert count >= on_doc["total"]


def test_activity_report_of_one_person_as_json_html_and_pdf(
    trail: dict, strongroom: Strongroom
) -> None:
    work = trail["work"]
    activity = trail["audrey"].get("/api/v1/audit/activity/ann").json()
    assert {e["actor"]["username"] for e in activity["events"]} == {"ann"}
    assert "annotation.submit" in [e["action"] for e in activity["events"]]

    strongroom.cli(
        "audit", "activity", "ann", "--format", "html", "--output", str(work / "a.html")
    )
    page = (work / "a.html").read_text()
    assert page.startswith("<!doctype html>")
    assert "Activity of ann" in page and "annotation.submit" in page
    assert "Maria" not in page and "<script" not in page

    document = trail["document"]["id"]
    strongroom.cli(
        "audit", "lineage", document, "--format", "pdf", "--output", str(work / "l.pdf")
    )
    pdf = pypdfium2.PdfDocument(str(work / "l.pdf"))
    text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "document.ingest" in text and "export.contents" in text
    assert "Maria" not in text

    unknown = trail["audrey"].get("/api/v1/audit/activity/nobody-by-this-name")
    assert unknown.status_code == 404
    assert (
        trail["ann"].get(f"/api/v1/audit/lineage/documents/{document}").status_code
        == 403
    )


def test_auditors_read_the_trail_but_never_documents(trail: dict) -> None:
    audrey, document = trail["audrey"], trail["document"]["id"]

    assert audrey.get(f"/api/v1/documents/{document}/redaction").status_code == 403
    # In no project, the auditor is told the task does not exist.
    assert audrey.get(f"/api/v1/tasks/{trail['task']['id']}").status_code == 404
    original = audrey.get(
        f"/api/v1/documents/{document}/original", params={"reason": "audit"}
    )
    assert original.status_code == 403


def test_an_event_is_proven_included_under_a_signed_checkpoint(
    trail: dict, strongroom: Strongroom
) -> None:
    audrey = trail["audrey"]
    event = audrey.get(
        "/api/v1/audit/events", params={"action": "document.ingest"}
    ).json()["events"][0]
    key = strongroom.data_dir / "audit" / "signing-key.pub.pem"

    proved = strongroom.cli("audit", "prove", event["id"], "--public-key", str(key))

    assert f"Event {event['id']} (entry {event['sequence']}) is included" in (
        proved.stdout
    )
    proof = audrey.get(f"/api/v1/audit/events/{event['id']}/proof").json()
    assert proof["entry_hash"] == event["hash"]


def test_later_checkpoints_extend_earlier_ones(trail: dict) -> None:
    audrey = trail["audrey"]
    # Make sure there are two checkpoints to compare.
    first_count = audrey.get("/api/v1/audit/checkpoints").json()["checkpoints"]
    wait_for(
        lambda: (
            len(audrey.get("/api/v1/audit/checkpoints").json()["checkpoints"])
            > len(first_count)
        )
    )
    listed = audrey.get("/api/v1/audit/checkpoints").json()
    first, last = listed["checkpoints"][0], listed["checkpoints"][-1]
    key = load_pem_public_key(listed["public_key_pem"].encode())
    for checkpoint in (first, last):
        key.verify(  # type: ignore[union-attr,call-arg]
            base64.b64decode(checkpoint["signature"]), checkpoint["statement"].encode()
        )

    proof = audrey.get(
        "/api/v1/audit/consistency",
        params={"first": first["number"], "second": last["number"]},
    ).json()

    assert verify_consistency(
        first["tree_size"],
        last["tree_size"],
        bytes.fromhex(first["root_hash"]),
        bytes.fromhex(last["root_hash"]),
        [bytes.fromhex(node) for node in proof["proof"]],
    )


def _rewrite_from(lines: list[bytes], position: int) -> list[bytes]:
    """Change entry ``position``'s event and recompute every later hash, as
    someone with write access to the files but not the signing key would."""
    head = ChainHead(0, GENESIS_HASH)
    rewritten = []
    for number, line in enumerate(lines, start=1):
        parsed = parse_line(line)
        assert parsed is not None
        event = json.loads(parsed.event_json)
        if number == position:
            event["outcome"] = "success" if event["outcome"] != "success" else "error"
        entry = chain_entry(head, event)
        rewritten.append(entry_line(entry) if number >= position else line)
        head = ChainHead(number, parsed.hash if number < position else entry["hash"])
    return rewritten


def test_verify_finds_a_recomputed_chain_and_names_the_entry(
    trail: dict, strongroom: Strongroom, tmp_path: Path
) -> None:
    passed = strongroom.cli("audit", "verify", "--data-dir", str(strongroom.data_dir))
    assert "signed checkpoints" in passed.stdout and "intact" in passed.stdout

    copy = tmp_path / "copy"
    shutil.copytree(strongroom.data_dir / "audit", copy / "audit")
    shutil.copytree(strongroom.data_dir / "objects", copy / "objects")
    chain = copy / "audit" / "chain.jsonl"
    lines = chain.read_bytes().splitlines(keepends=True)
    chain.write_bytes(b"".join(_rewrite_from(lines, 3)))

    failed = strongroom.cli("audit", "verify", "--data-dir", str(copy), check=False)

    assert failed.returncode == 1
    assert "DAMAGED at entry 3 (changed)" in failed.stderr
    assert "found against the archive of checkpoint" in failed.stderr


def test_expired_events_leave_the_trail_and_their_expiry_is_audited(
    trail: dict, strongroom: Strongroom
) -> None:
    audrey = trail["audrey"]

    expiries = wait_for(
        lambda: audrey.get(
            "/api/v1/audit/events", params={"action": "audit.expire"}
        ).json()["events"],
        timeout=30,
    )
    wait_for(
        lambda: (
            audrey.get("/api/v1/audit/events", params={"action": "auth.login"}).json()[
                "total"
            ]
            == 0
        ),
        timeout=30,
    )

    assert int(expiries[0]["details"]["events"]) >= 1
    lines = (strongroom.data_dir / "audit" / "chain.jsonl").read_bytes().splitlines()
    dropped = [line for line in lines if b'"event":null' in line]
    assert dropped and all(b"auth.login" not in line for line in dropped)
    assert any(b"task.lease" in line for line in lines)  # kept for years
    verified = audrey.get("/api/v1/audit/verify").json()
    assert verified["is_intact"], verified
