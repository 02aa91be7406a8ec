"""A project's redaction policy over REST: set it, redact under it, report it,
correct it, and read the re-identification mapping only with the right role."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.harness import Strongroom, upload_file, wait_for

NOTE = (
    "Patient Maria Lopez (MRN 4471902) was seen on 03/14/2021.\n"
    "Card 4111 1111 1111 1111, NHS number 943 476 5919, SSN 219-09-9999.\n"
    "Her locker code is plum-seven.\n"
)
VALUES = [
    "Maria Lopez",
    "4471902",
    "4111 1111 1111 1111",
    "943 476 5919",
    "219-09-9999",
]


def _next_task(client: httpx.Client, project_id: str) -> dict:
    return wait_for(
        lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            client.post(f"/api/v1/projects/{project_id}/tasks/next")
        ),
        timeout=60,
    )


@pytest.fixture(scope="module")
def setup(strongroom: Strongroom, admin: httpx.Client) -> dict:
    project = admin.post(
        "/api/v1/projects", json={"name": "Policies", "labels": ["PERSON"]}
    ).json()
    users = {
        name: admin.post("/api/v1/users", json={"username": name, "roles": [role]})
        .raise_for_status()
        .json()
        for name, role in (
            ("pol-ann", "annotator"),
            ("pol-rev", "reviewer"),
            ("pol-reid", "reidentifier"),
        )
    }
    for name, role in (("pol-ann", "annotator"), ("pol-rev", "reviewer")):
        admin.post(
            f"/api/v1/projects/{project['id']}/members",
            json={"username": name, "role": role},
        ).raise_for_status()
    clients = {
        name: strongroom.client(strongroom.token(name, user["password"]))
        for name, user in users.items()
    }
    return {"project": project["id"], **clients}


def test_policy_is_admin_or_manager_only(admin: httpx.Client, setup: dict) -> None:
    url = f"/api/v1/projects/{setup['project']}/redaction-policy"
    assert admin.get(url).json()["default_action"] == "mask"
    assert setup["pol-ann"].get(url).status_code == 403
    assert setup["pol-ann"].put(url, json={"default_action": "keep"}).status_code == 403
    bad = admin.put(url, json={"default_action": "shred"})
    assert bad.status_code == 400


def test_surrogates_under_policy_report_and_reidentification(
    admin: httpx.Client, setup: dict
) -> None:
    project = setup["project"]
    policy = admin.put(
        f"/api/v1/projects/{project}/redaction-policy",
        json={
            "default_action": "surrogate",
            "actions": {"DATE": "mask"},
            "reidentification": True,
            "hold_duplicates": True,
        },
    )
    assert policy.status_code == 200, policy.text
    assert policy.json()["version"] == 1
    upload_file(admin, project, "note.txt", NOTE.encode()).raise_for_status()

    task = _next_task(setup["pol-ann"], project)
    text = task["text"]
    for value in VALUES:
        assert value not in text
    assert "[DATE]" in text
    assert "plum-seven" in text  # no detector knows this code: corrected below

    documents = admin.get(f"/api/v1/projects/{project}/documents").json()
    document = documents["documents"][0]["id"]
    report = admin.get(f"/api/v1/documents/{document}/redaction").json()
    assert report["status"] == "cleaned"
    assert report["counts_by_action"]["surrogate"] >= 5
    assert report["rules_version"] and report["model_version"]
    assert {"NAME", "MRN", "CREDIT_CARD", "NHS_NUMBER", "US_SSN", "DATE"} <= set(
        report["counts_by_type"]
    )
    assert not any(value in str(report) for value in VALUES)

    totals = admin.get(f"/api/v1/projects/{project}/redaction").json()
    assert totals["documents"] == 1 and totals["held"] == 0
    assert totals["counts_by_type"]["CREDIT_CARD"] == 1

    # A reviewer adds the missed name; the document is redacted again.
    start = text.index("plum-seven")
    corrected = setup["pol-rev"].post(
        f"/api/v1/documents/{document}/redaction/corrections",
        json={
            "corrections": [
                {
                    "action": "add",
                    "start": start,
                    "end": start + 10,
                    "type": "ID_NUMBER",
                }
            ]
        },
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["revision"] == 2
    assert any(f["detector"] == "reviewer" for f in corrected.json()["findings"])
    assert setup["pol-ann"].post(
        f"/api/v1/documents/{document}/redaction/corrections",
        json={"corrections": [{"action": "add", "start": 0, "end": 3, "type": "NAME"}]},
    ).status_code in (403, 404)

    # Only the reidentifier role reads the originals, with a reason.
    path = f"/api/v1/projects/{project}/reidentification"
    reid = setup["pol-reid"]
    assert admin.post(path, json={"reason": "audit"}).status_code == 403
    mapping = reid.post(path, json={"reason": "patient safety recall"})
    assert mapping.status_code == 200, mapping.text
    originals = {e["original"] for e in mapping.json()["entries"]}
    assert {"Maria Lopez", "4111 1111 1111 1111", "plum-seven"} <= originals
    events = admin.get(
        "/api/v1/audit/events", params={"action": "redaction.reidentify"}
    )
    if events.status_code == 200:
        wait_for(
            lambda: (
                admin.get(
                    "/api/v1/audit/events", params={"action": "redaction.reidentify"}
                ).json()["total"]
                >= 1
            )
        )


def test_duplicate_is_held_not_queued(admin: httpx.Client, setup: dict) -> None:
    project = setup["project"]
    upload_file(admin, project, "copy.txt", NOTE.replace("\n", "  \n").encode())
    totals = wait_for(
        lambda: (lambda t: t if t["documents"] == 2 else None)(
            admin.get(f"/api/v1/projects/{project}/redaction").json()
        ),
        timeout=60,
    )
    assert totals["held"] == 1
    assert totals["hold_reasons"] == {"duplicate": 1}
    tasks = admin.get(f"/api/v1/projects/{project}/tasks").json()
    assert tasks["total"] == 1
