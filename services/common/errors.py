"""The error hierarchy every service derives from.

Each error carries a stable ``code`` (searchable, never reworded) and maps to
one gRPC status and one HTTP status. Messages are one sentence naming what
was expected and which id was involved; they never contain document text,
personal data, SQL or storage paths.

    StrongroomError
    ├── InvalidArgument
    │   └── UnsupportedMediaType
    ├── FailedPrecondition
    ├── Unauthenticated
    ├── PermissionDenied
    ├── NotFound
    ├── Conflict
    ├── QuotaExceeded
    ├── DependencyUnavailable
    └── InternalError
"""

from __future__ import annotations

import grpc


class StrongroomError(Exception):
    """Base of every error Strongroom raises on purpose."""

    grpc_status: grpc.StatusCode = grpc.StatusCode.INTERNAL
    http_status: int = 500
    title: str = "Internal error"

    def __init__(self, message: str, *, code: str = "internal") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidArgument(StrongroomError):
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400
    title = "Invalid argument"


class UnsupportedMediaType(InvalidArgument):
    http_status = 415
    title = "Unsupported media type"


class FailedPrecondition(StrongroomError):
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 400
    title = "Failed precondition"


class Unauthenticated(StrongroomError):
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401
    title = "Unauthenticated"


class PermissionDenied(StrongroomError):
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403
    title = "Permission denied"


class NotFound(StrongroomError):
    grpc_status = grpc.StatusCode.NOT_FOUND
    http_status = 404
    title = "Not found"


class HiddenNotFound(NotFound):
    """A target outside the caller's projects, answered exactly as a missing
    one, so its existence leaks nothing, but audited as a denial."""


class Conflict(StrongroomError):
    grpc_status = grpc.StatusCode.ALREADY_EXISTS
    http_status = 409
    title = "Conflict"


class QuotaExceeded(StrongroomError):
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 413
    title = "Quota exceeded"


class DependencyUnavailable(StrongroomError):
    grpc_status = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    title = "Dependency unavailable"


class InternalError(StrongroomError):
    pass


# Lets a client rebuild the typed error from a gRPC status and our code.
ERRORS_BY_GRPC_STATUS: dict[grpc.StatusCode, type[StrongroomError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: QuotaExceeded,
    grpc.StatusCode.UNAVAILABLE: DependencyUnavailable,
}

# Codes whose HTTP status differs from their class's default.
HTTP_STATUS_BY_CODE: dict[str, int] = {
    "unsupported_media_type": 415,
    "content_mismatch": 415,
    "file_too_large": 413,
    "storage_full": 507,
}


def storage_full() -> DependencyUnavailable:
    """The data disk (or the object store's share of it) has no room left.

    It is an outage like any other: events wait for room rather than fail,
    and clients may try again once space has been freed.
    """
    return DependencyUnavailable(
        "The data disk is full; nothing more can be stored until space is freed.",
        code="storage_full",
    )
