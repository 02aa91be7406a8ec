"""Wiring of the redaction service process."""

from __future__ import annotations

from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.runtime import Backends, ServiceDefinition, run_service
from strongroom.services.redaction import store
from strongroom.services.redaction.handlers import SERVICE, handlers
from strongroom.services.redaction.servicer import RedactionServicer
from strongroom.v1 import redaction_pb2, redaction_pb2_grpc


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    return ServiceDefinition(
        name=SERVICE,
        engine=engine,
        servicers=[
            (
                redaction_pb2_grpc.add_RedactionServiceServicer_to_server,
                RedactionServicer(engine),
            )
        ],
        service_names=[
            redaction_pb2.DESCRIPTOR.services_by_name["RedactionService"].full_name
        ],
        handlers=handlers(backends.objects),
    )


def main() -> None:
    run_service(SERVICE, build)
