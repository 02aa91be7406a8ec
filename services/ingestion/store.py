"""The ingestion service's tables: one row per document."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration
from strongroom.services.common.errors import NotFound
from strongroom.services.ingestion.domain import PageText

MIGRATIONS = (
    Migration(
        100,
        "documents",
        (
            """CREATE TABLE documents (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                size_bytes BIGINT NOT NULL,
                media_type TEXT NOT NULL,
                text_sha256 TEXT NOT NULL,
                text_length BIGINT NOT NULL,
                pages TEXT NOT NULL,
                parser TEXT NOT NULL,
                parser_version TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (project_id, sha256)
            )""",
            "CREATE INDEX documents_project ON documents (project_id, created_at)",
        ),
    ),
)


@dataclass(frozen=True)
class DocumentRow:
    id: str
    project_id: str
    sha256: str
    size_bytes: int
    media_type: str
    text_sha256: str
    text_length: int
    pages: tuple[PageText, ...]
    parser: str
    parser_version: str
    created_at: str


_COLUMNS = (
    "id, project_id, sha256, size_bytes, media_type, text_sha256, text_length, "
    "pages, parser, parser_version, created_at"
)


def insert_document(conn: Connection, row: DocumentRow) -> None:
    pages = [[p.number, p.start, p.end, p.width_pt, p.height_pt] for p in row.pages]
    conn.execute(
        sa.text(
            f"INSERT INTO documents ({_COLUMNS}) VALUES (:id, :project_id, :sha256, "
            ":size_bytes, :media_type, :text_sha256, :text_length, :pages, :parser, "
            ":parser_version, :created_at)"
        ),
        {**row.__dict__, "pages": json.dumps(pages)},
    )


def find_by_hash(conn: Connection, project_id: str, sha256: str) -> DocumentRow | None:
    result = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM documents WHERE project_id = :p AND sha256 = :h"
        ),
        {"p": project_id, "h": sha256},
    ).first()
    return _row(result) if result else None


def get_document(conn: Connection, document_id: str) -> DocumentRow:
    """Raises: NotFound: no document has that id."""
    result = conn.execute(
        sa.text(f"SELECT {_COLUMNS} FROM documents WHERE id = :id"), {"id": document_id}
    ).first()
    if result is None:
        raise NotFound(
            f"Document {document_id} does not exist.", code="document_not_found"
        )
    return _row(result)


def list_documents(
    conn: Connection, project_id: str, limit: int, offset: int
) -> tuple[list[DocumentRow], int]:
    total = conn.execute(
        sa.text("SELECT COUNT(*) FROM documents WHERE project_id = :p"),
        {"p": project_id},
    ).scalar_one()
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM documents WHERE project_id = :p "
            "ORDER BY created_at, id LIMIT :limit OFFSET :offset"
        ),
        {"p": project_id, "limit": limit, "offset": offset},
    ).all()
    return [_row(r) for r in rows], int(total)


def _row(result: sa.Row[tuple[object, ...]]) -> DocumentRow:
    m = result._mapping
    pages = tuple(PageText(*p) for p in json.loads(str(m["pages"])))
    return DocumentRow(
        id=str(m["id"]),
        project_id=str(m["project_id"]),
        sha256=str(m["sha256"]),
        size_bytes=int(m["size_bytes"]),
        media_type=str(m["media_type"]),
        text_sha256=str(m["text_sha256"]),
        text_length=int(m["text_length"]),
        pages=pages,
        parser=str(m["parser"]),
        parser_version=str(m["parser_version"]),
        created_at=str(m["created_at"]),
    )
