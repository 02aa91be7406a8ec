"""Ingestion rules: sniffing, media type resolution, text decoding, PDF parsing."""

from __future__ import annotations

import codecs
import io

import pytest
from reportlab.pdfgen import canvas

from strongroom.services.common.errors import InvalidArgument, UnsupportedMediaType
from strongroom.services.ingestion.domain import (
    MARKDOWN,
    PDF,
    PLAIN_TEXT,
    decode_text,
    parse_text,
    resolve_media_type,
    sniff_media_type,
)
from strongroom.services.ingestion.errors import (
    ContentMismatch,
    CorruptDocument,
    EmptyFile,
    UnsupportedFormat,
)
from strongroom.services.ingestion.parsers import parse_pdf

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
ZIP_HEAD = b"PK\x03\x04\x14\x00\x00\x00\x08\x00"
TEXT = b"Quarterly report\nRevenue grew by 4%.\n"


def _two_page_pdf(first: str, second: str) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, first)
    pdf.showPage()
    pdf.drawString(72, 720, second)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", PDF),
        (PNG_HEAD, "image/png"),
        (ZIP_HEAD, "application/zip"),
        (TEXT, PLAIN_TEXT),
        ("Grüße aus Köln\n".encode(), PLAIN_TEXT),
        (codecs.BOM_UTF16_LE + "hi".encode("utf-16-le"), PLAIN_TEXT),
        (bytes(range(32)) * 4, "application/octet-stream"),
        (b"abc\x00def", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_sniff_media_type_names_format_from_first_bytes(
    head: bytes, expected: str
) -> None:
    assert sniff_media_type(head) == expected


def test_resolve_refuses_empty_file() -> None:
    with pytest.raises(EmptyFile) as caught:
        resolve_media_type("x.txt", "text/plain", b"", 0)

    assert caught.value.code == "file_empty"
    assert isinstance(caught.value, InvalidArgument)


@pytest.mark.parametrize(
    ("name", "head"),
    [("x.pdf", TEXT), ("x.txt", b"%PDF-1.7\n"), ("report.PDF", PNG_HEAD)],
)
def test_resolve_refuses_name_that_disagrees_with_content(
    name: str, head: bytes
) -> None:
    with pytest.raises(ContentMismatch) as caught:
        resolve_media_type(name, "", head, len(head))

    assert caught.value.code == "content_mismatch"
    assert isinstance(caught.value, UnsupportedMediaType)


def test_resolve_refuses_declared_type_that_disagrees_with_content() -> None:
    with pytest.raises(ContentMismatch):
        resolve_media_type("upload", "application/pdf", TEXT, len(TEXT))


def test_resolve_refuses_format_it_cannot_parse() -> None:
    with pytest.raises(UnsupportedFormat) as caught:
        resolve_media_type("x.gif", "", b"GIF89a\x01\x00", 1000)

    assert caught.value.code == "unsupported_media_type"


@pytest.mark.parametrize(
    ("name", "declared", "head", "expected"),
    [
        ("notes.md", "", TEXT, MARKDOWN),
        ("notes", "text/markdown; charset=utf-8", TEXT, MARKDOWN),
        ("notes.txt", "", TEXT, PLAIN_TEXT),
        ("notes", "application/octet-stream", TEXT, PLAIN_TEXT),
        ("scan.pdf", "application/pdf", b"%PDF-1.4\n", PDF),
    ],
)
def test_resolve_accepts_supported_types(
    name: str, declared: str, head: bytes, expected: str
) -> None:
    assert resolve_media_type(name, declared, head, len(head)) == expected


@pytest.mark.parametrize(
    "data",
    [
        "Grüße, Zoë — 東京\n".encode(),
        codecs.BOM_UTF8 + "Grüße, Zoë — 東京\n".encode(),
        "Grüße, Zoë — 東京\n".encode("utf-16"),
        codecs.BOM_UTF16_BE + "Grüße, Zoë — 東京\n".encode("utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "utf16be-bom"],
)
def test_decode_text_handles_unicode_encodings(data: bytes) -> None:
    assert decode_text(data) == "Grüße, Zoë — 東京\n"


def test_decode_text_handles_cp1252_text_with_smart_quotes() -> None:
    text = "Café au lait, naïve résumé and “smart quotes” — déjà vu"

    assert decode_text(text.encode("cp1252")) == text


# charset_normalizer ranks cp1250, cp1257 and mac_latin2 level with cp1252 for
# Western European text without cp1252-only bytes, and decode_text takes the
# first: "naïve" becomes "naďve" (cp1250) or "naļve" (cp1257).
@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("café naïve résumé", "cp1252"),
        ("Le café était plein. Naïve question: where is the résumé?", "cp1252"),
        (
            "The café on the corner serves a naïve but charming résumé of French "
            "cuisine. Our visit was déjà vu all over again, très agréable.",
            "cp1252",
        ),
        ("Straße und Übergröße für Köln, München.", "cp1252"),
        ("Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig.", "cp1250"),
        ("Wczoraj byłem w mieście i kupiłem trochę żółtego sera.", "cp1250"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.", "cp1250"),
        ("Съешь же ещё этих мягких французских булок, да выпей чаю.", "cp1251"),
        ("Ελληνικά κείμενα για δοκιμή της κωδικοποίησης.", "cp1253"),  # noqa: RUF001
        ("いろはにほへと ちりぬるを わかよたれそ つねならむ", "shift_jis"),
    ],
)
def test_decode_text_handles_legacy_encodings(text: str, encoding: str) -> None:
    assert decode_text(text.encode(encoding)) == text


def test_decode_text_normalises_line_ends() -> None:
    assert decode_text(b"one\r\ntwo\rthree\nfour\r\n") == "one\ntwo\nthree\nfour\n"


def test_parse_text_has_one_page_covering_the_text() -> None:
    parsed = parse_text(b"a\r\nb")

    assert parsed.text == "a\nb"
    assert [(p.number, p.start, p.end) for p in parsed.pages] == [(1, 0, 3)]


def test_parse_pdf_keeps_each_page_span() -> None:
    parsed = parse_pdf(_two_page_pdf("Alpha page one", "Bravo page two"))

    first, second = parsed.pages
    assert (first.number, second.number) == (1, 2)
    assert "Alpha page one" in parsed.text[first.start : first.end]
    assert "Bravo page two" in parsed.text[second.start : second.end]
    assert "Bravo" not in parsed.text[first.start : first.end]
    assert "Alpha" not in parsed.text[second.start : second.end]
    assert 0 <= first.start < first.end < second.start < second.end
    assert second.end <= len(parsed.text)
    assert all(p.width_pt > 0 and p.height_pt > 0 for p in parsed.pages)
    assert parsed.parser == "pdfium"


def test_parse_pdf_refuses_corrupt_file() -> None:
    with pytest.raises(CorruptDocument) as caught:
        parse_pdf(b"%PDF-1.7 garbage")

    assert caught.value.code == "document_corrupt"
