"""Wiring of the export service process."""

from __future__ import annotations

from pathlib import Path

from strongroom.services.common import signing
from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.grpc_clients import open_channel
from strongroom.services.common.runtime import Backends, ServiceDefinition, run_service
from strongroom.services.export import store
from strongroom.services.export.builder import SERVICE, Clients, ExportBuilder
from strongroom.services.export.importer import Importer
from strongroom.services.export.servicer import ExportServicer
from strongroom.v1 import (
    export_pb2,
    export_pb2_grpc,
    ingestion_pb2_grpc,
    labeling_pb2_grpc,
    redaction_pb2_grpc,
    tasks_pb2_grpc,
)


def signing_key_path(settings: Settings) -> Path:
    configured = settings.export_signing_key_file
    return (
        Path(configured)
        if configured
        else settings.service_dir(SERVICE) / "signing-key.pem"
    )


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    clients = Clients(
        tasks=tasks_pb2_grpc.TaskServiceStub(open_channel(settings, "tasks")),
        labeling=labeling_pb2_grpc.LabelingServiceStub(
            open_channel(settings, "labeling")
        ),
        redaction=redaction_pb2_grpc.RedactionServiceStub(
            open_channel(settings, "redaction")
        ),
        ingestion=ingestion_pb2_grpc.IngestionServiceStub(
            open_channel(settings, "ingestion")
        ),
    )
    builder = ExportBuilder(
        engine,
        backends.objects,
        clients,
        signing.load_signing_key(signing_key_path(settings), "export"),
        settings.service_dir(SERVICE) / "work",
        settings.export_stall_seconds,
    )
    importer = Importer(engine, backends.objects, clients, builder.pseudonym_key)
    servicer = ExportServicer(engine, backends.objects, builder, importer)
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
