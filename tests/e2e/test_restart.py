"""`strongroom up` stopped and started again mid-way loses and repeats nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.e2e.harness import Strongroom, isolated_env, wait_for


@pytest.fixture
def instance(tmp_path: Path) -> Strongroom:
    return Strongroom(data_dir=tmp_path / "data", env=isolated_env(tmp_path / "home"))


def tasks_of(client, project_id: str) -> list[dict]:
    return client.get(f"/api/v1/projects/{project_id}/tasks").json()["tasks"]


def test_restart_midway_resumes_with_everything_intact(
    instance: Strongroom, tmp_path: Path
) -> None:
    instance.start()
    password = instance.admin_password
    assert password
    admin_token = instance.token("admin", password)
    admin = instance.client(admin_token)
    project = admin.post(
        "/api/v1/projects", json={"name": "R", "labels": ["PERSON"]}
    ).json()
    ann_password = admin.post(
        "/api/v1/users", json={"username": "ann", "roles": ["annotator"]}
    ).json()["password"]
    admin.post(
        f"/api/v1/projects/{project['id']}/members",
        json={"username": "ann", "role": "annotator"},
    ).raise_for_status()
    for index in range(3):
        path = tmp_path / f"note-{index}.txt"
        path.write_text(f"Note {index}: call 555-010-{1000 + index}.\n")
        instance.cli(
            "ingest",
            "--project",
            project["id"],
            str(path),
            "--url",
            instance.url,
            "--token",
            admin_token,
        )
    wait_for(lambda: len(tasks_of(admin, project["id"])) == 3)
    ann = instance.client(instance.token("ann", ann_password))
    first = ann.post(f"/api/v1/projects/{project['id']}/tasks/next").json()
    ann.post(
        f"/api/v1/tasks/{first['id']}/annotations",
        json={"spans": [{"start": 0, "end": 4, "label": "PERSON"}]},
    ).raise_for_status()
    second = ann.post(f"/api/v1/projects/{project['id']}/tasks/next").json()

    assert instance.stop() == 0
    assert "Strongroom stopped." in "".join(instance.output)
    assert not list((instance.data_dir / "run").glob("*.pid"))

    instance.start()
    assert instance.admin_password is None  # the first admin is created once
    admin = instance.client(admin_token)  # the signing key survived the restart
    tasks = tasks_of(admin, project["id"])
    assert len(tasks) == 3
    assert sorted(t["state"] for t in tasks) == ["completed", "leased", "queued"]
    ann = instance.client(instance.token("ann", ann_password))
    resumed = ann.post(f"/api/v1/projects/{project['id']}/tasks/next").json()
    assert resumed["id"] == second["id"]  # the lease held before the restart
    for task_id in (second["id"], None):
        task_id = (
            task_id
            or ann.post(f"/api/v1/projects/{project['id']}/tasks/next").json()["id"]
        )
        ann.post(
            f"/api/v1/tasks/{task_id}/annotations",
            json={"spans": [{"start": 0, "end": 4, "label": "PERSON"}]},
        ).raise_for_status()
    assert ann.post(f"/api/v1/projects/{project['id']}/tasks/next").status_code == 404

    out = tmp_path / "out"
    instance.cli(
        "export",
        "create",
        "--project",
        project["id"],
        "--out",
        str(out),
        "--url",
        instance.url,
        "--token",
        admin_token,
    )
    records = [
        line
        for path in sorted((out / "v1").glob("jsonl/*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(records) == 3
    assert len({json.loads(r)["task_id"] for r in records}) == 3
    documents = admin.get(f"/api/v1/projects/{project['id']}/documents").json()
    assert documents["total"] == 3
    verified = instance.cli("audit", "verify", "--data-dir", str(instance.data_dir))
    assert "intact" in verified.stdout
    assert instance.stop() == 0


def test_a_killed_service_is_restarted_and_catches_up(
    instance: Strongroom, tmp_path: Path
) -> None:
    instance.start()
    assert instance.admin_password
    token = instance.token("admin", instance.admin_password)
    admin = instance.client(token)
    project = admin.post("/api/v1/projects", json={"name": "K", "labels": ["X"]}).json()

    pid = int((instance.data_dir / "run" / "redaction.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    path = tmp_path / "while-down.txt"
    path.write_text("Reach me at someone@example.com.\n")
    instance.cli(
        "ingest",
        "--project",
        project["id"],
        str(path),
        "--url",
        instance.url,
        "--token",
        token,
    )

    wait_for(lambda: len(tasks_of(admin, project["id"])) == 1, timeout=60)
    new_pid = int((instance.data_dir / "run" / "redaction.pid").read_text())
    assert new_pid != pid
    assert "The redaction process exited" in "".join(instance.output)
    assert instance.stop(how=signal.SIGINT) == 0  # what Ctrl-C sends
    assert "Strongroom stopped." in "".join(instance.output)


def test_a_service_killed_between_a_change_and_its_relay_loses_no_event(
    tmp_path: Path,
) -> None:
    # The relays pause an hour after an empty poll, so the upload's events
    # are still in ingestion's outbox, committed but unpublished, at the kill.
    instance = Strongroom(
        data_dir=tmp_path / "data",
        env=isolated_env(tmp_path / "home", STRONGROOM_OUTBOX_IDLE_SECONDS="3600"),
    )
    instance.start()
    try:
        assert instance.admin_password
        admin = instance.client(instance.token("admin", instance.admin_password))
        project = admin.post(
            "/api/v1/projects", json={"name": "Crash", "labels": ["PERSON"]}
        ).json()
        document = admin.post(
            f"/api/v1/projects/{project['id']}/documents",
            files={"file": ("note.txt", b"Call 555-010-2000 today.\n", "text/plain")},
        ).json()
        outbox = instance.data_dir / "ingestion" / "state.db"
        with sqlite3.connect(outbox) as conn:
            pending = conn.execute(
                "SELECT position, topic FROM outbox WHERE relayed_at IS NULL "
                "ORDER BY position"
            ).fetchall()
        assert [topic for _, topic in pending] == ["document.ingested", "audit.event"]

        pid = int((instance.data_dir / "run" / "ingestion.pid").read_text())
        os.kill(pid, signal.SIGKILL)

        # The launcher starts ingestion again; its relay publishes on start.
        ingested = wait_for(
            lambda: admin.get(
                "/api/v1/audit/events",
                params={"action": "document.ingest", "resource_id": document["id"]},
            ).json()["events"],
            timeout=60,
        )
        report = wait_for(
            lambda: (lambda r: r.json() if r.status_code == 200 else None)(
                admin.get(f"/api/v1/documents/{document['id']}/redaction")
            ),
            timeout=60,
        )
        assert len(ingested) == 1
        assert report["document_id"] == document["id"]
        with sqlite3.connect(outbox) as conn:
            relayed = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE relayed_at IS NOT NULL "
                "AND position IN (?, ?)",
                [position for position, _ in pending],
            ).fetchone()
        assert relayed == (2,)
    finally:
        instance.stop()


def test_two_strongrooms_started_at_once_on_one_machine_both_run(
    tmp_path: Path,
) -> None:
    """Each chooses its own free ports: neither fails to bind one the other
    took, and neither answers for the other."""
    pair = [
        Strongroom(data_dir=tmp_path / n / "data", env=isolated_env(tmp_path / n))
        for n in ("one", "two")
    ]
    failures: list[BaseException] = []

    def start(instance: Strongroom) -> None:
        try:
            instance.start(timeout=240)
        except Exception as exc:  # reported below, with the output
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in pair]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures

        one, two = (set(i.addresses().values()) for i in pair)
        assert not one & two
        for instance in pair:
            assert instance.admin_password
            admin = instance.client(instance.token("admin", instance.admin_password))
            made = admin.post(
                "/api/v1/projects", json={"name": "Mine", "labels": ["PERSON"]}
            )
            assert made.status_code == 201, made.text
            listed = admin.get("/api/v1/projects").json()["projects"]
            assert [p["id"] for p in listed] == [made.json()["id"]]
    finally:
        for instance in pair:
            if instance.process is not None:
                instance.stop()
