"""Hostile and malformed files, parsed the way the service parses them.

Every file goes through a real worker process (``ParserPool``), with its
memory and time caps, and comes back as a typed refusal or a document; after
each refusal the same pool still parses a good file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from strongroom.services.common.errors import (
    InvalidArgument,
    QuotaExceeded,
    StrongroomError,
)
from strongroom.services.ingestion.domain import Limits, resolve_media_type
from strongroom.services.ingestion.model import ParsedDocument
from strongroom.services.ingestion.sandbox import ParserPool
from tests.fixtures.ingestion import corpus

LIMITS = Limits(ocr_dpi=corpus.OCR_DPI, max_archive_entries=50)
SECRET = "Ada Byron 40-11-62"


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    workers = ParserPool(LIMITS, size=1)
    yield workers
    workers.close()


def ingest(pool: ParserPool, tmp_path: Path, name: str, data: bytes) -> ParsedDocument:
    """Resolve the type as the servicer does, then parse in a worker."""
    path = tmp_path / f"upload-{name}"
    path.write_bytes(data)
    out = tmp_path / f"out-{name}"
    out.mkdir()
    head = data[:8192]
    names = pool.container_names(path)
    media_type = resolve_media_type(name, "", head, len(data), names)
    return pool.parse(path, media_type, out)


def refusal(
    pool: ParserPool, tmp_path: Path, name: str, data: bytes
) -> StrongroomError:
    with pytest.raises(StrongroomError) as caught:
        ingest(pool, tmp_path, name, data)
    assert SECRET not in caught.value.message
    good = ingest(pool, tmp_path, f"after-{name}.txt", b"still serving\n")
    assert good.text == "still serving\n"
    return caught.value


def test_container_listing_names_only_what_tells_the_type(
    pool: ParserPool, tmp_path: Path
) -> None:
    path = tmp_path / "package"
    path.write_bytes(corpus.word_document())
    text = tmp_path / "text"
    text.write_bytes(b"not a container\n")

    assert pool.container_names(path) == ["word/document.xml"]
    assert pool.container_names(text) == []


def test_zip_bomb_is_refused_by_its_expansion(pool: ParserPool, tmp_path: Path) -> None:
    bomb = corpus.zip_bomb()
    assert len(bomb) < 200_000

    error = refusal(pool, tmp_path, "bomb.zip", bomb)

    assert error.code == "archive_expansion_exceeded"
    assert isinstance(error, QuotaExceeded)


def test_zip_bomb_inside_an_email_is_refused(pool: ParserPool, tmp_path: Path) -> None:
    data = corpus.email_with_attachment(corpus.zip_bomb(), "backup.zip")

    assert refusal(pool, tmp_path, "mail.eml", data).code == (
        "archive_expansion_exceeded"
    )


def test_archive_with_too_many_entries_is_refused(
    pool: ParserPool, tmp_path: Path
) -> None:
    data = corpus.zip_of({f"note-{n}.txt": b"x\n" for n in range(60)})

    assert refusal(pool, tmp_path, "many.zip", data).code == "archive_too_many_entries"


def test_archives_nested_too_deep_are_refused(pool: ParserPool, tmp_path: Path) -> None:
    allowed = ingest(pool, tmp_path, "three.zip", corpus.nested_zip(3))

    error = refusal(pool, tmp_path, "four.zip", corpus.nested_zip(4))

    assert allowed.children[0].document.children[0].document.children
    assert error.code == "archive_too_deep"


@pytest.mark.parametrize(
    ("name", "part", "kind"),
    [
        ("laughs.docx", "word/document.xml", "laughs"),
        ("xxe.docx", "word/document.xml", "xxe"),
        ("laughs.xlsx", "xl/workbook.xml", "laughs"),
        ("xxe.pptx", "ppt/presentation.xml", "xxe"),
    ],
)
def test_office_xml_declaring_entities_is_refused(
    pool: ParserPool, tmp_path: Path, name: str, part: str, kind: str
) -> None:
    packages = {
        ".docx": corpus.word_document,
        ".xlsx": corpus.workbook,
        ".pptx": corpus.presentation,
    }
    package = packages[name[name.index(".") :]]()

    error = refusal(pool, tmp_path, name, corpus.entity_attack(package, part, kind))

    assert error.code == "document_unsafe"
    assert "root:" not in error.message


def test_html_entities_declared_in_its_doctype_are_not_expanded(
    pool: ParserPool, tmp_path: Path
) -> None:
    document = ingest(pool, tmp_path, "page.html", corpus.html_with_entities())

    assert "Before" in document.text and "after" in document.text
    assert len(document.text) < 200


def test_encrypted_pdf_is_refused_with_its_own_code(
    pool: ParserPool, tmp_path: Path
) -> None:
    error = refusal(pool, tmp_path, "sealed.pdf", corpus.encrypted_pdf())

    assert error.code == "document_encrypted"
    assert isinstance(error, InvalidArgument)


def _malformed() -> list[tuple[str, bytes]]:
    pdf = corpus.text_pdf([[SECRET]])
    png = corpus.image_bytes(corpus.scan_image(), "PNG")
    jpeg = corpus.image_bytes(corpus.scan_image(), "JPEG")
    tiff = corpus.multipage_tiff([("ONE",), ("TWO",)])
    return [
        ("broken.pdf", pdf[:200]),
        (
            "broken.docx",
            corpus.damaged_zip_part(corpus.word_document(), "word/document.xml"),
        ),
        ("broken.xlsx", corpus.damaged_zip_part(corpus.workbook(), "xl/workbook.xml")),
        (
            "broken.pptx",
            corpus.damaged_zip_part(corpus.presentation(), "ppt/presentation.xml"),
        ),
        ("broken.png", corpus.truncated(png, 0.3)),
        ("broken.jpg", corpus.truncated(jpeg, 0.3)),
        ("broken.tiff", corpus.truncated(tiff, 0.3)),
        ("broken.zip", corpus.truncated(corpus.zip_of({"a.txt": b"a" * 5000}), 0.6)),
        ("broken.csv", b"name,note\n" + b'"' + SECRET.encode() + b"\n"),
    ]


@pytest.mark.parametrize(("name", "data"), _malformed(), ids=lambda v: str(v)[:12])
def test_malformed_file_of_each_kind_is_refused_as_corrupt(
    pool: ParserPool, tmp_path: Path, name: str, data: bytes
) -> None:
    error = refusal(pool, tmp_path, name, data)

    assert error.code == "document_corrupt"
    assert isinstance(error, InvalidArgument)


def test_parse_that_overruns_its_time_is_stopped(tmp_path: Path) -> None:
    slow = ParserPool(replace(LIMITS, parse_timeout_seconds=1.0), size=1)
    pages = [tuple(f"Line {n} of page {p}" for n in range(12)) for p in range(12)]
    try:
        error = refusal(slow, tmp_path, "long.tiff", corpus.multipage_tiff(pages))
    finally:
        slow.close()

    assert error.code == "parse_timeout"


def test_parse_that_needs_too_much_memory_is_stopped(tmp_path: Path) -> None:
    small = ParserPool(replace(LIMITS, parse_memory_bytes=300 * 1024 * 1024), size=1)
    buffer = io.BytesIO()
    Image.new("RGB", (10_000, 10_000), "white").save(buffer, format="PNG")
    try:
        error = refusal(small, tmp_path, "huge.png", buffer.getvalue())
    finally:
        small.close()

    assert error.code == "parse_memory_exceeded"
