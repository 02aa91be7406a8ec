"""The redaction service's tables: reports, policies, project keys, surrogates,
duplicate signatures and reviewers' corrections.

Nothing here holds an identifier in the clear: surrogates are keyed by a
keyed hash of the original, and an original kept for re-identification is
sealed with the vault first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration
from strongroom.services.common.errors import NotFound
from strongroom.services.redaction.detectors import Finding

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
    Migration(
        101,
        "policies, keys, surrogates, duplicates, corrections",
        (
            "ALTER TABLE reports ADD COLUMN details TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE reports ADD COLUMN status TEXT NOT NULL DEFAULT 'cleaned'",
            "CREATE INDEX reports_by_project ON reports (project_id)",
            """CREATE TABLE policies (
                project_id TEXT PRIMARY KEY,
                policy TEXT NOT NULL,
                updated_by TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE project_keys (
                project_id TEXT PRIMARY KEY,
                sealed_key TEXT NOT NULL
            )""",
            """CREATE TABLE surrogates (
                project_id TEXT NOT NULL,
                type TEXT NOT NULL,
                digest TEXT NOT NULL,
                surrogate TEXT NOT NULL,
                surrogate_fold TEXT NOT NULL,
                sealed_original TEXT,
                PRIMARY KEY (project_id, digest)
            )""",
            "CREATE UNIQUE INDEX surrogates_unique "
            "ON surrogates (project_id, type, surrogate_fold)",
            """CREATE TABLE exact_keys (
                project_id TEXT NOT NULL,
                exact_key TEXT NOT NULL,
                document_id TEXT NOT NULL,
                PRIMARY KEY (project_id, exact_key)
            )""",
            """CREATE TABLE signatures (
                document_id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                signature TEXT NOT NULL
            )""",
            """CREATE TABLE lsh_bands (
                project_id TEXT NOT NULL,
                band_key TEXT NOT NULL,
                document_id TEXT NOT NULL
            )""",
            "CREATE INDEX lsh_bands_lookup ON lsh_bands (project_id, band_key)",
            """CREATE TABLE corrections (
                position {serial_pk},
                document_id TEXT NOT NULL,
                action TEXT NOT NULL,
                type TEXT NOT NULL,
                start_offset BIGINT NOT NULL,
                end_offset BIGINT NOT NULL,
                actor TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX corrections_by_document ON corrections (document_id)",
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
    status: str = "cleaned"
    # Actions per finding, versions, quality, duplicates, source hashes...
    details: dict[str, Any] = field(default_factory=dict)


def upsert_report(conn: Connection, row: ReportRow) -> None:
    """Write a document's report, replacing an earlier revision."""
    conn.execute(
        sa.text("DELETE FROM reports WHERE document_id = :id"), {"id": row.document_id}
    )
    insert_report(conn, row)


def insert_report(conn: Connection, row: ReportRow) -> None:
    """Raises: IntegrityError: the document already has a report."""
    findings = [
        [f.type, f.start, f.end, f.confidence, f.detector] for f in row.findings
    ]
    conn.execute(
        sa.text(
            "INSERT INTO reports (document_id, project_id, policy, findings, "
            "redacted_text_sha256, redacted_text_length, created_at, status, details) "
            "VALUES (:document_id, :project_id, :policy, :findings, "
            ":redacted_text_sha256, :redacted_text_length, :created_at, :status, "
            ":details)"
        ),
        {
            **row.__dict__,
            "findings": json.dumps(findings),
            "details": json.dumps(row.details, sort_keys=True),
        },
    )


def _report(m: Any) -> ReportRow:
    return ReportRow(
        document_id=m["document_id"],
        project_id=m["project_id"],
        policy=m["policy"],
        findings=tuple(Finding(*f) for f in json.loads(m["findings"])),
        redacted_text_sha256=m["redacted_text_sha256"],
        redacted_text_length=int(m["redacted_text_length"]),
        created_at=m["created_at"],
        status=m["status"],
        details=json.loads(m["details"]),
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
    return _report(result._mapping)


def project_reports(conn: Connection, project_id: str) -> list[ReportRow]:
    rows = conn.execute(
        sa.text("SELECT * FROM reports WHERE project_id = :p ORDER BY created_at"),
        {"p": project_id},
    )
    return [_report(r._mapping) for r in rows]


# --- policies and keys ---------------------------------------------------------


def get_policy(conn: Connection, project_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.text("SELECT policy FROM policies WHERE project_id = :p"), {"p": project_id}
    ).first()
    return None if row is None else dict(json.loads(row[0]))


def put_policy(
    conn: Connection, project_id: str, policy: dict[str, Any], actor: str, at: str
) -> None:
    conn.execute(
        sa.text("DELETE FROM policies WHERE project_id = :p"), {"p": project_id}
    )
    conn.execute(
        sa.text(
            "INSERT INTO policies (project_id, policy, updated_by, updated_at) "
            "VALUES (:p, :policy, :actor, :at)"
        ),
        {"p": project_id, "policy": json.dumps(policy), "actor": actor, "at": at},
    )


def get_sealed_key(conn: Connection, project_id: str) -> bytes | None:
    row = conn.execute(
        sa.text("SELECT sealed_key FROM project_keys WHERE project_id = :p"),
        {"p": project_id},
    ).first()
    return None if row is None else bytes.fromhex(row[0])


def put_sealed_key(conn: Connection, project_id: str, sealed: bytes) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO project_keys (project_id, sealed_key) VALUES (:p, :k) "
            "ON CONFLICT DO NOTHING"
        ),
        {"p": project_id, "k": sealed.hex()},
    )


# --- surrogates ------------------------------------------------------------------


def surrogates(conn: Connection, project_id: str) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        sa.text("SELECT type, digest, surrogate FROM surrogates WHERE project_id = :p"),
        {"p": project_id},
    )
    return [(r[0], r[1], r[2]) for r in rows]


def add_surrogates(
    conn: Connection,
    project_id: str,
    entries: list[tuple[str, str, str, bytes | None]],
) -> None:
    """``entries``: (type, digest, surrogate, sealed original or None)."""
    for type_, digest, surrogate, sealed in entries:
        conn.execute(
            sa.text(
                "INSERT INTO surrogates (project_id, type, digest, surrogate, "
                "surrogate_fold, sealed_original) VALUES (:p, :t, :d, :s, :f, :o)"
            ),
            {
                "p": project_id,
                "t": type_,
                "d": digest,
                "s": surrogate,
                "f": surrogate.casefold(),
                "o": sealed.hex() if sealed is not None else None,
            },
        )


def sealed_originals(conn: Connection, project_id: str) -> list[tuple[str, str, bytes]]:
    rows = conn.execute(
        sa.text(
            "SELECT type, surrogate, sealed_original FROM surrogates "
            "WHERE project_id = :p AND sealed_original IS NOT NULL ORDER BY type"
        ),
        {"p": project_id},
    )
    return [(r[0], r[1], bytes.fromhex(r[2])) for r in rows]


# --- duplicates --------------------------------------------------------------------


def claim_exact_key(
    conn: Connection, project_id: str, key: str, document_id: str
) -> str | None:
    """Record the key for the document; return the earlier holder, if any."""
    row = conn.execute(
        sa.text(
            "SELECT document_id FROM exact_keys "
            "WHERE project_id = :p AND exact_key = :k"
        ),
        {"p": project_id, "k": key},
    ).first()
    if row is not None:
        return None if row[0] == document_id else str(row[0])
    conn.execute(
        sa.text(
            "INSERT INTO exact_keys (project_id, exact_key, document_id) "
            "VALUES (:p, :k, :d)"
        ),
        {"p": project_id, "k": key, "d": document_id},
    )
    return None


def band_candidates(
    conn: Connection, project_id: str, keys: list[str], document_id: str
) -> list[tuple[str, str]]:
    """Documents sharing a band with ``keys``, with their signatures."""
    if not keys:
        return []
    statement = sa.text(
        "SELECT DISTINCT s.document_id, s.signature FROM lsh_bands b "
        "JOIN signatures s ON s.document_id = b.document_id "
        "WHERE b.project_id = :p AND b.band_key IN :keys AND b.document_id != :d"
    ).bindparams(sa.bindparam("keys", expanding=True))
    rows = conn.execute(statement, {"p": project_id, "keys": keys, "d": document_id})
    return [(r[0], r[1]) for r in rows]


def add_signature(
    conn: Connection, project_id: str, document_id: str, signature: str, keys: list[str]
) -> None:
    conn.execute(
        sa.text("DELETE FROM signatures WHERE document_id = :d"), {"d": document_id}
    )
    conn.execute(
        sa.text("DELETE FROM lsh_bands WHERE document_id = :d"), {"d": document_id}
    )
    conn.execute(
        sa.text(
            "INSERT INTO signatures (document_id, project_id, signature) "
            "VALUES (:d, :p, :s)"
        ),
        {"d": document_id, "p": project_id, "s": signature},
    )
    for key in keys:
        conn.execute(
            sa.text(
                "INSERT INTO lsh_bands (project_id, band_key, document_id) "
                "VALUES (:p, :k, :d)"
            ),
            {"p": project_id, "k": key, "d": document_id},
        )


# --- corrections ---------------------------------------------------------------------


def add_correction(
    conn: Connection,
    document_id: str,
    action: str,
    type_: str,
    start: int,
    end: int,
    actor: str,
    at: str,
) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO corrections (document_id, action, type, start_offset, "
            "end_offset, actor, created_at) VALUES (:d, :a, :t, :s, :e, :actor, :at)"
        ),
        {"d": document_id, "a": action, "t": type_, "s": start, "e": end,
         "actor": actor, "at": at},
    )  # fmt: skip


def corrections(conn: Connection, document_id: str) -> list[tuple[str, str, int, int]]:
    rows = conn.execute(
        sa.text(
            "SELECT action, type, start_offset, end_offset FROM corrections "
            "WHERE document_id = :d ORDER BY position"
        ),
        {"d": document_id},
    )
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
