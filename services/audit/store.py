"""The audit service's storage: the chain, its Merkle nodes and checkpoints.

The chain is an append-only file of JSON lines (see domain.py). The database
holds the head (sequence, hash, and the file size it ends at), the ids of the
events already chained, the Merkle tree's perfect-subtree nodes (for proofs)
and the signed checkpoints, which are also written to a file of their own
and archived, with the chain segment each one seals, in the object store.
Each append writes at the recorded size, so a line left over from a crash
before the database commit is rewritten when its event is redelivered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy.engine import Connection, Engine

from strongroom.services.audit.domain import (
    GENESIS_HASH,
    ChainHead,
    Checkpoint,
    RetentionPolicy,
    SignedCheckpoint,
    next_entry,
    parse_line,
    pruned_line,
    sign_checkpoint,
)
from strongroom.services.audit.merkle import Frontier, NodeLookup, leaf_hash
from strongroom.services.common import signing
from strongroom.services.common.database import Migration, bulk_insert, utc_now
from strongroom.services.common.errors import InternalError
from strongroom.services.common.ports import ObjectStore
from strongroom.services.common.runtime import AUDIT_ARCHIVE
from strongroom.services.common.signing import key_id

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
    Migration(
        101,
        "Merkle tree nodes and signed checkpoints",
        (
            """CREATE TABLE merkle_nodes (
                level INTEGER NOT NULL,
                position BIGINT NOT NULL,
                hash TEXT NOT NULL,
                PRIMARY KEY (level, position)
            )""",
            """CREATE TABLE checkpoints (
                number BIGINT PRIMARY KEY,
                tree_size BIGINT NOT NULL,
                chain_file_size BIGINT NOT NULL,
                file_size BIGINT NOT NULL,
                record TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        102,
        "where each chained event's line starts",
        ("ALTER TABLE chained_events ADD COLUMN file_offset BIGINT",),
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


@dataclass(frozen=True)
class ChainedAt:
    sequence: int
    # Where the entry's line starts in the chain file; None for entries
    # chained before offsets were recorded.
    file_offset: int | None


def location_of(conn: Connection, event_id: str) -> ChainedAt | None:
    row = conn.execute(
        sa.text(
            "SELECT sequence, file_offset FROM chained_events WHERE event_id = :id"
        ),
        {"id": event_id},
    ).first()
    if row is None:
        return None
    offset = None if row.file_offset is None else int(row.file_offset)
    return ChainedAt(int(row.sequence), offset)


def node_lookup(conn: Connection) -> NodeLookup:
    query = sa.text(
        "SELECT hash FROM merkle_nodes WHERE level = :level AND position = :position"
    )

    def lookup(level: int, position: int) -> bytes:
        value = conn.execute(query, {"level": level, "position": position}).scalar()
        if value is None:
            raise InternalError(
                f"Merkle node {level}/{position} is missing.", code="audit_tree_broken"
            )
        return bytes.fromhex(value)

    return lookup


def _write_at(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


def _read_lines(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = end - start
        for line in handle:
            if remaining <= 0:
                return
            line = line[:remaining]
            remaining -= len(line)
            yield line


class ChainFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)

    def append(self, conn: Connection, event: dict[str, Any]) -> dict[str, Any] | None:
        """Chain one event inside the caller's transaction; None if already chained."""
        entries = self.append_many(conn, [event])
        return entries[0] if entries else None

    def append_many(
        self, conn: Connection, events: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Chain events in order inside the caller's transaction, with one write.

        Events already chained (by id) are left out of the result.
        """
        ids = list(dict.fromkeys(str(event["id"]) for event in events))
        if not ids:
            return []
        known = {
            row.event_id
            for row in conn.execute(
                sa.text(
                    "SELECT event_id FROM chained_events WHERE event_id IN :ids"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": ids},
            )
        }
        sealed = read_head(conn)
        frontier = Frontier.restore(sealed.head.sequence, node_lookup(conn))
        head, entries, lines, nodes = sealed.head, [], [], []
        offsets, offset = [], sealed.file_size
        for event in events:
            if event["id"] in known:
                continue
            known.add(event["id"])
            entry, line = next_entry(head, event)
            entries.append(entry)
            lines.append(line)
            offsets.append(offset)
            offset += len(line)
            nodes.extend(frontier.add(leaf_hash(bytes.fromhex(entry["hash"]))))
            head = ChainHead(entry["sequence"], entry["hash"])
        if not entries:
            return []
        data = b"".join(lines)
        _write_at(self.path, sealed.file_size, data)
        conn.execute(
            sa.text(
                "UPDATE chain_head SET sequence = :seq, hash = :hash, file_size = :size"
            ),
            {
                "seq": head.sequence,
                "hash": head.hash,
                "size": sealed.file_size + len(data),
            },
        )
        bulk_insert(
            conn,
            "chained_events",
            ("event_id", "sequence", "file_offset"),
            [
                (e["event"]["id"], e["sequence"], at)
                for e, at in zip(entries, offsets, strict=True)
            ],
        )
        bulk_insert(
            conn,
            "merkle_nodes",
            ("level", "position", "hash"),
            [(level, position, value.hex()) for level, position, value in nodes],
        )
        return entries

    def expired(
        self, engine: Engine, policy: RetentionPolicy, now: datetime
    ) -> list[tuple[int, int]]:
        """(offset, sequence) of every chained entry whose retention ended."""
        with engine.connect() as conn:
            sealed = read_head(conn)
        found, offset = [], 0
        for line in self.lines(sealed.file_size):
            parsed = parse_line(line)
            if (
                parsed is not None
                and not parsed.is_pruned
                and policy.is_expired(json.loads(parsed.event_json), now)
            ):
                found.append((offset, parsed.sequence))
            offset += len(line)
        return found

    def prune(self, entries: Sequence[tuple[int, int]]) -> None:
        """Drop the events of the entries at these offsets, in place.

        Only committed lines are touched and each keeps its length, so
        appends carry on meanwhile and no offset moves.
        """
        with self.path.open("r+b") as handle:
            for offset, _sequence in entries:
                handle.seek(offset)
                line = handle.readline()
                handle.seek(offset)
                handle.write(pruned_line(line))
            handle.flush()
            os.fsync(handle.fileno())

    def line_at(self, offset: int) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            return handle.readline()

    def lines(self, limit_bytes: int | None = None, start: int = 0) -> Iterator[bytes]:
        """Yield the chain's lines from byte ``start``, up to ``limit_bytes``."""
        end = self.path.stat().st_size if limit_bytes is None else limit_bytes
        return _read_lines(self.path, start, end)


# --- signing keys ------------------------------------------------------------


def load_public_key(path: Path) -> Ed25519PublicKey:
    return signing.load_public_key(path.read_bytes())


# --- checkpoints -------------------------------------------------------------


@dataclass(frozen=True)
class StoredCheckpoint:
    signed: SignedCheckpoint
    chain_file_size: int


class CheckpointLog:
    """Signed checkpoints: rows in the database, lines in a file, archive objects."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)

    def latest(self, conn: Connection) -> StoredCheckpoint | None:
        row = conn.execute(
            sa.text(
                "SELECT record, chain_file_size FROM checkpoints "
                "ORDER BY number DESC LIMIT 1"
            )
        ).first()
        if row is None:
            return None
        return StoredCheckpoint(
            SignedCheckpoint.from_line(row.record.encode("ascii")),
            int(row.chain_file_size),
        )

    def get(self, conn: Connection, number: int) -> SignedCheckpoint | None:
        record = conn.execute(
            sa.text("SELECT record FROM checkpoints WHERE number = :n"), {"n": number}
        ).scalar()
        return None if record is None else SignedCheckpoint.from_line(record.encode())

    def covering(self, conn: Connection, sequence: int) -> SignedCheckpoint | None:
        """The first checkpoint that seals entry ``sequence``."""
        record = conn.execute(
            sa.text(
                "SELECT record FROM checkpoints WHERE tree_size >= :seq "
                "ORDER BY number LIMIT 1"
            ),
            {"seq": sequence},
        ).scalar()
        return None if record is None else SignedCheckpoint.from_line(record.encode())

    def all(self, conn: Connection) -> list[SignedCheckpoint]:
        return [
            SignedCheckpoint.from_line(row.record.encode("ascii"))
            for row in conn.execute(
                sa.text("SELECT record FROM checkpoints ORDER BY number")
            )
        ]

    def from_file(self, limit_bytes: int) -> list[SignedCheckpoint]:
        """The checkpoints written to the file, as an offline verifier reads them."""
        return [
            SignedCheckpoint.from_line(line)
            for line in _read_lines(self.path, 0, limit_bytes)
            if line.strip()
        ]

    def file_size(self, conn: Connection) -> int:
        value = conn.execute(sa.text("SELECT MAX(file_size) FROM checkpoints")).scalar()
        return int(value or 0)

    def seal(
        self,
        engine: Engine,
        chain: ChainFile,
        key: Ed25519PrivateKey,
        archive: ObjectStore,
    ) -> SignedCheckpoint | None:
        """Sign a checkpoint over every entry chained so far; None if nothing new.

        The segment of chain lines since the last checkpoint and the signed
        checkpoint itself are archived in the object store first, so a
        checkpoint in the database always has its segment in the archive.
        Only committed entries are read, and their Merkle nodes never change,
        so appends carry on while a checkpoint is sealed. One sealer at a time.
        """
        with engine.connect() as conn:
            sealed = read_head(conn)
            last = self.latest(conn)
            start_size = last.signed.checkpoint.tree_size if last else 0
            if sealed.head.sequence == start_size:
                return None
            root = Frontier.restore(sealed.head.sequence, node_lookup(conn)).root()
            offset = self.file_size(conn)
        start_offset = last.chain_file_size if last else 0
        segment = archive.put(
            AUDIT_ARCHIVE, chain.lines(sealed.file_size, start=start_offset)
        )
        checkpoint = Checkpoint(
            number=last.signed.checkpoint.number + 1 if last else 1,
            tree_size=sealed.head.sequence,
            root_hash=root.hex(),
            chain_hash=sealed.head.hash,
            segment_start=start_size,
            segment_sha256=segment.sha256,
            previous=last.signed.record_hash() if last else GENESIS_HASH,
            time=utc_now(),
            key_id=key_id(key.public_key()),
        )
        signed = sign_checkpoint(checkpoint, key)
        line = signed.line()
        archive.put(AUDIT_ARCHIVE, [line])
        _write_at(self.path, offset, line)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO checkpoints (number, tree_size, chain_file_size, "
                    "file_size, record) "
                    "VALUES (:n, :size, :chain_size, :file_size, :rec)"
                ),
                {
                    "n": checkpoint.number,
                    "size": checkpoint.tree_size,
                    "chain_size": sealed.file_size,
                    "file_size": offset + len(line),
                    "rec": line.rstrip(b"\n").decode("ascii"),
                },
            )
        return signed


@dataclass(frozen=True)
class AuditStore:
    """Everything the audit service keeps, opened together."""

    engine: Engine
    chain: ChainFile
    checkpoints: CheckpointLog
