"""Calling other services: channels, caller metadata and typed errors."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc

from strongroom.services.common.config import SERVICE_NAMES, Settings
from strongroom.services.common.errors import (
    ERRORS_BY_GRPC_STATUS,
    DependencyUnavailable,
    InternalError,
    StrongroomError,
)
from strongroom.services.common.grpc_server import (
    CLIENT_ADDRESS_KEY,
    CODE_METADATA_KEY,
    REQUEST_ID_KEY,
    USER_AGENT_KEY,
)
from strongroom.services.common.logs import request_id_var, user_agent_var

T = TypeVar("T")

Metadata = tuple[tuple[str, str], ...]


# RPCs whose names start so only read; calling one twice changes nothing.
_READ_PREFIXES = ("Get", "List", "Search", "Verify")


def _retry_service_config() -> str:
    """gRPC's retry policy for the unary reads of every Strongroom service.

    A read cut off by a service restarting (UNAVAILABLE after the request
    went out) is sent again; writes are not, since the first may have landed.
    """
    modules = [importlib.import_module(f"strongroom.v1.{n}_pb2") for n in SERVICE_NAMES]
    reads = [
        {"service": service.full_name, "method": method.name}
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if method.name.startswith(_READ_PREFIXES)
        and not (method.client_streaming or method.server_streaming)
    ]
    policy = {
        "maxAttempts": 5,
        "initialBackoff": "0.2s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps({"methodConfig": [{"name": reads, "retryPolicy": policy}]})


_SERVICE_CONFIG = _retry_service_config()


def open_channel(settings: Settings, service: str) -> grpc.Channel:
    """A channel to one of the services: TLS when the deployment has a
    certificate, trusting its CA bundle."""
    address = settings.address_of(service)
    options = [
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.service_config", _SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
    ]
    if not settings.is_tls:
        return grpc.insecure_channel(address, options=options)
    roots = Path(settings.tls_ca_file).read_bytes() if settings.tls_ca_file else None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.secure_channel(address, credentials, options=options)


def caller_metadata(token: str, client_address: str = "") -> Metadata:
    metadata = [
        ("authorization", f"Bearer {token}"),
        (REQUEST_ID_KEY, request_id_var.get()),
        (USER_AGENT_KEY, user_agent_var.get()),
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
    if (
        status == grpc.StatusCode.DEADLINE_EXCEEDED
        and CODE_METADATA_KEY not in trailing
    ):
        # The service did not answer in time: busy or restarting, not broken.
        return DependencyUnavailable(
            "A service did not answer in time; try again.", code="service_timeout"
        )
    error_class = ERRORS_BY_GRPC_STATUS.get(status, InternalError)
    if error_class is InternalError:
        return InternalError("Internal error.", code="internal")
    return error_class(str(call_state.details()), code=code)


def call(
    method: Callable[..., T], request: Any, metadata: Metadata, timeout: float = 30.0
) -> T:
    """Invoke a unary stub method, raising typed errors instead of RpcError.

    The call waits, within ``timeout``, for a service that is restarting to
    accept connections again instead of failing at once: a request that was
    never sent cannot have had an effect, so waiting is safe for every call.
    """
    try:
        return method(request, metadata=metadata, timeout=timeout, wait_for_ready=True)
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
        yield from method(
            request, metadata=metadata, timeout=timeout, wait_for_ready=True
        )
    except grpc.RpcError as exc:
        raise typed_error(exc) from exc
