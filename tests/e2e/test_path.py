"""The whole path, across separate processes, as an admin and an annotator meet it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import httpx
import pytest
from reportlab.pdfgen import canvas

from tests.e2e.harness import Strongroom, signed_in_user, wait_for

NOTE = (
    "Patient Maria Lopez (MRN 4471) called from (555) 201-3344 on 03/14/2021.\n"
    "E-mail maria.lopez@example.org, SSN 219-09-9999. Diagnosis: type 2 diabetes.\n"
)
PDF_LINES = [
    "Referral for James Carter, born July 4, 1961.",
    "Contact: j.carter@clinic.example, 555-987-6543.",
]
SECRETS = [
    "(555) 201-3344",
    "03/14/2021",
    "maria.lopez@example.org",
    "219-09-9999",
    "July 4, 1961",
    "j.carter@clinic.example",
    "555-987-6543",
]


def make_pdf(path: Path) -> None:
    pdf = canvas.Canvas(str(path))
    for index, line in enumerate(PDF_LINES):
        pdf.drawString(72, 720, line)
        if index < len(PDF_LINES) - 1:
            pdf.showPage()
    pdf.save()


@pytest.fixture(scope="module")
def journey(strongroom: Strongroom, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Drive the path once; the tests below check what it left behind."""
    work = tmp_path_factory.mktemp("journey")
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
    admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))

    project = admin.post(
        "/api/v1/projects",
        json={"name": "Clinical notes", "labels": ["PERSON", "ORG", "DIAGNOSIS"]},
    ).json()
    annotator = admin.post(
        "/api/v1/users", json={"username": "ann", "roles": ["annotator"]}
    ).json()
    admin.post(
        f"/api/v1/projects/{project['id']}/members",
        json={"username": "ann", "role": "annotator"},
    ).raise_for_status()

    note, pdf = work / "note.txt", work / "referral.pdf"
    note.write_text(NOTE)
    make_pdf(pdf)
    ingested = strongroom.cli("ingest", "--project", project["id"], str(note), str(pdf))

    tasks = wait_for(
        lambda: (lambda r: r if r["total"] == 2 else None)(
            admin.get(f"/api/v1/projects/{project['id']}/tasks").json()
        )
    )
    ann = strongroom.client(strongroom.token("ann", annotator["password"]))
    seen = []
    for _ in range(2):
        task = ann.post(f"/api/v1/projects/{project['id']}/tasks/next").json()
        seen.append(task)
        text = task["text"]
        start = text.index("diabetes") if "diabetes" in text else text.index("Referral")
        word = "diabetes" if "diabetes" in text else "Referral"
        label = "DIAGNOSIS" if word == "diabetes" else "ORG"
        response = ann.post(
            f"/api/v1/tasks/{task['id']}/annotations",
            json={
                "spans": [{"start": start, "end": start + len(word), "label": label}]
            },
        )
        assert response.status_code == 201, response.text

    wait_for(
        lambda: all(
            t["state"] == "completed"
            for t in admin.get(f"/api/v1/projects/{project['id']}/tasks").json()[
                "tasks"
            ]
        )
    )
    out = work / "exports"
    exported = strongroom.cli(
        "export", "create", "--project", project["id"], "--out", str(out)
    )
    return {
        "project": project,
        "admin": admin,
        "ann": ann,
        "tasks": tasks,
        "seen": seen,
        "export_dir": out / "v1",
        "ingest_output": ingested.stdout,
        "export_output": exported.stdout,
        "annotator": annotator,
    }


def test_both_files_become_documents_with_offsets(journey: dict) -> None:
    lines = journey["ingest_output"].splitlines()
    assert [line.split(":")[0] for line in lines] == ["note.txt", "referral.pdf"]
    admin, project = journey["admin"], journey["project"]
    documents = admin.get(f"/api/v1/projects/{project['id']}/documents").json()
    by_type = {d["media_type"]: d for d in documents["documents"]}
    assert set(by_type) == {"text/plain", "application/pdf"}
    assert by_type["text/plain"]["text_length"] == len(NOTE)
    pdf = by_type["application/pdf"]
    assert [p["number"] for p in pdf["pages"]] == [1, 2]
    assert pdf["pages"][0]["end"] <= pdf["pages"][1]["start"]
    assert pdf["parser"] == "pdfium"


def test_annotator_sees_redacted_text_only(journey: dict) -> None:
    texts = [task["text"] for task in journey["seen"]]
    assert len(texts) == 2
    joined = "\n".join(texts)
    for secret in SECRETS:
        assert secret not in joined
    for marker in ("[EMAIL]", "[PHONE]", "[US_SSN]", "[DATE]", "[NAME]", "[MRN]"):
        assert marker in joined
    for name in ("Maria Lopez", "James Carter"):
        assert name not in joined


def test_redaction_report_counts_without_values(journey: dict) -> None:
    admin, project = journey["admin"], journey["project"]
    documents = admin.get(f"/api/v1/projects/{project['id']}/documents").json()
    note = next(d for d in documents["documents"] if d["media_type"] == "text/plain")
    report = admin.get(f"/api/v1/documents/{note['id']}/redaction").json()
    assert report["counts_by_type"] == {
        "NAME": 1,
        "MRN": 1,
        "PHONE": 1,
        "DATE": 1,
        "EMAIL": 1,
        "US_SSN": 1,
    }
    identifiers = [*SECRETS, "Maria Lopez", "4471"]
    for finding in report["findings"]:
        assert NOTE[finding["start"] : finding["end"]] in identifiers
    assert not any(secret in json.dumps(report) for secret in identifiers)


def test_export_files_match_manifest(journey: dict) -> None:
    directory: Path = journey["export_dir"]
    manifest = json.loads((directory / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (directory / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["size_bytes"]
    records = [
        json.loads(line)
        for path in sorted(directory.glob("jsonl/*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert manifest["counts"]["records"] == len(records) == 2
    for record in records:
        for span in record["spans"]:
            assert record["text"][span["start"] : span["end"]] in (
                "diabetes",
                "Referral",
            )
        assert not any(secret in record["text"] for secret in SECRETS)


def test_opening_an_original_needs_its_role_and_a_reason(
    strongroom: Strongroom, journey: dict
) -> None:
    admin, ann, project = journey["admin"], journey["ann"], journey["project"]
    documents = admin.get(f"/api/v1/projects/{project['id']}/documents").json()
    note = next(d for d in documents["documents"] if d["media_type"] == "text/plain")
    path = f"/api/v1/documents/{note['id']}/original"
    custodian = signed_in_user(strongroom, admin, "custodian", ["original_reader"])

    # Running the installation is not enough: the role is granted apart.
    refused = admin.get(path, params={"reason": "curious"})
    assert (refused.status_code, refused.json()["code"]) == (403, "role_required")
    assert ann.get(path, params={"reason": "curious"}).status_code == 403
    assert custodian.get(path).json()["code"] == "reason_required"
    opened = custodian.get(path, params={"reason": "Subject access request 17"})
    assert opened.status_code == 200
    assert opened.content == NOTE.encode()

    def audited() -> dict | None:
        events = admin.get(
            "/api/v1/audit/events",
            params={"action": "document.original.read", "resource_id": note["id"]},
        ).json()
        return events["events"][0] if events["events"] else None

    event = wait_for(audited)
    assert event["reason"] == "Subject access request 17"
    assert event["actor"]["username"] == "custodian"


def test_second_annotation_of_a_task_is_refused(journey: dict) -> None:
    task = journey["seen"][0]
    response = journey["ann"].post(
        f"/api/v1/tasks/{task['id']}/annotations", json={"spans": []}
    )
    assert response.status_code == 403  # the lease ended with the first submission
    assert response.headers["content-type"] == "application/problem+json"


def test_every_step_is_in_the_audit_trail(
    journey: dict, strongroom: Strongroom
) -> None:
    admin = journey["admin"]
    expected = {
        "user.create",
        "auth.login",
        "project.create",
        "project.member.add",
        "document.ingest",
        "document.redact",
        "task.create",
        "task.lease",
        "task.read",
        "annotation.submit",
        "task.complete",
        "export.create",
        "export.download",
        "document.list",
        "redaction.report.read",
    }

    def actions() -> set[str] | None:
        found = admin.get("/api/v1/audit/events", params={"limit": 500}).json()
        names = {event["action"] for event in found["events"]}
        return names if expected <= names else None

    wait_for(actions)
    assert journey["ann"].get("/api/v1/audit/events").status_code == 403
    wait_for(
        lambda: any(
            e["outcome"] == "denied" and e["actor"]["username"] == "ann"
            for e in admin.get(
                "/api/v1/audit/events", params={"action": "rpc.SearchEvents"}
            ).json()["events"]
        )
    )


def test_audit_verify_passes_then_finds_tampering(
    journey: dict, strongroom: Strongroom, tmp_path: Path
) -> None:
    passed = strongroom.cli("audit", "verify", "--data-dir", str(strongroom.data_dir))
    assert "intact" in passed.stdout

    copy = tmp_path / "copy"
    shutil.copytree(strongroom.data_dir / "audit", copy / "audit")
    chain = copy / "audit" / "chain.jsonl"
    lines = chain.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 10
    tampered = bytearray(b"".join(lines))
    offset = sum(len(line) for line in lines[:6]) + 40  # inside entry 7
    tampered[offset] ^= 0x01
    chain.write_bytes(bytes(tampered))
    failed = strongroom.cli("audit", "verify", "--data-dir", str(copy), check=False)
    assert failed.returncode == 1
    assert "DAMAGED at entry 7" in failed.stderr

    chain.write_bytes(b"".join(lines[:3] + lines[4:]))
    failed = strongroom.cli("audit", "verify", "--data-dir", str(copy), check=False)
    assert failed.returncode == 1
    assert "DAMAGED at entry 4" in failed.stderr


def test_logs_hold_no_personal_data(journey: dict, strongroom: Strongroom) -> None:
    logs = strongroom.logs() + "".join(strongroom.output)
    for secret in [*SECRETS, "Maria Lopez", "James Carter", "diabetes"]:
        assert secret not in logs
    assert journey["annotator"]["password"] not in logs


def test_metrics_and_health_are_served(journey: dict, strongroom: Strongroom) -> None:
    assert httpx.get(f"{strongroom.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{strongroom.url}/readyz").json() == {"status": "ready"}
    metrics = httpx.get(f"{strongroom.url}/metrics").text
    assert 'strongroom_http_requests_total{method="POST",route="/oidc/token"' in metrics
    spec = httpx.get(f"{strongroom.url}/openapi.json").json()
    assert "/api/v1/projects/{project_id}/documents" in spec["paths"]
    assert httpx.get(f"{strongroom.url}/docs").status_code == 404  # no CDN-hosted page
