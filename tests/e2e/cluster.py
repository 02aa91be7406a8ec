"""Strongroom in cluster mode on the harness's real backends, and batches to run.

Shared by the cluster-mode tests and the fault tests: each starts its own
`strongroom up --cluster` with databases, buckets and indexes of its own on
the session's Kafka, S3 server, OpenSearch, Keycloak and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from strongroom.services.common.config import SERVICE_NAMES
from tests.e2e.harness import Strongroom, isolated_env

# Users of the test realm (tests/backends/keycloak.py).
ADMIN = ("admin", "dev-only-admin-password")
ANNOTATOR = ("ann", "dev-only-ann-password")


@dataclass
class Cluster:
    strongroom: Strongroom
    config: Path
    settings: dict[str, Any]
    # The database URL with ``{service}`` where each service's name goes.
    template: str


def start_cluster(
    root: Path,
    *,
    postgres: Any,
    kafka: Any,
    s3: Any,
    opensearch: Any,
    keycloak: Any,
    **extra: Any,
) -> Cluster:
    """Start Strongroom on the backends; ``extra`` settings go in its config."""
    run = uuid.uuid4().hex[:8]
    # One database per service (and one for the gateway's sign-in records),
    # created up front as a platform team would.
    urls = [
        postgres.url_for(f"strongroom_{run}_{name}")
        for name in (*SERVICE_NAMES, "identity")
    ]
    template = urls[-1].replace(f"_{run}_identity", f"_{run}_{{service}}")
    settings = {
        "database_url_template": template,
        "event_bus": "kafka",
        "kafka_bootstrap_servers": kafka.bootstrap_servers,
        "object_store": "s3",
        "s3_endpoint": s3.endpoint,
        "s3_access_key": s3.access_key,
        "s3_secret_key": s3.secret_key,
        "s3_secure": False,
        "s3_bucket_prefix": f"e2e-{run}-",
        "audit_index": "opensearch",
        "opensearch_url": opensearch.url,
        "opensearch_index_prefix": f"e2e-{run}-audit",
        "identity": "oidc",
        "oidc_issuer": keycloak.issuer,
        "readiness_interval_seconds": 1,
        "audit_checkpoint_interval_seconds": 1,
        **extra,
    }
    config = root / "cluster.toml"
    config.write_text(
        "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    )
    instance = Strongroom(
        data_dir=root / "data",
        env=isolated_env(root / "home"),
        up_args=["--cluster", str(config)],
    )
    instance.start(timeout=240)
    return Cluster(instance, config, settings, template)


def new_batch(
    admin: httpx.Client, directory: Path, count: int, **project: Any
) -> tuple[dict, list[Path]]:
    """A new project and ``count`` short notes to ingest into it."""
    created = admin.post(
        "/api/v1/projects",
        json={"name": directory.name, "labels": ["PERSON"], **project},
    )
    created.raise_for_status()
    directory.mkdir()
    files = []
    for index in range(count):
        path = directory / f"note-{index:03}.txt"
        path.write_text(f"Note {index}: call (555) 201-{1000 + index}.\n")
        files.append(path)
    return created.json(), files


def task_documents(admin: httpx.Client, project_id: str) -> list[str]:
    """The document of every task in the project; none while tasks is down."""
    try:
        response = admin.get(
            f"/api/v1/projects/{project_id}/tasks", params={"limit": 500}
        )
    except httpx.TransportError:  # the gateway is restarting
        return []
    if response.status_code in (502, 503):
        return []
    response.raise_for_status()
    return [task["document_id"] for task in response.json()["tasks"]]


class Ingest(threading.Thread):
    """`strongroom ingest` of some files, in the background."""

    def __init__(
        self, strongroom: Strongroom, token: str, project_id: str, files: list[Path]
    ) -> None:
        super().__init__(daemon=True)
        self.args = (
            "ingest",
            "--project",
            project_id,
            "--url",
            strongroom.url,
            "--token",
            token,
            *map(str, files),
        )
        self.strongroom = strongroom
        self.failure: str | None = None

    def run(self) -> None:
        result = self.strongroom.cli(*self.args, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).splitlines()
            self.failure = "\n".join(line for line in output if "refused" in line)
            self.failure = self.failure or "\n".join(output[-5:])


def ingest_in_background(
    strongroom: Strongroom, token: str, project_id: str, files: list[Path]
) -> Ingest:
    ingest = Ingest(strongroom, token, project_id, files)
    ingest.start()
    return ingest
