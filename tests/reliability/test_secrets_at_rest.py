"""Nothing planted leaks: a run's logs, audit chain, event log and stored
objects hold no password, token or personal data from a document, and what
Strongroom keeps on disk is readable by the user running it alone.

The platform here runs with an object store key, so every object it writes
is encrypted; the key lives in the test's home, outside the data directory.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strongroom.services.common import totp
from tests.e2e.conftest import admin  # noqa: F401  (signs in to the platform below)
from tests.e2e.harness import (
    Strongroom,
    isolated_env,
    signed_in_user,
    upload_file,
    wait_for,
)

NAME = "Wilhelmina Okonkwo-Barrett"
SSN = "219-09-9999"
PHONE = "(415) 555-0188"
EMAIL = "w.okonkwo@example.org"
NOTE = (
    f"Patient {NAME} (SSN {SSN}) was seen for chronic migraine.\n"
    f"Call {PHONE} or write to {EMAIL} about the aspirin dose.\n"
)
PASSWORD = "planted-Passw0rd-7731"
KEY_SETTING = "STRONGROOM_OBJECT_STORE_KEY_FILE"


@pytest.fixture(scope="module")
def strongroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strongroom]:
    """One platform whose object store encrypts, its key made by the CLI."""
    root = tmp_path_factory.mktemp("secrets")
    key_file = root / "home" / ".config" / "strongroom" / "object-store.key"
    instance = Strongroom(
        data_dir=root / "data",
        env=isolated_env(root / "home", **{KEY_SETTING: str(key_file)}),
    )
    instance.cli(
        "keys", "object-store", "--data-dir", str(root / "data"), str(key_file)
    )
    instance.start()
    yield instance
    instance.stop()


def test_planted_secrets_and_personal_data_never_reach_logs_or_events(
    strongroom: Strongroom,
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
    # A second factor: its secret is sealed in the identity database.
    secret = annotator.post("/api/v1/users/me/totp").json()["secret"]
    annotator.post(
        "/api/v1/users/me/totp/confirm", json={"code": totp.totp(secret)}
    ).raise_for_status()
    # A password reset: the one-time password is shown once, to the admin.
    admin.post(
        "/api/v1/users",
        json={"username": "leak-rita", "roles": ["reviewer"], "password": PASSWORD},
    ).raise_for_status()
    one_time = admin.post("/api/v1/users/leak-rita/password-reset").json()["password"]
    # A wrong password and a reading of the original, both logged and audited.
    assert httpx.post(
        f"{strongroom.url}/oidc/token",
        data={"username": "leak-ann", "password": PASSWORD + "x"},
    ).status_code in (400, 401)
    custodian = signed_in_user(strongroom, admin, "leak-custodian", ["original_reader"])
    original = custodian.get(
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
    planted += [secret, one_time]
    data = strongroom.data_dir
    scanned = [
        *sorted((data / "logs").glob("*.log")),
        data / "audit" / "chain.jsonl",
        data / "events" / "events.db",
        data / "identity" / "identity.db",
    ]
    objects = sorted(p for p in (data / "objects").rglob("*") if p.is_file())
    found = {}
    for path in [*scanned, *objects]:
        body = path.read_bytes()
        hits = [value for value in planted if value.encode() in body]
        if hits:
            found[str(path.relative_to(data))] = hits
    assert not found, f"planted values found: {found}"
    # Nor does a listing confirm which document is stored.
    assert len(objects) > 3
    assert hashlib.sha256(NOTE.encode()).hexdigest() not in [p.name for p in objects]
    # The platform's own console output too.
    console = "".join(strongroom.output)
    assert not [value for value in planted if value in console]


def test_what_strongroom_keeps_is_for_its_user_alone(
    strongroom: Strongroom,
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


def test_a_key_file_inside_the_data_directory_stops_the_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key_file = data / "object-store.key"
    data.mkdir()
    key_file.write_bytes(bytes(32))
    key_file.chmod(0o600)
    instance = Strongroom(
        data_dir=data,
        env=isolated_env(tmp_path / "home", **{KEY_SETTING: str(key_file)}),
    )

    try:
        with pytest.raises(RuntimeError):
            instance.start(timeout=60)
    finally:
        code = instance.stop()

    assert code == 1
    console = "".join(instance.output)
    assert "Strongroom cannot start: The object store key file must be kept " in console
    assert "Traceback" not in console
    assert not (data / "logs").exists(), "no service was started"
