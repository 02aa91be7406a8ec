"""Label Studio's JSON task form, with the labeling config it imports into.

``label-studio/tasks.json`` is one JSON array of tasks, one per Strongroom
task, every answer to that task one of its ``annotations``;
``label-studio/label_config.xml`` is the labeling config whose control names
the results use, so a Label Studio project made with that config imports the
file as it is. Span offsets are code points into ``data.text``, as Label
Studio stores them.

Label Studio does not know Strongroom's users, so ``completed_by`` is null
(Label Studio gives the answers to the user who imports them); who answered,
and the Strongroom ids, are kept in the task's ``meta.strongroom``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree as ET

from strongroom.services.export.formats.base import (
    JsonArray,
    SplitFiles,
    count,
    unsuitable,
)
from strongroom.services.export.records import GOLD, ExportSchema, LabelInfo, Record

TASKS_FILE = "label-studio/tasks.json"
CONFIG_FILE = "label-studio/label_config.xml"
TEXT, IMAGE = "text", "image"


class LabelStudioWriter:
    name = "label-studio"

    def __init__(self, schema: ExportSchema, directory: Path) -> None:
        if not (schema.spans or schema.classes or schema.boxes or schema.fields):
            raise unsuitable(self.name, "span, class, box labels or fields")
        self.schema = schema
        self.directory = directory
        self.notes: dict[str, int] = {}
        self.controls = control_names(schema)
        self.files = SplitFiles(directory, lambda _: TASKS_FILE)
        self.tasks: JsonArray | None = None
        self.pending: list[Record] = []
        self.next_id = 1

    def add(self, record: Record) -> None:
        if self.pending and self.pending[0].task_id != record.task_id:
            self._flush()
        self.pending.append(record)

    def close(self) -> list[str]:
        self._flush()
        if self.tasks is None:
            self.tasks = JsonArray(self.files.get(TASKS_FILE))
        self.tasks.finish()
        names = self.files.close(on_close=_end_line)
        config = self.directory / CONFIG_FILE
        config.write_text(label_config(self.schema, self.controls), encoding="utf-8")
        return sorted([*names, CONFIG_FILE])

    def _flush(self) -> None:
        if not self.pending:
            return
        if self.tasks is None:
            self.tasks = JsonArray(self.files.get(TASKS_FILE))
        self.tasks.append(self._task(self.pending))
        self.pending = []
        self.next_id += 1

    def _task(self, records: list[Record]) -> dict[str, Any]:
        first = records[0]
        data: dict[str, Any] = {TEXT: first.text}
        if self.schema.boxes:
            # Label Studio refuses a task that lacks a value the config's
            # objects read, so a document without pages gets an empty image.
            data[IMAGE] = first.pages[0].file_name if first.pages else ""
        return {
            "id": self.next_id,
            "data": data,
            "annotations": [self._annotation(record) for record in records],
            "meta": {
                "strongroom": {
                    "task_id": first.task_id,
                    "document_id": first.document_id,
                    "window_start": first.window_start,
                    "text_sha256": first.text_sha256,
                    "answers": [
                        {
                            "id": record.id,
                            "annotator": record.annotator,
                            "kind": record.kind,
                            "reviewed": record.reviewed,
                            "version": record.version,
                            "split": record.split,
                            "synthetic": record.synthetic,
                        }
                        for record in records
                    ],
                }
            },
        }

    def _annotation(self, record: Record) -> dict[str, Any]:
        return {
            "completed_by": None,
            "created_at": record.created_at,
            "ground_truth": record.kind == GOLD,
            "lead_time": record.seconds,
            "was_cancelled": False,
            "result": self._results(record),
        }

    def _results(self, record: Record) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        span_ids = [result_id(record, "span", n) for n in range(len(record.spans))]
        for span, span_id in zip(record.spans, span_ids, strict=True):
            value = {
                "start": span.start,
                "end": span.end,
                "text": record.text[span.start : span.end],
                "labels": [span.label],
            }
            results.append(self._result(span_id, "labels", "span", TEXT, value))
        for n, relation in enumerate(record.relations):
            if not (
                0 <= relation.from_span < len(span_ids)
                and 0 <= relation.to_span < len(span_ids)
            ):
                count(self.notes, "relations_without_span")
                continue
            results.append(
                {
                    "id": result_id(record, "relation", n),
                    "type": "relation",
                    "from_id": span_ids[relation.from_span],
                    "to_id": span_ids[relation.to_span],
                    "direction": "right",
                    "labels": [relation.label],
                }
            )
        if record.classes:
            value = {"choices": list(record.classes)}
            class_id = result_id(record, "class", 0)
            results.append(self._result(class_id, "choices", "class", TEXT, value))
        results.extend(self._boxes(record))
        for name, text in sorted(record.fields.items()):
            control = f"field:{name}"
            if control not in self.controls:
                count(self.notes, "fields_not_in_schema")
                continue
            field_id = result_id(record, f"field:{name}", 0)
            value = {"text": [text]}
            results.append(self._result(field_id, "textarea", control, TEXT, value))
        return results

    def _boxes(self, record: Record) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        first_page = record.pages[0] if record.pages else None
        for n, box in enumerate(record.boxes):
            # A Label Studio task shows one image: the record's first page.
            if first_page is None or box.page != first_page.number:
                count(self.notes, "boxes_not_on_first_page")
                continue
            value = {
                "x": box.x * 100,
                "y": box.y * 100,
                "width": box.width * 100,
                "height": box.height * 100,
                "rotation": 0,
                "rectanglelabels": [box.label],
            }
            result = self._result(
                result_id(record, "box", n), "rectanglelabels", "box", IMAGE, value
            )
            result["original_width"] = first_page.width
            result["original_height"] = first_page.height
            result["image_rotation"] = 0
            results.append(result)
        return results

    def _result(
        self, id_: str, kind: str, control: str, target: str, value: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": id_,
            "type": kind,
            "from_name": self.controls[control],
            "to_name": target,
            "origin": "manual",
            "value": value,
        }


def _end_line(file: IO[str]) -> None:
    file.write("\n")


def result_id(record: Record, part: str, index: int) -> str:
    """Label Studio's short region id, derived from the record, never random."""
    seed = f"{record.id}\x1f{part}\x1f{index}".encode()
    return hashlib.sha256(seed).hexdigest()[:10]


def control_names(schema: ExportSchema) -> dict[str, str]:
    """The config's control names: fixed ones, and one per field by its name.

    A field keeps its own name (Strongroom's Label Studio importer reads a
    ``<TextArea>``'s name as the field's name), so the fixed controls step
    aside with a suffix if a field already has their name.
    """
    taken = {TEXT, IMAGE, *schema.fields}
    names = {f"field:{name}": name for name in schema.fields}
    for control, wanted in (("span", "label"), ("class", "class"), ("box", "box")):
        name, n = wanted, 1
        while name in taken:
            n += 1
            name = f"{wanted}_{n}"
        taken.add(name)
        names[control] = name
    return names


def label_config(schema: ExportSchema, controls: dict[str, str]) -> str:
    """The labeling config for the schema, with the given control names."""
    view = ET.Element("View")
    has_text = bool(schema.spans or schema.classes or schema.fields)
    if has_text or not schema.boxes:
        ET.SubElement(view, "Text", name=TEXT, value=f"${TEXT}")
    if schema.spans:
        labels = ET.SubElement(view, "Labels", name=controls["span"], toName=TEXT)
        _options(labels, "Label", schema.spans)
    if schema.relations:
        _options(ET.SubElement(view, "Relations"), "Relation", schema.relations)
    if schema.classes:
        choices = ET.SubElement(
            view,
            "Choices",
            name=controls["class"],
            toName=TEXT,
            choice="multiple" if schema.multi_label else "single",
        )
        _options(choices, "Choice", schema.classes)
    if schema.boxes:
        ET.SubElement(view, "Image", name=IMAGE, value=f"${IMAGE}")
        boxes = ET.SubElement(
            view, "RectangleLabels", name=controls["box"], toName=IMAGE
        )
        _options(boxes, "Label", schema.boxes)
    for field in schema.fields:
        ET.SubElement(view, "TextArea", name=controls[f"field:{field}"], toName=TEXT)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def _options(parent: ET.Element, tag: str, labels: tuple[LabelInfo, ...]) -> None:
    for label in labels:
        option = ET.SubElement(parent, tag, value=label.name)
        if label.color:
            option.set("background", label.color)
        if label.description:
            option.set("hint", label.description)
