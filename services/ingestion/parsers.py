"""PDF through PDFium: the text layer with line boxes, scanned pages to OCR."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
from PIL import Image

from strongroom.services.ingestion import ocr
from strongroom.services.ingestion.domain import PDF, Limits
from strongroom.services.ingestion.errors import (
    CorruptDocument,
    EncryptedDocument,
    LimitExceeded,
)
from strongroom.services.ingestion.model import (
    OCR,
    PARAGRAPH,
    Box,
    DocumentBuilder,
    ParsedDocument,
)
from strongroom.services.ingestion.versions import package_version as version

# Pages are separated by a form feed so offsets never straddle two pages.
PAGE_SEPARATOR = DocumentBuilder.PAGE_SEPARATOR
# PDFium's FPDF_ERR_PASSWORD: the file needs a password to be opened.
_PDFIUM_PASSWORD_ERROR = 4
# A vertical gap of more than this many line heights starts a new paragraph.
_PARAGRAPH_GAP = 0.9
# Pages with at least this many characters in their text layer are never OCR'd.
_SCANNED_MAX_CHARS = 200
# Share of a page that images must cover for a page with a little text to
# count as scanned.
_SCANNED_COVERAGE = 0.5
# Runs of text on one line further apart than this (points) are columns.
_COLUMN_GAP = 8.0
# Columns of consecutive rows start within this many points of each other.
_COLUMN_ALIGNMENT = 4.0
_TABLE_MIN_ROWS = 2
# How far (points) an image may miss a page edge and still be the whole page.
_FULL_PAGE_TOLERANCE = 1.5
_LINE_END = re.compile(r"(\r\n|\r|\n)")


def parse_pdf(
    data: bytes | Path, limits: Limits | None = None, out_dir: Path | None = None
) -> ParsedDocument:
    """Extract the text layer page by page, with a box for every line.

    A scanned page (images over it, (almost) no text layer) is rendered once
    and read by Tesseract; with ``out_dir`` the rendered page is left there
    as a PNG named by its hash, for the store. Pages read from their text
    layer are rendered too when ``limits.page_image_dpi`` is set. Pages are
    read one at a time, so memory stays flat however long the file is.

    Raises:
        CorruptDocument: PDFium cannot open the file or one of its pages.
        EncryptedDocument: the file needs a password.
        LimitExceeded: the file has more pages than allowed.
    """
    limits = limits or Limits()
    pdf = _open(data)
    builder = DocumentBuilder()
    ocr_pages = 0
    try:
        if len(pdf) > limits.max_pages:
            raise LimitExceeded("too_many_pages", "pages", limits.max_pages)
        for index in range(len(pdf)):
            try:
                page = pdf[index]
            except pypdfium2.PdfiumError as exc:
                raise CorruptDocument(PDF) from exc
            try:
                if not _read_text_layer(page, builder, limits, out_dir):
                    _read_scanned_page(page, builder, limits, out_dir)
                    ocr_pages += 1
            finally:
                page.close()
    finally:
        pdf.close()
    extra = {"ocr_engine": ocr.engine_version(), "settings": ocr.settings(limits)}
    return builder.build(
        "pdfium",
        version("pypdfium2"),
        metadata={"ocr_page_count": ocr_pages},
        **(extra if ocr_pages else {}),
    )


def _open(data: bytes | Path) -> pypdfium2.PdfDocument:
    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) == _PDFIUM_PASSWORD_ERROR:
            raise EncryptedDocument(PDF) from exc
        raise CorruptDocument(PDF) from exc


def _read_text_layer(
    page: pypdfium2.PdfPage,
    builder: DocumentBuilder,
    limits: Limits,
    out_dir: Path | None,
) -> bool:
    """Append the page's text layer; False when the page needs OCR instead."""
    textpage = page.get_textpage()
    try:
        raw = textpage.get_text_range()
        width, height = page.get_size()
        if _is_scanned(page, len(raw.strip()), width * height, limits):
            return False
        image_sha256 = ""
        if limits.page_image_dpi and out_dir is not None:
            scale = limits.page_image_dpi / 72
            image = page.render(scale=scale, grayscale=True).to_pil()
            image_sha256 = ocr.keep_image(image, out_dir)
        builder.start_page(width, height, image_sha256=image_sha256)
        _append_lines(textpage, raw, height, builder)
        return True
    finally:
        textpage.close()


def _is_scanned(
    page: pypdfium2.PdfPage, characters: int, area: float, limits: Limits
) -> bool:
    """A page is scanned when images cover it and its text layer is (almost) empty.

    A scan stamped with a short text line ("Page 3 of 9") still counts as
    scanned: an image over most of the page with little text is read by OCR,
    which reads the stamp too. A page with a full text layer over its scan
    (a searchable PDF) is read from the text layer.
    """
    if characters >= _SCANNED_MAX_CHARS:
        return False
    covered = _image_area(page)
    if characters < limits.ocr_min_chars:
        return covered > 0
    return covered >= _SCANNED_COVERAGE * area


def _image_area(page: pypdfium2.PdfPage) -> float:
    image = pypdfium2.raw.FPDF_PAGEOBJ_IMAGE
    total = 0.0
    for obj in page.get_objects(max_depth=2):
        if obj.type == image:
            left, bottom, right, top = obj.get_bounds()
            total += max(right - left, 0) * max(top - bottom, 0)
    return total


@dataclass(frozen=True)
class _Line:
    text: str
    box: Box | None
    # Text and box of each column, when the line reads as a table row.
    cells: tuple[tuple[str, Box], ...] = ()


def _append_lines(
    textpage: pypdfium2.PdfTextPage,
    raw: str,
    height: float,
    builder: DocumentBuilder,
) -> None:
    lines = _read_lines(textpage, raw, height)
    index = 0
    while index < len(lines):
        rows = _table_rows(lines, index)
        if len(rows) >= _TABLE_MIN_ROWS:
            _append_table(rows, builder)
            index += len(rows)
            continue
        end = index + 1
        while end < len(lines) and len(_table_rows(lines, end)) < _TABLE_MIN_ROWS:
            end += 1
        _append_paragraphs(lines[index:end], builder)
        index = end


def _read_lines(
    textpage: pypdfium2.PdfTextPage, raw: str, height: float
) -> list[_Line]:
    # PDFium's characters and the raw text correspond one to one, so a line's
    # raw offsets find its boxes; line ends become "\n" in the document text.
    parts = _LINE_END.split(raw)
    position = 0
    lines: list[_Line] = []
    for line, line_end in zip(parts[0::2], [*parts[1::2], ""], strict=True):
        rects = _line_rects(textpage, position, len(line), height)
        position += len(line) + len(line_end)
        box = _union(rects)
        cells = _columns(textpage, line, rects, height) if len(rects) > 1 else ()
        lines.append(_Line(line, box, cells))
    return lines


def _append_paragraphs(lines: list[_Line], builder: DocumentBuilder) -> None:
    block_start: int | None = None
    block_box: Box | None = None
    previous: Box | None = None
    for line in lines:
        if not line.text.strip():
            if block_start is not None:
                builder.close_block(PARAGRAPH, block_start, block_box)
            block_start, block_box, previous = None, None, None
            continue
        if block_start is not None and _is_gap(previous, line.box):
            builder.close_block(PARAGRAPH, block_start, block_box)
            block_start, block_box = None, None
        if block_start is None:
            block_start = builder.open_block()
        else:
            builder.add_raw("\n")
        start, end = builder.add_raw(line.text)
        if line.box is not None:
            builder.add_segment(start, end, line.box)
            block_box = line.box if block_box is None else block_box.union(line.box)
            previous = line.box
    if block_start is not None:
        builder.close_block(PARAGRAPH, block_start, block_box)


def _table_rows(lines: list[_Line], index: int) -> list[_Line]:
    """The run of table rows starting at ``index``: lines whose columns align."""
    first = lines[index]
    if not first.cells:
        return []
    rows = [first]
    for line in lines[index + 1 :]:
        if len(line.cells) != len(first.cells) or not all(
            abs(a[1].x0 - b[1].x0) <= _COLUMN_ALIGNMENT
            for a, b in zip(line.cells, first.cells, strict=True)
        ):
            break
        rows.append(line)
    return rows


def _append_table(rows: list[_Line], builder: DocumentBuilder) -> None:
    box = _union([row.box for row in rows if row.box is not None])
    table = builder.add_table([[text for text, _ in row.cells] for row in rows], box)
    if table is None:
        return
    boxes = [cell_box for row in rows for _, cell_box in row.cells]
    for cell, cell_box in zip(table.cells, boxes, strict=True):
        if cell.end > cell.start:
            builder.add_segment(cell.start, cell.end, cell_box)


def _columns(
    textpage: pypdfium2.PdfTextPage, line: str, rects: list[Box], height: float
) -> tuple[tuple[str, Box], ...]:
    """Split a line into columns where its text runs leave wide gaps.

    PDFium gives one rectangle per run of text; runs set apart by more than
    a couple of spaces are columns, as in a table drawn cell by cell. Each
    column's text must be found in order in the line, or it is no table row.
    """
    gaps = [b.x0 - a.x1 for a, b in itertools.pairwise(rects)]
    if min(gaps) < _COLUMN_GAP:
        return ()
    cells: list[tuple[str, Box]] = []
    cursor = 0
    for rect in rects:
        # get_text_bounded wants PDF space (origin bottom left), as PDFium has.
        text = textpage.get_text_bounded(
            rect.x0, height - rect.y1, rect.x1, height - rect.y0
        ).strip()
        found = line.find(text, cursor) if text else -1
        if found < 0:
            return ()
        cursor = found + len(text)
        cells.append((text, rect))
    return tuple(cells)


def _union(boxes: list[Box]) -> Box | None:
    box: Box | None = None
    for each in boxes:
        box = each if box is None else box.union(each)
    return box


def _line_rects(
    textpage: pypdfium2.PdfTextPage, index: int, count: int, height: float
) -> list[Box]:
    if count <= 0:
        return []
    rects = []
    for i in range(textpage.count_rects(index, count)):
        left, bottom, right, top = textpage.get_rect(i)
        # PDF space starts at the bottom left; the model's at the top left.
        rects.append(Box(left, height - top, right, height - bottom))
    return rects


def _is_gap(previous: Box | None, current: Box | None) -> bool:
    if previous is None or current is None:
        return False
    line_height = max(previous.y1 - previous.y0, 1.0)
    return current.y0 - previous.y1 > _PARAGRAPH_GAP * line_height


def _read_scanned_page(
    page: pypdfium2.PdfPage,
    builder: DocumentBuilder,
    limits: Limits,
    out_dir: Path | None,
) -> None:
    width, height = page.get_size()
    scan = _full_page_image(page, width, height, limits)
    if scan is not None:
        image, dpi = scan
    else:
        scale = limits.ocr_dpi / 72
        if width * scale * height * scale > limits.max_image_pixels:
            raise LimitExceeded(
                "image_too_large", "pixels per page", limits.max_image_pixels
            )
        image = page.render(scale=scale, grayscale=True).to_pil()
        dpi = limits.ocr_dpi
    ocr.read_image(image, builder, limits, out_dir, width, height, dpi, OCR)


def _full_page_image(
    page: pypdfium2.PdfPage, width: float, height: float, limits: Limits
) -> tuple[Image.Image, int] | None:
    """The page's one image, decoded as stored, when it is exactly the page.

    A scanner's PDF is one image placed over the whole page; decoding it
    directly costs a fifth of rendering the page and gives the scan's own
    pixels. Anything else (margins, rotation, several images) is rendered.

    Raises:
        LimitExceeded: the image has more pixels than allowed.
    """
    images = [
        obj
        for obj in page.get_objects(max_depth=2)
        if obj.type == pypdfium2.raw.FPDF_PAGEOBJ_IMAGE
    ]
    if len(images) != 1:
        return None
    image = images[0]
    left, bottom, right, top = image.get_bounds()
    _, b, c, _, _, _ = image.get_matrix().get()
    edges = (left, bottom, width - right, height - top)
    if b or c or any(abs(edge) > _FULL_PAGE_TOLERANCE for edge in edges):
        return None
    pixels_wide, pixels_high = image.get_px_size()
    if pixels_wide * pixels_high > limits.max_image_pixels:
        raise LimitExceeded(
            "image_too_large", "pixels per page", limits.max_image_pixels
        )
    decoded = image.get_bitmap(render=False).to_pil()
    if decoded.size != (pixels_wide, pixels_high):
        return None
    return decoded, round(pixels_wide / (width / 72))
