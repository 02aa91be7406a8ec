"""Damaged files of every format: each parser either reads the file or
refuses it with a typed error, never anything else.

Valid files of each kind are mutated (bytes changed, inserted, cut out,
the file cut short) and handed to the parsers' entry point directly,
without the worker process that would turn an unexpected exception into a
generic "parser crashed", so a parser that does not say *why* it refuses is
caught. Scanned pages (PNG, JPEG, TIFF and an image-only PDF) go through
Tesseract, so they get a fifth of the examples. Bounded here; `make
reliability` tries more (PARSER_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.services.common.errors import StrongroomError
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
from strongroom.services.ingestion.extract import ParseContext, parse_file
from tests.fixtures.ingestion import corpus

EXAMPLES = int(os.environ.get("PARSER_FUZZ_EXAMPLES", "25"))
OCR_EXAMPLES = max(3, EXAMPLES // 5)
# A small scan keeps each Tesseract run short.
SCAN_DPI = 100


def _scan(fmt: str) -> Callable[[], bytes]:
    return lambda: corpus.image_bytes(
        corpus.scan_image(("MRN 12345", "Seen today"), SCAN_DPI), fmt, SCAN_DPI
    )


# Each seed by name: its media type, how to make it, how many examples.
SEEDS: dict[str, tuple[str, Callable[[], bytes], int]] = {
    "pdf": (
        PDF,
        lambda: corpus.text_pdf([["Discharge summary", "aspirin daily"]]),
        EXAMPLES,
    ),
    "docx": (DOCX, corpus.word_document, EXAMPLES),
    "xlsx": (XLSX, corpus.workbook, EXAMPLES),
    "pptx": (PPTX, corpus.presentation, EXAMPLES),
    "eml": (
        EML,
        lambda: corpus.email_with_attachment(b"attached note", "note.txt"),
        EXAMPLES,
    ),
    "zip": (
        ZIP,
        lambda: corpus.zip_of({"a.txt": b"first", "b.csv": b"x,y\n1,2\n"}),
        EXAMPLES,
    ),
    "html": (HTML, corpus.html_with_entities, EXAMPLES),
    "jsonl": (JSONL, corpus.jsonl_records, EXAMPLES),
    "csv": (CSV, lambda: b"drug,dose\naspirin,75mg\nibuprofen,200mg\n", EXAMPLES),
    "png": (PNG, _scan("PNG"), OCR_EXAMPLES),
    "jpeg": (JPEG, _scan("JPEG"), OCR_EXAMPLES),
    "tiff": (TIFF, _scan("TIFF"), OCR_EXAMPLES),
    "scanned-pdf": (PDF, corpus.scanned_pdf, OCR_EXAMPLES),
}


def mutate(seed: bytes, rng: random.Random) -> bytes:
    """One to eight random changes: a byte changed, bytes inserted or cut
    out, or the file cut short."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data)) if data else 0
        roll = rng.random()
        if roll < 0.5 and data:
            data[at] = rng.randrange(256)
        elif roll < 0.7:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        elif roll < 0.85:
            del data[at : at + rng.randint(1, 64)]
        else:
            del data[rng.randrange(len(data) + 1) :]
    return bytes(data)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_a_damaged_file_is_read_or_refused_with_a_typed_error(
    name: str, tmp_path: Path
) -> None:
    media_type, make, examples = SEEDS[name]
    seed = make()

    @given(rng=st.randoms(use_true_random=False))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    def parse(rng: random.Random) -> None:
        data = mutate(seed, rng)
        path = tmp_path / "upload"
        path.write_bytes(data)
        limits = Limits()
        context = ParseContext(limits, tmp_path, Budget(limits, len(data)))
        # Refused with a reason is what a user should get; anything else fails.
        with contextlib.suppress(StrongroomError):
            parse_file(path, media_type, context)

    parse()
