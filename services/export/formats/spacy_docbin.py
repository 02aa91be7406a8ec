"""spaCy's binary training data: DocBin files that ``spacy train`` reads.

``spacy/<split>/<split>-NNN.spacy`` holds at most 5,000 docs each; point
``--paths.train`` and ``--paths.dev`` at ``spacy/train`` and ``spacy/dev``.
Every doc's text is the record's text exactly, tokenised by a blank English
pipeline (no model is loaded). Spans are always in ``doc.spans["sc"]``; when
a record's spans do not overlap they are also ``doc.ents``, with every other
token marked outside; a record with overlapping spans leaves ``doc.ents``
unset (unknown to the NER trainer) and is counted as ``ents_left_unset``.
Classes are ``doc.cats``, 1.0 for the chosen ones and 0.0 for the others.
The Strongroom ids are in ``doc.user_data``.

A span whose edges fall inside a spaCy token is widened to whole tokens and
counted as ``spans_expanded``; one that covers no token is left out and
counted as ``spans_without_tokens``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import spacy
import srsly.msgpack  # type: ignore[import-untyped]
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.tokens import Span as SpacySpan

from strongroom.services.export.formats.base import count, unsuitable
from strongroom.services.export.records import ExportSchema, Record

DOCS_PER_FILE = 5_000
# The tokenizer's vocabulary grows with every new word it sees; past this
# many strings a fresh pipeline takes over, so memory stays bounded however
# many distinct words an export has.
MAX_STRINGS = 100_000
SPAN_KEY = "sc"
# The msgpack encoders, looked up once per process (see below).
_ENCODERS: dict[str, Any] = {}


class SpacyWriter:
    name = "spacy"

    def __init__(self, schema: ExportSchema, directory: Path) -> None:
        if not (schema.spans or schema.classes):
            raise unsuitable(self.name, "span or class labels")
        self.schema = schema
        self.directory = directory
        self.notes: dict[str, int] = {}
        self.names: list[str] = []
        self.nlp: Language = spacy.blank("en")
        self.shards: dict[str, DocBin] = {}
        self.written: dict[str, int] = {}

    def add(self, record: Record) -> None:
        docs = self.shards.get(record.split)
        if docs is None:
            docs = self.shards[record.split] = DocBin(store_user_data=True)
        if len(self.nlp.vocab.strings) > MAX_STRINGS:
            self.nlp = spacy.blank("en")
        with _encoders_looked_up_once():
            docs.add(self.doc(self.nlp, record))
        if len(docs) >= DOCS_PER_FILE:
            self._write(record.split)

    def close(self) -> list[str]:
        for split in sorted(self.shards):
            self._write(split)
        return sorted(self.names)

    def doc(self, nlp: Language, record: Record) -> Doc:
        doc = nlp.make_doc(record.text)
        spans = []
        for span in record.spans:
            placed = doc.char_span(span.start, span.end, label=span.label)
            if placed is None:
                placed = doc.char_span(
                    span.start, span.end, label=span.label, alignment_mode="expand"
                )
                if placed is None or not len(placed):
                    count(self.notes, "spans_without_tokens")
                    continue
                count(self.notes, "spans_expanded")
            spans.append(placed)
        doc.spans[SPAN_KEY] = spans
        if self.schema.spans:
            self._set_ents(doc, spans)
        if self.schema.classes:
            chosen = set(record.classes)
            doc.cats = {c.name: float(c.name in chosen) for c in self.schema.classes}
        doc.user_data["strongroom"] = {
            "record_id": record.id,
            "task_id": record.task_id,
            "document_id": record.document_id,
            "window_start": record.window_start,
            "synthetic": record.synthetic,
        }
        return doc

    def _set_ents(self, doc: Doc, spans: list[SpacySpan]) -> None:
        ranges = sorted({(span.start, span.end, span.label_) for span in spans})
        overlapping = any(later[0] < earlier[1] for earlier, later in pairwise(ranges))
        if overlapping:
            count(self.notes, "ents_left_unset")
            return
        doc.set_ents(
            [SpacySpan(doc, start, end, label=label) for start, end, label in ranges],
            default="outside",
        )

    def _write(self, split: str) -> None:
        docs = self.shards.pop(split, None)
        if docs is None or not len(docs):
            return
        number = self.written.get(split, 0)
        self.written[split] = number + 1
        name = f"spacy/{split}/{split}-{number:03d}.spacy"
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(docs.to_bytes())
        self.names.append(name)


@contextmanager
def _encoders_looked_up_once() -> Iterator[None]:
    """Serialise with the msgpack encoders found once, not once per doc.

    DocBin packs each doc's spans and user data with a new msgpack packer, and
    every packer asks the encoder registry for its entries, which scans the
    whole function registry and the installed packages' entry points: about
    2.5 ms a doc, most of the writer's time. While a doc is added, the
    registry answers with the entries it gave the first time.
    """
    registry = srsly.msgpack.msgpack_encoders
    if "found" not in _ENCODERS:
        _ENCODERS["found"] = registry.get_all()
    found = _ENCODERS["found"]
    registry.get_all = lambda: found
    try:
        yield
    finally:
        del registry.get_all
