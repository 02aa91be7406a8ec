"""The export formats: one writer per format, chosen by its name.

Writers are pure: they read ``Record``s and write files under the directory
they are given, and nothing else. ``docs/export-formats.md`` lists each
format's files and what it carries and loses.
"""

from __future__ import annotations

from pathlib import Path

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.export.formats.base import Writer
from strongroom.services.export.formats.coco import CocoWriter
from strongroom.services.export.formats.conll import ConllWriter
from strongroom.services.export.formats.csv_table import CsvWriter
from strongroom.services.export.formats.jsonl import JsonlWriter, read_jsonl
from strongroom.services.export.formats.label_studio import LabelStudioWriter
from strongroom.services.export.formats.parquet import ParquetWriter
from strongroom.services.export.formats.prodigy import ProdigyWriter
from strongroom.services.export.formats.spacy_docbin import SpacyWriter
from strongroom.services.export.records import ExportSchema

WRITERS: dict[str, type[Writer]] = {
    writer.name: writer
    for writer in (
        JsonlWriter,
        LabelStudioWriter,
        ProdigyWriter,
        SpacyWriter,
        ConllWriter,
        ParquetWriter,
        CocoWriter,
        CsvWriter,
    )
}


def writer_for(name: str, schema: ExportSchema, directory: Path) -> Writer:
    """Start the writer of the named format, writing under ``directory``.

    Raises:
        InvalidArgument: ``export_format_unknown`` for a name that is no
            format; ``export_format_unsuitable`` when the format cannot carry
            the project's labels (COCO without box labels, for example).
    """
    writer = WRITERS.get(name)
    if writer is None:
        raise InvalidArgument(
            f"Export format {name!r} is not supported; choose one of "
            f"{', '.join(sorted(WRITERS))}.",
            code="export_format_unknown",
        )
    return writer(schema, directory)


__all__ = ["WRITERS", "Writer", "read_jsonl", "writer_for"]
