"""The redaction service's tables: one report per cleaned document."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration
from strongroom.services.common.errors import NotFound
from strongroom.services.redaction.domain import Finding

MIGRATIONS = (
    Migration(
        100,
        "redaction reports",
        (
            """CREATE TABLE reports (
                document_id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                policy TEXT NOT NULL,
                findings TEXT NOT NULL,
                redacted_text_sha256 TEXT NOT NULL,
                redacted_text_length BIGINT NOT NULL,
                created_at TEXT NOT NULL
            )""",
        ),
    ),
)


@dataclass(frozen=True)
class ReportRow:
    document_id: str
    project_id: str
    policy: str
    findings: tuple[Finding, ...]
    redacted_text_sha256: str
    redacted_text_length: int
    created_at: str


def insert_report(conn: Connection, row: ReportRow) -> None:
    findings = [
        [f.type, f.start, f.end, f.confidence, f.detector] for f in row.findings
    ]
    conn.execute(
        sa.text(
            "INSERT INTO reports (document_id, project_id, policy, findings, "
            "redacted_text_sha256, redacted_text_length, created_at) VALUES "
            "(:document_id, :project_id, :policy, :findings, :redacted_text_sha256, "
            ":redacted_text_length, :created_at)"
        ),
        {**row.__dict__, "findings": json.dumps(findings)},
    )


def get_report(conn: Connection, document_id: str) -> ReportRow:
    """Raises: NotFound: the document has no report (yet)."""
    result = conn.execute(
        sa.text("SELECT * FROM reports WHERE document_id = :id"), {"id": document_id}
    ).first()
    if result is None:
        raise NotFound(
            f"Document {document_id} has no redaction report.", code="report_not_found"
        )
    m = result._mapping
    return ReportRow(
        document_id=m["document_id"],
        project_id=m["project_id"],
        policy=m["policy"],
        findings=tuple(Finding(*f) for f in json.loads(m["findings"])),
        redacted_text_sha256=m["redacted_text_sha256"],
        redacted_text_length=int(m["redacted_text_length"]),
        created_at=m["created_at"],
    )
