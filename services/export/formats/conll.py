"""CoNLL-2003 style BIO files for sequence-labelling tools.

``conll/<split>.conll`` starts each document with ``-DOCSTART- -X- -X- O``
and a blank line, then gives each record as one sentence: a line per token,
``token -X- _ TAG``, and a blank line after it. Tags are ``B-LABEL``,
``I-LABEL`` or ``O``. BIO cannot nest, so of overlapping spans the longest
is kept and the others are counted as ``spans_overlapping_dropped``; see
``bio_tags`` for spans off token boundaries. BIO has no place for a flag,
so synthetic examples go to a file of their own, ``conll/train-synthetic.conll``
(they are only ever in the train split).
"""

from __future__ import annotations

from pathlib import Path

from strongroom.services.export.formats.base import (
    SplitFiles,
    bio_tags,
    count,
    tokens_of,
    unsuitable,
)
from strongroom.services.export.records import ExportSchema, Record

DOCSTART = "-DOCSTART- -X- -X- O"


class ConllWriter:
    name = "conll"

    def __init__(self, schema: ExportSchema, directory: Path) -> None:
        if not schema.spans:
            raise unsuitable(self.name, "span labels")
        self.schema = schema
        self.notes: dict[str, int] = {}
        self.files = SplitFiles(directory, lambda split: f"conll/{split}.conll")
        self.last_document: dict[str, str] = {}

    def add(self, record: Record) -> None:
        part = f"{record.split}-synthetic" if record.synthetic else record.split
        file = self.files.get(part)
        if self.last_document.get(part) != record.document_id:
            file.write(f"{DOCSTART}\n\n")
            self.last_document[part] = record.document_id
        tokens = tokens_of(record)
        tags = bio_tags(tokens, record.spans, self.notes)
        lines = []
        for (start, end), tag in zip(tokens, tags, strict=True):
            # A column format cannot hold whitespace inside a token.
            word = "_".join(record.text[start:end].split())
            if not word:
                count(self.notes, "tokens_blank_left_out")
                continue
            lines.append(f"{word} -X- _ {tag}\n")
        if not lines:
            count(self.notes, "records_without_tokens")
            return
        file.write("".join(lines))
        file.write("\n")

    def close(self) -> list[str]:
        return self.files.close()
