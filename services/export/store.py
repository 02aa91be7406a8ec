"""The export service's tables: one row per export version."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration
from strongroom.services.common.errors import NotFound
from strongroom.services.export.domain import FileEntry

MIGRATIONS = (
    Migration(
        100,
        "exports",
        (
            """CREATE TABLE exports (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                name TEXT NOT NULL,
                format TEXT NOT NULL,
                files TEXT NOT NULL,
                annotation_count BIGINT NOT NULL,
                manifest_sha256 TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (project_id, name)
            )""",
        ),
    ),
)


@dataclass(frozen=True)
class ExportRow:
    id: str
    project_id: str
    name: str
    format: str
    files: tuple[FileEntry, ...]
    annotation_count: int
    manifest_sha256: str
    created_at: str


def insert_export(conn: Connection, row: ExportRow) -> bool:
    result = conn.execute(
        sa.text(
            "INSERT INTO exports (id, project_id, name, format, files, "
            "annotation_count, "
            "manifest_sha256, created_at) VALUES (:id, :project_id, :name, :format, "
            ":files, :annotation_count, :manifest_sha256, :created_at) "
            "ON CONFLICT DO NOTHING"
        ),
        {**row.__dict__, "files": json.dumps([f.__dict__ for f in row.files])},
    )
    return bool(result.rowcount)


def get_export(conn: Connection, export_id: str) -> ExportRow:
    """Raises: NotFound: no export has that id."""
    row = conn.execute(
        sa.text("SELECT * FROM exports WHERE id = :id"), {"id": export_id}
    ).first()
    if row is None:
        raise NotFound(f"Export {export_id} does not exist.", code="export_not_found")
    return _row(row._mapping)


def count_exports(conn: Connection, project_id: str) -> int:
    return int(
        conn.execute(
            sa.text("SELECT COUNT(*) FROM exports WHERE project_id = :p"),
            {"p": project_id},
        ).scalar_one()
    )


def list_exports(
    conn: Connection, project_id: str, limit: int, offset: int
) -> tuple[list[ExportRow], int]:
    rows = conn.execute(
        sa.text(
            "SELECT * FROM exports WHERE project_id = :p ORDER BY created_at, id "
            "LIMIT :limit OFFSET :offset"
        ),
        {"p": project_id, "limit": limit, "offset": offset},
    ).all()
    return [_row(r._mapping) for r in rows], count_exports(conn, project_id)


def _row(m: sa.RowMapping) -> ExportRow:
    return ExportRow(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        format=m["format"],
        files=tuple(FileEntry(**f) for f in json.loads(m["files"])),
        annotation_count=int(m["annotation_count"]),
        manifest_sha256=m["manifest_sha256"],
        created_at=m["created_at"],
    )
