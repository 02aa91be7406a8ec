"""The whole path in cluster mode: Kafka, S3, OpenSearch, Keycloak and PostgreSQL.

Every backend is the real server, started by the test harness (tests/backends).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2
from kafka import KafkaAdminClient
from minio import Minio

from strongroom.services.common.config import Settings
from strongroom.services.common.grpc_server import LIVENESS
from strongroom.services.common.runtime import AUDIT_ARCHIVE, open_object_store
from strongroom.v1 import tasks_pb2, tasks_pb2_grpc
from tests.backends.kafka import KafkaServer
from tests.backends.keycloak import KeycloakServer
from tests.backends.postgres import PostgresCluster
from tests.e2e.cluster import (
    ADMIN,
    ANNOTATOR,
    ingest_in_background,
    new_batch,
    start_cluster,
    task_documents,
)
from tests.e2e.harness import Strongroom, wait_for

NOTE = "Patient seen on 03/14/2021, call (555) 201-3344 or write to pat@example.org.\n"
# Documents per delivery test: enough that a kill lands mid-batch.
BATCH = 40


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server,
    kafka_server,
    s3_server,
    opensearch_server,
    keycloak_server,
) -> Iterator[dict]:
    started = start_cluster(
        tmp_path_factory.mktemp("cluster"),
        postgres=postgres_server,
        kafka=kafka_server,
        s3=s3_server,
        opensearch=opensearch_server,
        keycloak=keycloak_server,
    )
    try:
        yield {
            "strongroom": started.strongroom,
            "config": started.config,
            "settings": started.settings,
            "keycloak": keycloak_server,
            "kafka": kafka_server,
            "postgres": postgres_server,
            "template": started.template,
        }
    finally:
        started.strongroom.stop()


@pytest.fixture(scope="module")
def journey(cluster: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    strongroom: Strongroom = cluster["strongroom"]
    work = tmp_path_factory.mktemp("cluster-journey")
    assert strongroom.admin_password is None  # users live in Keycloak
    strongroom.cli(
        "login", "--url", strongroom.url, "--username", ADMIN[0], "--password", ADMIN[1]
    )
    admin = strongroom.client(strongroom.token(*ADMIN))
    ann = strongroom.client(
        strongroom.token(*ANNOTATOR)
    )  # signs in through the gateway

    project = admin.post(
        "/api/v1/projects",
        json={"name": "Cluster notes", "labels": ["PERSON", "DIAGNOSIS"]},
    ).json()
    admin.post(
        f"/api/v1/projects/{project['id']}/members",
        json={"username": ANNOTATOR[0], "role": "annotator"},
    ).raise_for_status()
    note = work / "note.txt"
    note.write_text(NOTE)
    strongroom.cli("ingest", "--project", project["id"], str(note))
    wait_for(
        lambda: (
            admin.get(f"/api/v1/projects/{project['id']}/tasks").json()["total"] == 1
        ),
        timeout=90,
    )

    task = ann.post(f"/api/v1/projects/{project['id']}/tasks/next").json()
    start = task["text"].index("Patient")
    ann.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={"spans": [{"start": start, "end": start + 7, "label": "PERSON"}]},
    ).raise_for_status()
    out = work / "exports"
    strongroom.cli("export", "create", "--project", project["id"], "--out", str(out))
    return {
        "admin": admin,
        "ann": ann,
        "project": project,
        "task": task,
        "export_dir": out / "v1",
    }


def test_path_completes_with_redacted_text(journey: dict) -> None:
    text = journey["task"]["text"]
    assert "[DATE]" in text and "[PHONE]" in text and "[EMAIL]" in text
    assert "pat@example.org" not in text
    directory = journey["export_dir"]
    records = [
        line
        for path in sorted(directory.glob("jsonl/*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(records) == 1
    manifest = json.loads((directory / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (directory / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_original_is_stored_in_s3(journey: dict, cluster: dict) -> None:
    settings = cluster["settings"]
    client = Minio(
        settings["s3_endpoint"],
        settings["s3_access_key"],
        settings["s3_secret_key"],
        secure=False,
    )
    bucket = f"{settings['s3_bucket_prefix']}originals"
    keys = [o.object_name for o in client.list_objects(bucket, recursive=True)]
    assert any(key.endswith(hashlib.sha256(NOTE.encode()).hexdigest()) for key in keys)


def test_events_travel_through_kafka(journey: dict, cluster: dict) -> None:
    admin = KafkaAdminClient(
        bootstrap_servers=cluster["settings"]["kafka_bootstrap_servers"]
    )
    try:
        topics = set(admin.list_topics())
    finally:
        admin.close()
    assert {
        "document.ingested",
        "document.cleaned",
        "annotation.submitted",
        "audit.event",
    } <= topics


def test_state_lives_in_postgresql(journey: dict, cluster: dict) -> None:
    engine = sa.create_engine(cluster["template"].format(service="tasks"))
    with engine.connect() as conn:
        states = conn.execute(sa.text("SELECT state FROM tasks")).scalars().all()
    engine.dispose()
    assert states == ["completed"]


def test_audit_trail_is_searchable_in_opensearch_and_verifies(
    journey: dict, cluster: dict
) -> None:
    admin = journey["admin"]
    expected = {
        "auth.login",
        "project.create",
        "document.ingest",
        "document.redact",
        "task.lease",
        "annotation.submit",
        "export.create",
    }

    def found() -> bool:
        return all(
            admin.get(
                "/api/v1/audit/events", params={"action": action, "limit": 1}
            ).json()["total"]
            > 0
            for action in expected
        )

    wait_for(found, timeout=60)
    response = httpx.get(
        f"{cluster['settings']['opensearch_url']}/"
        f"{cluster['settings']['opensearch_index_prefix']}-*/_count"
    )
    assert response.json()["count"] >= len(expected)
    strongroom: Strongroom = cluster["strongroom"]
    verified = strongroom.cli(
        "audit",
        "verify",
        "--data-dir",
        str(strongroom.data_dir),
        "--cluster",
        str(cluster["config"]),
    )
    assert "intact" in verified.stdout


def test_lineage_and_signed_checkpoints_in_cluster_mode(
    journey: dict, cluster: dict
) -> None:
    admin = journey["admin"]
    document = journey["task"]["document_id"]

    def sealed() -> list[dict]:
        story = admin.get(f"/api/v1/audit/lineage/documents/{document}").json()
        actions = [event["action"] for event in story["events"]]
        if "export.contents" not in actions:
            return []
        listed = admin.get("/api/v1/audit/checkpoints").json()["checkpoints"]
        last = max(event["sequence"] for event in story["events"])
        return listed if listed and listed[-1]["tree_size"] >= last else []

    checkpoints = wait_for(sealed, timeout=90)
    story = admin.get(f"/api/v1/audit/lineage/documents/{document}").json()
    actions = [event["action"] for event in story["events"]]
    for expected in ("document.ingest", "task.lease", "annotation.submit"):
        assert expected in actions
    activity = admin.get(f"/api/v1/audit/activity/{ANNOTATOR[0]}").json()
    assert {e["actor"]["username"] for e in activity["events"]} == {ANNOTATOR[0]}

    settings = cluster["settings"]
    archive = open_object_store(
        Settings(
            object_store="s3",
            s3_endpoint=settings["s3_endpoint"],
            s3_access_key=settings["s3_access_key"],
            s3_secret_key=settings["s3_secret_key"],
            s3_secure=False,
            s3_bucket_prefix=settings["s3_bucket_prefix"],
        )
    )
    for checkpoint in checkpoints:
        assert archive.exists(AUDIT_ARCHIVE, checkpoint["segment_sha256"])
    verified = admin.get("/api/v1/audit/verify").json()
    assert verified["is_intact"] and verified["checkpoint_count"] >= 1


def _forged(token: str) -> str:
    """``token`` with an extra role in its claims and the original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"]["roles"].append("auditor")
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return f"{header}.{forged_payload.decode()}.{signature}"


BAD_TOKENS: dict[str, Callable[[KeycloakServer], str]] = {
    "bad signature": lambda keycloak: _forged(keycloak.token(*ADMIN)),
    "wrong issuer": lambda keycloak: keycloak.token_naming_another_issuer(ADMIN[0]),
    "wrong audience": lambda keycloak: keycloak.token_for_another_audience(ADMIN[0]),
    "expired": lambda keycloak: keycloak.expired_token(),
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_keycloak_token_is_refused_by_gateway_and_service(
    journey: dict, cluster: dict, kind: str
) -> None:
    strongroom: Strongroom = cluster["strongroom"]
    token = BAD_TOKENS[kind](cluster["keycloak"])

    response = httpx.get(
        f"{strongroom.url}/api/v1/projects",
        headers={"authorization": f"Bearer {token}"},
    )
    channel = grpc.insecure_channel(strongroom.addresses()["tasks"])
    with pytest.raises(grpc.RpcError) as caught:
        tasks_pb2_grpc.TaskServiceStub(channel).ListProjects(
            tasks_pb2.ListProjectsRequest(),
            timeout=10,
            metadata=(("authorization", f"Bearer {token}"),),
        )
    channel.close()

    assert response.status_code == 401
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_users_are_managed_in_keycloak(journey: dict) -> None:
    response = journey["admin"].post(
        "/api/v1/users", json={"username": "x", "roles": ["annotator"]}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "users_managed_externally"


def test_killed_consumers_mid_batch_lose_and_repeat_nothing(
    cluster: dict, tmp_path: Path
) -> None:
    strongroom: Strongroom = cluster["strongroom"]
    token = strongroom.token(*ADMIN)
    admin = strongroom.client(token)
    project, files = new_batch(admin, tmp_path / "kill", BATCH)
    run_dir = strongroom.data_dir / "run"
    pids = {
        name: int((run_dir / f"{name}.pid").read_text())
        for name in ("redaction", "tasks")
    }

    ingest = ingest_in_background(strongroom, token, project["id"], files)
    wait_for(lambda: task_documents(admin, project["id"]), timeout=120)
    done_at_kill = len(task_documents(admin, project["id"]))
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    ingest.join(300)
    assert not ingest.failure

    wait_for(lambda: len(task_documents(admin, project["id"])) >= BATCH, timeout=240)
    time.sleep(3)  # long enough for a duplicate to show, were one coming
    documents = task_documents(admin, project["id"])
    listed = admin.get(f"/api/v1/projects/{project['id']}/documents").json()
    assert done_at_kill < BATCH, "the kill came after the batch had finished"
    assert len(documents) == len(set(documents)) == BATCH
    assert listed["total"] == BATCH
    for name, pid in pids.items():
        assert int((run_dir / f"{name}.pid").read_text()) != pid


def _run_batch_across(
    cluster: dict, directory: Path, disrupt: Callable[[], None]
) -> None:
    """Ingest a batch, ``disrupt`` once the first task shows, then check the end.

    Every document must reach the task queue exactly once, and the upload
    must not have refused a file.
    """
    strongroom: Strongroom = cluster["strongroom"]
    token = strongroom.token(*ADMIN)
    admin = strongroom.client(token)
    project, files = new_batch(admin, directory, BATCH)

    ingest = ingest_in_background(strongroom, token, project["id"], files)
    wait_for(lambda: task_documents(admin, project["id"]), timeout=120)
    disrupt()
    ingest.join(300)

    wait_for(lambda: len(task_documents(admin, project["id"])) >= BATCH, timeout=300)
    time.sleep(3)  # long enough for a duplicate to show, were one coming
    documents = task_documents(admin, project["id"])
    assert not ingest.failure
    assert len(documents) == len(set(documents)) == BATCH


def test_run_completes_across_a_kafka_broker_restart(
    cluster: dict, tmp_path: Path
) -> None:
    kafka: KafkaServer = cluster["kafka"]

    _run_batch_across(cluster, tmp_path / "broker", kafka.restart)


def test_run_completes_across_a_postgresql_outage(
    cluster: dict, tmp_path: Path
) -> None:
    strongroom: Strongroom = cluster["strongroom"]
    postgres: PostgresCluster = cluster["postgres"]
    refusals: list[httpx.Response] = []

    def sign_in() -> None:
        # The gateway records every sign-in in its own database.
        refusals.append(
            httpx.post(
                f"{strongroom.url}/oidc/token",
                data={"username": ADMIN[0], "password": ADMIN[1]},
                timeout=30,
            )
        )

    # Longer than a consumer's retries of a faulty event take (about 5 s):
    # events in flight must wait for the database, not go to dead letters.
    _run_batch_across(
        cluster,
        tmp_path / "postgres",
        lambda: postgres.restart(down_for=8.0, while_down=sign_in),
    )

    (refused,) = refusals
    assert refused.status_code == 503
    assert refused.json()["code"] == "database_unavailable"


def test_services_are_not_ready_while_kafka_is_down_and_recover(
    cluster: dict,
) -> None:
    strongroom: Strongroom = cluster["strongroom"]
    kafka: KafkaServer = cluster["kafka"]
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    assert set(strongroom.health().values()) == {serving}

    kafka.process.stop()
    try:
        wait_for(
            lambda: set(strongroom.health().values()) == {not_serving},
            timeout=120,
            interval=1,
        )
        assert set(strongroom.health(LIVENESS).values()) == {serving}
        assert httpx.get(f"{strongroom.url}/readyz", timeout=10).status_code == 503
    finally:
        kafka.process.start()

    wait_for(
        lambda: set(strongroom.health().values()) == {serving},
        timeout=180,
        interval=1,
    )
    assert httpx.get(f"{strongroom.url}/readyz", timeout=10).status_code == 200
