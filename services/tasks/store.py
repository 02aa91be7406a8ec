"""The tasks service's tables: projects, members and tasks."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration, to_iso, utc_now
from strongroom.services.common.errors import NotFound
from strongroom.services.tasks.domain import (
    COMPLETED,
    LEASED,
    QUEUED,
    Label,
    Project,
    Task,
)

MIGRATIONS = (
    Migration(
        100,
        "projects, members and tasks",
        (
            """CREATE TABLE projects (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                labels TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            """CREATE TABLE members (
                project_id TEXT NOT NULL REFERENCES projects (id),
                subject TEXT NOT NULL,
                role TEXT NOT NULL,
                PRIMARY KEY (project_id, subject)
            )""",
            """CREATE TABLE tasks (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                document_id TEXT NOT NULL,
                state TEXT NOT NULL,
                text_sha256 TEXT NOT NULL,
                text_length BIGINT NOT NULL,
                lease_holder TEXT NOT NULL DEFAULT '',
                lease_expires_at TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                completed_at TEXT,
                UNIQUE (project_id, document_id)
            )""",
            "CREATE INDEX tasks_queue ON tasks (project_id, state, created_at)",
        ),
    ),
)

_TASK_COLUMNS = (
    "id, project_id, document_id, state, text_sha256, text_length, "
    "lease_holder, lease_expires_at, created_at"
)


def insert_project(conn: Connection, project: Project) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO projects (id, name, labels, created_at) "
            "VALUES (:id, :name, :labels, :at)"
        ),
        {
            "id": project.id,
            "name": project.name,
            "at": project.created_at,
            "labels": json.dumps([label.__dict__ for label in project.labels]),
        },
    )


def upsert_member(conn: Connection, project_id: str, subject: str, role: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO members (project_id, subject, role) VALUES (:p, :s, :r) "
            "ON CONFLICT (project_id, subject) DO UPDATE SET role = excluded.role"
        ),
        {"p": project_id, "s": subject, "r": role},
    )


def get_project(conn: Connection, project_id: str) -> Project:
    """Raises: NotFound: no project has that id."""
    row = conn.execute(
        sa.text("SELECT id, name, labels, created_at FROM projects WHERE id = :id"),
        {"id": project_id},
    ).first()
    if row is None:
        raise NotFound(
            f"Project {project_id} does not exist.", code="project_not_found"
        )
    members = conn.execute(
        sa.text("SELECT subject, role FROM members WHERE project_id = :id"),
        {"id": project_id},
    ).all()
    return Project(
        id=row.id,
        name=row.name,
        labels=tuple(Label(**label) for label in json.loads(row.labels)),
        members={m.subject: m.role for m in members},
        created_at=row.created_at,
    )


def list_project_ids(
    conn: Connection, member: str | None, limit: int, offset: int
) -> tuple[list[str], int]:
    """List all project ids, or those ``member`` belongs to, oldest first."""
    where, params = "", dict[str, object]()
    if member is not None:
        where = "WHERE id IN (SELECT project_id FROM members WHERE subject = :s)"
        params["s"] = member
    total = conn.execute(
        sa.text(f"SELECT COUNT(*) FROM projects {where}"), params
    ).scalar_one()
    rows = conn.execute(
        sa.text(
            f"SELECT id FROM projects {where} ORDER BY created_at, id "
            "LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": limit, "offset": offset},
    ).all()
    return [r.id for r in rows], int(total)


def insert_task(conn: Connection, task: Task) -> bool:
    """Insert a task unless the document already has one in the project."""
    result = conn.execute(
        sa.text(
            f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES (:id, :project_id, "
            ":document_id, :state, :text_sha256, :text_length, :lease_holder, "
            ":lease_expires_at, :created_at) ON CONFLICT DO NOTHING"
        ),
        task.__dict__,
    )
    return bool(result.rowcount)


def get_task(conn: Connection, task_id: str) -> Task:
    """Raises: NotFound: no task has that id."""
    row = conn.execute(
        sa.text(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = :id"), {"id": task_id}
    ).first()
    if row is None:
        raise NotFound(f"Task {task_id} does not exist.", code="task_not_found")
    return Task(**row._mapping)


def list_tasks(
    conn: Connection, project_id: str, limit: int, offset: int
) -> tuple[list[Task], int]:
    total = conn.execute(
        sa.text("SELECT COUNT(*) FROM tasks WHERE project_id = :p"), {"p": project_id}
    ).scalar_one()
    rows = conn.execute(
        sa.text(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE project_id = :p "
            "ORDER BY created_at, id LIMIT :limit OFFSET :offset"
        ),
        {"p": project_id, "limit": limit, "offset": offset},
    ).all()
    return [Task(**r._mapping) for r in rows], int(total)


def held_lease(
    conn: Connection, project_id: str, subject: str, now: datetime
) -> Task | None:
    row = conn.execute(
        sa.text(
            f"SELECT {_TASK_COLUMNS} FROM tasks "
            "WHERE project_id = :p AND state = :leased "
            "AND lease_holder = :s AND lease_expires_at > :now "
            "ORDER BY created_at LIMIT 1"
        ),
        {"p": project_id, "leased": LEASED, "s": subject, "now": to_iso(now)},
    ).first()
    return Task(**row._mapping) if row else None


def claim_next(
    conn: Connection, project_id: str, subject: str, now: datetime, expires: datetime
) -> Task | None:
    """Lease the oldest queued (or abandoned) task to ``subject``.

    The update is conditional on the state read, so two callers racing for
    the same task cannot both win; the loser moves on to the next one.
    """
    available = "state = :queued OR (state = :leased AND lease_expires_at <= :now)"
    for _attempt in range(5):
        row = conn.execute(
            sa.text(
                f"SELECT id FROM tasks WHERE project_id = :p AND ({available}) "
                "ORDER BY created_at, id LIMIT 1"
            ),
            {"p": project_id, "queued": QUEUED, "leased": LEASED, "now": to_iso(now)},
        ).first()
        if row is None:
            return None
        claimed = conn.execute(
            sa.text(
                f"UPDATE tasks SET state = :leased, lease_holder = :s, "
                f"lease_expires_at = :expires WHERE id = :id AND ({available})"
            ),
            {
                "id": row.id,
                "s": subject,
                "expires": to_iso(expires),
                "queued": QUEUED,
                "leased": LEASED,
                "now": to_iso(now),
            },
        )
        if claimed.rowcount:
            return get_task(conn, row.id)
    return None


def complete_task(conn: Connection, task_id: str) -> bool:
    result = conn.execute(
        sa.text(
            "UPDATE tasks SET state = :done, lease_holder = '', lease_expires_at = '', "
            "completed_at = :at WHERE id = :id AND state != :done"
        ),
        {"id": task_id, "done": COMPLETED, "at": utc_now()},
    )
    return bool(result.rowcount)
