"""Serving gRPC: authentication, error mapping, health and reflection.

One interceptor does, for every call: take the request id, verify the
caller's token, run the servicer, and turn a typed error into its gRPC
status with our stable code in the trailing metadata. Refused calls are
reported through ``on_refused`` so the service can audit them.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from strongroom.services.common.auth import Principal
from strongroom.services.common.database import (
    database_unavailable,
    is_database_unavailable,
    is_disk_full,
)
from strongroom.services.common.errors import StrongroomError
from strongroom.services.common.logs import request_id_var, user_agent_var
from strongroom.services.common.ports import IdentityProvider

logger = logging.getLogger(__name__)

CODE_METADATA_KEY = "strongroom-code"
REQUEST_ID_KEY = "x-request-id"
CLIENT_ADDRESS_KEY = "x-client-address"
# The end user's client program, as the gateway saw it.
USER_AGENT_KEY = "x-strongroom-user-agent"
# The health service name that answers whether the process serves at all,
# whatever its backends' state (Kubernetes' liveness probe asks for it).
LIVENESS = "liveness"
_UNAUTHENTICATED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")

_principal_var: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")

RefusedCallback = Callable[[str, Principal | None, StrongroomError], None]


def current_principal() -> Principal:
    """Return the verified caller of the call being served."""
    return _principal_var.get()


if TYPE_CHECKING:
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:  # the stubs' generic parameters do not exist at run time
    _Interceptor = grpc.ServerInterceptor


class ServiceInterceptor(_Interceptor):
    def __init__(self, identity: IdentityProvider, on_refused: RefusedCallback) -> None:
        self.identity = identity
        self.on_refused = on_refused

    def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_UNAUTHENTICATED_PREFIXES):
            return handler
        return _wrap_handler(handler, method, self)

    def enter(self, method: str, context: grpc.ServicerContext) -> Principal:
        metadata = dict(context.invocation_metadata())
        request_id_var.set(str(metadata.get(REQUEST_ID_KEY) or uuid.uuid4()))
        user_agent_var.set(str(metadata.get(USER_AGENT_KEY, ""))[:256])
        authorization = str(metadata.get("authorization", ""))
        token = authorization.removeprefix("Bearer ").strip()
        if not authorization.startswith("Bearer "):
            token = ""
        try:
            principal = self.identity.verify(token)
        except StrongroomError as exc:
            self.fail(method, None, exc, context)
            raise AssertionError("context.abort always raises") from exc
        address = str(metadata.get(CLIENT_ADDRESS_KEY) or context.peer())
        principal = dataclasses.replace(principal, client_address=address)
        _principal_var.set(principal)
        return principal

    def fail(
        self,
        method: str,
        principal: Principal | None,
        exc: StrongroomError,
        context: grpc.ServicerContext,
    ) -> None:
        try:
            self.on_refused(method, principal, exc)
        except Exception:
            logger.error("refusal_not_audited", extra={"method": method}, exc_info=True)
        logger.info("call_refused", extra={"method": method, "code": exc.code})
        context.set_trailing_metadata(((CODE_METADATA_KEY, exc.code),))
        context.abort(exc.grpc_status, exc.message)

    def fail_unexpected(
        self,
        method: str,
        principal: Principal | None,
        exc: Exception,
        context: grpc.ServicerContext,
    ) -> None:
        """Abort for an exception no servicer typed: a lost database is a 503,
        a full disk a 507."""
        if is_database_unavailable(exc) or is_disk_full(exc):
            self.fail(method, principal, database_unavailable(exc), context)
        else:
            self.crash(method, context)

    def crash(self, method: str, context: grpc.ServicerContext) -> None:
        logger.error("call_failed", extra={"method": method}, exc_info=True)
        context.set_trailing_metadata(((CODE_METADATA_KEY, "internal"),))
        context.abort(grpc.StatusCode.INTERNAL, "Internal error.")


def _guard_unary(
    behavior: Callable[..., Any], method: str, interceptor: ServiceInterceptor
) -> Callable[..., Any]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        principal = interceptor.enter(method, context)
        try:
            return behavior(request, context)
        except StrongroomError as exc:
            interceptor.fail(method, principal, exc, context)
        except Exception as exc:
            interceptor.fail_unexpected(method, principal, exc, context)

    return guarded


def _guard_streaming(
    behavior: Callable[..., Iterator[Any]], method: str, interceptor: ServiceInterceptor
) -> Callable[..., Iterator[Any]]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        principal = interceptor.enter(method, context)
        try:
            yield from behavior(request, context)
        except StrongroomError as exc:
            interceptor.fail(method, principal, exc, context)
        except Exception as exc:
            interceptor.fail_unexpected(method, principal, exc, context)

    return guarded


def _wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    method: str,
    interceptor: ServiceInterceptor,
) -> grpc.RpcMethodHandler[Any, Any]:
    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _guard_unary(handler.unary_unary, method, interceptor), **codec
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _guard_unary(handler.stream_unary, method, interceptor), **codec
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _guard_streaming(handler.unary_stream, method, interceptor), **codec
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        _guard_streaming(handler.stream_stream, method, interceptor), **codec
    )


class GrpcServer:
    """A gRPC server with our interceptor, health checking and reflection."""

    def __init__(
        self,
        address: str,
        interceptor: ServiceInterceptor,
        service_names: Sequence[str],
        max_workers: int = 16,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=[interceptor],
            options=[
                ("grpc.max_receive_message_length", 8 * 1024 * 1024),
                # gRPC shares a port between servers by default; a second
                # Strongroom on the same machine would then silently take
                # half of this one's calls. A taken port fails the bind.
                ("grpc.so_reuseport", 0),
            ],
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names = list(service_names)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME],
            self.server,
        )
        try:
            self.port = (
                self.server.add_secure_port(address, credentials)
                if credentials is not None
                else self.server.add_insecure_port(address)
            )
        except RuntimeError as exc:  # grpc's answer to a taken address
            raise OSError("The gRPC server could not bind its address.") from exc
        if self.port == 0:
            raise OSError("The gRPC server could not bind its address.")

    def start(self) -> None:
        self.server.start()

    def set_serving(self, is_serving: bool) -> None:
        """Report readiness under the empty name and the services' names."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if is_serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            self.health.set(name, status)

    def set_alive(self, is_alive: bool) -> None:
        self.health.set(
            LIVENESS,
            health_pb2.HealthCheckResponse.SERVING
            if is_alive
            else health_pb2.HealthCheckResponse.NOT_SERVING,
        )

    def stop(self, grace: float) -> None:
        self.set_serving(False)
        self.set_alive(False)
        self.server.stop(grace).wait()
