"""Wiring of the ingestion service process."""

from __future__ import annotations

from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.runtime import Backends, ServiceDefinition, run_service
from strongroom.services.ingestion import store
from strongroom.services.ingestion.servicer import SERVICE, IngestionServicer
from strongroom.v1 import ingestion_pb2, ingestion_pb2_grpc


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    servicer = IngestionServicer(
        engine,
        backends.objects,
        settings.service_dir(SERVICE) / "staging",
        settings.max_upload_bytes,
    )
    return ServiceDefinition(
        name=SERVICE,
        engine=engine,
        servicers=[
            (ingestion_pb2_grpc.add_IngestionServiceServicer_to_server, servicer)
        ],
        service_names=[
            ingestion_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name
        ],
    )


def main() -> None:
    run_service(SERVICE, build)
