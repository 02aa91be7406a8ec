"""Nothing planted leaks: a run's logs, audit chain and event log hold no
password, token or personal data from a document, and what Strongroom keeps
on disk is readable by the user running it alone."""

from __future__ import annotations

import stat

import httpx

from tests.e2e.conftest import admin, strongroom  # noqa: F401  (one platform here)
from tests.e2e.harness import Strongroom, upload_file, wait_for

NAME = "Wilhelmina Okonkwo-Barrett"
SSN = "219-09-9999"
PHONE = "(415) 555-0188"
EMAIL = "w.okonkwo@example.org"
NOTE = (
    f"Patient {NAME} (SSN {SSN}) was seen for chronic migraine.\n"
    f"Call {PHONE} or write to {EMAIL} about the aspirin dose.\n"
)
PASSWORD = "planted-Passw0rd-7731"


def test_planted_secrets_and_personal_data_never_reach_logs_or_events(
    strongroom: Strongroom,  # noqa: F811
    admin: httpx.Client,  # noqa: F811
) -> None:
    made = admin.post(
        "/api/v1/users",
        json={"username": "leak-ann", "roles": ["annotator"], "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    token = strongroom.token("leak-ann", PASSWORD)
    project = admin.post(
        "/api/v1/projects", json={"name": "Leaks", "labels": ["DRUG"]}
    ).json()
    admin.post(
        f"/api/v1/projects/{project['id']}/members",
        json={"username": "leak-ann", "role": "annotator"},
    ).raise_for_status()
    upload = upload_file(admin, project["id"], "note.txt", NOTE.encode())
    assert upload.status_code == 201, upload.text
    annotator = strongroom.client(token)

    def leased() -> dict | None:
        response = annotator.post(f"/api/v1/projects/{project['id']}/tasks/next")
        return response.json() if response.status_code == 200 else None

    task = wait_for(leased, timeout=90)
    at = task["text"].index("aspirin") + task["window_start"]
    annotator.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={"spans": [{"start": at, "end": at + 7, "label": "DRUG"}]},
    ).raise_for_status()
    # A wrong password and a reading of the original, both logged and audited.
    assert httpx.post(
        f"{strongroom.url}/oidc/token",
        data={"username": "leak-ann", "password": PASSWORD + "x"},
    ).status_code in (400, 401)
    original = admin.get(
        f"/api/v1/documents/{upload.json()['id']}/original",
        params={"reason": "Subject access request"},
    )
    assert original.content == NOTE.encode()
    export = admin.post(
        f"/api/v1/projects/{project['id']}/exports", json={"formats": ["jsonl"]}
    ).json()
    # Built or refused, its logs are searched too (tests/e2e/test_export.py
    # checks that exports succeed).
    wait_for(
        lambda: (
            admin.get(f"/api/v1/exports/{export['id']}").json()["state"] != "building"
        ),
        timeout=120,
    )

    planted = [NAME, "Okonkwo", SSN, PHONE, "555-0188", EMAIL, PASSWORD, token]
    data = strongroom.data_dir
    scanned = [
        *sorted((data / "logs").glob("*.log")),
        data / "audit" / "chain.jsonl",
        data / "events" / "events.db",
    ]
    found = {}
    for path in scanned:
        body = path.read_bytes()
        hits = [value for value in planted if value.encode() in body]
        if hits:
            found[path.name] = hits
    assert not found, f"planted values found: {found}"
    # The platform's own console output too.
    console = "".join(strongroom.output)
    assert not [value for value in planted if value in console]


def test_what_strongroom_keeps_is_for_its_user_alone(
    strongroom: Strongroom,  # noqa: F811
    admin: httpx.Client,  # noqa: F811
) -> None:
    assert admin.get("/api/v1/projects").status_code == 200
    data = strongroom.data_dir
    open_to_others = [
        str(path.relative_to(data))
        for path in [data, *data.rglob("*")]
        if not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) & 0o077
    ]
    assert open_to_others == []
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
