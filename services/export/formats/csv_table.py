"""A classification table that spreadsheets and pandas open as it is.

``csv/annotations.csv`` has one row per record with the columns ``id``,
``task_id``, ``document_id``, ``text``, ``labels``, ``split``, ``synthetic``,
``annotator``; ``labels`` joins a record's classes with ``|`` (a class name
never contains one). Quoting follows RFC 4180 (``\\r\\n`` between rows, a
field with a comma, quote or line break quoted).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return would be run as a formula by a spreadsheet, so it gets a leading
``'``; each such cell is counted as ``cells_neutralised``. The text in the
``jsonl`` form is never changed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from strongroom.services.export.formats.base import SplitFiles, count, unsuitable
from strongroom.services.export.records import ExportSchema, Record

FILE = "csv/annotations.csv"
COLUMNS = (
    "id",
    "task_id",
    "document_id",
    "text",
    "labels",
    "split",
    "synthetic",
    "annotator",
)
# What spreadsheet programs read as the start of a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class CsvWriter:
    name = "csv"

    def __init__(self, schema: ExportSchema, directory: Path) -> None:
        if not schema.classes:
            raise unsuitable(self.name, "class labels")
        self.schema = schema
        self.notes: dict[str, int] = {}
        self.files = SplitFiles(directory, lambda _: FILE)
        self.rows: csv.DictWriter[str] | None = None

    def add(self, record: Record) -> None:
        if self.rows is None:
            self.rows = csv.DictWriter(self.files.get(FILE), fieldnames=COLUMNS)
            self.rows.writeheader()
        row = {
            "id": record.id,
            "task_id": record.task_id,
            "document_id": record.document_id,
            "text": record.text,
            "labels": "|".join(record.classes),
            "split": record.split,
            "synthetic": "true" if record.synthetic else "false",
            "annotator": record.annotator,
        }
        self.rows.writerow({key: self._neutralise(value) for key, value in row.items()})

    def close(self) -> list[str]:
        return self.files.close()

    def _neutralise(self, value: str) -> str:
        if value.startswith(FORMULA_STARTS):
            count(self.notes, "cells_neutralised")
            return "'" + value
        return value
