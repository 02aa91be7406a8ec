"""The ingestion service's tables: one row per document, one per refused file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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
    Migration(
        101,
        "document_structure",
        (
            "ALTER TABLE documents ADD COLUMN parent_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE documents ADD COLUMN structure_sha256 TEXT NOT NULL "
            "DEFAULT ''",
            "ALTER TABLE documents ADD COLUMN summary TEXT NOT NULL DEFAULT '{}'",
            "CREATE INDEX documents_parent ON documents (parent_id)",
        ),
    ),
    Migration(
        102,
        "quarantine",
        (
            """CREATE TABLE quarantined_files (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                size_bytes BIGINT NOT NULL,
                is_stored BOOLEAN NOT NULL,
                code TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX quarantined_project ON quarantined_files "
            "(project_id, created_at)",
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
    # The document this one was found in (an e-mail, archive or CSV file).
    parent_id: str = ""
    # The structure artefact (pages, blocks, tables, boxes) in the derived store.
    structure_sha256: str = ""
    # Counts, language and OCR provenance, shown without reading the artefact.
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QuarantinedFile:
    """A refused upload: kept (when it arrived whole) with the refusal's code."""

    id: str
    project_id: str
    sha256: str
    size_bytes: int
    is_stored: bool
    code: str
    created_at: str


_COLUMNS = (
    "id, project_id, sha256, size_bytes, media_type, text_sha256, text_length, "
    "pages, parser, parser_version, created_at, parent_id, structure_sha256, summary"
)


def insert_document(conn: Connection, row: DocumentRow) -> None:
    pages = [
        [p.number, p.start, p.end, p.width_pt, p.height_pt, p.source, p.image_sha256]
        for p in row.pages
    ]
    conn.execute(
        sa.text(
            f"INSERT INTO documents ({_COLUMNS}) VALUES (:id, :project_id, :sha256, "
            ":size_bytes, :media_type, :text_sha256, :text_length, :pages, :parser, "
            ":parser_version, :created_at, :parent_id, :structure_sha256, :summary)"
        ),
        {
            **row.__dict__,
            "pages": json.dumps(pages),
            "summary": json.dumps(row.summary, sort_keys=True),
        },
    )


def insert_quarantined(conn: Connection, entry: QuarantinedFile) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO quarantined_files (id, project_id, sha256, size_bytes, "
            "is_stored, code, created_at) VALUES (:id, :project_id, :sha256, "
            ":size_bytes, :is_stored, :code, :created_at)"
        ),
        entry.__dict__,
    )


def list_quarantined(conn: Connection, project_id: str) -> list[QuarantinedFile]:
    rows = conn.execute(
        sa.text(
            "SELECT id, project_id, sha256, size_bytes, is_stored, code, created_at "
            "FROM quarantined_files WHERE project_id = :p ORDER BY created_at, id"
        ),
        {"p": project_id},
    ).all()
    return [
        QuarantinedFile(
            id=str(r.id),
            project_id=str(r.project_id),
            sha256=str(r.sha256),
            size_bytes=int(r.size_bytes),
            is_stored=bool(r.is_stored),
            code=str(r.code),
            created_at=str(r.created_at),
        )
        for r in rows
    ]


def child_ids(conn: Connection, parent_id: str) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT id FROM documents WHERE parent_id = :p ORDER BY created_at, id"
        ),
        {"p": parent_id},
    ).all()
    return [str(r.id) for r in rows]


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
        parent_id=str(m["parent_id"]),
        structure_sha256=str(m["structure_sha256"]),
        summary=json.loads(str(m["summary"])),
    )
