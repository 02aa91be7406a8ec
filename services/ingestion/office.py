"""Office Open XML documents: DOCX, XLSX and PPTX.

Each package is checked as an archive first (entry count, expansion) and
every XML part is refused if it declares a DTD: Office never writes one, and
entity declarations are how XML parsers are attacked (billion laughs,
external entities). The libraries then parse without resolving entities.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pptx
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn
from docx.table import Table as DocxTable
from docx.text.paragraph import Paragraph
from lxml import etree
from openpyxl.utils.exceptions import InvalidFileException
from pptx.util import Emu

from strongroom.services.ingestion import archive
from strongroom.services.ingestion.domain import DOCX, PPTX, XLSX, Limits
from strongroom.services.ingestion.errors import CorruptDocument, LimitExceeded
from strongroom.services.ingestion.model import (
    HEADING,
    LIST_ITEM,
    PARAGRAPH,
    Box,
    DocumentBuilder,
    ParsedDocument,
)
from strongroom.services.ingestion.versions import package_version as version

_EMU_PER_POINT = 12700
# What the Office libraries raise on a damaged package; anything else is
# turned into a refusal by the worker, which is the parsers' edge.
_LIBRARY_ERRORS = (
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    *archive.DAMAGED,
    etree.XMLSyntaxError,
    InvalidFileException,
    PackageNotFoundError,
)
_XML_SUFFIXES = (".xml", ".rels")


def parse_docx(path: Path, limits: Limits) -> ParsedDocument:
    """Paragraphs, headings, list items and tables of a Word document, in order.

    Word files carry no page layout, so the document is one page the size of
    its first section and blocks have no boxes.

    Raises:
        CorruptDocument, UnsafeDocument, LimitExceeded.
    """
    _check_package(path, DOCX, limits)
    try:
        document = docx.Document(str(path))
    except _LIBRARY_ERRORS as exc:
        raise CorruptDocument(DOCX) from exc
    builder = DocumentBuilder()
    section = document.sections[0] if document.sections else None
    builder.start_page(
        _points(section.page_width) if section else 0.0,
        _points(section.page_height) if section else 0.0,
    )
    for element in document.element.body.iterchildren():
        if element.tag == qn("w:p"):
            _add_paragraph(builder, Paragraph(element, document))
        elif element.tag == qn("w:tbl"):
            table = DocxTable(element, document)
            builder.add_table([[cell.text for cell in row.cells] for row in table.rows])
    return builder.build(
        "python-docx",
        version("python-docx"),
    )


def _add_paragraph(builder: DocumentBuilder, paragraph: Paragraph) -> None:
    style = paragraph.style.name if paragraph.style is not None else ""
    style = style or ""
    if style == "Title" or style.startswith("Heading"):
        level = int(style.rsplit(" ", 1)[-1]) if style[-1:].isdigit() else 1
        builder.add_block(HEADING, paragraph.text, level=level)
        return
    properties = paragraph._p.pPr
    numbered = properties is not None and properties.numPr is not None
    kind = LIST_ITEM if numbered or style.startswith("List") else PARAGRAPH
    builder.add_block(kind, paragraph.text)


def parse_xlsx(path: Path, limits: Limits) -> ParsedDocument:
    """Every sheet as one page holding one table of its cell values.

    Read-only mode streams rows, so memory stays flat in the sheet's size;
    cached values are read, formulas are never evaluated.

    Raises:
        CorruptDocument, UnsafeDocument, LimitExceeded.
    """
    _check_package(path, XLSX, limits)
    # openpyxl judges a path by its extension, so it is given the open file.
    with path.open("rb") as handle:
        try:
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except _LIBRARY_ERRORS as exc:
            raise CorruptDocument(XLSX) from exc
        try:
            builder = _read_sheets(workbook, limits)
            sheets = len(workbook.worksheets)
        finally:
            workbook.close()
    return builder.build(
        "openpyxl",
        version("openpyxl"),
        metadata={"sheet_count": sheets},
    )


def _read_sheets(workbook: Any, limits: Limits) -> DocumentBuilder:
    builder = DocumentBuilder()
    cells = 0
    for sheet in workbook.worksheets:
        if len(builder.pages) + 1 > limits.max_pages:
            raise LimitExceeded("too_many_pages", "sheets", limits.max_pages)
        builder.start_page()
        rows: list[list[str]] = []
        for values in sheet.iter_rows(values_only=True):
            row = [_cell_text(v) for v in values]
            cells += len(row)
            if cells > limits.max_records:
                raise LimitExceeded("too_many_records", "cells", limits.max_records)
            rows.append(row)
        builder.add_table(_trim(rows))
    return builder


def _cell_text(value: Any) -> str:
    return "" if value is None else str(value)


def _trim(rows: list[list[str]]) -> list[list[str]]:
    while rows and not any(rows[-1]):
        rows.pop()
    width = max(
        (max((i + 1 for i, v in enumerate(r) if v), default=0) for r in rows), default=0
    )
    return [row[:width] for row in rows]


def parse_pptx(path: Path, limits: Limits) -> ParsedDocument:
    """Every slide as a page; titles as headings, shapes and tables with boxes.

    Raises:
        CorruptDocument, UnsafeDocument, LimitExceeded.
    """
    _check_package(path, PPTX, limits)
    try:
        presentation = pptx.Presentation(str(path))
    except _LIBRARY_ERRORS as exc:
        raise CorruptDocument(PPTX) from exc
    width = _points(presentation.slide_width)
    height = _points(presentation.slide_height)
    builder = DocumentBuilder()
    slides = list(presentation.slides)
    if len(slides) > limits.max_pages:
        raise LimitExceeded("too_many_pages", "slides", limits.max_pages)
    for slide in slides:
        builder.start_page(width, height)
        for shape in _shapes(slide.shapes):
            _add_shape(builder, shape)
    return builder.build(
        "python-pptx",
        version("python-pptx"),
    )


def _shapes(shapes: Any) -> list[Any]:
    found: list[Any] = []
    for shape in shapes:
        if getattr(shape, "shapes", None) is not None:
            found.extend(_shapes(shape.shapes))
        else:
            found.append(shape)
    return found


def _add_shape(builder: DocumentBuilder, shape: Any) -> None:
    box = _shape_box(shape)
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        builder.add_table(rows, box)
        return
    if not getattr(shape, "has_text_frame", False) or not shape.has_text_frame:
        return
    is_title = shape.is_placeholder and "TITLE" in str(shape.placeholder_format.type)
    for paragraph in shape.text_frame.paragraphs:
        if is_title:
            builder.add_block(HEADING, paragraph.text, box, level=1)
        elif paragraph.level > 0:
            builder.add_block(LIST_ITEM, paragraph.text, box, level=paragraph.level)
        else:
            builder.add_block(PARAGRAPH, paragraph.text, box)


def _shape_box(shape: Any) -> Box | None:
    if shape.left is None or shape.top is None:
        return None
    left, top = _points(shape.left), _points(shape.top)
    return Box(
        left,
        top,
        left + _points(shape.width or 0),
        top + _points(shape.height or 0),
    )


def _points(emu: int | Emu | None) -> float:
    return float(emu or 0) / _EMU_PER_POINT


def _check_package(path: Path, media_type: str, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(path) as package:
            archive.check_entries(package, path.stat().st_size, limits, media_type)
            for info in package.infolist():
                if info.filename.endswith(_XML_SUFFIXES):
                    archive.refuse_xml_declarations(package, info, media_type, limits)
    except zipfile.BadZipFile as exc:
        raise CorruptDocument(media_type) from exc
