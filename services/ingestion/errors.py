"""Typed errors of the ingestion service."""

from __future__ import annotations

from strongroom.services.common.errors import (
    DependencyUnavailable,
    InvalidArgument,
    QuotaExceeded,
    UnsupportedMediaType,
)


class EmptyFile(InvalidArgument):
    def __init__(self) -> None:
        super().__init__("The uploaded file is empty.", code="file_empty")


class FileTooLarge(QuotaExceeded):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The uploaded file is larger than the limit of {limit} bytes.",
            code="file_too_large",
        )


class ContentMismatch(UnsupportedMediaType):
    def __init__(self, declared: str, detected: str) -> None:
        super().__init__(
            f"The file's name or declared type says {declared} "
            f"but its content is {detected}.",
            code="content_mismatch",
        )


class UnsupportedFormat(UnsupportedMediaType):
    def __init__(self, detected: str) -> None:
        super().__init__(
            f"Files of type {detected} are not supported yet.",
            code="unsupported_media_type",
        )


class CorruptDocument(InvalidArgument):
    def __init__(self, media_type: str) -> None:
        super().__init__(
            f"The {media_type} file could not be parsed.", code="document_corrupt"
        )


class EncryptedDocument(InvalidArgument):
    def __init__(self, media_type: str) -> None:
        super().__init__(
            f"The {media_type} file is encrypted or password protected; "
            "upload it without protection.",
            code="document_encrypted",
        )


class UnsafeDocument(InvalidArgument):
    """The file uses a construct that parsers can be attacked through."""

    def __init__(self, media_type: str, construct: str) -> None:
        super().__init__(
            f"The {media_type} file uses {construct}, which Strongroom refuses.",
            code="document_unsafe",
        )


class LimitExceeded(QuotaExceeded):
    """A file, or what it expands to, is larger than an ingestion limit allows.

    ``code`` names the limit, e.g. ``archive_expansion_exceeded``.
    """

    def __init__(self, code: str, what: str, limit: int) -> None:
        super().__init__(f"The file exceeds the limit of {limit} {what}.", code=code)


class ParseTimeout(QuotaExceeded):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"Parsing the file took longer than the limit of {seconds:g} seconds.",
            code="parse_timeout",
        )


class ParseMemoryExceeded(QuotaExceeded):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"Parsing the file needed more than the limit of {limit_bytes} bytes "
            "of memory.",
            code="parse_memory_exceeded",
        )


class ParserCrashed(CorruptDocument):
    """The parser process died on the file without a typed refusal."""

    def __init__(self, media_type: str) -> None:
        super().__init__(media_type)


class OcrUnavailable(DependencyUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "Text recognition (Tesseract) is not available on this server.",
            code="ocr_unavailable",
        )


class ParserUnavailable(DependencyUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "No parser worker could be started on this server.",
            code="parser_unavailable",
        )
