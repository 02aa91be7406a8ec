"""Many annotators and uploaders at once against the gateway, with locust.

`strongroom up` runs on loopback; a project with overlap 2 and paragraph
windows is seeded with notes; then locust, in its own process (gevent's
monkeypatching must not reach pytest), runs annotators, each a different
Strongroom user pulling the next task and answering it with a span and a
class or skipping it with a reason, beside uploaders sending more notes.
Bounded in users and time: 20 annotators and 2 uploaders for 35 s here,
more in `make reliability` (LOAD_USERS, LOAD_UPLOADERS, LOAD_SECONDS,
LOAD_SEED_DOCUMENTS).

Afterwards the invariants the docs promise are checked against what locust
was answered, and the figures (requests, throughput, p50/p95/p99 per kind
of request) are written to load.json; timings are measured, never asserted.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import (
    Strongroom,
    add_annotators,
    every_page,
    upload_file,
    wait_for,
)
from tests.reliability.load.documents import CLASSES, LABEL, PARAGRAPHS, note

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).parent / "load" / "locustfile.py"
ANNOTATORS = int(os.environ.get("LOAD_USERS", "20"))
UPLOADERS = int(os.environ.get("LOAD_UPLOADERS", "2"))
SECONDS = int(os.environ.get("LOAD_SECONDS", "35"))
SEED_DOCUMENTS = int(os.environ.get("LOAD_SEED_DOCUMENTS", "300"))
OVERLAP = 2
# What an annotator or uploader may be refused with, by request kind. The
# queue running dry is an answer, not a failure; 503 is the API's answer
# to a backend that does not keep up (a database locked past its busy
# timeout, a service that did not answer within the gateway's deadline),
# sent as a problem response; uploads met by it are sent again.
_OVERLOADED = {"503 database_unavailable", "503 service_timeout"}
EXPECTED_REFUSALS = {
    "next": {"404 queue_empty", *_OVERLOADED},
    "submit": _OVERLOADED,
    "skip": _OVERLOADED,
    "upload": _OVERLOADED,
}


@pytest.fixture(scope="module")
def project_id(admin: httpx.Client) -> str:
    made = admin.post(
        "/api/v1/projects",
        json={
            "name": "Load",
            "schema": {"spans": [LABEL], "classes": list(CLASSES)},
            "overlap": OVERLAP,
            "window": {"kind": "paragraph"},
        },
    )
    assert made.status_code == 201, made.text
    found: str = made.json()["id"]
    return found


def _seed(admin: httpx.Client, project_id: str, count: int) -> list[str]:
    """Upload ``count`` notes, a few at a time; their document ids."""

    def one(n: int) -> str:
        response = upload_file(
            admin, project_id, f"seed-{n}.txt", note("seed", n).encode()
        )
        assert response.status_code == 201, response.text
        document_id: str = response.json()["id"]
        return document_id

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def _total(admin: httpx.Client, path: str, **params: str) -> int:
    response = admin.get(path, params={"limit": 1, **params})
    response.raise_for_status()
    total: int = response.json()["total"]
    return total


def _run_locust(
    strongroom: Strongroom,
    project_id: str,
    tokens: dict[str, Any],
    work: Path,
) -> dict[str, Any]:
    """Run the locustfile headless, bounded in users and time; what it saw."""
    (work / "tokens.json").write_text(json.dumps(tokens))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LOAD_PROJECT": project_id,
        "LOAD_TOKENS": str(work / "tokens.json"),
        "LOAD_UPLOADERS": str(UPLOADERS),
        "LOAD_LOG": str(work / "seen.json"),
    }
    users = ANNOTATORS + UPLOADERS
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(max(1, users // 5)),
            "--run-time",
            f"{SECONDS}s",
            # Users finish the request they are in, so every answer the
            # platform sent is one locust counted.
            "--stop-timeout",
            "300",
            "--host",
            strongroom.url,
            "--only-summary",
            "--exit-code-on-error",
            "0",
            "--logfile",
            str(work / "locust.log"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SECONDS + 600,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    seen: dict[str, Any] = json.loads((work / "seen.json").read_text())
    return seen


def _repeats(handed: dict[str, list[list[str]]]) -> list[str]:
    """Tasks handed to an annotator again after it answered or skipped them.

    A task handed again after a submit that failed is the lease the
    annotator still holds, not a repeat.
    """
    found = []
    for annotator, tasks in handed.items():
        done: set[str] = set()
        for task_id, outcome in tasks:
            if task_id in done:
                found.append(f"annotator {annotator}: task {task_id}")
            if outcome != "failed":
                done.add(task_id)
    return found


def _unexpected(statuses: dict[str, int]) -> list[str]:
    found = []
    for key, count in statuses.items():
        name, status, *code = key.split(" ")
        if status.startswith("2"):
            continue
        if f"{status} {''.join(code)}" not in EXPECTED_REFUSALS.get(name, set()):
            found.append(f"{key}: {count}")
    return found


def _summary(figures: dict[str, dict[str, float]]) -> str:
    return "; ".join(
        f"{name} {f['requests']:.0f} req {f['per_second']} req/s "
        f"p50 {f['p50_ms']:.0f} p95 {f['p95_ms']:.0f} p99 {f['p99_ms']:.0f} ms"
        for name, f in figures.items()
    )


# Seeding, the run and the checks afterwards; the platform's start besides.
@pytest.mark.timeout(SECONDS + SEED_DOCUMENTS // 10 + 600)
def test_annotators_and_uploaders_at_once_keep_every_promise(
    strongroom: Strongroom,
    admin: httpx.Client,
    project_id: str,
    tmp_path: Path,
) -> None:
    tokens = {
        "annotators": add_annotators(strongroom, admin, project_id, ANNOTATORS),
        "uploader": admin.headers["authorization"].removeprefix("Bearer "),
    }
    started = time.monotonic()
    seeded = _seed(admin, project_id, SEED_DOCUMENTS)
    tasks_path = f"/api/v1/projects/{project_id}/tasks"
    wait_for(
        lambda: _total(admin, tasks_path) == SEED_DOCUMENTS * PARAGRAPHS,
        timeout=max(600, SEED_DOCUMENTS),
    )
    seed_seconds = round(time.monotonic() - started, 1)

    seen = _run_locust(strongroom, project_id, tokens, tmp_path)
    figures = seen["figures"]
    # The machine is shared: this says how much else ran as the load ended.
    load_average = round(os.getloadavg()[0], 1)

    # No server error: every refusal is a problem response the API documents.
    assert not seen["refusals_without_problem"], seen["refusals_without_problem"]
    assert not _unexpected(seen["statuses"]), seen["statuses"]

    # Every accepted upload reaches the queue exactly once, as two tasks.
    documents = seeded + seen["uploads"]
    assert len(set(documents)) == len(documents)
    wait_for(
        lambda: _total(admin, tasks_path) >= len(documents) * PARAGRAPHS, timeout=600
    )
    listed = list(
        every_page(admin, f"/api/v1/projects/{project_id}/documents", "documents")
    )
    assert sorted(d["id"] for d in listed) == sorted(documents)
    tasks = list(every_page(admin, tasks_path, "tasks"))
    per_document = Counter(t["document_id"] for t in tasks)
    assert set(per_document) == set(documents)
    assert set(per_document.values()) == {PARAGRAPHS}

    # No accepted answer is lost, none is stored that locust was not told of,
    # and no annotator answered a task twice or was handed it again.
    answers = list(
        every_page(
            admin, f"/api/v1/projects/{project_id}/annotations", "annotations", 1000
        )
    )
    assert sorted(a["id"] for a in answers) == sorted(seen["submitted"])
    by_pair = Counter((a["task_id"], a["annotator"]) for a in answers)
    assert set(by_pair.values()) <= {1}
    assert not _repeats(seen["handed"])
    # Leases last STRONGROOM_LEASE_SECONDS (30 minutes), longer than the run,
    # so none lapsed and no task may hold an answer beyond its overlap.
    per_task = Counter(a["task_id"] for a in answers)
    assert max(per_task.values(), default=0) <= OVERLAP

    # The trail recorded every answer and skip, and verifies.
    audit = "/api/v1/audit/events"
    for action, count in (
        ("annotation.submit", len(seen["submitted"])),
        ("task.skip", len(seen["skipped"])),
    ):
        wait_for(
            lambda a=action, c=count: (
                _total(admin, audit, project_id=project_id, action=a, outcome="success")
                == c
            ),
            timeout=120,
        )
    verified = strongroom.cli("audit", "verify", "--data-dir", str(strongroom.data_dir))
    assert "intact" in verified.stdout

    report = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores",
        "load_average": load_average,
        "annotators": ANNOTATORS,
        "uploaders": UPLOADERS,
        "seconds": SECONDS,
        "seed_documents": SEED_DOCUMENTS,
        "seed_seconds": seed_seconds,
        "documents": len(documents),
        "tasks": len(tasks),
        "answers": len(answers),
        "skips": len(seen["skipped"]),
        "statuses": seen["statuses"],
        "requests": figures,
        "audit": verified.stdout.strip(),
    }
    (tmp_path / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\nload: {ANNOTATORS} annotators, {UPLOADERS} uploaders, {SECONDS} s: "
        f"{len(answers)} answers, {len(seen['skipped'])} skips, "
        f"{len(seen['uploads'])} uploads; {_summary(figures)} "
        f"(figures in {tmp_path / 'load.json'})"
    )
