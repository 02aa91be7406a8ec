"""The export service's tables: one row per dataset version.

A version is written once while it builds (state, progress, heartbeat) and
never changes after it is ready or failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration, bulk_insert, utc_now
from strongroom.services.common.errors import NotFound
from strongroom.services.export.domain import (
    BUILDING,
    FAILED,
    READY,
    ExportSettings,
    FileEntry,
)

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
    Migration(
        101,
        "dataset versions: settings, state and progress, signatures",
        (
            "ALTER TABLE exports ADD COLUMN state TEXT NOT NULL DEFAULT 'ready'",
            "ALTER TABLE exports ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE exports ADD COLUMN progress_done BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE exports ADD COLUMN progress_total BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE exports ADD COLUMN error_code TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE exports ADD COLUMN heartbeat_at TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE exports ADD COLUMN finished_at TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE exports ADD COLUMN split_counts TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE exports ADD COLUMN signature TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE exports ADD COLUMN key_id TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX exports_building ON exports (state, heartbeat_at)",
        ),
    ),
    Migration(
        102,
        "imports from other tools",
        (
            """CREATE TABLE imports (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                format TEXT NOT NULL,
                upload_sha256 TEXT NOT NULL,
                state TEXT NOT NULL,
                items BIGINT NOT NULL DEFAULT 0,
                documents BIGINT NOT NULL DEFAULT 0,
                answers BIGINT NOT NULL DEFAULT 0,
                annotators BIGINT NOT NULL DEFAULT 0,
                suggestions BIGINT NOT NULL DEFAULT 0,
                left_out TEXT NOT NULL DEFAULT '{}',
                progress_done BIGINT NOT NULL DEFAULT 0,
                progress_total BIGINT NOT NULL DEFAULT 0,
                error_code TEXT NOT NULL DEFAULT '',
                heartbeat_at TEXT NOT NULL,
                created_at TEXT NOT NULL,
                finished_at TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX imports_running ON imports (state, heartbeat_at)",
            """CREATE TABLE import_documents (
                import_id TEXT NOT NULL,
                position BIGINT NOT NULL,
                document_id TEXT NOT NULL,
                PRIMARY KEY (import_id, position)
            )""",
        ),
    ),
)


@dataclass(frozen=True)
class ExportRow:
    id: str
    project_id: str
    name: str
    settings: ExportSettings
    created_at: str
    state: str = BUILDING
    files: tuple[FileEntry, ...] = ()
    annotation_count: int = 0
    manifest_sha256: str = ""
    progress_done: int = 0
    progress_total: int = 0
    error_code: str = ""
    finished_at: str = ""
    split_counts: dict[str, int] = field(default_factory=dict)
    signature: str = ""
    key_id: str = ""


def insert_export(conn: Connection, row: ExportRow) -> bool:
    """Record a version that starts building; False when the name is taken."""
    result = conn.execute(
        sa.text(
            "INSERT INTO exports (id, project_id, name, format, files, "
            "annotation_count, manifest_sha256, created_at, state, settings, "
            "heartbeat_at) VALUES (:id, :p, :name, :format, '[]', 0, '', :now, "
            ":state, :settings, :now) ON CONFLICT DO NOTHING"
        ),
        {
            "id": row.id,
            "p": row.project_id,
            "name": row.name,
            "format": row.settings.formats[0],
            "now": row.created_at,
            "state": BUILDING,
            "settings": json.dumps(row.settings.as_dict(), sort_keys=True),
        },
    )
    return bool(result.rowcount)


def report_progress(conn: Connection, export_id: str, done: int, total: int) -> None:
    conn.execute(
        sa.text(
            "UPDATE exports SET progress_done = :done, progress_total = :total, "
            "heartbeat_at = :now WHERE id = :id AND state = :building"
        ),
        {
            "id": export_id,
            "done": done,
            "total": total,
            "now": utc_now(),
            "building": BUILDING,
        },
    )


def finish(
    conn: Connection,
    export_id: str,
    *,
    files: tuple[FileEntry, ...],
    records: int,
    manifest_sha256: str,
    split_counts: dict[str, int],
    signature: str,
    key_id: str,
) -> bool:
    result = conn.execute(
        sa.text(
            "UPDATE exports SET state = :ready, files = :files, "
            "annotation_count = :records, manifest_sha256 = :manifest, "
            "split_counts = :splits, signature = :signature, key_id = :key_id, "
            "progress_done = progress_total, finished_at = :now, heartbeat_at = :now "
            "WHERE id = :id AND state = :building"
        ),
        {
            "id": export_id,
            "ready": READY,
            "building": BUILDING,
            "files": json.dumps([f.__dict__ for f in files]),
            "records": records,
            "manifest": manifest_sha256,
            "splits": json.dumps(split_counts, sort_keys=True),
            "signature": signature,
            "key_id": key_id,
            "now": utc_now(),
        },
    )
    return bool(result.rowcount)


def fail(conn: Connection, export_id: str, error_code: str) -> bool:
    result = conn.execute(
        sa.text(
            "UPDATE exports SET state = :failed, error_code = :code, "
            "finished_at = :now WHERE id = :id AND state = :building"
        ),
        {
            "id": export_id,
            "failed": FAILED,
            "building": BUILDING,
            "code": error_code,
            "now": utc_now(),
        },
    )
    return bool(result.rowcount)


def stalled(conn: Connection, before: str) -> list[ExportRow]:
    """Versions still building whose builder has not reported since ``before``."""
    rows = conn.execute(
        sa.text(
            "SELECT * FROM exports WHERE state = :building AND heartbeat_at < :before"
        ),
        {"building": BUILDING, "before": before},
    ).all()
    return [_row(r._mapping) for r in rows]


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
    stored: dict[str, Any] = json.loads(m["settings"])
    settings = (
        ExportSettings.from_dict(stored)
        if stored
        # A version made before settings were kept: one format, no filter.
        else ExportSettings(name=m["name"], formats=(m["format"],))
    )
    return ExportRow(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        settings=settings,
        created_at=m["created_at"],
        state=m["state"],
        files=tuple(FileEntry(**f) for f in json.loads(m["files"])),
        annotation_count=int(m["annotation_count"]),
        manifest_sha256=m["manifest_sha256"],
        progress_done=int(m["progress_done"]),
        progress_total=int(m["progress_total"]),
        error_code=m["error_code"],
        finished_at=m["finished_at"],
        split_counts=json.loads(m["split_counts"]),
        signature=m["signature"],
        key_id=m["key_id"],
    )


# --- imports ------------------------------------------------------------------

RUNNING, DONE = "running", "done"


@dataclass(frozen=True)
class ImportRow:
    id: str
    project_id: str
    format: str
    upload_sha256: str
    created_at: str
    state: str = RUNNING
    items: int = 0
    documents: int = 0
    answers: int = 0
    annotators: int = 0
    suggestions: int = 0
    left_out: dict[str, int] = field(default_factory=dict)
    progress_done: int = 0
    progress_total: int = 0
    error_code: str = ""
    finished_at: str = ""
    document_ids: tuple[str, ...] = ()


def insert_import(conn: Connection, row: ImportRow) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO imports (id, project_id, format, upload_sha256, state, "
            "heartbeat_at, created_at) VALUES (:id, :p, :format, :upload, :state, "
            ":now, :now)"
        ),
        {
            "id": row.id,
            "p": row.project_id,
            "format": row.format,
            "upload": row.upload_sha256,
            "state": RUNNING,
            "now": row.created_at,
        },
    )


def import_progress(conn: Connection, import_id: str, done: int, total: int) -> None:
    conn.execute(
        sa.text(
            "UPDATE imports SET progress_done = :done, progress_total = :total, "
            "heartbeat_at = :now WHERE id = :id AND state = :running"
        ),
        {
            "id": import_id,
            "done": done,
            "total": total,
            "now": utc_now(),
            "running": RUNNING,
        },
    )


def add_import_documents(
    conn: Connection, import_id: str, start: int, document_ids: list[str]
) -> None:
    bulk_insert(
        conn,
        "import_documents",
        ("import_id", "position", "document_id"),
        [(import_id, start + i, d) for i, d in enumerate(document_ids)],
        on_conflict_do_nothing=True,
    )


def finish_import(
    conn: Connection,
    import_id: str,
    *,
    items: int,
    documents: int,
    answers: int,
    annotators: int,
    suggestions: int,
    left_out: dict[str, int],
) -> bool:
    result = conn.execute(
        sa.text(
            "UPDATE imports SET state = :done, items = :items, documents = :documents, "
            "answers = :answers, annotators = :annotators, "
            "suggestions = :suggestions, left_out = :left_out, "
            "progress_done = progress_total, finished_at = :now, heartbeat_at = :now "
            "WHERE id = :id AND state = :running"
        ),
        {
            "id": import_id,
            "done": DONE,
            "running": RUNNING,
            "items": items,
            "documents": documents,
            "answers": answers,
            "annotators": annotators,
            "suggestions": suggestions,
            "left_out": json.dumps(left_out, sort_keys=True),
            "now": utc_now(),
        },
    )
    return bool(result.rowcount)


def fail_import(conn: Connection, import_id: str, error_code: str) -> bool:
    result = conn.execute(
        sa.text(
            "UPDATE imports SET state = :failed, error_code = :code, "
            "finished_at = :now WHERE id = :id AND state = :running"
        ),
        {
            "id": import_id,
            "failed": FAILED,
            "running": RUNNING,
            "code": error_code,
            "now": utc_now(),
        },
    )
    return bool(result.rowcount)


def stalled_imports(conn: Connection, before: str) -> list[tuple[str, str]]:
    """(id, project id) of imports running with no heartbeat since ``before``."""
    rows = conn.execute(
        sa.text(
            "SELECT id, project_id FROM imports WHERE state = :running "
            "AND heartbeat_at < :before"
        ),
        {"running": RUNNING, "before": before},
    ).all()
    return [(r.id, r.project_id) for r in rows]


def get_import(conn: Connection, import_id: str) -> ImportRow:
    """Raises: NotFound: no import has that id."""
    row = conn.execute(
        sa.text("SELECT * FROM imports WHERE id = :id"), {"id": import_id}
    ).first()
    if row is None:
        raise NotFound(f"Import {import_id} does not exist.", code="import_not_found")
    documents = conn.execute(
        sa.text(
            "SELECT document_id FROM import_documents WHERE import_id = :id "
            "ORDER BY position"
        ),
        {"id": import_id},
    ).scalars()
    m = row._mapping
    return ImportRow(
        id=m["id"],
        project_id=m["project_id"],
        format=m["format"],
        upload_sha256=m["upload_sha256"],
        created_at=m["created_at"],
        state=m["state"],
        items=int(m["items"]),
        documents=int(m["documents"]),
        answers=int(m["answers"]),
        annotators=int(m["annotators"]),
        suggestions=int(m["suggestions"]),
        left_out=json.loads(m["left_out"]),
        progress_done=int(m["progress_done"]),
        progress_total=int(m["progress_total"]),
        error_code=m["error_code"],
        finished_at=m["finished_at"],
        document_ids=tuple(documents),
    )
