"""The audit chain detects any altered byte, removed line or reordering."""

from __future__ import annotations

import json
from typing import Any

from strongroom.services.audit.domain import (
    GENESIS_HASH,
    ChainHead,
    chain_entry,
    entry_line,
    verify_chain,
)


def _event(index: int) -> dict[str, Any]:
    return {
        "id": f"evt-{index}",
        "time": f"2024-05-01T10:00:0{index}.000000+00:00",
        "actor": {"subject": f"u{index}", "username": "zoë", "roles": ["admin"]},
        "action": "document.ingest",
        "resource": {"type": "document", "id": f"d{index}", "project_id": ""},
        "outcome": "success",
        "details": {"size_bytes": str(100 * index)},
    }


def _build_chain(count: int) -> tuple[list[bytes], ChainHead]:
    head = ChainHead(0, GENESIS_HASH)
    lines = []
    for index in range(1, count + 1):
        entry = chain_entry(head, _event(index))
        lines.append(entry_line(entry))
        head = ChainHead(entry["sequence"], entry["hash"])
    return lines, head


def _split_lines(data: bytes) -> list[bytes]:
    # Only "\n" ends a line; bytes.splitlines would also split on \x0b etc.
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def test_intact_chain_verifies() -> None:
    lines, head = _build_chain(5)

    result = verify_chain(lines, head)

    assert result.is_intact
    assert result.event_count == 5
    assert result.head_hash == head.hash
    assert result.damaged_position == 0


def test_entries_link_to_the_one_before() -> None:
    lines, _head = _build_chain(2)

    first, second = (json.loads(line) for line in lines)

    assert (first["sequence"], second["sequence"]) == (1, 2)
    assert first["prev_hash"] == GENESIS_HASH
    assert second["prev_hash"] == first["hash"]
    assert lines[0] == entry_line(chain_entry(ChainHead(0, GENESIS_HASH), _event(1)))


def test_every_flipped_byte_is_detected_at_its_line() -> None:
    lines, head = _build_chain(5)
    data = b"".join(lines)
    line_of_byte = [n for n, line in enumerate(lines, start=1) for _ in line]

    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x01

        result = verify_chain(_split_lines(bytes(damaged)), head)

        assert not result.is_intact, position
        if data[position] != ord("\n"):
            assert result.damaged_position == line_of_byte[position], position


def test_every_flipped_byte_is_detected_without_recorded_head() -> None:
    lines, _head = _build_chain(5)
    data = b"".join(lines)

    for position in range(len(data)):
        if data[position] == ord("\n"):
            continue
        damaged = bytearray(data)
        damaged[position] ^= 0x01

        assert not verify_chain(_split_lines(bytes(damaged)), None).is_intact


def test_removed_line_is_detected_at_its_position() -> None:
    lines, head = _build_chain(5)

    for removed in range(1, 6):
        remaining = lines[: removed - 1] + lines[removed:]

        result = verify_chain(remaining, head)

        assert not result.is_intact, removed
        assert result.damaged_position == removed
        assert result.event_count == removed - 1


def test_removed_last_line_needs_the_recorded_head() -> None:
    lines, head = _build_chain(5)

    assert verify_chain(lines[:4], None).is_intact
    result = verify_chain(lines[:4], ChainHead(5, head.hash))
    assert not result.is_intact
    assert result.damaged_position == 5


def test_replaced_last_entry_is_detected_through_the_recorded_head() -> None:
    lines, head = _build_chain(5)
    before_last = ChainHead(4, verify_chain(lines[:4], None).head_hash)
    forged = entry_line(chain_entry(before_last, _event(9)))

    result = verify_chain([*lines[:4], forged], head)

    assert not result.is_intact
    assert result.damaged_position == 5


def test_swapped_lines_are_detected() -> None:
    lines, head = _build_chain(5)

    for first in range(5):
        for second in range(first + 1, 5):
            swapped = list(lines)
            swapped[first], swapped[second] = swapped[second], swapped[first]

            result = verify_chain(swapped, head)

            assert not result.is_intact
            assert result.damaged_position == first + 1


def test_empty_chain_is_intact() -> None:
    result = verify_chain([], None)

    assert result.is_intact
    assert result.event_count == 0
    assert result.head_hash == GENESIS_HASH


def test_empty_chain_with_recorded_entries_is_not_intact() -> None:
    _lines, head = _build_chain(3)

    result = verify_chain([], head)

    assert not result.is_intact
    assert result.damaged_position == 1
