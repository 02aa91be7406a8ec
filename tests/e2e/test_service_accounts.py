"""Service accounts: automation signs in with client credentials and is
checked like anyone else, in the gateway and in every service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.harness import Strongroom, upload_file, wait_for


def _client_token(
    strongroom: Strongroom, client_id: str, secret: str
) -> httpx.Response:
    return httpx.post(
        f"{strongroom.url}/oidc/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        },
        timeout=30,
    )


@pytest.fixture(scope="module")
def bot(admin: httpx.Client) -> dict[str, Any]:
    created = admin.post(
        "/api/v1/service-accounts", json={"name": "ingest-bot", "roles": ["manager"]}
    )
    assert created.status_code == 201, created.text
    account: dict[str, Any] = created.json()
    return account


def test_an_admin_creates_one_and_sees_its_secret_once(
    admin: httpx.Client, bot: dict[str, Any]
) -> None:
    assert bot["username"] == "svc-ingest-bot"
    assert bot["roles"] == ["manager"]
    assert len(bot["client_secret"]) >= 40
    listed = admin.get("/api/v1/service-accounts").json()
    assert [a["username"] for a in listed] == ["svc-ingest-bot"]
    assert listed[0]["client_secret"] is None
    again = admin.post(
        "/api/v1/service-accounts", json={"name": "ingest-bot", "roles": ["manager"]}
    )
    assert again.status_code == 409
    person = admin.post(
        "/api/v1/users", json={"username": "svc-person", "roles": ["annotator"]}
    )
    assert person.status_code == 400
    assert person.json()["code"] == "username_invalid"


def test_it_works_in_its_projects_only(
    strongroom: Strongroom, admin: httpx.Client, bot: dict[str, Any]
) -> None:
    mine = admin.post(
        "/api/v1/projects", json={"name": "Bot's", "labels": ["X"]}
    ).json()
    other = admin.post("/api/v1/projects", json={"name": "Not", "labels": ["X"]}).json()
    admin.post(
        f"/api/v1/projects/{mine['id']}/members",
        json={"username": "svc-ingest-bot", "role": "manager"},
    ).raise_for_status()
    signed_in = _client_token(strongroom, bot["client_id"], bot["client_secret"])
    assert signed_in.status_code == 200, signed_in.text
    client = strongroom.client(signed_in.json()["access_token"])

    assert client.get("/api/v1/me").json()["username"] == "svc-ingest-bot"
    stored = upload_file(client, mine["id"], "nightly.txt", b"From the nightly job.\n")
    assert stored.status_code == 201, stored.text
    assert client.get(f"/api/v1/projects/{other['id']}").status_code == 404
    refused = upload_file(client, other["id"], "x.txt", b"Not for this project.\n")
    assert refused.status_code == 404
    assert client.get("/api/v1/service-accounts").status_code == 403

    def audited() -> bool:
        events = admin.get(
            "/api/v1/audit/events", params={"action": "document.ingest"}
        ).json()["events"]
        return any(e["actor"]["username"] == "svc-ingest-bot" for e in events)

    wait_for(audited, timeout=60)


def test_wrong_credentials_answer_alike(
    strongroom: Strongroom, admin: httpx.Client, bot: dict[str, Any]
) -> None:
    wrong_secret = _client_token(strongroom, bot["client_id"], "not-the-secret")
    unknown = _client_token(strongroom, "00000000-0000-0000-0000-000000000000", "x")
    assert wrong_secret.status_code == unknown.status_code == 401
    assert wrong_secret.json()["code"] == unknown.json()["code"] == "bad_credentials"
    assert wrong_secret.json()["detail"] == unknown.json()["detail"]
    events = admin.get(
        "/api/v1/audit/events", params={"action": "service_account.create"}
    ).json()["events"]
    assert events and events[0]["actor"]["username"] == "admin"
