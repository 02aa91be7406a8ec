"""The document model: offsets, boxes, the artefact round trip, type detection."""

from __future__ import annotations

import json

import pytest

from strongroom.services.ingestion.domain import (
    CSV,
    DOCX,
    EML,
    HTML,
    JSONL,
    MARKDOWN,
    PLAIN_TEXT,
    PPTX,
    XLSX,
    ZIP,
    detect_language,
    parse_text,
    resolve_media_type,
    sniff_media_type,
)
from strongroom.services.ingestion.errors import ContentMismatch
from strongroom.services.ingestion.model import (
    HEADING,
    LIST_ITEM,
    PARAGRAPH,
    TABLE,
    Box,
    Child,
    DocumentBuilder,
    from_json,
    locate,
    to_json,
)

ZIP_HEAD = b"PK\x03\x04\x14\x00\x00\x00\x08\x00"


def test_builder_keeps_offsets_pages_and_table_cells() -> None:
    builder = DocumentBuilder()
    builder.start_page(612, 792)
    builder.add_block(HEADING, "  Title  ", Box(72, 60, 200, 80), level=1)
    builder.add_table([["Name", "Age"], ["Ann  Lee", "33"]])
    builder.start_page(612, 792)
    builder.add_block(PARAGRAPH, "Second page")

    document = builder.build("test", "1")

    assert document.text == "Title\nName\tAge\nAnn Lee\t33\n\fSecond page"
    first, second = document.pages
    assert document.text[first.start : first.end] == "Title\nName\tAge\nAnn Lee\t33"
    assert document.text[second.start : second.end] == "Second page"
    assert [b.kind for b in document.blocks] == [HEADING, TABLE, PARAGRAPH]
    assert [b.page for b in document.blocks] == [1, 1, 2]
    (table,) = document.tables
    assert (table.rows, table.columns) == (2, 2)
    cells = {(c.row, c.column): document.text[c.start : c.end] for c in table.cells}
    assert cells == {(0, 0): "Name", (0, 1): "Age", (1, 0): "Ann Lee", (1, 1): "33"}


def test_locate_cuts_a_line_box_in_proportion_to_its_characters() -> None:
    builder = DocumentBuilder()
    builder.start_page(612, 792)
    start = builder.open_block()
    line_start, line_end = builder.add_raw("0123456789")
    builder.add_segment(line_start, line_end, Box(100, 50, 200, 60))
    builder.close_block(PARAGRAPH, start)
    document = builder.build("test", "1")

    (region,) = locate(document, 2, 5)

    assert region.page == 1
    assert region.box == Box(120, 50, 150, 60)
    assert locate(document, 5, 5) == []
    assert locate(document, 20, 30) == []


def test_locate_uses_block_boxes_when_there_are_no_segments() -> None:
    builder = DocumentBuilder()
    builder.start_page(960, 540)
    builder.add_block(PARAGRAPH, "Alpha", Box(10, 10, 110, 30))
    builder.add_block(PARAGRAPH, "Bravo", Box(10, 40, 110, 60))
    document = builder.build("test", "1")

    regions = locate(document, document.text.index("Bravo"), len(document.text))

    assert [(r.page, r.box) for r in regions] == [(1, Box(10, 40, 110, 60))]


def test_structure_artefact_round_trips_with_children() -> None:
    inner = DocumentBuilder()
    inner.add_block(PARAGRAPH, "attached")
    child_document = inner.build("child", "1", metadata={"language": ""})
    outer = DocumentBuilder()
    outer.start_page(612, 792, "ocr", "ab" * 32)
    start, end = outer.add_raw("word")
    outer.add_segment(start, end, Box(1, 2, 3, 4), 0.91)
    parent = outer.build(
        "parent",
        "2",
        ocr_engine="tesseract 5",
        settings={"dpi": "300"},
        children=(Child("a.txt", PLAIN_TEXT, "cd" * 32, 8, "child-0", child_document),),
    )

    data = json.loads(json.dumps(to_json(parent, with_children=True)))
    again = from_json(data, parent.text)

    assert again == parent
    assert "text" not in to_json(parent)["children"][0]


@pytest.mark.parametrize(
    ("head", "names", "expected"),
    [
        (ZIP_HEAD, ["[Content_Types].xml", "word/document.xml"], DOCX),
        (ZIP_HEAD, ["xl/workbook.xml"], XLSX),
        (ZIP_HEAD, ["ppt/presentation.xml"], PPTX),
        (ZIP_HEAD, ["notes.txt"], ZIP),
        (b"<!DOCTYPE html><html><body>x</body></html>", [], HTML),
        (b"  <!-- c --><html lang=en>", [], HTML),
        (b"From: a@example.org\nTo: b@example.org\nSubject: hi\n\nbody\n", [], EML),
        (b"Received: from mx\n\tby mx2\nSubject: x\n\nbody", [], EML),
        (b'{"a": 1}\n{"b": [2]}\n{"c": "cut', [], JSONL),
        (b"Dear team: the figures are in.\nRegards\n", [], PLAIN_TEXT),
        (b"Note: one line only", [], PLAIN_TEXT),
    ],
)
def test_sniff_tells_formats_apart_by_content(
    head: bytes, names: list[str], expected: str
) -> None:
    assert sniff_media_type(head, names) == expected


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("people.csv", b"name,city\nAda,London\n", CSV),
        ("notes.md", b"# Title\n", MARKDOWN),
        ("page.txt", b"<html><body>x</body></html>", PLAIN_TEXT),
        ("records.jsonl", b'{"a": 1}\n', JSONL),
        ("archive.zip", ZIP_HEAD, DOCX),
    ],
)
def test_name_chooses_only_among_readings_the_content_supports(
    name: str, head: bytes, expected: str
) -> None:
    names = ["word/document.xml"] if head == ZIP_HEAD else []

    assert resolve_media_type(name, "", head, len(head), names) == expected


@pytest.mark.parametrize(
    ("name", "head", "names"),
    [
        ("report.docx", ZIP_HEAD, ["notes.txt"]),
        ("sheet.xlsx", ZIP_HEAD, ["word/document.xml"]),
        ("records.jsonl", b"not json at all\n", []),
        ("page.html", b"plain words\n", []),
        ("mail.eml", b"plain words\n", []),
        ("scan.png", b"%PDF-1.7\n", []),
    ],
)
def test_name_that_the_content_does_not_support_is_refused(
    name: str, head: bytes, names: list[str]
) -> None:
    with pytest.raises(ContentMismatch):
        resolve_media_type(name, "", head, len(head), names)


def test_text_blocks_follow_paragraphs_and_markdown_marks() -> None:
    source = "# Findings\n\nFirst line\nsecond line\n\n- one\n2. two\n"

    document = parse_text(source.encode(), is_markdown=True)

    assert document.text == source
    blocks = [(b.kind, document.text[b.start : b.end]) for b in document.blocks]
    assert blocks == [
        (HEADING, "# Findings"),
        (PARAGRAPH, "First line\nsecond line"),
        (LIST_ITEM, "- one"),
        (LIST_ITEM, "2. two"),
    ]
    plain = parse_text(source.encode())
    assert [b.kind for b in plain.blocks] == [PARAGRAPH] * 3


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The board approved the budget for the new year and it was signed.", "en"),
        (
            "Der Vorstand hat den Haushalt für das neue Jahr genehmigt und es ist gut.",
            "de",
        ),
        (
            "Le conseil a approuvé le budget pour la nouvelle année et il est signé.",
            "fr",
        ),
        (
            "La junta aprobó el presupuesto para el año y lo firmó con los socios.",
            "es",
        ),
        ("Совет директоров утвердил бюджет на новый год.", "ru"),
        ("取締役会は新年度の予算を承認しました。署名も済んでいます。", "ja"),
        ("short", ""),
        ("1234 5678 9012 3456 7890 1234 5678", ""),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language
