"""How much a request may send: refused at the door, before it is read.

Uploads (documents and imports) may carry up to the upload limit; every
other request up to the much smaller request limit. A declared length over
the limit is refused before a byte of the body is read; a body sent in
chunks is counted as it arrives and refused the moment it passes the limit,
after which the route sees the client as gone and whatever it answers is
dropped. Either way the client gets one 413 problem response, and the
refusal is recorded through ``on_refused``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strongroom.gateway.problems import problem_response
from strongroom.services.common.errors import QuotaExceeded

# Routes whose body is an uploaded file.
UPLOAD_PATH = re.compile(r"/api/v1/projects/[^/]+/(documents|imports)")
# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_ALLOWANCE = 64 * 1024


def too_large(is_upload: bool, limit: int) -> QuotaExceeded:
    if is_upload:
        return QuotaExceeded(
            f"The uploaded file is larger than the limit of {limit} bytes.",
            code="file_too_large",
        )
    return QuotaExceeded(
        f"The request body is larger than the limit of {limit} bytes.",
        code="request_too_large",
    )


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        upload_bytes: int,
        request_bytes: int,
        on_refused: Callable[[Request, QuotaExceeded], None],
    ) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.request_bytes = request_bytes
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        is_upload = UPLOAD_PATH.fullmatch(scope["path"]) is not None
        limit = self.upload_bytes if is_upload else self.request_bytes
        allowed = limit + (MULTIPART_ALLOWANCE if is_upload else 0)
        error = too_large(is_upload, limit)
        declared = Request(scope).headers.get("content-length", "")
        if declared.isdigit() and int(declared) > allowed:
            await self._refuse(scope, error, send)
            return

        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > allowed:
                    refused = True
                    await self._refuse(scope, error, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the client already has its answer
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, scope: Scope, error: QuotaExceeded, send: Send) -> None:
        request = Request(scope)
        self.on_refused(request, error)
        response = problem_response(
            request, 413, error.title, error.message, error.code
        )
        await response(scope, _no_body, send)


async def _no_body() -> dict[str, Any]:
    return {"type": "http.disconnect"}
