"""Parsers that need a library: PDF text layers through PDFium."""

from __future__ import annotations

from importlib.metadata import version

import pypdfium2

from strongroom.services.ingestion.domain import PDF, PageText, ParsedDocument
from strongroom.services.ingestion.errors import CorruptDocument

# Pages are separated by a form feed so offsets never straddle two pages.
PAGE_SEPARATOR = "\n\f"


def parse_pdf(data: bytes) -> ParsedDocument:
    """Extract the text layer page by page, keeping each page's span.

    Raises:
        CorruptDocument: PDFium cannot open the file.
    """
    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise CorruptDocument(PDF) from exc
    parts: list[str] = []
    pages: list[PageText] = []
    offset = 0
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            width, height = page.get_size()
            textpage = page.get_textpage()
            text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
            textpage.close()
            page.close()
            if index:
                parts.append(PAGE_SEPARATOR)
                offset += len(PAGE_SEPARATOR)
            parts.append(text)
            pages.append(PageText(index + 1, offset, offset + len(text), width, height))
            offset += len(text)
    finally:
        pdf.close()
    return ParsedDocument(
        text="".join(parts),
        pages=tuple(pages),
        parser="pdfium",
        parser_version=version("pypdfium2"),
    )
