"""COCO object-detection files for the boxes drawn on page images.

``coco/<split>.json`` is one COCO detection file per split, loadable with
``pycocotools.coco.COCO``. Every page of every record with pages is one
image (``file_name`` is the page image's path in the export, ``images/...``;
the export copies the images beside it), so two annotators' answers on the
same page are two images, each with its own boxes. Box coordinates are
pixels: fractions times the page's size, rounded to 0.01. Categories are the
schema's box labels with ids from 1 in the schema's order.

A box on a page the record has no image for is left out and counted as
``boxes_without_page``; one with a label outside the schema as
``boxes_unknown_label``.

The file is assembled at ``close`` from two temporary part files per split,
images and annotations, so memory does not grow with the export.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from strongroom.services.export.formats.base import count, dumps, unsuitable
from strongroom.services.export.records import ExportSchema, Record


class _Part:
    """One split's images and annotations, as JSON lines in temporary files."""

    def __init__(self, files: ExitStack) -> None:
        self.images = files.enter_context(_temporary())
        self.annotations = files.enter_context(_temporary())
        self.image_count = 0
        self.annotation_count = 0


def _temporary() -> IO[str]:
    return tempfile.TemporaryFile("w+", encoding="utf-8")


class CocoWriter:
    name = "coco"

    def __init__(self, schema: ExportSchema, directory: Path) -> None:
        if not schema.boxes:
            raise unsuitable(self.name, "box labels")
        self.schema = schema
        self.directory = directory
        self.notes: dict[str, int] = {}
        self.categories = {label.name: n for n, label in enumerate(schema.boxes, 1)}
        self.parts: dict[str, _Part] = {}
        self.temporary = ExitStack()

    def add(self, record: Record) -> None:
        if not record.pages:
            if record.boxes:
                count(self.notes, "boxes_without_page", len(record.boxes))
            return
        part = self.parts.get(record.split)
        if part is None:
            part = self.parts[record.split] = _Part(self.temporary)
        image_ids = {}
        for page in record.pages:
            part.image_count += 1
            image_ids[page.number] = part.image_count
            image = {
                "id": part.image_count,
                "file_name": page.file_name,
                "width": page.width,
                "height": page.height,
                "page": page.number,
                "record_id": record.id,
                "document_id": record.document_id,
            }
            part.images.write(dumps(image) + "\n")
        pages = {page.number: page for page in record.pages}
        for box in record.boxes:
            boxed = pages.get(box.page)
            if boxed is None:
                count(self.notes, "boxes_without_page")
                continue
            category = self.categories.get(box.label)
            if category is None:
                count(self.notes, "boxes_unknown_label")
                continue
            bbox = [
                round(box.x * boxed.width, 2),
                round(box.y * boxed.height, 2),
                round(box.width * boxed.width, 2),
                round(box.height * boxed.height, 2),
            ]
            part.annotation_count += 1
            annotation = {
                "id": part.annotation_count,
                "image_id": image_ids[boxed.number],
                "category_id": category,
                "bbox": bbox,
                "area": round(bbox[2] * bbox[3], 2),
                "iscrowd": 0,
            }
            part.annotations.write(dumps(annotation) + "\n")

    def close(self) -> list[str]:
        names = []
        for split, part in sorted(self.parts.items()):
            name = f"coco/{split}.json"
            path = self.directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="") as file:
                self._assemble(part, file)
            names.append(name)
        self.parts.clear()
        self.temporary.close()
        return sorted(names)

    def _assemble(self, part: _Part, file: IO[str]) -> None:
        """Write the COCO object, its keys in sorted order as dumps would."""
        categories = [
            {"id": n, "name": name, "supercategory": "box"}
            for name, n in self.categories.items()
        ]
        file.write('{"annotations":[')
        _copy_lines(part.annotations, file)
        file.write(f'\n],"categories":{dumps(categories)},"images":[')
        _copy_lines(part.images, file)
        info = {"description": "Strongroom export", "version": "1"}
        file.write(f'\n],"info":{dumps(info)},"licenses":[]}}\n')


def _copy_lines(source: IO[str], target: IO[str]) -> None:
    """Copy JSON lines into a JSON array body, comma-separated."""
    source.seek(0)
    for n, line in enumerate(source):
        target.write(",\n" if n else "\n")
        target.write(line.rstrip("\n"))
