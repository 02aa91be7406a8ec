"""Signed checkpoints: verify names the first entry where the trail differs
from what was written, and what happened to it, for every kind of change."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.services.audit.domain import (
    CHANGED,
    CHECKPOINT,
    DELETED,
    GENESIS_HASH,
    INSERTED,
    REORDERED,
    ChainHead,
    Checkpoint,
    RetentionPolicy,
    SignedCheckpoint,
    category_of,
    chain_entry,
    entry_line,
    locate_rewrite,
    parse_line,
    pruned_line,
    sign_checkpoint,
    verify_chain,
)
from strongroom.services.audit.merkle import tree_head
from strongroom.services.common.signing import key_id

KEY = Ed25519PrivateKey.generate()
SEALS = (4, 8, 12)


def _event(number: int) -> dict[str, Any]:
    return {
        "id": f"evt-{number}",
        "time": f"2026-05-01T10:00:{number:02d}.000000+00:00",
        "actor": {"subject": "u-mia", "username": "mia", "roles": ["manager"]},
        "action": "task.read",
        "resource": {"type": "task", "id": f"t-{number}", "project_id": "p"},
        "outcome": "success",
        "details": {},
    }


def _chain(events: list[dict[str, Any]]) -> list[bytes]:
    head, lines = ChainHead(0, GENESIS_HASH), []
    for event in events:
        entry = chain_entry(head, event)
        lines.append(entry_line(entry))
        head = ChainHead(entry["sequence"], entry["hash"])
    return lines


def _checkpoints(
    lines: list[bytes], key: Ed25519PrivateKey = KEY
) -> list[SignedCheckpoint]:
    signed: list[SignedCheckpoint] = []
    start = 0
    for number, size in enumerate(SEALS, start=1):
        entries = [parse_line(line) for line in lines[:size]]
        checkpoint = Checkpoint(
            number=number,
            tree_size=size,
            root_hash=tree_head(e.leaf for e in entries if e).hex(),
            chain_hash=entries[-1].hash if entries[-1] else "",
            segment_start=start,
            segment_sha256="0" * 64,
            previous=signed[-1].record_hash() if signed else GENESIS_HASH,
            time="2026-05-01T11:00:00+00:00",
            key_id=key_id(key.public_key()),
        )
        signed.append(sign_checkpoint(checkpoint, key))
        start = size
    return signed


EVENTS = [_event(n) for n in range(1, 13)]
LINES = _chain(EVENTS)
CHECKPOINTS = _checkpoints(LINES)
HEAD = ChainHead(12, parse_line(LINES[-1]).hash)  # type: ignore[union-attr]


def _verify(lines: list[bytes], checkpoints: list[SignedCheckpoint] = CHECKPOINTS):
    return verify_chain(lines, HEAD, checkpoints, KEY.public_key())


def test_intact_trail_verifies_with_its_checkpoints() -> None:
    result = _verify(LINES)

    assert result.is_intact, result.problem
    assert (result.event_count, result.checkpoint_count) == (12, 3)


def test_changed_entry_is_named() -> None:
    changed = list(LINES)
    changed[5] = changed[5].replace(b"t-6", b"t-9")

    result = _verify(changed)

    assert (result.damaged_position, result.kind) == (6, CHANGED)


def test_deleted_entry_is_named() -> None:
    result = _verify(LINES[:5] + LINES[6:])

    assert (result.damaged_position, result.kind) == (6, DELETED)


def test_inserted_entry_is_named() -> None:
    result = _verify([*LINES[:5], LINES[2], *LINES[5:]])

    assert (result.damaged_position, result.kind) == (6, INSERTED)


def test_reordered_entries_are_named() -> None:
    swapped = list(LINES)
    swapped[4], swapped[8] = swapped[8], swapped[4]

    result = _verify(swapped)

    assert (result.damaged_position, result.kind) == (5, REORDERED)


def test_entries_cut_from_the_end_are_found_by_the_last_checkpoint() -> None:
    result = verify_chain(LINES[:10], None, CHECKPOINTS, KEY.public_key())

    assert (result.damaged_position, result.kind) == (11, DELETED)


@pytest.mark.parametrize(
    ("rewrite", "expected"),
    [
        (lambda e: [*e[:5], {**e[5], "outcome": "denied"}, *e[6:]], (6, CHANGED)),
        (lambda e: e[:5] + e[6:], (6, DELETED)),
        (lambda e: [*e[:5], _event(99), *e[5:]], (6, INSERTED)),
        (lambda e: [*e[:5], e[6], e[5], *e[7:]], (6, REORDERED)),
    ],
    ids=["changed", "deleted", "inserted", "reordered"],
)
def test_a_recomputed_chain_fails_its_checkpoint_and_the_archive_names_the_entry(
    rewrite: Any, expected: tuple[int, str]
) -> None:
    # Whoever rewrote the chain recomputed every hash after the change, so
    # every link holds; only the signed tree heads and the archive disagree.
    forged = _chain(rewrite(EVENTS))[:12]
    forged_head = ChainHead(12, parse_line(forged[-1]).hash)  # type: ignore[union-attr]

    result = verify_chain(forged, forged_head, CHECKPOINTS, KEY.public_key())

    assert not result.is_intact
    broken = result.broken_checkpoint
    assert broken is not None and broken.number == 2
    archived = LINES[broken.segment_start : broken.tree_size]
    local = forged[broken.segment_start :]
    assert locate_rewrite(local, archived, broken.segment_start + 1) == expected


def test_a_checkpoint_changed_without_its_key_fails_its_signature() -> None:
    forged = list(CHECKPOINTS)
    altered = dataclasses.replace(forged[1].checkpoint, tree_size=9)
    forged[1] = SignedCheckpoint(altered, forged[1].signature)

    result = _verify(LINES, forged)

    assert result.kind == CHECKPOINT
    assert "signature of checkpoint 2" in result.problem


def test_checkpoints_signed_by_another_key_are_refused() -> None:
    result = _verify(LINES, _checkpoints(LINES, Ed25519PrivateKey.generate()))

    assert result.kind == CHECKPOINT
    assert "signature of checkpoint 1" in result.problem


def test_a_deleted_or_reordered_checkpoint_is_found() -> None:
    missing = _verify(LINES, [CHECKPOINTS[0], CHECKPOINTS[2]])
    reordered = _verify(LINES, [CHECKPOINTS[1], CHECKPOINTS[0], CHECKPOINTS[2]])

    assert missing.kind == reordered.kind == CHECKPOINT
    assert "checkpoint 2 is missing" in missing.problem


def test_a_rewrite_before_the_first_checkpoint_breaks_it() -> None:
    # Re-signing needs the key; without it the old checkpoint 1 stays, and a
    # new checkpoint 2 cannot link to a different history.
    forged = _chain([*EVENTS[:2], _event(77), *EVENTS[3:]])

    result = verify_chain(forged, None, CHECKPOINTS, KEY.public_key())

    assert not result.is_intact
    assert result.broken_checkpoint is not None
    assert result.broken_checkpoint.number == 1


def test_an_expired_event_is_dropped_and_the_trail_still_verifies() -> None:
    pruned = [pruned_line(line) for line in LINES[:6]] + LINES[6:]

    result = _verify(pruned)

    assert result.is_intact, result.problem
    assert b'"event":null' in pruned[0]
    assert b"evt-1" not in pruned[0]
    assert [len(line) for line in pruned] == [len(line) for line in LINES]
    assert json.loads(pruned[0])["event"] is None


def test_retention_is_per_category_of_action() -> None:
    policy = RetentionPolicy(default_days=2190, days_by_category={"auth": 30})
    login = {"action": "auth.login", "time": "2026-01-01T00:00:00+00:00"}
    read = {"action": "task.read", "time": "2026-01-01T00:00:00+00:00"}
    later = datetime(2026, 3, 1, tzinfo=UTC)

    assert policy.is_expired(login, later)
    assert not policy.is_expired(read, later)
    assert policy.is_expired(read, datetime(2032, 1, 1, tzinfo=UTC))
    assert category_of("document.original.read") == "document"
