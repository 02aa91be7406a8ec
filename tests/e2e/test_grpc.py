"""Each service checks the caller itself and offers health checking and reflection."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from strongroom.v1 import audit_pb2, audit_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.e2e.harness import Strongroom, wait_for


@pytest.fixture(scope="module")
def addresses(strongroom: Strongroom) -> dict[str, str]:
    loaded: dict[str, str] = json.loads(
        (strongroom.data_dir / "run" / "services.json").read_text()
    )
    return loaded


def test_every_service_is_healthy_and_reflects(addresses: dict[str, str]) -> None:
    assert set(addresses) == {
        "ingestion",
        "redaction",
        "tasks",
        "labeling",
        "export",
        "audit",
    }
    for name, address in addresses.items():
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                timeout=5,
            )
            services = {
                s.name
                for reply in replies
                for s in reply.list_services_response.service
            }
            assert any(s.startswith("strongroom.v1.") for s in services), name


def test_service_refuses_a_call_without_a_token(addresses: dict[str, str]) -> None:
    with grpc.insecure_channel(addresses["tasks"]) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListProjects(tasks_pb2.ListProjectsRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    trailing = dict(caught.value.trailing_metadata())
    assert trailing["strongroom-code"] == "token_missing"


def test_service_checks_roles_from_the_token(
    strongroom: Strongroom, addresses: dict[str, str]
) -> None:
    assert strongroom.admin_password
    admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
    created = admin.post(
        "/api/v1/users", json={"username": "grpc-annotator", "roles": ["annotator"]}
    ).json()
    token = strongroom.token("grpc-annotator", created["password"])
    with grpc.insecure_channel(addresses["audit"]) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.VerifyChain(
                audit_pb2.VerifyChainRequest(),
                timeout=5,
                metadata=(("authorization", f"Bearer {token}"),),
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    admin_token = strongroom.token("admin", strongroom.admin_password)

    def verify() -> audit_pb2.VerifyChainResponse | None:
        with grpc.insecure_channel(addresses["audit"]) as channel:
            reply = audit_pb2_grpc.AuditServiceStub(channel).VerifyChain(
                audit_pb2.VerifyChainRequest(),
                timeout=5,
                metadata=(("authorization", f"Bearer {admin_token}"),),
            )
        return reply if reply.event_count > 0 else None

    reply = wait_for(verify)
    assert reply.is_intact
