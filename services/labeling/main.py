"""Wiring of the labeling service process."""

from __future__ import annotations

from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.grpc_clients import open_channel
from strongroom.services.common.runtime import Backends, ServiceDefinition, run_service
from strongroom.services.labeling import store
from strongroom.services.labeling.assistant import ModelAssistant
from strongroom.services.labeling.servicer import SERVICE, LabelingServicer
from strongroom.v1 import labeling_pb2, labeling_pb2_grpc, tasks_pb2_grpc


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    tasks = tasks_pb2_grpc.TaskServiceStub(open_channel(settings, "tasks"))
    assistant = ModelAssistant(
        engine, backends.objects, tasks, settings.model_assistant_interval_seconds
    )
    return ServiceDefinition(
        name=SERVICE,
        engine=engine,
        servicers=[
            (
                labeling_pb2_grpc.add_LabelingServiceServicer_to_server,
                LabelingServicer(engine, tasks, assistant),
            )
        ],
        service_names=[
            labeling_pb2.DESCRIPTOR.services_by_name["LabelingService"].full_name
        ],
        workers=[assistant],
    )


def main() -> None:
    run_service(SERVICE, build)
