"""CSV and JSONL: every row or record becomes a document with its fields.

A record's document text is one ``field: value`` line per field, each a
block, so a span always falls inside one field's value or name. The record's
own bytes (canonical JSON of its fields) are what its hash is taken over, so
the same record uploaded twice is recognised.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from strongroom.services.ingestion.domain import CSV, JSONL, Limits, decode_text
from strongroom.services.ingestion.errors import CorruptDocument, LimitExceeded
from strongroom.services.ingestion.model import (
    PARAGRAPH,
    DocumentBuilder,
    ParsedDocument,
)

Record = tuple[str, dict[str, str]]

_SNIFF_CHARS = 64 * 1024
_DELIMITERS = ",;\t|"
# The csv module's own limit is 128 KiB per field; a larger one is refused.
_FIELD_LIMIT = 1024 * 1024


def read_csv(data: bytes, limits: Limits) -> tuple[list[str], list[Record]]:
    """The header and every row as (name, fields); the first row names fields.

    Raises:
        CorruptDocument: the text is not CSV.
        LimitExceeded: more rows than allowed.
    """
    text = decode_text(data)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:_SNIFF_CHARS], delimiters=_DELIMITERS
        )
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(_FIELD_LIMIT)
    # Strict: an unterminated quote is an error, not a field running to the end.
    reader = csv.reader(io.StringIO(text), dialect, strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
        if not any(header):
            raise CorruptDocument(CSV)
        header = [h or f"column_{i + 1}" for i, h in enumerate(header)]
        records: list[Record] = []
        for number, row in enumerate(reader, start=1):
            if not any(cell.strip() for cell in row):
                continue
            if len(records) >= limits.max_records:
                raise LimitExceeded("too_many_records", "records", limits.max_records)
            fields = _row_fields(header, row)
            records.append((f"row {number}", fields))
    except csv.Error as exc:
        raise CorruptDocument(CSV) from exc
    return header, records


def _row_fields(header: list[str], row: list[str]) -> dict[str, str]:
    fields = {name: row[i] if i < len(row) else "" for i, name in enumerate(header)}
    for extra, value in enumerate(row[len(header) :], start=len(header) + 1):
        fields[f"column_{extra}"] = value
    return fields


def read_jsonl(data: bytes, limits: Limits) -> list[Record]:
    """Every line's JSON object as (name, fields); nested keys are dotted.

    Raises:
        CorruptDocument: a non-blank line is not a JSON object.
        LimitExceeded: more records than allowed.
    """
    records: list[Record] = []
    for number, line in enumerate(decode_text(data).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise CorruptDocument(JSONL) from exc
        if not isinstance(value, dict):
            raise CorruptDocument(JSONL)
        if len(records) >= limits.max_records:
            raise LimitExceeded("too_many_records", "records", limits.max_records)
        records.append((f"line {number}", dict(_flatten(value))))
    return records


def _flatten(value: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            yield from _flatten(item, f"{name}.")
        elif isinstance(item, str):
            yield name, item
        elif item is None:
            yield name, ""
        else:
            yield name, json.dumps(item, ensure_ascii=False)


def record_bytes(fields: dict[str, str]) -> bytes:
    """The canonical JSON line a record is stored and hashed as."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def record_document(
    fields: dict[str, str], parser: str, version: str
) -> ParsedDocument:
    builder = DocumentBuilder()
    builder.start_page()
    for name, value in fields.items():
        builder.add_block(PARAGRAPH, f"{name}: {' '.join(value.split())}")
    return builder.build(
        parser,
        version,
        metadata={"page_count": 1, "fields": list(fields)},
    )
