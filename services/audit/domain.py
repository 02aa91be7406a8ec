"""The audit chain and its signed checkpoints: how entries link, and how to
tell that none was changed, deleted, inserted or reordered.

Each entry is one line of JSON with a fixed field order::

    {"hash":H,"sequence":N,"prev_hash":P,"event_digest":D,"event":E}

``E`` is the event in canonical JSON, ``D`` its SHA-256 and ``H`` the SHA-256
of ``N``, ``P`` and ``D``. An event past its retention period is dropped by
writing ``null`` for ``E``; its digest stays, so the chain still verifies.
The fixed layout lets verification read a line without parsing the event.
A dropped event is ``null`` padded with spaces to the event's length, so the
line keeps its length and the file its offsets.

A checkpoint is a signed statement about the first ``tree_size`` entries: the
RFC 6962 Merkle tree head over their hashes, the hash of the last of them, the
SHA-256 of the segment of chain lines it seals (archived in the object store),
and the hash of the checkpoint before it. It is signed with Ed25519.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from strongroom.services.audit.merkle import Frontier, leaf_hash
from strongroom.services.common.signing import key_id

GENESIS_HASH = "0" * 64

CHANGED = "changed"
DELETED = "deleted"
INSERTED = "inserted"
REORDERED = "reordered"
CHECKPOINT = "checkpoint"

_LINE = re.compile(
    rb'\{"hash":"([0-9a-f]{64})","sequence":([1-9][0-9]*),'
    rb'"prev_hash":"([0-9a-f]{64})","event_digest":"([0-9a-f]{64})",'
    rb'"event":(.*)\}\n?',
    re.DOTALL,
)
_PRUNED = b"null"


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    hash: str


@dataclass(frozen=True)
class ParsedEntry:
    hash: str
    sequence: int
    prev_hash: str
    event_digest: str
    event_json: bytes

    @property
    def is_pruned(self) -> bool:
        return self.event_json.rstrip(b" ") == _PRUNED

    @property
    def leaf(self) -> bytes:
        return leaf_hash(bytes.fromhex(self.hash))


@dataclass(frozen=True)
class Verification:
    is_intact: bool
    event_count: int
    damaged_position: int = 0
    problem: str = ""
    head_hash: str = GENESIS_HASH
    kind: str = ""
    checkpoint_count: int = 0
    # The signed checkpoint the chain no longer matches, when that is the
    # problem; its archived segment can then name the exact entry.
    broken_checkpoint: Checkpoint | None = None


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def event_digest(event_json: bytes) -> str:
    return hashlib.sha256(event_json).hexdigest()


def entry_hash(sequence: int, prev_hash: str, digest: str) -> str:
    material = f"strongroom-audit:{sequence}:{prev_hash}:{digest}"
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def chain_entry(head: ChainHead, event: dict[str, Any]) -> dict[str, Any]:
    """Return the entry that follows ``head`` for ``event``."""
    return next_entry(head, event)[0]


def next_entry(head: ChainHead, event: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The entry that follows ``head`` for ``event``, and its line."""
    sequence = head.sequence + 1
    event_json = canonical(event)
    digest = event_digest(event_json.encode("ascii"))
    entry = {
        "hash": entry_hash(sequence, head.hash, digest),
        "sequence": sequence,
        "prev_hash": head.hash,
        "event_digest": digest,
        "event": event,
    }
    return entry, _line(entry, event_json)


def entry_line(entry: dict[str, Any]) -> bytes:
    event = entry["event"]
    return _line(entry, "null" if event is None else canonical(event))


def _line(entry: dict[str, Any], event_json: str) -> bytes:
    return (
        f'{{"hash":"{entry["hash"]}","sequence":{entry["sequence"]},'
        f'"prev_hash":"{entry["prev_hash"]}","event_digest":"{entry["event_digest"]}",'
        f'"event":{event_json}}}\n'
    ).encode("ascii")


def pruned_line(line: bytes) -> bytes:
    """The same entry with its event dropped, at the same length.

    The event becomes ``null`` padded with spaces (JSON whitespace), so the
    line keeps its place and every offset after it stays valid; the digest
    stays, so the chain still verifies.
    """
    match = _LINE.fullmatch(line)
    if match is None:
        raise ValueError("not a chain entry")
    start, end = match.span(5)
    return line[:start] + _PRUNED.ljust(end - start) + line[end:]


def parse_line(line: bytes) -> ParsedEntry | None:
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    digest, sequence, prev_hash, event_digest_, event_json = match.groups()
    return ParsedEntry(
        digest.decode(),
        int(sequence),
        prev_hash.decode(),
        event_digest_.decode(),
        event_json,
    )


def _is_sound(entry: ParsedEntry) -> bool:
    """The entry's own hashes hold: its event and its fields are unchanged."""
    if not entry.is_pruned and event_digest(entry.event_json) != entry.event_digest:
        return False
    return entry.hash == entry_hash(entry.sequence, entry.prev_hash, entry.event_digest)


# --- retention ---------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    """How many days each category of event is kept; the category is the
    action's first word (``auth`` for ``auth.login``)."""

    default_days: float
    days_by_category: dict[str, float] = field(default_factory=dict)

    def days_for(self, action: str) -> float:
        return self.days_by_category.get(category_of(action), self.default_days)

    def is_expired(self, event: dict[str, Any], now: datetime) -> bool:
        kept_until = datetime.fromisoformat(event["time"]) + timedelta(
            days=self.days_for(event["action"])
        )
        return kept_until <= now


def category_of(action: str) -> str:
    return action.split(".", 1)[0]


# --- checkpoints -------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    number: int
    tree_size: int
    root_hash: str
    chain_hash: str
    segment_start: int
    segment_sha256: str
    previous: str
    time: str
    key_id: str

    def statement(self) -> bytes:
        return canonical(self.__dict__).encode("ascii")


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: str

    def line(self) -> bytes:
        record = {"checkpoint": self.checkpoint.__dict__, "signature": self.signature}
        return (canonical(record) + "\n").encode("ascii")

    def record_hash(self) -> str:
        return hashlib.sha256(self.line().rstrip(b"\n")).hexdigest()

    @classmethod
    def from_line(cls, line: bytes) -> SignedCheckpoint:
        record = json.loads(line)
        return cls(Checkpoint(**record["checkpoint"]), str(record["signature"]))


def sign_checkpoint(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> SignedCheckpoint:
    signature = key.sign(checkpoint.statement())
    return SignedCheckpoint(checkpoint, base64.b64encode(signature).decode("ascii"))


def signature_holds(signed: SignedCheckpoint, public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(
            base64.b64decode(signed.signature, validate=True),
            signed.checkpoint.statement(),
        )
    except (InvalidSignature, ValueError):
        return False
    return signed.checkpoint.key_id == key_id(public_key)


# --- verification ------------------------------------------------------------


@dataclass
class _Walk:
    """What a pass over the chain has established so far."""

    head: ChainHead = field(default_factory=lambda: ChainHead(0, GENESIS_HASH))
    frontier: Frontier = field(default_factory=Frontier)


def verify_chain(
    lines: Iterable[bytes],
    recorded_head: ChainHead | None,
    checkpoints: Sequence[SignedCheckpoint] = (),
    public_key: Ed25519PublicKey | None = None,
) -> Verification:
    """Check every link of the chain, every checkpoint and the recorded head.

    Returns the first problem found, with the 1-based position of the entry
    where the chain stops being what was written and what happened to it
    (changed, deleted, inserted, reordered), or the checkpoint that fails.
    """
    problem = _checkpoint_problem(checkpoints, public_key)
    if problem is not None:
        return problem
    walk = _Walk()
    pending = iter(checkpoints)
    due = next(pending, None)
    stream = iter(lines)
    for position, line in enumerate(stream, start=1):
        entry = parse_line(line)
        damage = _damage(entry, position, walk.head, stream)
        if damage is not None:
            kind, text = damage
            return Verification(
                False, position - 1, position, text, walk.head.hash, kind
            )
        assert entry is not None
        walk.head = ChainHead(position, entry.hash)
        walk.frontier.add(entry.leaf)
        while due is not None and due.checkpoint.tree_size == position:
            if not _seals(due.checkpoint, walk):
                return _unsealed(due.checkpoint, walk)
            due = next(pending, None)
    if due is not None:
        return Verification(
            False,
            walk.head.sequence,
            walk.head.sequence + 1,
            f"checkpoint {due.checkpoint.number} seals {due.checkpoint.tree_size} "
            f"entries but the chain ends after {walk.head.sequence}: entries "
            "were deleted",
            walk.head.hash,
            DELETED,
        )
    return _against_recorded_head(walk.head, recorded_head, len(checkpoints))


def _checkpoint_problem(
    checkpoints: Sequence[SignedCheckpoint], public_key: Ed25519PublicKey | None
) -> Verification | None:
    previous, size = GENESIS_HASH, 0
    for expected, signed in enumerate(checkpoints, start=1):
        checkpoint = signed.checkpoint
        text = ""
        if checkpoint.number != expected:
            text = f"checkpoint {expected} is missing or out of order"
        elif public_key is not None and not signature_holds(signed, public_key):
            text = f"the signature of checkpoint {expected} does not verify"
        elif checkpoint.previous != previous:
            text = f"checkpoint {expected} does not link to the checkpoint before it"
        elif checkpoint.segment_start != size or checkpoint.tree_size <= size:
            text = f"checkpoint {expected} does not continue where the last one ended"
        if text:
            return Verification(False, 0, 0, text, kind=CHECKPOINT)
        previous, size = signed.record_hash(), checkpoint.tree_size
    return None


def _seals(checkpoint: Checkpoint, walk: _Walk) -> bool:
    return (
        checkpoint.chain_hash == walk.head.hash
        and checkpoint.root_hash == walk.frontier.root().hex()
    )


def _unsealed(checkpoint: Checkpoint, walk: _Walk) -> Verification:
    return Verification(
        False,
        walk.head.sequence,
        checkpoint.segment_start + 1,
        f"entries {checkpoint.segment_start + 1} to {checkpoint.tree_size} no "
        f"longer match signed checkpoint {checkpoint.number}: the chain was "
        "rewritten",
        walk.head.hash,
        CHANGED,
        broken_checkpoint=checkpoint,
    )


def _damage(
    entry: ParsedEntry | None,
    position: int,
    head: ChainHead,
    rest: Iterator[bytes],
) -> tuple[str, str] | None:
    """Name what happened at ``position``, or None when the entry is sound."""
    if entry is None or not _is_sound(entry):
        return CHANGED, f"entry {position} was changed"
    if entry.sequence == position and entry.prev_hash == head.hash:
        return None
    if entry.sequence < position:
        return INSERTED, (
            f"entry {position} repeats sequence {entry.sequence}: an entry was inserted"
        )
    if entry.sequence == position:
        return CHANGED, f"entry {position} does not link to the entry before it"
    later = {parsed.sequence for parsed in map(parse_line, rest) if parsed}
    if position in later:
        return REORDERED, (
            f"entry {position} holds sequence {entry.sequence}: entries were reordered"
        )
    return DELETED, (
        f"entry {position} holds sequence {entry.sequence}: entries "
        f"{position} to {entry.sequence - 1} were deleted"
    )


def _against_recorded_head(
    head: ChainHead, recorded: ChainHead | None, checkpoint_count: int
) -> Verification:
    if recorded is not None:
        if head.sequence < recorded.sequence:
            return Verification(
                False,
                head.sequence,
                head.sequence + 1,
                f"the chain ends after entry {head.sequence} but entry "
                f"{recorded.sequence} was recorded: entries were deleted",
                head.hash,
                DELETED,
            )
        if head.sequence == recorded.sequence and head.hash != recorded.hash:
            return Verification(
                False,
                head.sequence,
                head.sequence,
                f"entry {head.sequence} was changed: it differs from the one recorded",
                head.hash,
                CHANGED,
            )
    return Verification(
        True, head.sequence, head_hash=head.hash, checkpoint_count=checkpoint_count
    )


def locate_rewrite(
    local: Sequence[bytes], archived: Sequence[bytes], first_position: int
) -> tuple[int, str]:
    """Compare a rewritten stretch of chain with its archived original.

    Returns the 1-based position of the first entry whose event differs from
    the original, and what happened to it. ``first_position`` is the position
    of ``archived[0]`` in the chain.
    """
    original = [_digest_of(line) for line in archived]
    current = [_digest_of(line) for line in local]
    for offset, was in enumerate(original):
        now = current[offset] if offset < len(current) else None
        if now == was:
            continue
        position = first_position + offset
        if now is None:
            return position, DELETED
        was_moved_later = was in current[offset + 1 :]
        if now not in original:
            return position, INSERTED if was_moved_later else CHANGED
        return position, REORDERED if was_moved_later else DELETED
    return first_position + len(original), INSERTED


def _digest_of(line: bytes) -> str:
    parsed = parse_line(line)
    return parsed.event_digest if parsed else hashlib.sha256(line).hexdigest()
