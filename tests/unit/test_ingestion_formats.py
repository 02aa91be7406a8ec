"""Each format's parser: the text, blocks, tables, boxes and metadata it yields."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from strongroom.services.ingestion.archive import Budget
from strongroom.services.ingestion.domain import (
    CSV,
    DOCX,
    EML,
    HTML,
    JPEG,
    JSONL,
    PDF,
    PNG,
    PPTX,
    TIFF,
    XLSX,
    ZIP,
    Limits,
)
from strongroom.services.ingestion.errors import EncryptedDocument
from strongroom.services.ingestion.extract import ParseContext, parse_file
from strongroom.services.ingestion.model import (
    HEADING,
    LIST_ITEM,
    OCR,
    TABLE,
    TEXT_LAYER,
    ParsedDocument,
    Table,
    locate,
)
from strongroom.services.ingestion.parsers import parse_pdf
from tests.fixtures.ingestion import corpus

LIMITS = Limits(ocr_dpi=corpus.OCR_DPI)


def parse(tmp_path: Path, data: bytes, media_type: str) -> ParsedDocument:
    path = tmp_path / "upload"
    path.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return parse_file(
        path, media_type, ParseContext(LIMITS, out, Budget(LIMITS, len(data)))
    )


def cell_texts(document: ParsedDocument, table: Table) -> list[list[str]]:
    rows: list[list[str]] = [[] for _ in range(table.rows)]
    for cell in table.cells:
        rows[cell.row].append(document.text[cell.start : cell.end])
    return rows


def span_of(document: ParsedDocument, needle: str) -> tuple[int, int]:
    start = document.text.index(needle)
    return start, start + len(needle)


def test_pdf_lines_have_boxes_where_they_were_drawn(tmp_path: Path) -> None:
    data = corpus.text_pdf([["Account holder Ada Byron", "Sort code 40-11-62"], ["p2"]])

    document = parse(tmp_path, data, PDF)

    assert document.text.startswith("Account holder Ada Byron\nSort code 40-11-62")
    assert [p.source for p in document.pages] == [TEXT_LAYER, TEXT_LAYER]
    assert document.metadata["page_count"] == 2
    assert document.metadata["media_type"] == PDF
    (region,) = locate(document, *span_of(document, "Ada Byron"))
    # drawString(72, 720) puts the baseline 72 pt from the top of a 792 pt page.
    assert region.page == 1
    assert 100 < region.box.x0 < region.box.x1 < 250
    assert 60 < region.box.y0 < region.box.y1 < 75
    (second,) = locate(document, *span_of(document, "40-11-62"))
    assert second.box.y0 > region.box.y1
    assert document.blocks[0].box is not None


def test_text_pages_are_rendered_when_page_images_are_asked_for(
    tmp_path: Path,
) -> None:
    path = tmp_path / "upload.pdf"
    path.write_bytes(corpus.text_pdf([["Rendered page"], ["Another"]]))
    limits = replace(LIMITS, page_image_dpi=50)

    document = parse_pdf(path, limits, tmp_path)

    hashes = [p.image_sha256 for p in document.pages]
    assert all(len(h) == 64 for h in hashes) and hashes[0] != hashes[1]
    with Image.open(tmp_path / f"{hashes[0]}.png") as image:
        assert image.size == (425, 550)  # 8.5 x 11 inches at 50 dpi
    assert parse_pdf(path, LIMITS, tmp_path).pages[0].image_sha256 == ""


def test_pdf_table_drawn_cell_by_cell_is_read_as_a_table(tmp_path: Path) -> None:
    rows = [["Name", "Balance", "Branch office"], ["Ada Byron", "1200", "Leeds"]]
    data = corpus.table_pdf([*rows, ["Grace", "900", "York"]])

    document = parse(tmp_path, data, PDF)

    (table,) = document.tables
    assert (table.rows, table.columns, table.page) == (3, 3, 1)
    assert cell_texts(document, table)[:2] == rows
    assert [b.kind for b in document.blocks] == [TABLE]
    (region,) = locate(document, *span_of(document, "1200"))
    (name,) = locate(document, *span_of(document, "Ada Byron"))
    # Same row, second column: level with the name and to its right.
    assert region.box.x0 > name.box.x1
    assert abs(region.box.y1 - name.box.y1) < 2
    assert table.box is not None and table.box.x0 <= name.box.x0


def test_pdf_sentence_with_a_bold_word_stays_a_paragraph(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.mixed_font_pdf(), PDF)

    assert document.text == "Payment is overdue since March.\nPlease call the branch."
    assert document.tables == ()
    assert [b.kind for b in document.blocks] == ["paragraph"]


def test_scanned_pdf_page_is_read_by_ocr_with_word_boxes(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.scanned_pdf(), PDF)

    assert "INVOICE NUMBER 4471" in document.text
    (page,) = document.pages
    assert page.source == OCR and len(page.image_sha256) == 64
    assert (tmp_path / "out" / f"{page.image_sha256}.png").is_file()
    assert document.ocr_engine.startswith("tesseract")
    assert document.settings["dpi"] == str(corpus.OCR_DPI)
    assert document.metadata["ocr_page_count"] == 1
    words = [s for s in document.segments if document.text[s.start : s.end] == "4471"]
    assert len(words) == 1 and words[0].confidence is not None
    assert 0.5 < words[0].confidence <= 1.0
    # The scan was placed 36 pt from the top left, 6.5 inches (468 pt) wide.
    box = words[0].box
    assert 36 < box.x0 < box.x1 < 36 + 468
    assert 36 < box.y0 < box.y1 < 36 + 80


def test_full_page_scan_is_read_from_its_own_pixels(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.full_page_scan_pdf(), PDF)

    assert "INVOICE NUMBER 4471" in document.text
    (page,) = document.pages
    assert (page.width_pt, page.height_pt) == (612, 792)
    with Image.open(tmp_path / "out" / f"{page.image_sha256}.png") as image:
        assert image.size == (int(8.5 * corpus.OCR_DPI), 11 * corpus.OCR_DPI)
    # The scan was pasted half an inch (36 pt) in from the top left.
    (word,) = [s for s in document.segments if document.text[s.start : s.end] == "4471"]
    assert 36 < word.box.x0 < word.box.x1 < 36 + 468
    assert 36 < word.box.y0 < word.box.y1 < 36 + 80


def test_mixed_pdf_reads_text_pages_and_scanned_pages_each_their_way(
    tmp_path: Path,
) -> None:
    data = corpus.scanned_pdf(text_pages=[["Typed cover letter"]])

    document = parse(tmp_path, data, PDF)

    first, second = document.pages
    assert (first.source, second.source) == (TEXT_LAYER, OCR)
    assert "Typed cover letter" in document.text[first.start : first.end]
    assert "thirty days" in document.text[second.start : second.end]


def test_scan_with_a_short_text_stamp_is_still_read_by_ocr(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.scanned_pdf(stamp="Page 1 of 1"), PDF)

    (page,) = document.pages
    assert page.source == OCR
    assert document.text.count("INVOICE NUMBER 4471") >= 10


def test_encrypted_pdf_is_refused_as_encrypted(tmp_path: Path) -> None:
    with pytest.raises(EncryptedDocument) as caught:
        parse(tmp_path, corpus.encrypted_pdf(), PDF)

    assert caught.value.code == "document_encrypted"
    assert "Sealed" not in caught.value.message


@pytest.mark.parametrize(("fmt", "media_type"), [("PNG", PNG), ("JPEG", JPEG)])
def test_image_is_read_by_ocr_and_measured_at_its_resolution(
    tmp_path: Path, fmt: str, media_type: str
) -> None:
    image = corpus.scan_image()

    document = parse(tmp_path, corpus.image_bytes(image, fmt), media_type)

    assert "INVOICE NUMBER 4471" in document.text
    assert "Payment due within thirty days" in document.text
    (page,) = document.pages
    assert page.width_pt == pytest.approx(image.width * 72 / corpus.OCR_DPI)
    assert page.source == OCR
    assert all(s.confidence is not None for s in document.segments)


def test_multipage_tiff_gives_one_page_per_frame(tmp_path: Path) -> None:
    data = corpus.multipage_tiff([("FIRST SHEET",), ("SECOND SHEET",)])

    document = parse(tmp_path, data, TIFF)

    first, second = document.pages
    assert "FIRST" in document.text[first.start : first.end]
    assert "SECOND" in document.text[second.start : second.end]
    assert document.metadata["ocr_page_count"] == 2


def test_docx_headings_list_items_and_tables_in_order(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.word_document(), DOCX)

    kinds = [(b.kind, document.text[b.start : b.end]) for b in document.blocks]
    assert kinds[0] == (HEADING, "Quarterly review")
    assert kinds[2:4] == [
        (LIST_ITEM, "Hire two analysts"),
        (LIST_ITEM, "Close the Leeds office"),
    ]
    assert kinds[4][0] == TABLE
    assert kinds[5] == ("paragraph", "Prepared by the finance team.")
    (table,) = document.tables
    assert cell_texts(document, table) == [
        ["Region", "Revenue"],
        ["North", "1200"],
        ["South", "900"],
    ]
    assert document.metadata["language"] == "en"
    assert document.pages[0].width_pt > 500


def test_xlsx_sheets_become_pages_with_one_table_each(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.workbook(), XLSX)

    assert len(document.pages) == 2
    staff, budget = document.tables
    assert cell_texts(document, staff) == [
        ["Name", "Team", "Salary"],
        ["Ada Lovelace", "Research", "5100"],
    ]
    assert (staff.page, budget.page) == (1, 2)
    assert cell_texts(document, budget)[1] == ["Laptops", "4200"]
    assert document.metadata["sheet_count"] == 2


def test_pptx_slides_titles_items_and_table_boxes(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.presentation(), PPTX)

    first, _ = document.pages
    assert (first.width_pt, first.height_pt) == (720.0, 540.0)
    blocks = {document.text[b.start : b.end]: b for b in document.blocks}
    assert blocks["Roadmap 2027"].kind == HEADING
    assert blocks["Migrate the records"].kind == LIST_ITEM
    assert blocks["Migrate the records"].level == 1
    (table,) = document.tables
    assert table.page == 2
    assert cell_texts(document, table) == [["Phase", "Cost"], ["One", "300"]]
    assert table.box is not None and table.box.x0 == 72.0 and table.box.y0 == 144.0
    (region,) = locate(document, *span_of(document, "Figures are estimates"))
    assert region.page == 2 and region.box.y0 == 288.0


def test_html_keeps_structure_and_drops_scripts_and_styles(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.HTML_PAGE, HTML)

    assert "do not index" not in document.text and "color" not in document.text
    kinds = [(b.kind, document.text[b.start : b.end]) for b in document.blocks]
    assert kinds[:4] == [
        (HEADING, "Retention policy"),
        ("paragraph", "Records are kept for six years."),
        (LIST_ITEM, "Invoices"),
        (LIST_ITEM, "Contracts"),
    ]
    (table,) = document.tables
    assert cell_texts(document, table) == [["Kind", "Years"], ["Payroll", "7"]]


def test_eml_attachment_becomes_a_parsed_child_document(tmp_path: Path) -> None:
    data = corpus.email_with_attachment(corpus.word_document(), "contract.docx")

    document = parse(tmp_path, data, EML)

    assert document.text.startswith("Signed contract\nFrom: Grace Hopper")
    assert "Please find the signed contract attached." in document.text
    assert document.blocks[0].kind == HEADING
    (child,) = document.children
    assert (child.name, child.media_type) == ("contract.docx", DOCX)
    assert (tmp_path / "out" / child.original).read_bytes() == corpus.word_document()
    assert len(child.document.tables) == 1
    assert document.metadata["child_count"] == 1


def test_csv_rows_become_documents_with_their_fields(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.CSV_TABLE.encode(), CSV)

    assert document.is_container and document.text == ""
    assert document.metadata["fields"] == ["name", "email", "city"]
    first, second = document.children
    assert first.document.text == (
        "name: Alan Turing\nemail: alan@example.org\ncity: Wilmslow"
    )
    assert first.document.metadata["fields"] == ["name", "email", "city"]
    assert first.media_type == JSONL and first.name == "row 1"
    assert second.document.text.startswith("name: Joan Clarke")
    assert len(first.document.blocks) == 3


def test_jsonl_records_flatten_nested_fields(tmp_path: Path) -> None:
    document = parse(tmp_path, corpus.jsonl_records(), JSONL)

    first, _ = document.children
    assert first.document.text == (
        "id: 1\npatient.name: Mary Seacole\npatient.ward: B\nnotes: stable"
    )


def test_zip_entries_become_children_and_bad_entries_are_counted(
    tmp_path: Path,
) -> None:
    data = corpus.zip_of(
        {
            "minutes.txt": b"Minutes of the meeting\n",
            "inner/policy.html": corpus.HTML_PAGE,
            "nested.zip": corpus.zip_of({"deep.txt": b"deep note\n"}),
            "broken.pdf": b"%PDF-1.7 broken",
            "photo.gif": b"GIF89a" + b"\x00" * 20,
        }
    )

    document = parse(tmp_path, data, ZIP)

    names = {c.name: c for c in document.children}
    assert set(names) == {"minutes.txt", "inner/policy.html", "nested.zip"}
    assert names["inner/policy.html"].media_type == HTML
    (deep,) = names["nested.zip"].document.children
    assert deep.document.text == "deep note\n"
    assert document.metadata["refused_children"] == {
        "document_corrupt": 1,
        "unsupported_media_type": 1,
    }
