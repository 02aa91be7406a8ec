"""Every format into tasks, every hostile file refused: through REST and the CLI."""

from __future__ import annotations

import functools
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Strongroom, upload_file, wait_for
from tests.fixtures.ingestion import corpus

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
# Phrases from the fixtures; a bare number would also match times and ids.
SECRETS = [
    "Grace Hopper",
    "Alan Turing",
    "Mary Seacole",
    "Ada Lovelace",
    "NUMBER 4471",
    "thirty days",
]


@functools.cache
def good_files() -> dict[str, tuple[bytes, str]]:
    """Each file with the media type ingestion must detect for it."""
    return {
        "review.docx": (corpus.word_document(), DOCX),
        "staff.xlsx": (corpus.workbook(), XLSX),
        "roadmap.pptx": (corpus.presentation(), PPTX),
        "policy.html": (corpus.HTML_PAGE, "text/html"),
        "contract.eml": (
            corpus.email_with_attachment(
                corpus.text_pdf([["Contract signed by both parties"]]), "signed.pdf"
            ),
            "message/rfc822",
        ),
        "people.csv": (corpus.CSV_TABLE.encode(), "text/csv"),
        "wards.jsonl": (corpus.jsonl_records(), "application/jsonl"),
        "bundle.zip": (
            corpus.zip_of({"minutes.md": b"# Minutes\n\nAll agreed.\n"}),
            "application/zip",
        ),
        "invoice.png": (corpus.image_bytes(corpus.scan_image(), "PNG"), "image/png"),
        "scan.pdf": (corpus.scanned_pdf(), "application/pdf"),
    }


def hostile_files() -> dict[str, tuple[bytes, int, str]]:
    """Each file with the HTTP status and code its refusal must carry."""
    return {
        "backup.zip": (corpus.zip_bomb(), 413, "archive_expansion_exceeded"),
        "laughs.docx": (corpus.entity_attack_docx(), 400, "document_unsafe"),
        "xxe.docx": (corpus.entity_attack_docx("xxe"), 400, "document_unsafe"),
        "sealed.pdf": (corpus.encrypted_pdf(), 400, "document_encrypted"),
        "sheet.xlsx": (
            corpus.damaged_zip_part(corpus.workbook(), "xl/workbook.xml"),
            400,
            "document_corrupt",
        ),
        "deep.zip": (corpus.nested_zip(5), 413, "archive_too_deep"),
    }


@pytest.fixture(scope="module")
def project(admin: httpx.Client) -> dict:
    response = admin.post("/api/v1/projects", json={"name": "Formats", "labels": ["X"]})
    assert response.status_code == 201
    return response.json()


def upload(
    admin: httpx.Client, project: dict, name: str, data: bytes
) -> httpx.Response:
    return upload_file(admin, project["id"], name, data)


@pytest.fixture(scope="module")
def ingested(admin: httpx.Client, project: dict) -> dict[str, dict]:
    documents = {}
    for name, (data, media_type) in good_files().items():
        response = upload(admin, project, name, data)
        assert response.status_code == 201, (name, response.text)
        documents[name] = response.json()
        assert documents[name]["media_type"] == media_type, name
    return documents


def test_every_format_becomes_documents_and_tasks(
    admin: httpx.Client, project: dict, ingested: dict[str, dict]
) -> None:
    listed = admin.get(
        f"/api/v1/projects/{project['id']}/documents", params={"limit": 500}
    ).json()["documents"]
    labelled = [d for d in listed if not d["is_container"]]
    # Containers (the CSV, JSONL and ZIP files) are not queued; their rows,
    # records and entries are, as is the e-mail and its attachment.
    containers = {d["id"] for d in listed if d["is_container"]}
    assert containers == {
        ingested[n]["id"] for n in ("people.csv", "wards.jsonl", "bundle.zip")
    }
    assert len(labelled) == 7 + 1 + 2 + 2 + 1

    tasks = wait_for(
        lambda: (lambda r: r if r["total"] == len(labelled) else None)(
            admin.get(f"/api/v1/projects/{project['id']}/tasks").json()
        ),
        timeout=60,
    )
    assert {t["document_id"] for t in tasks["tasks"]} == {d["id"] for d in labelled}


def test_structure_counts_and_artefact_describe_the_document(
    admin: httpx.Client, ingested: dict[str, dict]
) -> None:
    review = admin.get(f"/api/v1/documents/{ingested['review.docx']['id']}").json()
    assert review["structure"]["table_count"] == 1
    assert review["structure"]["block_count"] == 6
    assert review["structure"]["language"] == "en"
    assert review["parser"] == "python-docx"

    artefact = admin.get(f"/api/v1/documents/{review['id']}/structure").json()
    (table,) = artefact["tables"]
    assert (table["rows"], table["columns"]) == (3, 2)
    assert artefact["metadata"]["source_name"] == "review.docx"
    assert artefact["metadata"]["sha256"] == review["sha256"]
    assert "Quarterly" not in str(review)


def test_scans_carry_ocr_provenance_and_page_images(
    admin: httpx.Client, ingested: dict[str, dict]
) -> None:
    scan = ingested["scan.pdf"]
    (page,) = scan["pages"]
    assert page["source"] == "ocr" and len(page["image_sha256"]) == 64
    assert scan["ocr_engine"].startswith("tesseract")
    assert scan["structure"]["ocr_page_count"] == 1
    artefact = admin.get(f"/api/v1/documents/{scan['id']}/structure").json()
    confidences = [s[-1] for s in artefact["segments"]]
    assert confidences and all(0 <= c <= 1 for c in confidences)


def test_children_point_at_their_parent(
    admin: httpx.Client, ingested: dict[str, dict]
) -> None:
    mail = ingested["contract.eml"]
    (child_id,) = mail["child_ids"]
    child = admin.get(f"/api/v1/documents/{child_id}").json()
    assert child["parent_id"] == mail["id"]
    assert child["media_type"] == "application/pdf"
    people = ingested["people.csv"]
    assert people["structure"]["child_count"] == 2
    rows = [admin.get(f"/api/v1/documents/{i}").json() for i in people["child_ids"]]
    assert all(r["parent_id"] == people["id"] for r in rows)


def test_a_reupload_is_recognised_recorded_and_not_parsed_again(
    admin: httpx.Client, project: dict, ingested: dict[str, dict]
) -> None:
    data, _ = good_files()["review.docx"]

    again = upload(admin, project, "copy.docx", data).json()

    assert again["is_duplicate"] and again["id"] == ingested["review.docx"]["id"]
    events = wait_for(
        lambda: admin.get(
            "/api/v1/audit/events", params={"action": "document.reupload"}
        ).json()["events"]
    )
    assert events[0]["resource"]["id"] == again["id"]


@pytest.mark.parametrize("name", list(hostile_files()))
def test_hostile_file_is_refused_with_a_typed_problem(
    admin: httpx.Client, project: dict, name: str
) -> None:
    data, status, code = hostile_files()[name]

    response = upload(admin, project, name, data)

    assert response.status_code == status, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == code
    assert name not in problem["detail"]


def test_refusals_are_quarantined_audited_and_harmless(
    admin: httpx.Client, project: dict, strongroom: Strongroom
) -> None:
    for name, (data, _, _) in hostile_files().items():
        upload(admin, project, name, data)

    quarantined = admin.get(f"/api/v1/projects/{project['id']}/quarantine").json()
    codes = {f["code"] for f in quarantined["files"]}
    assert {code for _, _, code in hostile_files().values()} <= codes
    assert all(f["is_stored"] and len(f["sha256"]) == 64 for f in quarantined["files"])

    def audited() -> set[str] | None:
        events = admin.get(
            "/api/v1/audit/events",
            params={"action": "document.quarantine", "limit": 200},
        ).json()["events"]
        reasons = {e["reason"] for e in events if e["outcome"] == "denied"}
        return reasons if codes <= reasons else None

    wait_for(audited)
    assert admin.get("/readyz").status_code == 200


def test_cli_ingests_a_folder_and_reports_each_file(
    strongroom: Strongroom, project: dict, tmp_path: Path
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
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    (folder / "slides.pptx").write_bytes(corpus.presentation())
    (folder / "sub" / "records.csv").write_text("name,team\nKatherine Johnson,Flight\n")
    (folder / "sub" / "backup.zip").write_bytes(corpus.zip_bomb())
    (folder / ".hidden.txt").write_text("skipped\n")

    result = strongroom.cli(
        "ingest", "--project", project["id"], str(folder), check=False
    )

    assert result.returncode == 1
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert set(lines) == {"slides.pptx", "records.csv", "backup.zip"}
    assert lines["slides.pptx"].endswith(f"{PPTX}, 2 page(s)")
    assert lines["records.csv"].endswith("text/csv, 0 page(s), 1 document(s) inside")
    assert lines["backup.zip"].startswith("refused: ")
    assert "1 of 3 file(s) were refused." in result.stderr


def test_logs_hold_no_document_content(strongroom: Strongroom, ingested: dict) -> None:
    logs = strongroom.logs() + "".join(strongroom.output)
    for secret in SECRETS:
        assert secret not in logs
