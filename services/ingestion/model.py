"""The document model later stages rely on: pages, blocks, tables, boxes.

Every position is a half-open range of character offsets into the document's
text, so a span found by redaction or drawn by an annotator can be mapped back
to rectangles on a page. Boxes are in PDF points with the origin at the top
left of the page (72 points to the inch); images are measured at their stated
resolution. Pure data and arithmetic: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PARAGRAPH = "paragraph"
HEADING = "heading"
TABLE = "table"
LIST_ITEM = "list_item"
BLOCK_KINDS = frozenset({PARAGRAPH, HEADING, TABLE, LIST_ITEM})

TEXT_LAYER = "text"
OCR = "ocr"

MODEL_VERSION = 1


# Slots: a long document holds hundreds of thousands of these.
@dataclass(frozen=True, slots=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def union(self, other: Box) -> Box:
        return Box(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )

    def as_list(self) -> list[float]:
        return [round(v, 2) for v in (self.x0, self.y0, self.x1, self.y1)]


@dataclass(frozen=True)
class PageText:
    """One page and the characters of the text it holds."""

    number: int
    start: int
    end: int
    width_pt: float = 0.0
    height_pt: float = 0.0
    source: str = TEXT_LAYER
    image_sha256: str = ""


@dataclass(frozen=True, slots=True)
class Segment:
    """A line (text layer) or a word (OCR) with its box on the page."""

    start: int
    end: int
    page: int
    box: Box
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Block:
    kind: str
    start: int
    end: int
    page: int
    box: Box | None = None
    level: int = 0


@dataclass(frozen=True, slots=True)
class Cell:
    row: int
    column: int
    start: int
    end: int


@dataclass(frozen=True)
class Table:
    page: int
    start: int
    end: int
    rows: int
    columns: int
    cells: tuple[Cell, ...]
    box: Box | None = None


@dataclass(frozen=True)
class PageRegion:
    """Where part of a span is drawn: a page number and a box on it."""

    page: int
    box: Box


@dataclass(frozen=True)
class ParsedDocument:
    """Extracted text with its layout, metadata and provenance.

    ``children`` are documents found inside this one: attachments of an
    e-mail, entries of an archive, rows of a CSV file, records of a JSONL file.
    """

    text: str
    pages: tuple[PageText, ...]
    parser: str
    parser_version: str
    blocks: tuple[Block, ...] = ()
    tables: tuple[Table, ...] = ()
    segments: tuple[Segment, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    ocr_engine: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    children: tuple[Child, ...] = ()

    @property
    def is_container(self) -> bool:
        """A container holds documents but has no text of its own to label."""
        return bool(self.children) and not self.text.strip()


@dataclass(frozen=True)
class Child:
    """A document inside another, with the bytes it was parsed from."""

    name: str
    media_type: str
    sha256: str
    size_bytes: int
    # Where the worker left the child's bytes, relative to its output folder.
    original: str
    document: ParsedDocument


def locate(document: ParsedDocument, start: int, end: int) -> list[PageRegion]:
    """Map a span of the text to the page regions that draw it.

    Segments (lines or OCR words) give the finest boxes; a segment only partly
    inside the span is cut in proportion to its characters, which is exact for
    monospaced text and close for the rest. Without segments, the blocks'
    boxes are used whole.
    """
    if start >= end:
        return []
    regions = [
        PageRegion(s.page, _cut(s.box, s.start, s.end, start, end))
        for s in document.segments
        if s.start < end and start < s.end
    ]
    if regions:
        return regions
    return [
        PageRegion(b.page, b.box)
        for b in document.blocks
        if b.box is not None and b.start < end and start < b.end
    ]


def _cut(box: Box, s_start: int, s_end: int, start: int, end: int) -> Box:
    length = max(s_end - s_start, 1)
    width = box.x1 - box.x0
    left = max(start, s_start) - s_start
    right = min(end, s_end) - s_start
    return Box(
        box.x0 + width * left / length, box.y0, box.x0 + width * right / length, box.y1
    )


class DocumentBuilder:
    """Append blocks in reading order, keeping offsets, pages and boxes.

    Blocks are separated by a newline, pages by ``PAGE_SEPARATOR``, so no
    offset range ever straddles two pages and table cells never touch.
    """

    PAGE_SEPARATOR = "\n\f"

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.offset = 0
        self.pages: list[PageText] = []
        self.blocks: list[Block] = []
        self.tables: list[Table] = []
        self.segments: list[Segment] = []
        self._page: PageText | None = None
        self._page_has_text = False

    def start_page(
        self,
        width_pt: float = 0.0,
        height_pt: float = 0.0,
        source: str = TEXT_LAYER,
        image_sha256: str = "",
    ) -> int:
        self.end_page()
        if self.pages:
            self._write(self.PAGE_SEPARATOR)
        number = len(self.pages) + 1
        self._page = PageText(
            number, self.offset, self.offset, width_pt, height_pt, source, image_sha256
        )
        self._page_has_text = False
        return number

    def end_page(self) -> None:
        if self._page is None:
            return
        page = self._page
        self.pages.append(
            PageText(
                page.number,
                page.start,
                self.offset,
                page.width_pt,
                page.height_pt,
                page.source,
                page.image_sha256,
            )
        )
        self._page = None

    @property
    def page_number(self) -> int:
        return self._ensure_page().number

    def _ensure_page(self) -> PageText:
        if self._page is None:
            self.start_page()
        assert self._page is not None
        return self._page

    def add_block(
        self, kind: str, text: str, box: Box | None = None, level: int = 0
    ) -> tuple[int, int]:
        """Append one block of text; blank text adds nothing."""
        text = text.strip()
        if not text:
            return (self.offset, self.offset)
        page = self.page_number
        self._separate()
        start = self.offset
        self._write(text)
        self.blocks.append(Block(kind, start, self.offset, page, box, level))
        return (start, self.offset)

    def add_raw(self, text: str) -> tuple[int, int]:
        """Append text as it is, inside the current block (no separator)."""
        self._ensure_page()
        start = self.offset
        self._write(text)
        return (start, self.offset)

    def open_block(self) -> int:
        self._ensure_page()
        self._separate()
        return self.offset

    def close_block(
        self, kind: str, start: int, box: Box | None = None, level: int = 0
    ) -> None:
        if self.offset > start:
            self.blocks.append(
                Block(kind, start, self.offset, self.page_number, box, level)
            )

    def add_segment(
        self, start: int, end: int, box: Box, confidence: float | None = None
    ) -> None:
        self.segments.append(Segment(start, end, self.page_number, box, confidence))

    def add_table(self, rows: list[list[str]], box: Box | None = None) -> Table | None:
        """Append a table: cells joined by tabs, rows by newlines."""
        cleaned = [[_one_line(c) for c in row] for row in rows]
        if not any(any(c for c in row) for row in cleaned):
            return None
        page = self.page_number
        self._separate()
        start = self.offset
        cells: list[Cell] = []
        for r, row in enumerate(cleaned):
            if r:
                self._write("\n")
            for c, value in enumerate(row):
                if c:
                    self._write("\t")
                cell_start = self.offset
                self._write(value)
                cells.append(Cell(r, c, cell_start, self.offset))
        columns = max(len(row) for row in cleaned)
        table = Table(
            page, start, self.offset, len(cleaned), columns, tuple(cells), box
        )
        self.tables.append(table)
        self.blocks.append(Block(TABLE, start, self.offset, page, box))
        return table

    def build(self, parser: str, parser_version: str, **extra: Any) -> ParsedDocument:
        if not self.pages and self._page is None:
            self.start_page()
        self.end_page()
        return ParsedDocument(
            text="".join(self._parts),
            pages=tuple(self.pages),
            parser=parser,
            parser_version=parser_version,
            blocks=tuple(self.blocks),
            tables=tuple(self.tables),
            segments=tuple(self.segments),
            **extra,
        )

    def _separate(self) -> None:
        if self._page_has_text:
            self._write("\n")
        self._page_has_text = True

    def _write(self, text: str) -> None:
        self._parts.append(text)
        self.offset += len(text)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def to_json(document: ParsedDocument, with_children: bool = False) -> dict[str, Any]:
    """The structure artefact stored beside the text.

    Children appear by name, type and hash; ``with_children`` embeds each
    child's whole structure and text, for passing a parse between processes.
    """
    return {
        "model_version": MODEL_VERSION,
        "text_length": len(document.text),
        "metadata": document.metadata,
        "provenance": {
            "parser": document.parser,
            "parser_version": document.parser_version,
            "ocr_engine": document.ocr_engine,
            "settings": document.settings,
        },
        "pages": [
            {
                "number": p.number,
                "start": p.start,
                "end": p.end,
                "width_pt": p.width_pt,
                "height_pt": p.height_pt,
                "source": p.source,
                "image_sha256": p.image_sha256,
            }
            for p in document.pages
        ],
        "blocks": [
            {
                "kind": b.kind,
                "start": b.start,
                "end": b.end,
                "page": b.page,
                "box": b.box.as_list() if b.box else None,
                "level": b.level,
            }
            for b in document.blocks
        ],
        "tables": [
            {
                "page": t.page,
                "start": t.start,
                "end": t.end,
                "rows": t.rows,
                "columns": t.columns,
                "box": t.box.as_list() if t.box else None,
                "cells": [[c.row, c.column, c.start, c.end] for c in t.cells],
            }
            for t in document.tables
        ],
        "segments": [
            [s.start, s.end, s.page, *s.box.as_list(), s.confidence]
            for s in document.segments
        ],
        "children": [_child_json(c, with_children) for c in document.children],
    }


def _child_json(child: Child, with_document: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": child.name,
        "media_type": child.media_type,
        "sha256": child.sha256,
        "size_bytes": child.size_bytes,
    }
    if with_document:
        out["original"] = child.original
        out["text"] = child.document.text
        out["document"] = to_json(child.document, with_children=True)
    return out


def from_json(data: dict[str, Any], text: str) -> ParsedDocument:
    """Rebuild a document from ``to_json(..., with_children=True)`` and its text."""
    provenance = data["provenance"]
    return ParsedDocument(
        text=text,
        pages=tuple(
            PageText(
                p["number"],
                p["start"],
                p["end"],
                p["width_pt"],
                p["height_pt"],
                p["source"],
                p["image_sha256"],
            )
            for p in data["pages"]
        ),
        parser=provenance["parser"],
        parser_version=provenance["parser_version"],
        blocks=tuple(
            Block(
                b["kind"], b["start"], b["end"], b["page"], _box(b["box"]), b["level"]
            )
            for b in data["blocks"]
        ),
        tables=tuple(
            Table(
                t["page"],
                t["start"],
                t["end"],
                t["rows"],
                t["columns"],
                tuple(Cell(*c) for c in t["cells"]),
                _box(t["box"]),
            )
            for t in data["tables"]
        ),
        segments=tuple(
            Segment(s[0], s[1], s[2], Box(*s[3:7]), s[7]) for s in data["segments"]
        ),
        metadata=data["metadata"],
        ocr_engine=provenance["ocr_engine"],
        settings=provenance["settings"],
        children=tuple(
            Child(
                c["name"],
                c["media_type"],
                c["sha256"],
                c["size_bytes"],
                c["original"],
                from_json(c["document"], c["text"]),
            )
            for c in data["children"]
        ),
    )


def _box(value: list[float] | None) -> Box | None:
    return Box(*value) if value else None
