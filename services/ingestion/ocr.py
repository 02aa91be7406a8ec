"""OCR through the Tesseract command, keeping every word's box and confidence."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import struct
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageSequence

from strongroom.services.ingestion.domain import Limits
from strongroom.services.ingestion.errors import (
    CorruptDocument,
    LimitExceeded,
    OcrUnavailable,
)
from strongroom.services.ingestion.model import (
    OCR,
    PARAGRAPH,
    Box,
    DocumentBuilder,
    ParsedDocument,
)
from strongroom.services.ingestion.versions import package_version as version

TESSERACT = "tesseract"
# Tesseract's TSV: one row per layout element; level 5 rows are words.
_WORD_LEVEL = "5"
# Page segmentation mode 3: fully automatic layout, no orientation detection.
_PAGE_SEGMENTATION = "3"


@functools.cache
def engine_version() -> str:
    """The Tesseract version, e.g. ``tesseract 5.3.0``; empty when absent."""
    try:
        result = subprocess.run(
            [TESSERACT, "--version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (result.stdout or result.stderr).splitlines()
    return lines[0].strip() if lines else ""


def settings(limits: Limits) -> dict[str, str]:
    return {
        "dpi": str(limits.ocr_dpi),
        "language": limits.ocr_language,
        "page_segmentation": _PAGE_SEGMENTATION,
    }


def read_image(
    image: Image.Image,
    builder: DocumentBuilder,
    limits: Limits,
    out_dir: Path | None,
    width_pt: float,
    height_pt: float,
    dpi: int,
    source: str = OCR,
) -> None:
    """OCR one page image into a new page of ``builder``.

    The image is kept once as a PNG in ``out_dir`` (named by its SHA-256) so
    the UI and redaction draw on the same pixels the words were read from.

    Raises:
        OcrUnavailable: the Tesseract command is not installed or failed.
    """
    gray = image.convert("L")
    image_sha256 = keep_image(gray, out_dir) if out_dir else ""
    builder.start_page(width_pt, height_pt, source, image_sha256)
    scale_x = width_pt / gray.width
    scale_y = height_pt / gray.height
    rows = _run_tesseract(gray, limits, dpi)
    _append_words(rows, builder, scale_x, scale_y)


def keep_image(image: Image.Image, out_dir: Path) -> str:
    """Write a page image as PNG named by its SHA-256; return the hash."""
    buffer = io.BytesIO()
    # Level 1 compresses scans nearly as well as 9 at a fraction of the time.
    image.save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    (out_dir / f"{sha256}.png").write_bytes(data)
    return sha256


def _run_tesseract(
    image: Image.Image, limits: Limits, dpi: int
) -> list[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="strongroom-ocr-") as folder:
        # PNM is written and read without compression, so the hand-over costs
        # next to nothing compared with Tesseract's own work.
        path = Path(folder) / "page.pgm"
        image.save(path, format="PPM")
        try:
            result = subprocess.run(
                [
                    TESSERACT,
                    str(path),
                    "stdout",
                    "-l",
                    limits.ocr_language,
                    "--psm",
                    _PAGE_SEGMENTATION,
                    "--dpi",
                    str(dpi),
                    "tsv",
                ],
                capture_output=True,
                text=True,
                timeout=limits.parse_timeout_seconds,
                env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            )
        except OSError as exc:
            raise OcrUnavailable() from exc
    if result.returncode != 0:
        raise OcrUnavailable()
    reader = csv.DictReader(io.StringIO(result.stdout), delimiter="\t", quoting=3)
    return [row for row in reader if row.get("level") == _WORD_LEVEL]


def _append_words(
    rows: list[dict[str, str]],
    builder: DocumentBuilder,
    scale_x: float,
    scale_y: float,
) -> None:
    paragraph: tuple[str, str] | None = None
    line: tuple[str, str, str] | None = None
    block_start = 0
    block_box: Box | None = None
    for row in rows:
        word = (row.get("text") or "").strip()
        if not word:
            continue
        key = (row["block_num"], row["par_num"])
        line_key = (*key, row["line_num"])
        if key != paragraph:
            if paragraph is not None:
                builder.close_block(PARAGRAPH, block_start, block_box)
            block_start = builder.open_block()
            block_box = None
            paragraph, line = key, line_key
        elif line_key != line:
            builder.add_raw("\n")
            line = line_key
        else:
            builder.add_raw(" ")
        left, top = float(row["left"]), float(row["top"])
        box = Box(
            left * scale_x,
            top * scale_y,
            (left + float(row["width"])) * scale_x,
            (top + float(row["height"])) * scale_y,
        )
        start, end = builder.add_raw(word)
        builder.add_segment(start, end, box, round(float(row["conf"]) / 100, 4))
        block_box = box if block_box is None else block_box.union(box)
    if paragraph is not None:
        builder.close_block(PARAGRAPH, block_start, block_box)


# What Pillow raises on a damaged image: besides its own errors, a TIFF with
# a tag missing or cut short fails inside the tag tables (KeyError,
# TypeError, IndexError, struct.error).
_DAMAGED_IMAGE = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    KeyError,
    IndexError,
    struct.error,
    Image.DecompressionBombError,
)


def parse_image(path: Path, limits: Limits, out_dir: Path | None) -> ParsedDocument:
    """OCR a PNG, JPEG or TIFF image, one page per frame.

    Raises:
        CorruptDocument: Pillow cannot read the image.
        LimitExceeded: a frame has more pixels, or the file more frames, than
            the limits allow.
        OcrUnavailable: the Tesseract command is not installed or failed.
    """
    builder = DocumentBuilder()
    try:
        with Image.open(path) as image:
            media_type = Image.MIME.get(image.format or "", "image")
            frames = 0
            for frame in ImageSequence.Iterator(image):
                frames += 1
                if frames > limits.max_pages:
                    raise LimitExceeded("too_many_pages", "pages", limits.max_pages)
                _read_frame(frame, builder, limits, out_dir)
    except _DAMAGED_IMAGE as exc:
        raise CorruptDocument("image") from exc
    return builder.build(
        "pillow+tesseract",
        version("pillow"),
        metadata={
            "ocr_page_count": frames,
            "image_type": media_type,
        },
        ocr_engine=engine_version(),
        settings=settings(limits),
    )


def _read_frame(
    frame: Image.Image, builder: DocumentBuilder, limits: Limits, out_dir: Path | None
) -> None:
    if frame.width * frame.height > limits.max_image_pixels:
        raise LimitExceeded(
            "image_too_large", "pixels per page", limits.max_image_pixels
        )
    dpi = _dpi(frame, limits)
    frame.load()
    read_image(
        frame,
        builder,
        limits,
        out_dir,
        frame.width * 72 / dpi,
        frame.height * 72 / dpi,
        dpi,
    )


def _dpi(image: Image.Image, limits: Limits) -> int:
    stated = image.info.get("dpi")
    try:
        value = round(float(stated[0])) if stated else 0
    except (TypeError, ValueError, IndexError):
        value = 0
    # Scanners state 70 to 1200 dpi; outside that the value is a placeholder.
    return value if 70 <= value <= 1200 else limits.ocr_dpi
