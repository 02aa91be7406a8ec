"""E-mail: EML through the standard library, MSG through extract-msg.

The message's headers and body become its text; each attachment is handed
back as bytes so the caller ingests it as a child document.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

from strongroom.services.ingestion.domain import EML, MSG, decode_text
from strongroom.services.ingestion.errors import CorruptDocument
from strongroom.services.ingestion.markup import html_to_blocks
from strongroom.services.ingestion.model import (
    HEADING,
    PARAGRAPH,
    DocumentBuilder,
    ParsedDocument,
)
from strongroom.services.ingestion.versions import package_version as version

Attachment = tuple[str, bytes]

_SHOWN_HEADERS = ("From", "To", "Cc", "Date")


def parse_eml(data: bytes) -> tuple[ParsedDocument, list[Attachment]]:
    """The subject as a heading, the sender, recipients and date, then the body.

    The plain-text body is preferred; an HTML-only body is read as HTML.

    Raises:
        CorruptDocument: the bytes are not an e-mail message.
    """
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
    except (ValueError, TypeError, IndexError) as exc:
        raise CorruptDocument(EML) from exc
    if not isinstance(message, EmailMessage) or not message.keys():
        raise CorruptDocument(EML)
    builder = DocumentBuilder()
    builder.start_page()
    _add_headers(builder, message)
    _add_body(builder, message)
    attachments = [_attachment(part, n) for n, part in enumerate(_attachments(message))]
    document = builder.build(
        "python-email",
        version("strongroom"),
        metadata={"attachment_count": len(attachments)},
    )
    return document, attachments


def _add_headers(builder: DocumentBuilder, message: EmailMessage) -> None:
    builder.add_block(HEADING, _header(message, "Subject"), level=1)
    for name in _SHOWN_HEADERS:
        value = _header(message, name)
        if value:
            builder.add_block(PARAGRAPH, f"{name}: {value}")


def _header(message: EmailMessage, name: str) -> str:
    """A header's value; a damaged one (the standard library's parser can
    fail on it) is left out rather than refusing the whole message."""
    try:
        return str(message.get(name, "") or "")
    except (IndexError, ValueError, TypeError, LookupError, AttributeError):
        return ""


def _add_body(builder: DocumentBuilder, message: EmailMessage) -> None:
    try:
        body = message.get_body(preferencelist=("plain", "html"))
        content = body.get_content() if body is not None else ""
    except (KeyError, LookupError, ValueError) as exc:
        raise CorruptDocument(EML) from exc
    if body is None:
        return
    if body.get_content_subtype() == "html":
        raw = content.encode("utf-8") if isinstance(content, str) else content
        html_to_blocks(raw, builder)
        return
    text = content if isinstance(content, str) else decode_text(content)
    for paragraph in text.replace("\r\n", "\n").split("\n\n"):
        builder.add_block(PARAGRAPH, paragraph)


def _attachments(message: EmailMessage) -> list[Message]:
    return list(message.iter_attachments())


def _attachment(part: Message, index: int) -> Attachment:
    name = part.get_filename() or f"attachment-{index + 1}"
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        first = inner[0] if isinstance(inner, list) and inner else None
        payload = first.as_bytes() if isinstance(first, Message) else b""
        return (name, payload)
    data = part.get_payload(decode=True)
    return (name, data if isinstance(data, bytes) else b"")


def parse_msg(path: Path) -> tuple[ParsedDocument, list[Attachment]]:
    """An Outlook message: subject, sender, recipients, date, body, attachments.

    Raises:
        CorruptDocument: extract-msg cannot read the file as a message.
    """
    import extract_msg  # imported here: it is slow to import and rarely needed

    try:
        message: Any = extract_msg.openMsg(str(path), delayAttachments=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptDocument(MSG) from exc
    try:
        builder = DocumentBuilder()
        builder.start_page()
        builder.add_block(HEADING, message.subject or "", level=1)
        for name, value in (
            ("From", message.sender),
            ("To", message.to),
            ("Cc", message.cc),
            ("Date", message.date),
        ):
            if value:
                builder.add_block(PARAGRAPH, f"{name}: {value}")
        for paragraph in (message.body or "").replace("\r\n", "\n").split("\n\n"):
            builder.add_block(PARAGRAPH, paragraph)
        attachments = [
            (a.longFilename or a.shortFilename or f"attachment-{n + 1}", a.data)
            for n, a in enumerate(message.attachments)
            if isinstance(getattr(a, "data", None), bytes)
        ]
    finally:
        message.close()
    document = builder.build(
        "extract-msg",
        version("extract-msg"),
        metadata={"attachment_count": len(attachments)},
    )
    return document, attachments
