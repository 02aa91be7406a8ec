"""Strongroom's own export form: every field of every record, one per line.

``jsonl/<split>.jsonl`` holds one JSON object per record with every field of
``Record``; spans additionally carry ``document_start`` and ``document_end``,
their offsets in the whole document. ``read_jsonl`` reads a file back into
the very records that were written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from strongroom.services.export.formats.base import SplitFiles, dumps
from strongroom.services.export.records import (
    Box,
    ExportSchema,
    Page,
    Record,
    Relation,
    Span,
)


class JsonlWriter:
    name = "jsonl"

    def __init__(self, schema: ExportSchema, directory: Path) -> None:
        self.schema = schema
        self.notes: dict[str, int] = {}
        self.files = SplitFiles(directory, lambda split: f"jsonl/{split}.jsonl")

    def add(self, record: Record) -> None:
        file = self.files.get(record.split)
        file.write(dumps(record_to_json(record)))
        file.write("\n")

    def close(self) -> list[str]:
        return self.files.close()


def record_to_json(record: Record) -> dict[str, Any]:
    return {
        "id": record.id,
        "task_id": record.task_id,
        "document_id": record.document_id,
        "text": record.text,
        "window_start": record.window_start,
        "text_sha256": record.text_sha256,
        "annotator": record.annotator,
        "kind": record.kind,
        "reviewed": record.reviewed,
        "version": record.version,
        "created_at": record.created_at,
        "split": record.split,
        "synthetic": record.synthetic,
        "tokens": [list(token) for token in record.tokens],
        "spans": [
            {
                "start": span.start,
                "end": span.end,
                "label": span.label,
                "document_start": record.window_start + span.start,
                "document_end": record.window_start + span.end,
            }
            for span in record.spans
        ],
        "classes": list(record.classes),
        "relations": [
            {"from_span": r.from_span, "to_span": r.to_span, "label": r.label}
            for r in record.relations
        ],
        "boxes": [
            {
                "page": box.page,
                "x": box.x,
                "y": box.y,
                "width": box.width,
                "height": box.height,
                "label": box.label,
            }
            for box in record.boxes
        ],
        "fields": dict(record.fields),
        "pages": [
            {
                "number": page.number,
                "width": page.width,
                "height": page.height,
                "sha256": page.sha256,
                "media_type": page.media_type,
            }
            for page in record.pages
        ],
        "seconds": record.seconds,
    }


def record_from_json(value: dict[str, Any]) -> Record:
    return Record(
        id=value["id"],
        task_id=value["task_id"],
        document_id=value["document_id"],
        text=value["text"],
        window_start=value["window_start"],
        text_sha256=value["text_sha256"],
        annotator=value["annotator"],
        kind=value["kind"],
        reviewed=value["reviewed"],
        version=value["version"],
        created_at=value["created_at"],
        split=value["split"],
        synthetic=value["synthetic"],
        tokens=tuple((start, end) for start, end in value["tokens"]),
        spans=tuple(Span(s["start"], s["end"], s["label"]) for s in value["spans"]),
        classes=tuple(value["classes"]),
        relations=tuple(
            Relation(r["from_span"], r["to_span"], r["label"])
            for r in value["relations"]
        ),
        boxes=tuple(
            Box(b["page"], b["x"], b["y"], b["width"], b["height"], b["label"])
            for b in value["boxes"]
        ),
        fields=dict(value["fields"]),
        pages=tuple(
            Page(p["number"], p["width"], p["height"], p["sha256"], p["media_type"])
            for p in value["pages"]
        ),
        seconds=value["seconds"],
    )


def read_jsonl(path: Path) -> Iterator[Record]:
    """Read the records of one ``jsonl`` export file, in the order written."""
    with path.open(encoding="utf-8") as file:
        for line in file:
            if line.strip():
                yield record_from_json(json.loads(line))
