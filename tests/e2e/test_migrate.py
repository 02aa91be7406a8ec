"""`strongroom migrate`, the command the Helm chart's migration hook runs."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa

from strongroom.services.common.config import SERVICE_NAMES
from strongroom.services.common.database import COMMON_MIGRATIONS
from strongroom.services.tasks import store as task_store
from tests.backends.postgres import PostgresCluster
from tests.e2e.harness import isolated_env


def _migrate(env: dict[str, str], *args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "strongroom", "migrate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return result.stdout.splitlines()


def test_migrate_applies_each_database_once(tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home", STRONGROOM_DATA_DIR=str(tmp_path / "data"))

    first = _migrate(env)
    again = _migrate(env, "--service", "tasks")

    assert [line.split(":")[0] for line in first] == [*SERVICE_NAMES, "gateway"]
    assert all(not line.endswith(": 0 migration(s) applied") for line in first)
    assert again == ["tasks: 0 migration(s) applied"]
    assert (tmp_path / "data" / "tasks" / "state.db").exists()


def test_migrate_creates_the_schema_in_postgresql(
    tmp_path: Path, postgres_server: PostgresCluster
) -> None:
    run = uuid.uuid4().hex[:8]
    url = postgres_server.url_for(f"migrate_{run}_tasks")
    template = url.replace(f"_{run}_tasks", f"_{run}_{{service}}")
    env = isolated_env(
        tmp_path / "home",
        STRONGROOM_DATA_DIR=str(tmp_path / "data"),
        STRONGROOM_DATABASE_URL_TEMPLATE=template,
    )

    expected = len(COMMON_MIGRATIONS) + len(task_store.MIGRATIONS)
    applied = _migrate(env, "--service", "tasks")

    assert applied == [f"tasks: {expected} migration(s) applied"]

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert {"projects", "members", "tasks", "outbox"} <= tables
