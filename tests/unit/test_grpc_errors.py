"""A call that meets a slow service is a 503 to try again, not a 500."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from strongroom.services.common.errors import DependencyUnavailable, NotFound
from strongroom.services.common.grpc_clients import call
from strongroom.services.common.grpc_server import CODE_METADATA_KEY

_METHOD = "/strongroom.test.Slow/Wait"


@pytest.fixture
def channel() -> Iterator[grpc.Channel]:
    release = threading.Event()

    def wait(request: bytes, context: grpc.ServicerContext) -> bytes:
        if request == b"missing":
            context.set_trailing_metadata(((CODE_METADATA_KEY, "task_not_found"),))
            context.abort(grpc.StatusCode.NOT_FOUND, "Task x does not exist.")
        release.wait(5)
        return b"done"

    handler = grpc.method_handlers_generic_handler(
        "strongroom.test.Slow", {"Wait": grpc.unary_unary_rpc_method_handler(wait)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as opened:
        yield opened
    release.set()
    server.stop(0)


def test_a_service_too_slow_to_answer_is_unavailable(channel: grpc.Channel) -> None:
    wait = channel.unary_unary(_METHOD)
    with pytest.raises(DependencyUnavailable) as refused:
        call(wait, b"slow", (), timeout=0.2)
    assert refused.value.code == "service_timeout"


def test_a_typed_refusal_keeps_its_code(channel: grpc.Channel) -> None:
    wait = channel.unary_unary(_METHOD)
    with pytest.raises(NotFound) as refused:
        call(wait, b"missing", (), timeout=5)
    assert refused.value.code == "task_not_found"
