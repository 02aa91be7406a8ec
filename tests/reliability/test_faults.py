"""Faults on the whole path, ingest to signed export, in cluster mode.

Each case runs a fresh project through the path (upload a batch, label every
task, build and download an export) on the real backends, and injects one
fault at one point of it: a service killed (the launcher starts it again),
or Kafka, the S3 server, OpenSearch or PostgreSQL restarted, or the S3
server gone for a while. The driver behaves as a patient user: it tries a
request again when the platform answers 503 or the connection drops, and
builds an export again if the first build was interrupted.

Afterwards: every document reached the queue exactly once and every task
holds one answer, the export verifies and holds every record, no export is
listed with files it does not have, the audit chain is intact and OpenSearch
holds each of its events exactly once, and every service is ready again.

`make test` runs a few cases (FAULT_CASES); `make reliability` runs
FAULT_CASES=all: every fault, each at a point of the path chosen by
FAULT_SEED. FAULT_REPORT names a JSON file for the figures.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from grpc_health.v1 import health_pb2

from strongroom.services.common.config import SERVICE_NAMES
from tests.e2e.cluster import (
    ADMIN,
    ANNOTATOR,
    Cluster,
    ingest_in_background,
    new_batch,
    start_cluster,
    task_documents,
)
from tests.e2e.harness import Strongroom, wait_for

SERVING = health_pb2.HealthCheckResponse.SERVING
PHASES = ("ingest", "label", "export")
PROCESSES = (*SERVICE_NAMES, "gateway")
BACKENDS = ("kafka", "s3", "opensearch", "postgres")
FAULTS = (
    *(f"kill-{name}" for name in PROCESSES),
    *(f"restart-{name}" for name in BACKENDS),
    "outage-s3",
)
# The short run in `make test`: a service killed in each phase, and the two
# backend restarts the cluster tests do not already cover.
SHORT = ",".join(
    (
        "kill-redaction@ingest",
        "kill-labeling@label",
        "kill-export@export",
        "restart-s3@ingest",
        "restart-opensearch@label",
    )
)
BATCH = int(os.environ.get("FAULT_BATCH", "12"))
# How long a build may stay silent before it shows as interrupted.
STALL_SECONDS = 20
# How long the driver keeps trying one request while the platform recovers.
PATIENCE = 180.0


def _cases() -> list[str]:
    chosen = os.environ.get("FAULT_CASES", SHORT)
    if chosen != "all":
        return chosen.split(",")
    rng = random.Random(int(os.environ.get("FAULT_SEED", "12")))
    return [f"{fault}@{rng.choice(PHASES)}" for fault in FAULTS]


@dataclass
class Figures:
    case: str
    seconds: float = 0.0
    # From the fault to every service and the gateway ready again.
    recovery_seconds: float = 0.0
    # Where the fault landed: documents queued, tasks answered or whether
    # the build was still running.
    progress_at_fault: str = ""
    requests_tried_again: int = 0
    exports_interrupted: int = 0
    documents: int = 0
    lost: int = 0
    repeated: int = 0
    audit_events: int = 0
    notes: list[str] = field(default_factory=list)


_REPORT: list[Figures] = []


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server,
    kafka_server,
    s3_server,
    opensearch_server,
    keycloak_server,
) -> Iterator[dict[str, Any]]:
    started = start_cluster(
        tmp_path_factory.mktemp("faults"),
        postgres=postgres_server,
        kafka=kafka_server,
        s3=s3_server,
        opensearch=opensearch_server,
        keycloak=keycloak_server,
        export_stall_seconds=STALL_SECONDS,
    )
    try:
        yield {
            "cluster": started,
            "kafka": kafka_server,
            "s3": s3_server,
            "opensearch": opensearch_server,
            "postgres": postgres_server,
        }
    finally:
        started.strongroom.stop()
        _write_report()


def _write_report() -> None:
    target = os.environ.get("FAULT_REPORT")
    if _REPORT and target:
        Path(target).write_text(
            json.dumps([figures.__dict__ for figures in _REPORT], indent=2) + "\n"
        )


class Patient:
    """An HTTP client that tries again while the platform recovers."""

    def __init__(self, client: httpx.Client, figures: Figures) -> None:
        self.client = client
        self.figures = figures

    def send(
        self, method: str, path: str, *, done: set[int] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send until the answer is neither 502/503 nor a broken connection.

        ``done`` lists refusals that mean an earlier attempt went through.
        """
        deadline = time.monotonic() + PATIENCE
        tried_again = False
        while True:
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code not in (502, 503):
                if response.status_code in (done or set()) and not tried_again:
                    raise AssertionError(f"{method} {path}: {response.text}")
                return response
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path} did not recover in time")
            self.figures.requests_tried_again += 1
            tried_again = True
            time.sleep(1.0)


@dataclass
class Run:
    strongroom: Strongroom
    cluster: Cluster
    backends: dict[str, Any]
    figures: Figures
    fault: threading.Thread | None = None


def _ready(strongroom: Strongroom) -> bool:
    try:
        gateway = httpx.get(f"{strongroom.url}/readyz", timeout=5).status_code
    except httpx.TransportError:
        return False
    return gateway == 200 and set(_health(strongroom).values()) == {SERVING}


def _watch_recovery(run: Run, injected_at: float) -> None:
    """Time how long after the fault everything is ready again."""
    deadline = injected_at + PATIENCE * 2
    while time.monotonic() < deadline:
        if _ready(run.strongroom):
            run.figures.recovery_seconds = round(time.monotonic() - injected_at, 1)
            return
        time.sleep(0.5)


def _kill(run: Run, name: str) -> None:
    pid_file = run.strongroom.data_dir / "run" / f"{name}.pid"
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: int(pid_file.read_text()) != pid, timeout=30)


def _outage(run: Run, backend: str) -> None:
    """Stop the backend, see the services leave readiness, start it again."""
    server = run.backends[backend]
    server.stop()
    try:
        wait_for(
            lambda: SERVING not in _health(run.strongroom).values(),
            timeout=90,
            interval=1,
        )
        run.figures.notes.append("services reported not ready while it was down")
    finally:
        server.process.start()


def _inject(run: Run, fault: str, progress: str) -> None:
    """Start the fault in the background: the path goes on while it lasts."""
    run.figures.progress_at_fault = progress
    run.fault = threading.Thread(
        target=_fault_then_watch, args=(run, fault, time.monotonic()), daemon=True
    )
    run.fault.start()


def _fault_then_watch(run: Run, fault: str, injected_at: float) -> None:
    kind, target = fault.split("-", 1)
    try:
        if kind == "kill":
            _kill(run, target)
        elif kind == "restart" and target == "kafka":
            run.backends[target].restart()
        elif kind == "restart":
            run.backends[target].restart(down_for=3.0)
        elif kind == "outage":
            _outage(run, target)
        else:
            raise ValueError(fault)
    except BaseException as exc:
        run.figures.notes.append(f"the fault itself failed: {type(exc).__name__}")
        raise
    _watch_recovery(run, injected_at)


def _health(strongroom: Strongroom) -> dict[str, int]:
    try:
        return strongroom.health()
    except Exception:  # a service restarting does not answer yet
        return {}


@pytest.mark.parametrize("case", _cases())
def test_path_survives_the_fault(
    cluster: dict[str, Any], tmp_path: Path, case: str
) -> None:
    fault, phase = case.split("@")
    assert fault in FAULTS and phase in PHASES
    started: Cluster = cluster["cluster"]
    strongroom = started.strongroom
    figures = Figures(case)
    run = Run(strongroom, started, cluster, figures)
    began = time.monotonic()
    token = strongroom.token(*ADMIN)
    admin = Patient(strongroom.client(token), figures)
    ann = Patient(strongroom.client(strongroom.token(*ANNOTATOR)), figures)

    project, files = new_batch(admin.client, tmp_path / "batch", BATCH)
    admin.send(
        "POST",
        f"/api/v1/projects/{project['id']}/members",
        json={"username": ANNOTATOR[0], "role": "annotator"},
    ).raise_for_status()
    ingest = ingest_in_background(strongroom, token, project["id"], files)
    if phase == "ingest":
        queued = wait_for(
            lambda: task_documents(admin.client, project["id"]), timeout=120
        )
        _inject(run, fault, f"{len(queued)} of {BATCH} documents queued")
    ingest.join(PATIENCE * 2)
    assert not ingest.is_alive() and not ingest.failure, ingest.failure
    wait_for(
        lambda: len(task_documents(admin.client, project["id"])) >= BATCH,
        timeout=PATIENCE * 2,
        interval=1,
    )

    _label_every_task(run, ann, project["id"], fault if phase == "label" else None)
    export = _export(run, admin, project["id"], fault if phase == "export" else None)
    _download_and_verify(strongroom, token, export, tmp_path / "out")

    assert run.fault is not None
    run.fault.join(PATIENCE * 3)
    assert figures.recovery_seconds, f"not ready again: {figures.notes}"
    _check_queue(admin, project["id"], figures)
    _check_exports(admin, project["id"], export)
    _check_audit(admin, started, figures)
    figures.seconds = round(time.monotonic() - began, 1)
    _REPORT.append(figures)
    print(f"\n{case}: {figures.__dict__}")


def _label_every_task(
    run: Run, ann: Patient, project_id: str, fault: str | None
) -> None:
    answered = 0
    while True:
        lease = ann.send("POST", f"/api/v1/projects/{project_id}/tasks/next")
        if lease.status_code == 404 and lease.json()["code"] == "queue_empty":
            break
        lease.raise_for_status()
        task = lease.json()
        submitted = ann.send(
            "POST",
            f"/api/v1/tasks/{task['id']}/annotations",
            json={"spans": [{"start": 0, "end": 4, "label": "PERSON"}]},
            # Refused on a second try: the first went through before the fault.
            done={403, 409},
        )
        assert submitted.is_success or submitted.status_code in (403, 409)
        answered += 1
        if fault and answered == BATCH // 2:
            _inject(run, fault, f"{answered} of {BATCH} tasks answered")
        assert answered <= BATCH * 2, "the queue keeps offering answered tasks"
    assert answered >= BATCH


def _export(
    run: Run, admin: Patient, project_id: str, fault: str | None
) -> dict[str, Any]:
    """Build a version; build it again under a new name if it was interrupted."""
    for attempt in range(1, 4):
        created = admin.send(
            "POST",
            f"/api/v1/projects/{project_id}/exports",
            json={"name": f"faulted-{attempt}", "formats": ["jsonl", "conll"]},
        )
        assert created.status_code == 202, created.text
        export_id = created.json()["id"]
        if fault and attempt == 1:
            _inject(run, fault, "export build started")

        def finished(export_id: str = export_id) -> dict[str, Any] | None:
            answer = admin.send("GET", f"/api/v1/exports/{export_id}")
            answer.raise_for_status()
            body: dict[str, Any] = answer.json()
            return body if body["state"] != "building" else None

        export: dict[str, Any] = wait_for(
            finished, timeout=STALL_SECONDS + PATIENCE, interval=1
        )
        if export["state"] == "ready":
            return export
        assert export["error_code"] == "export_interrupted", export
        run.figures.exports_interrupted += 1
    raise AssertionError("three builds in a row were interrupted")


def _download_and_verify(
    strongroom: Strongroom, token: str, export: dict[str, Any], out: Path
) -> None:
    api = ("--url", strongroom.url, "--token", token)
    strongroom.cli("export", "download", *api, export["id"], "--out", str(out))
    key = out / "export-key.pem"
    key.write_text(strongroom.cli("export", "key", *api).stdout)
    directory = out / export["name"]
    verified = strongroom.cli(
        "export", "verify", str(directory), "--public-key", str(key)
    )
    assert "signature good" in verified.stdout
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["counts"]["records"] == BATCH


def _check_queue(admin: Patient, project_id: str, figures: Figures) -> None:
    listed = admin.send(
        "GET", f"/api/v1/projects/{project_id}/tasks", params={"limit": 500}
    ).json()
    documents = [task["document_id"] for task in listed["tasks"]]
    figures.documents = len(set(documents))
    figures.lost = BATCH - len(set(documents))
    figures.repeated = len(documents) - len(set(documents))
    assert figures.lost == figures.repeated == 0
    assert {task["state"] for task in listed["tasks"]} == {"completed"}
    stored = admin.send("GET", f"/api/v1/projects/{project_id}/documents").json()
    assert stored["total"] == BATCH


def _check_exports(admin: Patient, project_id: str, ready: dict[str, Any]) -> None:
    """Only the ready version lists files; an interrupted one lists none."""
    listed = admin.send("GET", f"/api/v1/projects/{project_id}/exports").json()
    for export in listed["exports"]:
        assert export["state"] in ("ready", "failed"), export
        if export["id"] == ready["id"]:
            assert export["files"]
        elif export["state"] == "failed":
            assert not export["files"], export


def _check_audit(admin: Patient, cluster: Cluster, figures: Figures) -> None:
    verified = admin.send("GET", "/api/v1/audit/verify").json()
    assert verified["is_intact"], verified
    events = verified["event_count"]
    figures.audit_events = events
    settings = cluster.settings
    url = f"{settings['opensearch_url']}/{settings['opensearch_index_prefix']}-*/_count"
    query = {"query": {"range": {"sequence": {"lte": events}}}}

    def indexed() -> int:
        response = httpx.post(url, json=query, timeout=30)
        response.raise_for_status()
        count: int = response.json()["count"]
        return count

    wait_for(lambda: indexed() >= events, timeout=PATIENCE, interval=1)
    assert indexed() == events
