"""Ingestion rules: what a file really is, and its text with stable offsets.

Pure functions over bytes; parsing that needs a library lives in parsers.py
and the modules beside it.
"""

from __future__ import annotations

import codecs
import json
import posixpath
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import charset_normalizer

from strongroom.services.ingestion.errors import (
    ContentMismatch,
    EmptyFile,
    UnsupportedFormat,
)
from strongroom.services.ingestion.model import (
    HEADING,
    LIST_ITEM,
    PARAGRAPH,
    Block,
    PageText,
    ParsedDocument,
)

__all__ = ["PageText", "ParsedDocument"]

PDF = "application/pdf"
PLAIN_TEXT = "text/plain"
MARKDOWN = "text/markdown"
CSV = "text/csv"
JSONL = "application/jsonl"
HTML = "text/html"
EML = "message/rfc822"
MSG = "application/vnd.ms-outlook"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ZIP = "application/zip"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
OLE = "application/x-ole-storage"
IMAGES = frozenset({PNG, JPEG, TIFF})
SUPPORTED = frozenset(
    {PDF, PLAIN_TEXT, MARKDOWN, CSV, JSONL, HTML, EML, MSG, DOCX, XLSX, PPTX, ZIP}
    | IMAGES
)
# Formats whose parse yields child documents rather than text of their own.
RECORD_FORMATS = frozenset({CSV, JSONL})

# Leading bytes of binary formats, so a renamed file is recognised.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", PDF),
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF8", "image/gif"),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"\xd0\xcf\x11\xe0", OLE),
    (b"\x1f\x8b", "application/gzip"),
    (b"\x7fELF", "application/x-executable"),
)

# The part an Office Open XML package must hold to be that kind of document.
_OOXML_PARTS = (
    ("word/document.xml", DOCX),
    ("xl/workbook.xml", XLSX),
    ("ppt/presentation.xml", PPTX),
)

_TYPES_BY_EXTENSION = {
    ".pdf": PDF,
    ".txt": PLAIN_TEXT,
    ".text": PLAIN_TEXT,
    ".log": PLAIN_TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".csv": CSV,
    ".tsv": CSV,
    ".jsonl": JSONL,
    ".ndjson": JSONL,
    ".html": HTML,
    ".htm": HTML,
    ".eml": EML,
    ".msg": MSG,
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".pptx": PPTX,
    ".zip": ZIP,
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".tif": TIFF,
    ".tiff": TIFF,
}

_ALIASES = {
    "application/x-ndjson": JSONL,
    "application/x-jsonlines": JSONL,
    "image/jpg": JPEG,
    "application/x-zip-compressed": ZIP,
    "text/x-markdown": MARKDOWN,
    "application/xhtml+xml": HTML,
    "text/tab-separated-values": CSV,
}

# Text formats told apart by their content.
_TEXT_TYPES = frozenset({PLAIN_TEXT, MARKDOWN, CSV, JSONL, HTML, EML})
# Any text also reads as plain text, Markdown or a CSV, so a name may pick these.
_ANY_TEXT = frozenset({PLAIN_TEXT, MARKDOWN, CSV})

# An RFC 5322 header field at the start of a line: a name, a colon, a value.
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]{0,76}:[ \t]")
_MAIL_HEADERS = frozenset(
    {b"from", b"to", b"subject", b"date", b"message-id", b"mime-version"}
)
_MAIL_TRACE_HEADERS = frozenset({b"received", b"return-path", b"delivered-to"})
# An optional XML declaration and comments, then an HTML doctype or an html,
# head or body tag.
_HTML_START = re.compile(
    rb"^\s*(<\?xml[^>]{0,200}>\s*)?(<!--.*?-->\s*)*"
    rb"<(!doctype\s+html|html|head|body)\b",
    re.I | re.S,
)

# A Markdown ATX heading ("## Title") and a list item ("- x", "* x", "1. x").
_MARKDOWN_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+\S")
_MARKDOWN_ITEM = re.compile(r"^\s*([-*+]|\d{1,9}[.)])\s+\S")

_WORD = re.compile(r"[^\W\d_]+")
_LANGUAGE_SAMPLE = 20_000
_LANGUAGE_MIN_LETTERS = 20
_LANGUAGE_MIN_SHARE = 0.08
# Unicode blocks that name a language on their own; kana before CJK ideographs.
_SCRIPTS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("ja", (0x3040, 0x30FF)),
    ("ko", (0xAC00, 0xD7AF)),
    ("zh", (0x4E00, 0x9FFF)),
    ("ru", (0x0400, 0x04FF)),
    ("el", (0x0370, 0x03FF)),
    ("ar", (0x0600, 0x06FF)),
    ("he", (0x0590, 0x05FF)),
    ("th", (0x0E00, 0x0E7F)),
    ("hi", (0x0900, 0x097F)),
)


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# The most frequent function words of each language, from common word lists.
_COMMON_WORDS: dict[str, frozenset[str]] = {
    "en": _word_set(
        "the of and to in is that for it with as was on be by this are from or "
        "at have an not which we you has"
    ),
    "de": _word_set(
        "der die und in den von zu das mit sich des auf für ist im dem nicht ein "
        "eine als auch es an werden aus er hat dass sie nach wird bei"
    ),
    "fr": _word_set(
        "de la le et les des en un du une que est pour qui dans par plus pas au "
        "sur ne se ce il sont avec"
    ),
    "es": _word_set(
        "de la que el en y los del se las por un para con no una su al es lo "
        "como más pero sus le ha"
    ),
    "it": _word_set(
        "di e il la che in un per non una del è della le si con da sono al dei "
        "gli alla più ha come"
    ),
    "nl": _word_set(
        "de en van het een in is dat op te zijn met voor niet die aan er ook als "
        "bij door wordt naar"
    ),
    "pt": _word_set(
        "de a o que e do da em um para é com não uma os no se na por mais as dos "
        "como mas ao"
    ),
    "pl": _word_set(
        "i w nie na się z do to że jest o jak co ale po tak za od przez dla już "
        "go jego jej"
    ),
    "sv": _word_set(
        "och i att det som en på är av för med till den har de inte om ett han "
        "men var jag sig"
    ),
}

_PREFERRED_ENCODINGS = ("cp1252", "iso8859_15", "latin_1")
_CHAOS_TIE = 0.05
_SYMBOL_CATEGORIES = frozenset({"So", "Sk", "Sm", "Sc", "No", "Cc", "Co", "Pi", "Pf"})


@dataclass(frozen=True)
class Limits:
    """How far one upload may expand before it is refused.

    Archive limits count every entry at every depth; the expansion ratio
    compares the bytes an archive unpacks to with its own size.
    """

    max_pages: int = 5000
    max_archive_depth: int = 3
    max_archive_entries: int = 1000
    max_expanded_bytes: int = 1024 * 1024 * 1024
    max_expansion_ratio: int = 100
    max_records: int = 100_000
    max_image_pixels: int = 120_000_000
    parse_timeout_seconds: float = 300.0
    parse_memory_bytes: int = 2 * 1024 * 1024 * 1024
    ocr_dpi: int = 300
    ocr_language: str = "eng"
    # A PDF page with fewer characters than this in its text layer is scanned.
    ocr_min_chars: int = 8
    # Render pages read from a text layer as images at this resolution too
    # (0: only scanned pages, which OCR renders anyway, get an image).
    page_image_dpi: int = 0


def sniff_media_type(head: bytes, names: Sequence[str] = ()) -> str:
    """Name the format from the file's first bytes.

    ``names`` are the entry names of a ZIP or OLE container, which tell an
    Office document or an Outlook message from a plain archive.
    """
    for signature, media_type in _SIGNATURES:
        if head.startswith(signature):
            return _refine_container(media_type, names)
    if _looks_like_text(head):
        return _sniff_text(head)
    return "application/octet-stream"


def resolve_media_type(
    source_name: str,
    declared: str,
    head: bytes,
    size: int,
    names: Sequence[str] = (),
) -> str:
    """Decide the media type to parse with, refusing files that lie about it.

    The content decides. Where text fits several readings (any text is also
    plain text, Markdown or a one-column CSV), the name or declared type may
    choose among those the content supports, never beyond them.

    Raises:
        EmptyFile: the file has no bytes.
        ContentMismatch: the name or declared type disagrees with the content.
        UnsupportedFormat: the content is of a type Strongroom cannot parse yet.
    """
    if size == 0:
        raise EmptyFile()
    detected = sniff_media_type(head, names)
    claimed = _claimed_type(source_name, declared)
    if claimed and not _agrees(claimed, detected):
        raise ContentMismatch(claimed, detected)
    if detected in _TEXT_TYPES and claimed in _TEXT_TYPES:
        return claimed
    if detected not in SUPPORTED:
        raise UnsupportedFormat(detected)
    return detected


def _refine_container(media_type: str, names: Sequence[str]) -> str:
    if media_type == ZIP:
        present = set(names)
        for part, ooxml in _OOXML_PARTS:
            if part in present:
                return ooxml
    if media_type == OLE and any(n.startswith("__substg1.0_") for n in names):
        return MSG
    return media_type


def _sniff_text(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    if _HTML_START.match(head[:2048]):
        return HTML
    lines = head.split(b"\n")
    if _looks_like_mail(lines):
        return EML
    # The last line of a sniffed head may be cut off mid-way.
    complete = [line.strip() for line in lines[:-1] if line.strip()]
    if not complete:
        complete = [lines[0].strip()]
    if all(_is_json_object(line) for line in complete[:50]):
        return JSONL
    return PLAIN_TEXT


def _looks_like_mail(lines: list[bytes]) -> bool:
    names: set[bytes] = set()
    for raw in lines[:60]:
        line = raw.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue
        if not _HEADER_LINE.match(line):
            return False
        names.add(line.split(b":", 1)[0].lower())
    return len(names & _MAIL_HEADERS) >= 2 or bool(names & _MAIL_TRACE_HEADERS)


def _is_json_object(line: bytes) -> bool:
    if not line.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def decode_text(data: bytes) -> str:
    """Decode text in any common encoding and normalise line ends to ``\\n``."""
    text = _decode(data)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_text(data: bytes, is_markdown: bool = False) -> ParsedDocument:
    """Decode text as it is; paragraphs (and Markdown headings, items) as blocks.

    The text is never rewritten, so offsets into it are offsets into the file's
    characters; Markdown marks stay in the text and only shape the blocks.
    """
    text = decode_text(data)
    return ParsedDocument(
        text=text,
        pages=(PageText(1, 0, len(text)),),
        parser="strongroom-text",
        parser_version="2",
        blocks=text_blocks(text, is_markdown),
        metadata={"page_count": 1},
    )


def text_blocks(text: str, is_markdown: bool) -> tuple[Block, ...]:
    """Blank-line separated paragraphs; Markdown headings and list items."""
    blocks: list[Block] = []
    paragraph: tuple[int, int] | None = None
    offset = 0
    for line in text.split("\n"):
        start, end = offset, offset + len(line)
        offset = end + 1
        kind, level = _markdown_kind(line) if is_markdown else (PARAGRAPH, 0)
        if not line.strip() or kind != PARAGRAPH:
            if paragraph:
                blocks.append(Block(PARAGRAPH, *paragraph, 1))
            paragraph = None
            if line.strip():
                blocks.append(Block(kind, start, end, 1, level=level))
            continue
        paragraph = (paragraph[0], end) if paragraph else (start, end)
    if paragraph:
        blocks.append(Block(PARAGRAPH, *paragraph, 1))
    return tuple(blocks)


def _markdown_kind(line: str) -> tuple[str, int]:
    heading = _MARKDOWN_HEADING.match(line)
    if heading:
        return HEADING, len(heading.group(1))
    if _MARKDOWN_ITEM.match(line):
        return LIST_ITEM, 1
    return PARAGRAPH, 0


def detect_language(text: str) -> str:
    """Guess the main language as an ISO 639-1 code; empty when unsure.

    Scripts decide first (kana is Japanese, hangul Korean, and so on); Latin
    text is scored by its share of each language's most common words.
    """
    sample = text[:_LANGUAGE_SAMPLE]
    letters = [c for c in sample if c.isalpha()]
    if len(letters) < _LANGUAGE_MIN_LETTERS:
        return ""
    by_script = _language_by_script(letters)
    if by_script:
        return by_script
    words = _WORD.findall(sample.lower())
    if not words:
        return ""
    scores = {
        language: sum(1 for w in words if w in common) / len(words)
        for language, common in _COMMON_WORDS.items()
    }
    best = max(scores, key=lambda language: scores[language])
    return best if scores[best] >= _LANGUAGE_MIN_SHARE else ""


def _language_by_script(letters: list[str]) -> str:
    counts: dict[str, int] = {}
    for char in letters:
        for script, (low, high) in _SCRIPTS:
            if low <= ord(char) <= high:
                counts[script] = counts.get(script, 0) + 1
                break
    if not counts:
        return ""
    if counts.get("ja", 0) and counts.get("zh", 0) + counts["ja"] > len(letters) / 3:
        return "ja"
    script, count = max(counts.items(), key=lambda item: item[1])
    return script if count > len(letters) / 3 else ""


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
    declared = _ALIASES.get(declared, declared)
    if declared in ("", "application/octet-stream"):
        return by_name
    return declared if declared in SUPPORTED or not by_name else by_name


def _agrees(claimed: str, detected: str) -> bool:
    if detected in _TEXT_TYPES:
        return claimed in _ANY_TEXT or claimed == detected
    if claimed == ZIP and detected in (DOCX, XLSX, PPTX):
        return True
    return claimed == detected
