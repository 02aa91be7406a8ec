"""ZIP archives: every entry becomes a child document, within hard limits.

Sizes in an archive's headers are claims, not facts, so they are only used
to refuse early; every entry is then read in bounded chunks and counted
against one budget shared by the whole upload, however deeply it nests.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass

from strongroom.services.ingestion.domain import ZIP, Limits
from strongroom.services.ingestion.errors import (
    CorruptDocument,
    EncryptedDocument,
    LimitExceeded,
    UnsafeDocument,
)

_CHUNK = 1024 * 1024
# Entry-name flag bit 0 of a ZIP entry: the entry is encrypted.
_ENCRYPTED_FLAG = 0x1
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
# How much of an XML part is searched for a DTD: it must precede the root.
_XML_PROLOGUE = 64 * 1024


# What reading a damaged archive raises: a broken structure, a stream cut
# short, bad compressed data, a compression method the zip module lacks, or
# an entry with an empty name (which the zip module indexes into).
DAMAGED = (
    zipfile.BadZipFile,
    EOFError,
    ValueError,
    OSError,
    zlib.error,
    NotImplementedError,
    IndexError,
)


@dataclass
class Budget:
    """What one upload may still expand to, across all nesting levels."""

    limits: Limits
    original_size: int
    entries: int = 0
    expanded_bytes: int = 0

    @property
    def max_bytes(self) -> int:
        by_ratio = self.limits.max_expansion_ratio * max(self.original_size, 1)
        return min(self.limits.max_expanded_bytes, by_ratio)

    def take_entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_archive_entries:
            raise LimitExceeded(
                "archive_too_many_entries",
                "archive entries",
                self.limits.max_archive_entries,
            )

    def take_bytes(self, count: int) -> None:
        self.expanded_bytes += count
        if self.expanded_bytes > self.max_bytes:
            raise LimitExceeded(
                "archive_expansion_exceeded", "expanded bytes", self.max_bytes
            )


def check_entries(
    archive: zipfile.ZipFile, size: int, limits: Limits, media_type: str = ZIP
) -> None:
    """Refuse from the central directory alone what would expand too far.

    Raises:
        LimitExceeded: too many entries, or a declared expansion too large.
        EncryptedDocument: an entry is encrypted.
    """
    entries = archive.infolist()
    if len(entries) > limits.max_archive_entries:
        raise LimitExceeded(
            "archive_too_many_entries", "archive entries", limits.max_archive_entries
        )
    budget = Budget(limits, size)
    declared = sum(info.file_size for info in entries)
    if declared > budget.max_bytes:
        raise LimitExceeded(
            "archive_expansion_exceeded", "expanded bytes", budget.max_bytes
        )
    if any(info.flag_bits & _ENCRYPTED_FLAG for info in entries):
        raise EncryptedDocument(media_type)


def read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget
) -> bytes:
    """Read one entry in chunks, stopping as soon as the budget runs out.

    Raises:
        LimitExceeded: the entry expands past what the upload may.
        CorruptDocument: the entry's data is damaged.
    """
    parts: list[bytes] = []
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                budget.take_bytes(len(chunk))
                parts.append(chunk)
    except DAMAGED as exc:
        raise CorruptDocument(ZIP) from exc
    return b"".join(parts)


def refuse_xml_declarations(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, media_type: str, limits: Limits
) -> None:
    """Refuse an XML part that declares a DTD or entities.

    Raises:
        UnsafeDocument: the part declares a DTD or entities.
        CorruptDocument: the part cannot be read.
    """
    try:
        with archive.open(info) as stream:
            prologue = stream.read(_XML_PROLOGUE)
    except DAMAGED as exc:
        raise CorruptDocument(media_type) from exc
    text = prologue.replace(b"\x00", b"")
    if any(marker in text for marker in _DTD_MARKERS):
        raise UnsafeDocument(media_type, "XML entity declarations")
