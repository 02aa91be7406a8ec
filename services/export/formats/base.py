"""What every format writer shares: the protocol, refusals and file helpers.

Writers stream: each record is turned into its format's form as it arrives
and written out, so an export of a million answers holds one answer (or one
bounded batch) in memory at a time. Every byte written depends only on the
records and their order, never on the clock, the process or the machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.common.text import tokens
from strongroom.services.export.records import ExportSchema, Record, Span


class Writer(Protocol):
    """One export format, written to files under a directory as records arrive."""

    name: str
    notes: dict[str, int]

    def __init__(self, schema: ExportSchema, directory: Path) -> None: ...

    def add(self, record: Record) -> None:
        """Write one record; called once per record, in a stable order."""

    def close(self) -> list[str]:
        """Finish every file; return their names relative to the directory, sorted."""


def unsuitable(format_name: str, missing: str) -> InvalidArgument:
    return InvalidArgument(
        f"Export format {format_name!r} cannot carry this project's labels: "
        f"it needs {missing} and the project's label schema has none.",
        code="export_format_unsuitable",
    )


def dumps(value: Any) -> str:
    """One JSON text with sorted keys, the same bytes for the same value."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def signed_hash(*parts: str) -> int:
    """A signed 32-bit integer derived from the parts, stable across runs."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def tokens_of(record: Record) -> tuple[tuple[int, int], ...]:
    """The record's tokens, or the platform's tokens of its text."""
    return record.tokens or tuple(tokens(record.text))


def token_range(
    tokens: tuple[tuple[int, int], ...], span: Span
) -> tuple[int, int] | None:
    """The first and last (inclusive) tokens a span touches, or None."""
    touched = [
        index
        for index, (start, end) in enumerate(tokens)
        if start < span.end and span.start < end
    ]
    if not touched:
        return None
    return touched[0], touched[-1]


def longest_first(spans: tuple[Span, ...]) -> tuple[list[Span], int]:
    """Spans that do not overlap, preferring longer ones; and how many lost.

    Ties go to the earlier start, then the label's name, so the choice never
    depends on the order the annotator drew them in.
    """
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start - s.end, s.start, s.label)):
        if all(span.end <= other.start or other.end <= span.start for other in kept):
            kept.append(span)
    kept.sort(key=lambda s: (s.start, s.end))
    return kept, len(spans) - len(kept)


def bio_tags(
    tokens: tuple[tuple[int, int], ...], spans: tuple[Span, ...], notes: dict[str, int]
) -> list[str]:
    """A BIO tag per token; overlapping spans lose to the longest one.

    A span whose edges fall inside a token tags the whole token and is counted
    as ``spans_expanded``; a span that touches no token at all (whitespace
    only) is counted as ``spans_without_tokens``.
    """
    kept, dropped = longest_first(spans)
    count(notes, "spans_overlapping_dropped", dropped)
    tags = ["O"] * len(tokens)
    for span in kept:
        touched = token_range(tokens, span)
        if touched is None:
            count(notes, "spans_without_tokens")
            continue
        first, last = touched
        if tokens[first][0] != span.start or tokens[last][1] != span.end:
            count(notes, "spans_expanded")
        tags[first] = f"B-{span.label}"
        for index in range(first + 1, last + 1):
            tags[index] = f"I-{span.label}"
    return tags


def count(notes: dict[str, int], key: str, amount: int = 1) -> None:
    if amount:
        notes[key] = notes.get(key, 0) + amount


class SplitFiles:
    """Text files opened on first use, one per key (usually a split)."""

    def __init__(self, directory: Path, name_of: Callable[[str], str]) -> None:
        self.directory = directory
        self.name_of = name_of
        self.files: dict[str, IO[str]] = {}
        self.names: list[str] = []

    def get(self, key: str) -> IO[str]:
        file = self.files.get(key)
        if file is None:
            name = self.name_of(key)
            path = self.directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            # newline="" keeps "\n" as written on every platform, and lets
            # the csv module write RFC 4180's "\r\n" itself.
            file = path.open("w", encoding="utf-8", newline="")
            self.files[key] = file
            self.names.append(name)
        return file

    def close(self, *, on_close: Callable[[IO[str]], None] | None = None) -> list[str]:
        for file in self.files.values():
            if on_close is not None:
                on_close(file)
            file.close()
        self.files.clear()
        return sorted(self.names)


class JsonArray:
    """A JSON array written one element at a time: "[", elements, "]"."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self.empty = True
        file.write("[")

    def append_text(self, text: str) -> None:
        self.file.write("\n" if self.empty else ",\n")
        self.file.write(text)
        self.empty = False

    def append(self, value: Any) -> None:
        self.append_text(dumps(value))

    def finish(self) -> None:
        self.file.write("]" if self.empty else "\n]")
