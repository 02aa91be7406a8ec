"""A full data disk: writes are refused with a typed error, nothing half-written
stays, and everything carries on once space is freed.

`strongroom up` runs in a mount namespace of its own with its data directory
on a small tmpfs, so the test can fill that disk without touching the
machine's. The test reaches the files through /proc/PID/root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Strongroom, isolated_env, upload_file, wait_for

DISK_MB = 192
RESERVE_MB = 40
NOTE = b"Seen today for a follow-up; doing well.\n"


def _on_small_disk(root: Path, reserve_mb: int) -> Strongroom:
    assert shutil.which("unshare"), "needs util-linux"
    data = root / "data"
    data.mkdir()
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace[1:1] = ["--user", "--map-root-user"]
    mount = f'mount -t tmpfs -o size={DISK_MB}m,mode=0700 strongroom "$0" && exec "$@"'
    return Strongroom(
        data_dir=data,
        env=isolated_env(
            root / "home",
            STRONGROOM_DISK_RESERVE_MB=str(reserve_mb),
            STRONGROOM_READINESS_INTERVAL_SECONDS="0.5",
        ),
        command_prefix=[*namespace, "sh", "-c", mount, str(data)],
    )


def _disk(strongroom: Strongroom) -> Path:
    """The data directory as the platform sees it, on its own tmpfs."""
    assert strongroom.process is not None
    disk = Path(f"/proc/{strongroom.process.pid}/root") / str(
        strongroom.data_dir
    ).lstrip("/")
    stats = os.statvfs(disk)
    assert stats.f_blocks * stats.f_frsize == DISK_MB << 20, "not on the small disk"
    return disk


def _free_mb(strongroom: Strongroom) -> float:
    stats = os.statvfs(_disk(strongroom))
    return stats.f_bavail * stats.f_frsize / (1 << 20)


def _fill(strongroom: Strongroom, leave_mb: float) -> Path:
    """Write a filler file until only ``leave_mb`` MiB are free."""
    filler = _disk(strongroom) / "filler"
    block = b"\0" * (1 << 20)
    with filler.open("ab") as handle:
        while _free_mb(strongroom) > leave_mb + 1:
            try:
                handle.write(block)
                handle.flush()
            except OSError:
                break
    return filler


def _half_written(strongroom: Strongroom) -> list[Path]:
    return list((_disk(strongroom) / "objects").rglob(".incoming-*"))


def _ready(strongroom: Strongroom) -> int:
    return httpx.get(f"{strongroom.url}/readyz", timeout=10).status_code


def _admin(strongroom: Strongroom) -> httpx.Client:
    assert strongroom.admin_password
    return strongroom.client(strongroom.token("admin", strongroom.admin_password))


def _project(admin: httpx.Client) -> dict:
    created = admin.post("/api/v1/projects", json={"name": "Disk", "labels": ["X"]})
    created.raise_for_status()
    project: dict = created.json()
    return project


def _documents(admin: httpx.Client, project: dict) -> int:
    listed = admin.get(f"/api/v1/projects/{project['id']}/documents").json()
    total: int = listed["total"]
    return total


def _tasks(admin: httpx.Client, project: dict) -> int:
    listed = admin.get(f"/api/v1/projects/{project['id']}/tasks").json()
    total: int = listed["total"]
    return total


def _refusals(admin: httpx.Client) -> list[dict]:
    events: list[dict] = admin.get(
        "/api/v1/audit/events",
        params={"action": "rpc.IngestDocument", "limit": 100},
    ).json()["events"]
    return [event for event in events if event["reason"] == "storage_full"]


@pytest.fixture
def reserved(tmp_path: Path) -> Iterator[Strongroom]:
    strongroom = _on_small_disk(tmp_path, RESERVE_MB)
    strongroom.start()
    yield strongroom
    strongroom.stop()


def test_below_the_reserve_uploads_wait_and_the_rest_goes_on(
    reserved: Strongroom,
) -> None:
    admin = _admin(reserved)
    project = _project(admin)
    assert upload_file(admin, project["id"], "a.txt", NOTE).status_code == 201
    wait_for(lambda: _documents(admin, project) == 1)
    # Its task too: redaction and the queue write objects and rows, and below
    # the reserve they would wait for room instead.
    wait_for(lambda: _tasks(admin, project) == 1, timeout=60)
    assert _ready(reserved) == 200

    filler = _fill(reserved, leave_mb=RESERVE_MB / 2)
    wait_for(lambda: _ready(reserved) == 503, timeout=30)
    refused = upload_file(admin, project["id"], "b.txt", NOTE + b"Second.\n")
    assert refused.status_code == 507
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "storage_full"
    # Below the reserve the databases still have room: the refusal is in
    # the audit trail, and reading and labeling carry on.
    wait_for(lambda: _refusals(admin))
    tasks = admin.get(f"/api/v1/projects/{project['id']}/tasks").json()
    assert tasks["total"] == 1
    assert not _half_written(reserved)

    filler.unlink()
    wait_for(lambda: _ready(reserved) == 200, timeout=30)
    again = upload_file(admin, project["id"], "b.txt", NOTE + b"Second.\n")
    assert again.status_code == 201
    wait_for(lambda: _documents(admin, project) == 2)
    verified = admin.get("/api/v1/audit/verify").json()
    assert verified["is_intact"], verified


def test_a_disk_filled_to_the_brim_refuses_and_recovers(tmp_path: Path) -> None:
    # No reserve: the upload itself meets the full disk.
    strongroom = _on_small_disk(tmp_path, reserve_mb=0)
    strongroom.start()
    try:
        admin = _admin(strongroom)
        project = _project(admin)
        large = os.urandom(6 << 20)
        filler = _fill(strongroom, leave_mb=2)
        refused = upload_file(admin, project["id"], "scan.bin", large)
        assert refused.status_code == 507, refused.text
        assert refused.json()["code"] == "storage_full"
        assert not _half_written(strongroom)

        filler.unlink()
        stored = upload_file(admin, project["id"], "note.txt", NOTE)
        assert stored.status_code == 201, stored.text
        wait_for(lambda: _documents(admin, project) == 1, timeout=60)
        assert not _half_written(strongroom)
        verified = admin.get("/api/v1/audit/verify").json()
        assert verified["is_intact"], verified
    finally:
        strongroom.stop()
