"""Burning findings into page images: the same words, covered on the pixels.

Pure apart from Pillow's in-memory drawing. Boxes come from the structure
artefact (PDF points, origin top left) via ingestion's ``locate``; each is
scaled to the image, padded and filled, so no original pixel of a redacted
word survives.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from strongroom.services.ingestion.model import ParsedDocument, locate

# Pixels added around each box: OCR boxes hug the ink, anti-aliasing does not.
PADDING = 2


@dataclass(frozen=True)
class PageBoxes:
    page: int
    image_sha256: str
    width_pt: float
    height_pt: float
    boxes: tuple[tuple[float, float, float, float], ...]


def boxes_by_page(
    document: ParsedDocument, spans: Sequence[tuple[int, int]]
) -> list[PageBoxes]:
    """Every page that has an image, with the boxes of the spans drawn on it."""
    out: dict[int, list[tuple[float, float, float, float]]] = {}
    for start, end in spans:
        for region in locate(document, start, end):
            b = region.box
            out.setdefault(region.page, []).append((b.x0, b.y0, b.x1, b.y1))
    return [
        PageBoxes(
            p.number,
            p.image_sha256,
            p.width_pt,
            p.height_pt,
            tuple(out.get(p.number, ())),
        )
        for p in document.pages
        if p.image_sha256
    ]


def burn(png: bytes, page: PageBoxes) -> tuple[bytes, int, int]:
    """Fill the page's boxes in black; return the PNG and its size."""
    with Image.open(io.BytesIO(png)) as source:
        image = source.convert("L")
    sx = image.width / page.width_pt if page.width_pt else 1.0
    sy = image.height / page.height_pt if page.height_pt else 1.0
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in page.boxes:
        draw.rectangle(
            (
                max(0, int(x0 * sx) - PADDING),
                max(0, int(y0 * sy) - PADDING),
                min(image.width - 1, int(x1 * sx + 0.999) + PADDING),
                min(image.height - 1, int(y1 * sy + 0.999) + PADDING),
            ),
            fill=0,
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), image.width, image.height
