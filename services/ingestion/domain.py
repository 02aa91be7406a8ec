"""Ingestion rules: what a file really is, and its text with stable offsets.

Pure functions over bytes; parsing that needs a library lives in parsers.py.
"""

from __future__ import annotations

import codecs
import posixpath
import unicodedata
from dataclasses import dataclass

import charset_normalizer

from strongroom.services.ingestion.errors import (
    ContentMismatch,
    EmptyFile,
    UnsupportedFormat,
)

PDF = "application/pdf"
PLAIN_TEXT = "text/plain"
MARKDOWN = "text/markdown"
SUPPORTED = frozenset({PDF, PLAIN_TEXT, MARKDOWN})

# Leading bytes of binary formats, so a renamed file is recognised.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", PDF),
    (b"PK\x03\x04", "application/zip"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\xd0\xcf\x11\xe0", "application/x-ole-storage"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\x7fELF", "application/x-executable"),
)

_TYPES_BY_EXTENSION = {
    ".pdf": PDF,
    ".txt": PLAIN_TEXT,
    ".text": PLAIN_TEXT,
    ".log": PLAIN_TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
}

_TEXT_TYPES = frozenset({PLAIN_TEXT, MARKDOWN})

_PREFERRED_ENCODINGS = ("cp1252", "iso8859_15", "latin_1")
_CHAOS_TIE = 0.05
_SYMBOL_CATEGORIES = frozenset({"So", "Sk", "Sm", "Sc", "No", "Cc", "Co", "Pi", "Pf"})


@dataclass(frozen=True)
class PageText:
    number: int
    start: int
    end: int
    width_pt: float = 0.0
    height_pt: float = 0.0


@dataclass(frozen=True)
class ParsedDocument:
    """Extracted text and the page each character range came from."""

    text: str
    pages: tuple[PageText, ...]
    parser: str
    parser_version: str


def sniff_media_type(head: bytes) -> str:
    """Name the format from the file's first bytes."""
    for signature, media_type in _SIGNATURES:
        if head.startswith(signature):
            return media_type
    if _looks_like_text(head):
        return PLAIN_TEXT
    return "application/octet-stream"


def resolve_media_type(source_name: str, declared: str, head: bytes, size: int) -> str:
    """Decide the media type to parse with, refusing files that lie about it.

    Raises:
        EmptyFile: the file has no bytes.
        ContentMismatch: the name or declared type disagrees with the content.
        UnsupportedFormat: the content is of a type Strongroom cannot parse yet.
    """
    if size == 0:
        raise EmptyFile()
    detected = sniff_media_type(head)
    claimed = _claimed_type(source_name, declared)
    if claimed and not _agrees(claimed, detected):
        raise ContentMismatch(claimed, detected)
    if detected == PLAIN_TEXT and claimed == MARKDOWN:
        return MARKDOWN
    if detected not in SUPPORTED:
        raise UnsupportedFormat(detected)
    return detected


def decode_text(data: bytes) -> str:
    """Decode text in any common encoding and normalise line ends to ``\\n``."""
    text = _decode(data)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_text(data: bytes) -> ParsedDocument:
    text = decode_text(data)
    return ParsedDocument(
        text=text,
        pages=(PageText(1, 0, len(text)),),
        parser="strongroom-text",
        parser_version="1",
    )


def _decode(data: bytes) -> str:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        return data.decode("latin-1")
    # Short text fits several single-byte code pages almost equally well.
    # Among near-ties, the reading with the fewest symbols stuck inside words
    # ("by³em" read in the wrong code page) wins, then the most common one.
    least_chaos = min(m.chaos for m in matches)
    near_ties = [str(m) for m in matches if m.chaos <= least_chaos + _CHAOS_TIE]
    encodings = {str(m): m.encoding for m in matches}
    near_ties.sort(key=lambda t: (_symbols_inside_words(t), _preference(encodings[t])))
    return near_ties[0]


def _symbols_inside_words(text: str) -> int:
    return sum(
        1
        for before, char, after in zip(text, text[1:], text[2:], strict=False)
        if before.isalpha()
        and after.isalpha()
        and not char.isalpha()
        and unicodedata.category(char) in _SYMBOL_CATEGORIES
    )


def _preference(encoding: str) -> int:
    if encoding in _PREFERRED_ENCODINGS:
        return _PREFERRED_ENCODINGS.index(encoding)
    return len(_PREFERRED_ENCODINGS)


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    if b"\x00" in head:
        return False
    control = sum(1 for byte in head if byte < 32 and byte not in b"\t\n\r\f\x1b")
    return control / len(head) < 0.01


def _claimed_type(source_name: str, declared: str) -> str:
    extension = posixpath.splitext(source_name.lower())[1]
    by_name = _TYPES_BY_EXTENSION.get(extension, "")
    declared = declared.split(";")[0].strip().lower()
    if declared in ("", "application/octet-stream"):
        return by_name
    return declared if declared in SUPPORTED or not by_name else by_name


def _agrees(claimed: str, detected: str) -> bool:
    if claimed in _TEXT_TYPES:
        return detected == PLAIN_TEXT
    return claimed == detected
