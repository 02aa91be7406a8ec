"""Page images: the pixels under a redacted word's box are covered."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from strongroom.services.ingestion.model import Box, PageText, ParsedDocument, Segment
from strongroom.services.redaction import images


def test_pixels_under_a_redacted_word_are_covered() -> None:
    # A 612x792 pt page drawn at 2 px per point; "Maria" at x 100-160, y 50-70 pt.
    image = Image.new("L", (1224, 1584), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((200, 100, 320, 140), fill=128)  # the word's ink
    draw.rectangle((400, 100, 500, 140), fill=128)  # the next word
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    text = "Maria called"
    document = ParsedDocument(
        text=text,
        pages=(PageText(1, 0, len(text), 612, 792, "ocr", "a" * 64),),
        parser="test",
        parser_version="1",
        segments=(
            Segment(0, 5, 1, Box(100, 50, 160, 70), 95.0),
            Segment(6, 12, 1, Box(200, 50, 250, 70), 95.0),
        ),
    )

    (page,) = images.boxes_by_page(document, [(0, 5)])
    burned, width, height = images.burn(buffer.getvalue(), page)

    out = Image.open(io.BytesIO(burned)).convert("L")
    assert (width, height) == (1224, 1584)
    under = out.crop((200, 100, 321, 141))
    assert under.getextrema() == (0, 0)  # every pixel black
    assert out.crop((400, 100, 501, 141)).getextrema() == (128, 128)  # untouched
    assert out.getpixel((600, 800)) == 255
