"""Calling other services: channels, caller metadata and typed errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from strongroom.services.common.errors import (
    ERRORS_BY_GRPC_STATUS,
    InternalError,
    StrongroomError,
)
from strongroom.services.common.grpc_server import (
    CLIENT_ADDRESS_KEY,
    CODE_METADATA_KEY,
    REQUEST_ID_KEY,
)
from strongroom.services.common.logs import request_id_var

T = TypeVar("T")

Metadata = tuple[tuple[str, str], ...]


def open_channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(
        address,
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )


def caller_metadata(token: str, client_address: str = "") -> Metadata:
    metadata = [
        ("authorization", f"Bearer {token}"),
        (REQUEST_ID_KEY, request_id_var.get()),
    ]
    if client_address:
        metadata.append((CLIENT_ADDRESS_KEY, client_address))
    return tuple((k, v) for k, v in metadata if v)


def typed_error(exc: grpc.RpcError) -> StrongroomError:
    """Rebuild the typed error a service raised from its gRPC status."""
    call_state: grpc.Call = exc  # type: ignore[assignment]
    status = call_state.code()
    trailing = {str(k): v for k, v in call_state.trailing_metadata() or ()}
    code = str(trailing.get(CODE_METADATA_KEY, status.name.lower()))
    error_class = ERRORS_BY_GRPC_STATUS.get(status, InternalError)
    if error_class is InternalError:
        return InternalError("Internal error.", code="internal")
    return error_class(str(call_state.details()), code=code)


def call(
    method: Callable[..., T], request: Any, metadata: Metadata, timeout: float = 30.0
) -> T:
    """Invoke a unary stub method, raising typed errors instead of RpcError."""
    try:
        return method(request, metadata=metadata, timeout=timeout)
    except grpc.RpcError as exc:
        raise typed_error(exc) from exc


def call_streaming(
    method: Callable[..., Iterator[T]],
    request: Any,
    metadata: Metadata,
    timeout: float = 300.0,
) -> Iterator[T]:
    """Invoke a server-streaming stub method, raising typed errors."""
    try:
        yield from method(request, metadata=metadata, timeout=timeout)
    except grpc.RpcError as exc:
        raise typed_error(exc) from exc
