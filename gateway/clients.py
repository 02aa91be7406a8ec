"""gRPC stubs of every service, opened once per gateway process."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from strongroom.services.common.config import SERVICE_NAMES, Settings
from strongroom.services.common.grpc_clients import open_channel
from strongroom.v1 import (
    audit_pb2_grpc,
    export_pb2_grpc,
    ingestion_pb2_grpc,
    labeling_pb2_grpc,
    redaction_pb2_grpc,
    tasks_pb2_grpc,
)


@dataclass
class ServiceClients:
    ingestion: ingestion_pb2_grpc.IngestionServiceStub
    redaction: redaction_pb2_grpc.RedactionServiceStub
    tasks: tasks_pb2_grpc.TaskServiceStub
    labeling: labeling_pb2_grpc.LabelingServiceStub
    export: export_pb2_grpc.ExportServiceStub
    audit: audit_pb2_grpc.AuditServiceStub
    channels: dict[str, grpc.Channel]

    @classmethod
    def connect(cls, settings: Settings) -> ServiceClients:
        channels = {name: open_channel(settings, name) for name in SERVICE_NAMES}
        return cls(
            ingestion=ingestion_pb2_grpc.IngestionServiceStub(channels["ingestion"]),
            redaction=redaction_pb2_grpc.RedactionServiceStub(channels["redaction"]),
            tasks=tasks_pb2_grpc.TaskServiceStub(channels["tasks"]),
            labeling=labeling_pb2_grpc.LabelingServiceStub(channels["labeling"]),
            export=export_pb2_grpc.ExportServiceStub(channels["export"]),
            audit=audit_pb2_grpc.AuditServiceStub(channels["audit"]),
            channels=channels,
        )

    def unhealthy(self) -> list[str]:
        """Name the services that do not answer SERVING to a health check."""
        failing = []
        for name, channel in self.channels.items():
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2.0)
            except grpc.RpcError:
                failing.append(name)
                continue
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                failing.append(name)
        return failing

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
