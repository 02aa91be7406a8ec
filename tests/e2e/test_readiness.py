"""A service is ready only while its backends answer, and alive regardless."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from strongroom.services.common.grpc_server import LIVENESS
from tests.e2e.harness import Strongroom, isolated_env, wait_for

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def strongroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strongroom]:
    root = tmp_path_factory.mktemp("readiness")
    env = isolated_env(root / "home", STRONGROOM_READINESS_INTERVAL_SECONDS="0.2")
    instance = Strongroom(data_dir=root / "data", env=env)
    instance.start()
    yield instance
    instance.stop()


def _ready_status(strongroom: Strongroom, path: str = "/readyz") -> int:
    return httpx.get(f"{strongroom.url}{path}", timeout=10).status_code


def test_services_leave_readiness_while_the_object_store_is_gone(
    strongroom: Strongroom,
) -> None:
    objects = strongroom.data_dir / "objects"
    assert set(strongroom.health().values()) == {SERVING}
    assert _ready_status(strongroom) == 200

    # A plain file where the object store's folder was: its disk is gone.
    away = objects.rename(objects.with_name("objects.away"))
    objects.write_bytes(b"")
    try:
        wait_for(lambda: set(strongroom.health().values()) == {NOT_SERVING})
        assert set(strongroom.health(LIVENESS).values()) == {SERVING}
        assert _ready_status(strongroom) == 503
        assert _ready_status(strongroom, "/readyz/gateway") == 503
    finally:
        objects.unlink()
        away.rename(objects)

    wait_for(lambda: set(strongroom.health().values()) == {SERVING})
    assert _ready_status(strongroom) == 200
    assert _ready_status(strongroom, "/readyz/gateway") == 200


def test_readiness_answers_for_each_service_name(strongroom: Strongroom) -> None:
    with grpc.insecure_channel(strongroom.addresses()["tasks"]) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="strongroom.v1.TaskService"),
            timeout=5,
        )
    assert reply.status == SERVING
