"""Prodigy's JSONL task form, ready for ``prodigy db-in``.

``prodigy/<split>.jsonl`` holds one accepted task per record: ``text``,
``tokens`` (``ws`` is true when whitespace follows the token), ``spans`` with
inclusive ``token_end``, ``accept`` and ``options`` for classes (the choice
interface), ``relations`` by head and child token, ``_input_hash`` from the
text and ``_task_hash`` from the text and the answer, both signed 32-bit
integers derived with SHA-256, and ``meta`` with the Strongroom ids.

A span whose edges fall inside a token is widened to whole tokens (Prodigy
requires spans on token boundaries) and counted as ``spans_expanded``; a
span on whitespace only is left out and counted as ``spans_without_tokens``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strongroom.services.export.formats.base import (
    SplitFiles,
    count,
    dumps,
    signed_hash,
    token_range,
    tokens_of,
    unsuitable,
)
from strongroom.services.export.records import ExportSchema, Record


class ProdigyWriter:
    name = "prodigy"

    def __init__(self, schema: ExportSchema, directory: Path) -> None:
        if not (schema.spans or schema.classes):
            raise unsuitable(self.name, "span or class labels")
        self.schema = schema
        self.notes: dict[str, int] = {}
        self.files = SplitFiles(directory, lambda split: f"prodigy/{split}.jsonl")

    def add(self, record: Record) -> None:
        file = self.files.get(record.split)
        file.write(dumps(self.task(record)))
        file.write("\n")

    def close(self) -> list[str]:
        return self.files.close()

    def task(self, record: Record) -> dict[str, Any]:
        tokens = tokens_of(record)
        text = record.text
        task: dict[str, Any] = {
            "text": text,
            "tokens": [
                {
                    "text": text[start:end],
                    "start": start,
                    "end": end,
                    "id": n,
                    "ws": text[end : end + 1].isspace(),
                }
                for n, (start, end) in enumerate(tokens)
            ],
        }
        spans, kept = self._spans(record, tokens)
        if self.schema.spans:
            task["spans"] = spans
            task["relations"] = self._relations(record, kept, spans)
        if self.schema.classes:
            task["options"] = [
                {"id": c.name, "text": c.name} for c in self.schema.classes
            ]
            task["accept"] = list(record.classes)
            task["config"] = {
                "choice_style": "multiple" if self.schema.multi_label else "single"
            }
        task["_view_id"] = "ner_manual" if self.schema.spans else "choice"
        task["answer"] = "accept"
        task["_annotator_id"] = record.annotator
        task["_session_id"] = record.annotator
        task["meta"] = {
            "record_id": record.id,
            "task_id": record.task_id,
            "document_id": record.document_id,
            "window_start": record.window_start,
            "split": record.split,
            "synthetic": record.synthetic,
            "kind": record.kind,
        }
        task["_input_hash"] = signed_hash("input", text)
        answer = {key: task.get(key) for key in ("spans", "relations", "accept")}
        task["_task_hash"] = signed_hash("task", text, dumps(answer))
        return task

    def _spans(
        self, record: Record, tokens: tuple[tuple[int, int], ...]
    ) -> tuple[list[dict[str, Any]], list[int]]:
        """The spans in Prodigy's form, and which record span each one is."""
        spans: list[dict[str, Any]] = []
        kept: list[int] = []
        for n, span in enumerate(record.spans):
            touched = token_range(tokens, span)
            if touched is None:
                count(self.notes, "spans_without_tokens")
                continue
            first, last = touched
            start, end = tokens[first][0], tokens[last][1]
            if (start, end) != (span.start, span.end):
                count(self.notes, "spans_expanded")
            spans.append(
                {
                    "start": start,
                    "end": end,
                    "token_start": first,
                    "token_end": last,
                    "label": span.label,
                }
            )
            kept.append(n)
        return spans, kept

    def _relations(
        self, record: Record, kept: list[int], spans: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        position = {span_index: n for n, span_index in enumerate(kept)}
        relations: list[dict[str, Any]] = []
        for relation in record.relations:
            head = position.get(relation.from_span)
            child = position.get(relation.to_span)
            if head is None or child is None:
                count(self.notes, "relations_without_span")
                continue
            relations.append(
                {
                    "head": spans[head]["token_end"],
                    "child": spans[child]["token_end"],
                    "head_span": spans[head],
                    "child_span": spans[child],
                    "label": relation.label,
                }
            )
        return relations
