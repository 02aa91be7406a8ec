"""Parquet files that Hugging Face ``datasets`` loads as they are.

``data/<split>-00000.parquet`` holds one row per record, written in row
groups of 1,000 rows; load with ``load_dataset("parquet", data_files={"train":
"data/train-*.parquet", ...})``. Columns: ``id``, ``task_id``,
``document_id``, ``text``, ``tokens`` (token strings), ``token_spans``
(their ``start``/``end`` in ``text``), ``ner_tags`` (BIO per token, see
``bio_tags``), ``spans`` (``start``, ``end``, ``label``: every span, overlaps
included), ``classes``, ``relations``, ``boxes``, ``fields`` (``name``,
``value``), ``split``, ``synthetic``, ``annotator``, ``kind``, ``reviewed``,
``created_at``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from strongroom.services.export.formats.base import bio_tags, tokens_of
from strongroom.services.export.records import ExportSchema, Record

# Hugging Face datasets writes its own Parquet files in groups of 1,000 rows.
ROWS_PER_GROUP = 1_000

_OFFSETS = pa.struct([("start", pa.int32()), ("end", pa.int32())])
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task_id", pa.string()),
        ("document_id", pa.string()),
        ("text", pa.string()),
        ("tokens", pa.list_(pa.string())),
        ("token_spans", pa.list_(_OFFSETS)),
        ("ner_tags", pa.list_(pa.string())),
        (
            "spans",
            pa.list_(
                pa.struct(
                    [("start", pa.int32()), ("end", pa.int32()), ("label", pa.string())]
                )
            ),
        ),
        ("classes", pa.list_(pa.string())),
        (
            "relations",
            pa.list_(
                pa.struct(
                    [
                        ("from_span", pa.int32()),
                        ("to_span", pa.int32()),
                        ("label", pa.string()),
                    ]
                )
            ),
        ),
        (
            "boxes",
            pa.list_(
                pa.struct(
                    [
                        ("page", pa.int32()),
                        ("x", pa.float64()),
                        ("y", pa.float64()),
                        ("width", pa.float64()),
                        ("height", pa.float64()),
                        ("label", pa.string()),
                    ]
                )
            ),
        ),
        (
            "fields",
            pa.list_(pa.struct([("name", pa.string()), ("value", pa.string())])),
        ),
        ("split", pa.string()),
        ("synthetic", pa.bool_()),
        ("annotator", pa.string()),
        ("kind", pa.string()),
        ("reviewed", pa.bool_()),
        ("created_at", pa.string()),
    ]
)


class ParquetWriter:
    name = "parquet"

    def __init__(self, schema: ExportSchema, directory: Path) -> None:
        self.schema = schema
        self.directory = directory
        self.notes: dict[str, int] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.files: dict[str, pq.ParquetWriter] = {}
        self.names: list[str] = []

    def add(self, record: Record) -> None:
        rows = self.rows.setdefault(record.split, [])
        rows.append(self.row(record))
        if len(rows) >= ROWS_PER_GROUP:
            self._write(record.split)

    def close(self) -> list[str]:
        for split in sorted(self.rows):
            self._write(split)
        for file in self.files.values():
            file.close()
        self.files.clear()
        return sorted(self.names)

    def row(self, record: Record) -> dict[str, Any]:
        tokens = tokens_of(record)
        text = record.text
        return {
            "id": record.id,
            "task_id": record.task_id,
            "document_id": record.document_id,
            "text": text,
            "tokens": [text[start:end] for start, end in tokens],
            "token_spans": [{"start": start, "end": end} for start, end in tokens],
            "ner_tags": bio_tags(tokens, record.spans, self.notes),
            "spans": [
                {"start": s.start, "end": s.end, "label": s.label} for s in record.spans
            ],
            "classes": list(record.classes),
            "relations": [
                {"from_span": r.from_span, "to_span": r.to_span, "label": r.label}
                for r in record.relations
            ],
            "boxes": [
                {
                    "page": b.page,
                    "x": b.x,
                    "y": b.y,
                    "width": b.width,
                    "height": b.height,
                    "label": b.label,
                }
                for b in record.boxes
            ],
            "fields": [
                {"name": name, "value": value}
                for name, value in sorted(record.fields.items())
            ],
            "split": record.split,
            "synthetic": record.synthetic,
            "annotator": record.annotator,
            "kind": record.kind,
            "reviewed": record.reviewed,
            "created_at": record.created_at,
        }

    def _write(self, split: str) -> None:
        rows = self.rows.get(split)
        if not rows:
            return
        file = self.files.get(split)
        if file is None:
            name = f"data/{split}-00000.parquet"
            path = self.directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            file = pq.ParquetWriter(path, SCHEMA, compression="zstd")
            self.files[split] = file
            self.names.append(name)
        file.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
        self.rows[split] = []
