"""Wiring of the audit service process."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from strongroom.services.audit import store
from strongroom.services.audit.handlers import handlers
from strongroom.services.audit.servicer import SERVICE, AuditServicer
from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.runtime import (
    Backends,
    ServiceDefinition,
    open_audit_index,
    run_service,
)
from strongroom.v1 import audit_pb2, audit_pb2_grpc


def chain_path(settings: Settings) -> Path:
    return settings.service_dir(SERVICE) / "chain.jsonl"


def open_store(settings: Settings) -> tuple[Engine, store.ChainFile]:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    return engine, store.ChainFile(chain_path(settings))


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    engine, chain = open_store(settings)
    index = open_audit_index(settings)
    return ServiceDefinition(
        name=SERVICE,
        engine=engine,
        servicers=[
            (
                audit_pb2_grpc.add_AuditServiceServicer_to_server,
                AuditServicer(engine, chain, index),
            )
        ],
        service_names=[audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name],
        handlers=handlers(chain, index),
        checks={"audit_index": index.check},
    )


def main() -> None:
    run_service(SERVICE, build)
