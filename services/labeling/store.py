"""The labeling service's tables: annotations."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration
from strongroom.services.labeling.domain import Annotation, SpanLabel

MIGRATIONS = (
    Migration(
        100,
        "annotations",
        (
            """CREATE TABLE annotations (
                id TEXT PRIMARY KEY,
                task_id TEXT NOT NULL,
                project_id TEXT NOT NULL,
                document_id TEXT NOT NULL,
                text_sha256 TEXT NOT NULL,
                annotator TEXT NOT NULL,
                spans TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (task_id, annotator)
            )""",
            "CREATE INDEX annotations_project ON annotations (project_id, created_at)",
        ),
    ),
)

_COLUMNS = (
    "id, task_id, project_id, document_id, text_sha256, annotator, spans, created_at"
)


def insert_annotation(conn: Connection, annotation: Annotation) -> bool:
    """Insert an annotation unless the annotator already annotated the task."""
    spans = [[s.start, s.end, s.label] for s in annotation.spans]
    result = conn.execute(
        sa.text(
            f"INSERT INTO annotations ({_COLUMNS}) VALUES (:id, :task_id, :project_id, "
            ":document_id, :text_sha256, :annotator, :spans, :created_at) "
            "ON CONFLICT DO NOTHING"
        ),
        {**annotation.__dict__, "spans": json.dumps(spans)},
    )
    return bool(result.rowcount)


def list_annotations(
    conn: Connection, project_id: str, limit: int, offset: int
) -> tuple[list[Annotation], int]:
    total = conn.execute(
        sa.text("SELECT COUNT(*) FROM annotations WHERE project_id = :p"),
        {"p": project_id},
    ).scalar_one()
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM annotations WHERE project_id = :p "
            "ORDER BY created_at, id LIMIT :limit OFFSET :offset"
        ),
        {"p": project_id, "limit": limit, "offset": offset},
    ).all()
    return [_annotation(r._mapping) for r in rows], int(total)


def _annotation(m: sa.RowMapping) -> Annotation:
    return Annotation(
        id=m["id"],
        task_id=m["task_id"],
        project_id=m["project_id"],
        document_id=m["document_id"],
        text_sha256=m["text_sha256"],
        annotator=m["annotator"],
        spans=tuple(SpanLabel(*s) for s in json.loads(m["spans"])),
        created_at=m["created_at"],
    )
