"""One entry point for every format: a file in, a document (and children) out.

This runs inside the parser worker process (see ``sandbox.py``), never in
the service itself, so a parser that hangs, crashes or eats memory takes
only the worker down.
"""

from __future__ import annotations

import hashlib
import itertools
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.ingestion import archive, mail, markup, ocr, office, records
from strongroom.services.ingestion.archive import Budget
from strongroom.services.ingestion.domain import (
    CSV,
    DOCX,
    EML,
    HTML,
    IMAGES,
    JSONL,
    MARKDOWN,
    MSG,
    OLE,
    PDF,
    PPTX,
    XLSX,
    ZIP,
    Limits,
    detect_language,
    parse_text,
    resolve_media_type,
)
from strongroom.services.ingestion.errors import (
    CorruptDocument,
    LimitExceeded,
    UnsafeDocument,
)
from strongroom.services.ingestion.model import Child, ParsedDocument
from strongroom.services.ingestion.parsers import parse_pdf
from strongroom.services.ingestion.versions import package_version as version

_SNIFF_BYTES = 8192
_OOXML_MARKERS = frozenset(
    {"word/document.xml", "xl/workbook.xml", "ppt/presentation.xml"}
)


@dataclass
class ParseContext:
    limits: Limits
    out_dir: Path
    budget: Budget
    depth: int = 0
    names: itertools.count[int] = field(default_factory=itertools.count)


def container_names(path: Path, head: bytes) -> list[str]:
    """Entry names of a ZIP or OLE file, which tell its real type."""
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as package:
                return package.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return []
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        import olefile  # imported here: needed for OLE files only

        try:
            with olefile.OleFileIO(str(path)) as ole:
                return ["/".join(entry) for entry in ole.listdir()]
        except (OSError, ValueError):
            return []
    return []


def telling_names(names: list[str]) -> list[str]:
    """The few entry names that tell a container's type, out of all of them."""
    telling = [n for n in names if n in _OOXML_MARKERS]
    ole = next((n for n in names if n.startswith("__substg1.0_")), None)
    return telling + ([ole] if ole else [])


def parse_file(path: Path, media_type: str, context: ParseContext) -> ParsedDocument:
    """Parse one file of a resolved media type, its children included.

    Raises:
        CorruptDocument, EncryptedDocument, UnsafeDocument, LimitExceeded,
        OcrUnavailable: the file is refused.
    """
    document = _parse_format(path, media_type, context)
    metadata = {
        **document.metadata,
        "media_type": media_type,
        "page_count": len(document.pages),
        "language": detect_language(document.text),
    }
    return replace(document, metadata=metadata)


def _parse_format(path: Path, media_type: str, context: ParseContext) -> ParsedDocument:
    limits = context.limits
    if media_type == PDF:
        return parse_pdf(path, limits, context.out_dir)
    if media_type in IMAGES:
        return ocr.parse_image(path, limits, context.out_dir)
    if media_type == DOCX:
        return office.parse_docx(path, limits)
    if media_type == XLSX:
        return office.parse_xlsx(path, limits)
    if media_type == PPTX:
        return office.parse_pptx(path, limits)
    if media_type == HTML:
        return markup.parse_html(path.read_bytes())
    if media_type == EML:
        document, found = mail.parse_eml(path.read_bytes())
        return _with_children(document, found, context)
    if media_type == MSG:
        document, found = mail.parse_msg(path)
        return _with_children(document, found, context)
    if media_type == ZIP:
        return _parse_zip(path, context)
    if media_type in (CSV, JSONL):
        return _parse_records(path, media_type, context)
    return parse_text(path.read_bytes(), is_markdown=media_type == MARKDOWN)


def _parse_zip(path: Path, context: ParseContext) -> ParsedDocument:
    try:
        with zipfile.ZipFile(path) as package:
            archive.check_entries(package, path.stat().st_size, context.limits)
            found = [
                (info.filename, archive.read_entry(package, info, context.budget))
                for info in package.infolist()
                if not info.is_dir()
            ]
    except archive.DAMAGED as exc:
        raise CorruptDocument(ZIP) from exc
    document = ParsedDocument(
        text="",
        pages=(),
        parser="python-zipfile",
        parser_version=version("strongroom"),
        metadata={"page_count": 0, "entry_count": len(found)},
    )
    return _with_children(document, found, context)


def _with_children(
    document: ParsedDocument, found: list[tuple[str, bytes]], context: ParseContext
) -> ParsedDocument:
    """Parse each found file as a child document.

    A child that is damaged, encrypted or of an unsupported type is skipped
    and counted by its code; a limit or an unsafe construct anywhere refuses
    the whole upload.
    """
    children: list[Child] = []
    refused: dict[str, int] = {}
    for name, data in found:
        try:
            children.append(_child(name, data, context))
        except UnsafeDocument:
            raise
        except InvalidArgument as exc:
            refused[exc.code] = refused.get(exc.code, 0) + 1
    metadata = {**document.metadata, "child_count": len(children)}
    if refused:
        metadata["refused_children"] = refused
    return replace(document, children=tuple(children), metadata=metadata)


def _child(name: str, data: bytes, context: ParseContext) -> Child:
    context.budget.take_entry()
    depth = context.depth + 1
    if depth > context.limits.max_archive_depth:
        raise LimitExceeded(
            "archive_too_deep", "levels of nesting", context.limits.max_archive_depth
        )
    relative = f"child-{next(context.names)}"
    path = context.out_dir / relative
    path.write_bytes(data)
    head = data[:_SNIFF_BYTES]
    media_type = resolve_media_type(
        name, "", head, len(data), container_names(path, head)
    )
    if media_type == OLE:
        raise CorruptDocument(OLE)
    document = parse_file(path, media_type, replace(context, depth=depth))
    return Child(
        name=name,
        media_type=media_type,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        original=relative,
        document=document,
    )


def _parse_records(
    path: Path, media_type: str, context: ParseContext
) -> ParsedDocument:
    data = path.read_bytes()
    if media_type == CSV:
        header, found = records.read_csv(data, context.limits)
        parser = "python-csv"
    else:
        header, found = [], records.read_jsonl(data, context.limits)
        parser = "python-json"
    children: list[Child] = []
    for name, fields in found:
        raw = records.record_bytes(fields)
        relative = f"child-{next(context.names)}"
        (context.out_dir / relative).write_bytes(raw)
        document = records.record_document(fields, parser, version("strongroom"))
        metadata = {
            **document.metadata,
            "media_type": JSONL,
            "language": detect_language(document.text),
        }
        children.append(
            Child(
                name=name,
                media_type=JSONL,
                sha256=hashlib.sha256(raw).hexdigest(),
                size_bytes=len(raw),
                original=relative,
                document=replace(document, metadata=metadata),
            )
        )
    return ParsedDocument(
        text="",
        pages=(),
        parser=parser,
        parser_version=version("strongroom"),
        metadata={
            "page_count": 0,
            "record_count": len(children),
            "child_count": len(children),
            "fields": header,
        },
        children=tuple(children),
    )
