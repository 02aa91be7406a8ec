"""The embedded audit index: chained audit entries searchable through SQLite FTS5."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from strongroom.services.common.database import (
    bulk_insert,
    check_database,
    open_sqlite,
)
from strongroom.services.common.ports import AuditQuery, AuditSearchResult

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS audit_entries (
        sequence INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        time TEXT NOT NULL,
        action TEXT NOT NULL,
        actor_subject TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        entry TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries (time)",
    # Each filter an auditor uses, newest first within it.
    *(
        f"CREATE INDEX IF NOT EXISTS audit_entries_{column} "
        f"ON audit_entries ({column}, sequence)"
        for column in (
            "action",
            "actor_subject",
            "resource_id",
            "project_id",
            "outcome",
        )
    ),
    # An action within a period: the question "who exported in March".
    "CREATE INDEX IF NOT EXISTS audit_entries_action_time "
    "ON audit_entries (action, time)",
    """CREATE TABLE IF NOT EXISTS audit_documents (
        document_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        PRIMARY KEY (document_id, sequence)
    )""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS audit_text USING fts5(
        action, actor, resource, outcome, details, tokenize = 'unicode61'
    )""",
)


def _match_expression(text: str) -> str:
    # Each word becomes a quoted phrase, so user input can never be read as
    # FTS5 query syntax.
    return " ".join('"' + word.replace('"', '""') + '"' for word in text.split())


_ENTRY_COLUMNS = (
    "sequence",
    "event_id",
    "time",
    "action",
    "actor_subject",
    "resource_id",
    "project_id",
    "outcome",
    "entry",
)
_TEXT_COLUMNS = ("rowid", "action", "actor", "resource", "outcome", "details")
_INDEXED = sa.text(
    "SELECT sequence FROM audit_entries WHERE sequence IN :seqs"
).bindparams(sa.bindparam("seqs", expanding=True))


class SqliteAuditIndex:
    def __init__(self, path: Path) -> None:
        self.engine = open_sqlite(path, _SCHEMA)

    def add(self, entries: Sequence[dict[str, Any]]) -> None:
        """Index entries in one transaction, a statement per table."""
        if not entries:
            return
        with self.engine.begin() as conn:
            indexed = {
                row.sequence
                for row in conn.execute(
                    _INDEXED, {"seqs": [entry["sequence"] for entry in entries]}
                )
            }
            fresh = list(
                {
                    entry["sequence"]: entry
                    for entry in entries
                    if entry["sequence"] not in indexed
                }.values()
            )
            if not fresh:
                return
            bulk_insert(
                conn, "audit_entries", _ENTRY_COLUMNS, [*map(_entry_row, fresh)]
            )
            bulk_insert(conn, "audit_text", _TEXT_COLUMNS, [*map(_text_row, fresh)])
            bulk_insert(
                conn,
                "audit_documents",
                ("document_id", "sequence"),
                [
                    (document, entry["sequence"])
                    for entry in fresh
                    for document in entry["event"].get("documents") or ()
                ],
                on_conflict_do_nothing=True,
            )

    def remove(self, sequences: Sequence[int]) -> None:
        if not sequences:
            return
        with self.engine.begin() as conn:
            for table, column in (
                ("audit_entries", "sequence"),
                ("audit_text", "rowid"),
                ("audit_documents", "sequence"),
            ):
                conn.execute(
                    sa.text(f"DELETE FROM {table} WHERE {column} IN :seqs").bindparams(
                        sa.bindparam("seqs", expanding=True)
                    ),
                    {"seqs": list(sequences)},
                )

    def check(self) -> None:
        check_database(self.engine, "audit index")

    def search(self, query: AuditQuery) -> AuditSearchResult:
        conditions, params = ["1 = 1"], dict[str, Any]()
        if query.text.strip():
            conditions.append(
                "sequence IN (SELECT rowid FROM audit_text "
                "WHERE audit_text MATCH :match)"
            )
            params["match"] = _match_expression(query.text)
        if query.document_id:
            conditions.append(
                "(resource_id = :document OR sequence IN (SELECT sequence FROM "
                "audit_documents WHERE document_id = :document))"
            )
            params["document"] = query.document_id
        if query.request_id:
            conditions.append("json_extract(entry, '$.event.request_id') = :request")
            params["request"] = query.request_id
        if query.resource_type:
            conditions.append("json_extract(entry, '$.event.resource.type') = :rtype")
            params["rtype"] = query.resource_type
        for column, value in (
            ("action", query.action),
            ("resource_id", query.resource_id),
            ("actor_subject", query.actor_subject),
            ("project_id", query.project_id),
            ("outcome", query.outcome),
        ):
            if value:
                conditions.append(f"{column} = :{column}")
                params[column] = value
        if query.since:
            conditions.append("time >= :since")
            params["since"] = query.since
        if query.until:
            conditions.append("time < :until")
            params["until"] = query.until
        where = " AND ".join(conditions)
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.text(f"SELECT COUNT(*) FROM audit_entries WHERE {where}"), params
            ).scalar_one()
            rows = conn.execute(
                sa.text(
                    f"SELECT entry FROM audit_entries WHERE {where} "
                    "ORDER BY time DESC, sequence DESC LIMIT :limit OFFSET :offset"
                ),
                {**params, "limit": query.limit, "offset": query.offset},
            ).all()
        return AuditSearchResult(
            events=[json.loads(r.entry) for r in rows], total=total
        )

    def last_sequence(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.text("SELECT MAX(sequence) FROM audit_entries")
            ).scalar()
        return int(value or 0)


def _entry_row(entry: dict[str, Any]) -> tuple[Any, ...]:
    event = entry["event"]
    return (
        entry["sequence"],
        event["id"],
        event["time"],
        event["action"],
        event["actor"]["subject"],
        event["resource"]["id"],
        event["resource"]["project_id"],
        event["outcome"],
        json.dumps(entry, sort_keys=True),
    )


def _text_row(entry: dict[str, Any]) -> tuple[Any, ...]:
    event = entry["event"]
    actor, resource = event["actor"], event["resource"]
    words = (
        resource["type"],
        resource["id"],
        resource["project_id"],
        *(event.get("documents") or ()),
    )
    return (
        entry["sequence"],
        event["action"].replace(".", " "),
        f"{actor['subject']} {actor['username']}",
        " ".join(words),
        event["outcome"],
        " ".join(f"{k} {v}" for k, v in event["details"].items()),
    )
