"""The audit chain: how entries link, and how to tell that none was altered.

Each entry is one line of canonical JSON holding a sequence number, the hash
of the entry before it, the event, and its own hash over all of that. Changing
any byte of a line, removing a line or reordering lines breaks a link that
:func:`verify_chain` reports with the 1-based position of the first damage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    hash: str


@dataclass(frozen=True)
class Verification:
    is_intact: bool
    event_count: int
    damaged_position: int = 0
    problem: str = ""
    head_hash: str = GENESIS_HASH


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def entry_hash(sequence: int, prev_hash: str, event: dict[str, Any]) -> str:
    material = canonical({"event": event, "prev_hash": prev_hash, "sequence": sequence})
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def chain_entry(head: ChainHead, event: dict[str, Any]) -> dict[str, Any]:
    """Return the entry that follows ``head`` for ``event``."""
    sequence = head.sequence + 1
    return {
        "sequence": sequence,
        "prev_hash": head.hash,
        "hash": entry_hash(sequence, head.hash, event),
        "event": event,
    }


def entry_line(entry: dict[str, Any]) -> bytes:
    return (canonical(entry) + "\n").encode("ascii")


def verify_chain(
    lines: Iterable[bytes], recorded_head: ChainHead | None
) -> Verification:
    """Check every link of the chain, then its end against the recorded head."""
    head = ChainHead(0, GENESIS_HASH)
    for position, line in enumerate(lines, start=1):
        problem = _check_line(line, position, head)
        if problem:
            return Verification(False, position - 1, position, problem, head.hash)
        entry = json.loads(line)
        head = ChainHead(position, entry["hash"])
    if recorded_head is not None:
        if head.sequence < recorded_head.sequence:
            return Verification(
                False,
                head.sequence,
                head.sequence + 1,
                f"the chain ends after entry {head.sequence} but entry "
                f"{recorded_head.sequence} was recorded: entries were removed",
                head.hash,
            )
        if head.sequence == recorded_head.sequence and head.hash != recorded_head.hash:
            return Verification(
                False,
                head.sequence,
                head.sequence,
                "the last entry differs from the one recorded",
                head.hash,
            )
    return Verification(True, head.sequence, head_hash=head.hash)


def _check_line(line: bytes, position: int, head: ChainHead) -> str:
    try:
        entry = json.loads(line)
    except ValueError:
        return f"entry {position} is not valid JSON"
    if not isinstance(entry, dict) or set(entry) != {
        "sequence",
        "prev_hash",
        "hash",
        "event",
    }:
        return f"entry {position} does not have the fields of a chain entry"
    if canonical(entry).encode("ascii") != line.removesuffix(b"\n"):
        return f"entry {position} is not in canonical form"
    if entry["sequence"] != position:
        return f"entry {position} carries sequence {entry['sequence']}"
    if entry["prev_hash"] != head.hash:
        return f"entry {position} does not link to the entry before it"
    if entry["hash"] != entry_hash(position, entry["prev_hash"], entry["event"]):
        return f"entry {position} does not match its hash"
    return ""
