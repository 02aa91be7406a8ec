"""Wiring of the ingestion service process."""

from __future__ import annotations

import os
from dataclasses import fields

from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.grpc_clients import open_channel
from strongroom.services.common.project_access import ProjectAccess
from strongroom.services.common.runtime import Backends, ServiceDefinition, run_service
from strongroom.services.ingestion import store
from strongroom.services.ingestion.domain import Limits
from strongroom.services.ingestion.sandbox import ParserPool
from strongroom.services.ingestion.servicer import SERVICE, IngestionServicer
from strongroom.v1 import ingestion_pb2, ingestion_pb2_grpc, tasks_pb2_grpc


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    servicer = IngestionServicer(
        engine,
        backends.objects,
        settings.service_dir(SERVICE) / "staging",
        settings.max_upload_bytes,
        ProjectAccess(tasks_pb2_grpc.TaskServiceStub(open_channel(settings, "tasks"))),
        ParserPool(limits_from_env(), _workers()),
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


# Each limit can be set as STRONGROOM_INGEST_<NAME>, e.g.
# STRONGROOM_INGEST_PARSE_TIMEOUT_SECONDS=60.
_LIMIT_PREFIX = "STRONGROOM_INGEST_"


def limits_from_env() -> Limits:
    """The parsing limits, each overridable by an environment variable."""
    values: dict[str, int | float | str] = {}
    for limit in fields(Limits):
        raw = os.environ.get(_LIMIT_PREFIX + limit.name.upper())
        if raw is None:
            continue
        default = getattr(Limits(), limit.name)
        values[limit.name] = type(default)(raw)
    return Limits(**values)  # type: ignore[arg-type]


def _workers() -> int:
    return max(int(os.environ.get(_LIMIT_PREFIX + "WORKERS", "2")), 1)


def main() -> None:
    run_service(SERVICE, build)
