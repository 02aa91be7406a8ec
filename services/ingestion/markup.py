"""HTML through lxml's HTML parser, with the network and entities switched off."""

from __future__ import annotations

from typing import Any

import lxml.html
from lxml import etree

from strongroom.services.ingestion.domain import HTML
from strongroom.services.ingestion.errors import CorruptDocument
from strongroom.services.ingestion.model import (
    HEADING,
    LIST_ITEM,
    PARAGRAPH,
    DocumentBuilder,
    ParsedDocument,
)
from strongroom.services.ingestion.versions import package_version as version

_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SKIPPED = frozenset(
    {"script", "style", "noscript", "template", "head", "svg", "math", "iframe"}
)
_LEAF_BLOCKS = frozenset(
    {"p", "pre", "address", "figcaption", "caption", "dt", "dd", "summary", "legend"}
)
_LISTS = frozenset({"ul", "ol", "menu"})


def _parser() -> lxml.html.HTMLParser:
    # no_network stops libxml2 from fetching anything a document points to;
    # HTML parsing never expands entities declared in a document's DTD.
    return lxml.html.HTMLParser(
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
    )


def parse_html(data: bytes) -> ParsedDocument:
    """Headings, paragraphs, list items and tables of an HTML page, in order.

    Scripts, styles and embedded frames are dropped; nothing is fetched.

    Raises:
        CorruptDocument: the bytes hold no HTML document.
    """
    builder = DocumentBuilder()
    builder.start_page()
    html_to_blocks(data, builder)
    return builder.build(
        "lxml-html",
        version("lxml"),
    )


def html_to_blocks(data: bytes, builder: DocumentBuilder) -> None:
    """Append the blocks of an HTML page to ``builder``'s current page.

    Raises:
        CorruptDocument: the bytes hold no HTML document.
    """
    try:
        root = lxml.html.document_fromstring(data, parser=_parser())
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise CorruptDocument(HTML) from exc
    body = root.find("body")
    _walk(body if body is not None else root, builder)


def _walk(element: Any, builder: DocumentBuilder) -> None:
    loose: list[str] = [element.text or ""]
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        tag = tag.lower()
        if tag in _SKIPPED or not tag:
            loose.append(child.tail or "")
            continue
        if tag in _HEADINGS or tag in _LEAF_BLOCKS or tag in _LISTS or tag == "table":
            _flush(loose, builder)
            loose = []
            _block(tag, child, builder)
        elif tag == "br":
            loose.append("\n")
        elif _has_blocks(child):
            _flush(loose, builder)
            loose = []
            _walk(child, builder)
        else:
            loose.append(_text(child))
        loose.append(child.tail or "")
    _flush(loose, builder)


def _block(tag: str, element: Any, builder: DocumentBuilder) -> None:
    if tag in _HEADINGS:
        builder.add_block(HEADING, _text(element), level=_HEADINGS[tag])
    elif tag in _LISTS:
        for item in element.iterchildren("li"):
            nested = [c for c in item if isinstance(c.tag, str) and c.tag in _LISTS]
            own = _text(item, exclude=nested)
            builder.add_block(LIST_ITEM, own)
            for sublist in nested:
                _block(sublist.tag, sublist, builder)
    elif tag == "table":
        rows = [
            [_text(cell) for cell in row if cell.tag in ("td", "th")]
            for row in element.iter("tr")
        ]
        builder.add_table(rows)
    else:
        builder.add_block(PARAGRAPH, _text(element))


def _has_blocks(element: Any) -> bool:
    for child in element.iter():
        if child is element or not isinstance(child.tag, str):
            continue
        tag = child.tag.lower()
        if (
            tag in _HEADINGS
            or tag in _LEAF_BLOCKS
            or tag in _LISTS
            or tag
            in (
                "table",
                "div",
                "section",
                "article",
            )
        ):
            return True
    return False


def _text(element: Any, exclude: list[Any] | None = None) -> str:
    parts: list[str] = []
    skip = {id(e) for e in exclude or ()}

    def collect(node: Any) -> None:
        if id(node) in skip:
            return
        tag = node.tag.lower() if isinstance(node.tag, str) else ""
        if tag in _SKIPPED:
            return
        parts.append(node.text or "" if tag else "")
        for child in node:
            collect(child)
            parts.append(child.tail or "")

    collect(element)
    return " ".join("".join(parts).split())


def _flush(loose: list[str], builder: DocumentBuilder) -> None:
    text = " ".join("".join(loose).split())
    if text:
        builder.add_block(PARAGRAPH, text)
