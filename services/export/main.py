"""Wiring of the export service process."""

from __future__ import annotations

from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.grpc_clients import open_channel
from strongroom.services.common.runtime import Backends, ServiceDefinition, run_service
from strongroom.services.export import store
from strongroom.services.export.servicer import SERVICE, ExportServicer
from strongroom.v1 import export_pb2, export_pb2_grpc, labeling_pb2_grpc, tasks_pb2_grpc


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    servicer = ExportServicer(
        engine,
        backends.objects,
        tasks_pb2_grpc.TaskServiceStub(open_channel(settings.tasks_address)),
        labeling_pb2_grpc.LabelingServiceStub(open_channel(settings.labeling_address)),
    )
    return ServiceDefinition(
        name=SERVICE,
        engine=engine,
        servicers=[(export_pb2_grpc.add_ExportServiceServicer_to_server, servicer)],
        service_names=[
            export_pb2.DESCRIPTOR.services_by_name["ExportService"].full_name
        ],
    )


def main() -> None:
    run_service(SERVICE, build)
