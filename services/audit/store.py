"""The audit service's storage: the chain file and the head that seals it.

The chain is an append-only file of canonical JSON lines. The database holds
the head (sequence, hash, and the file size it ends at) and the ids of the
events already chained. Each append writes at the recorded size, so a line
left over from a crash before the database commit is simply rewritten, with
identical bytes, when its event is redelivered.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.audit.domain import (
    GENESIS_HASH,
    ChainHead,
    chain_entry,
    entry_line,
)
from strongroom.services.common.database import Migration

MIGRATIONS = (
    Migration(
        100,
        "chain head and chained events",
        (
            """CREATE TABLE chain_head (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                sequence BIGINT NOT NULL,
                hash TEXT NOT NULL,
                file_size BIGINT NOT NULL
            )""",
            f"INSERT INTO chain_head (id, sequence, hash, file_size) "
            f"VALUES (1, 0, '{GENESIS_HASH}', 0)",
            """CREATE TABLE chained_events (
                event_id TEXT PRIMARY KEY,
                sequence BIGINT NOT NULL
            )""",
        ),
    ),
)


@dataclass(frozen=True)
class SealedHead:
    head: ChainHead
    file_size: int


def read_head(conn: Connection) -> SealedHead:
    row = conn.execute(
        sa.text("SELECT sequence, hash, file_size FROM chain_head")
    ).one()
    return SealedHead(ChainHead(int(row.sequence), row.hash), int(row.file_size))


def is_chained(conn: Connection, event_id: str) -> bool:
    row = conn.execute(
        sa.text("SELECT 1 FROM chained_events WHERE event_id = :id"), {"id": event_id}
    ).first()
    return row is not None


class ChainFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)

    def append(self, conn: Connection, event: dict[str, Any]) -> dict[str, Any] | None:
        """Chain one event inside the caller's transaction; None if already chained."""
        if is_chained(conn, event["id"]):
            return None
        sealed = read_head(conn)
        entry = chain_entry(sealed.head, event)
        line = entry_line(entry)
        with self.path.open("r+b") as handle:
            handle.seek(sealed.file_size)
            handle.write(line)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
        conn.execute(
            sa.text(
                "UPDATE chain_head SET sequence = :seq, hash = :hash, file_size = :size"
            ),
            {
                "seq": entry["sequence"],
                "hash": entry["hash"],
                "size": sealed.file_size + len(line),
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO chained_events (event_id, sequence) VALUES (:id, :seq)"
            ),
            {"id": event["id"], "seq": entry["sequence"]},
        )
        return entry

    def lines(self, limit_bytes: int | None = None) -> Iterator[bytes]:
        """Yield the chain's lines, up to ``limit_bytes`` when given."""
        remaining = limit_bytes
        with self.path.open("rb") as handle:
            for line in handle:
                if remaining is not None:
                    if remaining <= 0:
                        return
                    line = line[:remaining]
                    remaining -= len(line)
                yield line
