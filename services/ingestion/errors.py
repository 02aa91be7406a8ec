"""Typed errors of the ingestion service."""

from __future__ import annotations

from strongroom.services.common.errors import (
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
