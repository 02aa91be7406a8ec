"""Wiring of the redaction service process."""

from __future__ import annotations

from pathlib import Path

from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.events import batched
from strongroom.services.common.grpc_clients import open_channel
from strongroom.services.common.project_access import ProjectAccess
from strongroom.services.common.runtime import Backends, ServiceDefinition, run_service
from strongroom.services.redaction import store
from strongroom.services.redaction.handlers import SERVICE, Redactor, handlers
from strongroom.services.redaction.servicer import RedactionServicer
from strongroom.services.redaction.vault import Vault
from strongroom.v1 import redaction_pb2, redaction_pb2_grpc, tasks_pb2_grpc


def key_file(settings: Settings) -> Path:
    if settings.redaction_key_file:
        return Path(settings.redaction_key_file)
    return Path.home() / ".config" / "strongroom" / "redaction.key"


def build_redactor(settings: Settings, backends: Backends) -> Redactor:
    vault = Vault.from_file(key_file(settings))
    if not settings.redaction_ner:
        return Redactor(backends.objects, vault)
    from strongroom.services.redaction.ner import shared_model

    model = shared_model()
    return Redactor(backends.objects, vault, model.entities, model.version)


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    redactor = build_redactor(settings, backends)
    return ServiceDefinition(
        name=SERVICE,
        engine=engine,
        servicers=[
            (
                redaction_pb2_grpc.add_RedactionServiceServicer_to_server,
                RedactionServicer(
                    engine,
                    redactor,
                    ProjectAccess(
                        tasks_pb2_grpc.TaskServiceStub(open_channel(settings, "tasks"))
                    ),
                ),
            )
        ],
        service_names=[
            redaction_pb2.DESCRIPTOR.services_by_name["RedactionService"].full_name
        ],
        # Uploads arrive in bursts (a folder, a file of records): a run of
        # documents is redacted in one transaction and one flush to disk.
        batch_handlers={
            topic: batched(handler, backends.objects.batch)
            for topic, handler in handlers(redactor).items()
        },
    )


def main() -> None:
    run_service(SERVICE, build)
