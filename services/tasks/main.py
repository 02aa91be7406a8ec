"""Wiring of the tasks service process."""

from __future__ import annotations

from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.events import batched
from strongroom.services.common.runtime import Backends, ServiceDefinition, run_service
from strongroom.services.tasks import store
from strongroom.services.tasks.handlers import (
    BATCHED,
    SERVICE,
    LeaseExpirer,
    handlers,
)
from strongroom.services.tasks.servicer import TaskServicer
from strongroom.v1 import tasks_pb2, tasks_pb2_grpc


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    every = handlers(backends.objects)
    servicer = TaskServicer(engine, backends.objects, settings.lease_seconds)
    return ServiceDefinition(
        name=SERVICE,
        engine=engine,
        servicers=[(tasks_pb2_grpc.add_TaskServiceServicer_to_server, servicer)],
        service_names=[tasks_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name],
        handlers={t: h for t, h in every.items() if t not in BATCHED},
        batch_handlers={t: batched(h) for t, h in every.items() if t in BATCHED},
        workers=[LeaseExpirer(engine, settings.lease_expiry_interval_seconds)],
    )


def main() -> None:
    run_service(SERVICE, build)
