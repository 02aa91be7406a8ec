"""Refused uploads: a typed problem, an audit event, and nothing else disturbed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.harness import Strongroom, isolated_env, upload_file, wait_for

LIMIT = 4096


@pytest.fixture(scope="module")
def strongroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strongroom]:
    root = tmp_path_factory.mktemp("bad-input")
    env = isolated_env(root / "home", STRONGROOM_MAX_UPLOAD_BYTES=str(LIMIT))
    instance = Strongroom(data_dir=root / "data", env=env)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def project(admin: httpx.Client) -> dict:
    response = admin.post("/api/v1/projects", json={"name": "P", "labels": ["PERSON"]})
    assert response.status_code == 201
    return response.json()


def upload(
    admin: httpx.Client, project: dict, name: str, data: bytes
) -> httpx.Response:
    return upload_file(admin, project["id"], name, data)


@pytest.fixture(scope="module")
def good_document(admin: httpx.Client, project: dict) -> dict:
    response = upload(admin, project, "fine.txt", b"A perfectly good note.\n")
    assert response.status_code == 201
    return response.json()


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("empty.txt", b"", 400, "file_empty"),
        (
            "scan.pdf",
            b"This is plain text pretending to be a PDF.\n",
            415,
            "content_mismatch",
        ),
        ("notes.txt", b"%PDF-1.7\n" + b"0" * 100, 415, "content_mismatch"),
        ("anim.gif", b"GIF89a" + b"\x00" * 64, 415, "unsupported_media_type"),
        ("big.txt", b"x" * (LIMIT + 1), 413, "file_too_large"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", 400, "document_corrupt"),
    ],
)
def test_bad_upload_is_refused_with_a_typed_problem(
    admin: httpx.Client,
    project: dict,
    good_document: dict,
    name: str,
    data: bytes,
    status: int,
    code: str,
) -> None:
    response = upload(admin, project, name, data)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["type"].endswith(code)
    assert problem["status"] == status
    assert name not in problem["detail"]


def test_refusals_are_audited_and_nothing_else_changed(
    admin: httpx.Client, project: dict, good_document: dict, strongroom: Strongroom
) -> None:
    for name, data in (("empty.txt", b""), ("big.txt", b"y" * (LIMIT + 10))):
        upload(admin, project, name, data)

    def refusals() -> list[dict] | None:
        events = admin.get(
            "/api/v1/audit/events",
            params={"action": "rpc.IngestDocument", "limit": 100},
        ).json()
        reasons = {e["reason"] for e in events["events"]}
        return events["events"] if {"file_empty", "file_too_large"} <= reasons else None

    events = wait_for(refusals)
    assert all(e["outcome"] == "error" for e in events)
    documents = admin.get(f"/api/v1/projects/{project['id']}/documents").json()
    assert [d["id"] for d in documents["documents"]] == [good_document["id"]]
    assert admin.get("/readyz").status_code == 200
    again = upload(admin, project, "fine.txt", b"A perfectly good note.\n").json()
    assert again["id"] == good_document["id"] and again["is_duplicate"]


def test_missing_or_forged_token_is_refused(
    strongroom: Strongroom, project: dict
) -> None:
    anonymous = httpx.get(f"{strongroom.url}/api/v1/projects")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "token_missing"
    forged = httpx.get(
        f"{strongroom.url}/api/v1/projects",
        headers={"authorization": "Bearer not.a.token"},
    )
    assert forged.status_code == 401
    assert forged.json()["code"] == "token_invalid"


def test_wrong_password_is_refused_and_audited(
    strongroom: Strongroom, admin: httpx.Client
) -> None:
    response = httpx.post(
        f"{strongroom.url}/oidc/token",
        data={"username": "admin", "password": "wrong-password-123"},
    )
    assert response.status_code == 401
    assert response.json()["code"] == "bad_credentials"
    wait_for(
        lambda: any(
            e["outcome"] == "denied"
            for e in admin.get(
                "/api/v1/audit/events", params={"action": "auth.login"}
            ).json()["events"]
        )
    )


def test_annotator_cannot_upload_or_read_audit(
    strongroom: Strongroom, admin: httpx.Client, project: dict
) -> None:
    created = admin.post(
        "/api/v1/users", json={"username": "bob", "roles": ["annotator"]}
    ).json()
    bob = strongroom.client(strongroom.token("bob", created["password"]))
    assert upload(bob, project, "x.txt", b"hello").status_code == 403
    assert bob.get("/api/v1/audit/events").status_code == 403
    # Not a member: the project is answered as one that does not exist.
    assert bob.post(f"/api/v1/projects/{project['id']}/tasks/next").status_code == 404


def test_cli_reports_each_file_and_fails_when_one_is_refused(
    strongroom: Strongroom, admin: httpx.Client, project: dict, tmp_path
) -> None:
    good, empty = tmp_path / "visit.txt", tmp_path / "blank.txt"
    good.write_text("Seen today, doing well.\n")
    empty.write_bytes(b"")
    token = admin.headers["authorization"].removeprefix("Bearer ")

    result = strongroom.cli(
        "ingest",
        "--project",
        project["id"],
        "--token",
        token,
        str(good),
        str(empty),
        check=False,
    )

    assert result.returncode == 1
    assert "visit.txt: " in result.stdout and "text/plain" in result.stdout
    assert "blank.txt: refused: The uploaded file is empty." in result.stdout
    assert "1 of 2 file(s) were refused." in result.stderr


def test_huge_upload_is_refused_before_its_body_is_read(
    admin: httpx.Client, project: dict
) -> None:
    response = upload(admin, project, "huge.txt", b"z" * (LIMIT + 200_000))

    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    wait_for(
        lambda: any(
            e["service"] == "gateway" and e["reason"] == "file_too_large"
            for e in admin.get(
                "/api/v1/audit/events", params={"action": "rpc.IngestDocument"}
            ).json()["events"]
        )
    )


def test_second_launcher_on_the_same_data_dir_is_refused(
    strongroom: Strongroom,
) -> None:
    result = strongroom.cli(
        "up", "--data-dir", str(strongroom.data_dir), "--port", "1", check=False
    )

    assert result.returncode == 1
    assert "Another Strongroom is already running" in result.stdout
    assert httpx.get(f"{strongroom.url}/readyz").status_code == 200
