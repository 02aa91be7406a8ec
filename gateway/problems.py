"""Errors as RFC 9457 problem responses (application/problem+json)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from strongroom.services.common.database import (
    database_unavailable,
    is_database_unavailable,
    is_disk_full,
)
from strongroom.services.common.errors import HTTP_STATUS_BY_CODE, StrongroomError

logger = logging.getLogger(__name__)

PROBLEM_TYPE_PREFIX = "urn:strongroom:problem:"


def problem_response(
    request: Request, status: int, title: str, detail: str, code: str
) -> JSONResponse:
    body = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(StrongroomError)
    async def on_strongroom_error(
        request: Request, exc: StrongroomError
    ) -> JSONResponse:
        status = HTTP_STATUS_BY_CODE.get(exc.code, exc.http_status)
        return problem_response(request, status, exc.title, exc.message, exc.code)

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(
        request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        # Name the fields only: the offending values may be personal data.
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        return problem_response(
            request,
            422,
            "Invalid request",
            f"These fields are missing or invalid: {', '.join(fields)}.",
            "request_invalid",
        )

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return problem_response(
            request,
            exc.status_code,
            str(exc.detail),
            str(exc.detail) + ".",
            f"http_{exc.status_code}",
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_database_unavailable(exc) or is_disk_full(exc):
            return await on_strongroom_error(request, database_unavailable(exc))
        logger.error("request_failed", extra={"path": request.url.path}, exc_info=exc)
        return problem_response(
            request, 500, "Internal error", "Internal error.", "internal"
        )
