"""Wiring of the audit service process."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.services.audit import store
from strongroom.services.audit.domain import RetentionPolicy
from strongroom.services.audit.handlers import batch_handlers
from strongroom.services.audit.servicer import SERVICE, AuditServicer
from strongroom.services.audit.store import AuditStore
from strongroom.services.common import signing
from strongroom.services.common.audit_trail import SYSTEM, stage_audit
from strongroom.services.common.config import Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.events import Worker
from strongroom.services.common.ports import AuditIndex, ObjectStore
from strongroom.services.common.runtime import (
    Backends,
    ServiceDefinition,
    open_audit_index,
    run_service,
)
from strongroom.v1 import audit_pb2, audit_pb2_grpc

logger = logging.getLogger(__name__)


def chain_path(settings: Settings) -> Path:
    return settings.service_dir(SERVICE) / "chain.jsonl"


def signing_key_path(settings: Settings) -> Path:
    configured = settings.audit_signing_key_file
    return (
        Path(configured)
        if configured
        else settings.service_dir(SERVICE) / ("signing-key.pem")
    )


def open_store(settings: Settings) -> AuditStore:
    engine = create_database_engine(settings.database_url(SERVICE))
    migrate(engine, store.MIGRATIONS)
    directory = settings.service_dir(SERVICE)
    return AuditStore(
        engine,
        store.ChainFile(chain_path(settings)),
        store.CheckpointLog(directory / "checkpoints.jsonl"),
    )


class Checkpointer(Worker):
    """Seals the chain with a signed checkpoint at a fixed interval."""

    def __init__(
        self,
        audit: AuditStore,
        key: Ed25519PrivateKey,
        archive: ObjectStore,
        interval_seconds: float,
    ) -> None:
        super().__init__("checkpointer", idle_seconds=interval_seconds)
        self.audit = audit
        self.key = key
        self.archive = archive

    def step(self) -> bool:
        signed = self.audit.checkpoints.seal(
            self.audit.engine, self.audit.chain, self.key, self.archive
        )
        if signed is not None:
            logger.info(
                "audit_checkpoint_sealed",
                extra={
                    "checkpoint": signed.checkpoint.number,
                    "tree_size": signed.checkpoint.tree_size,
                },
            )
        # Always wait the interval: one checkpoint per interval at most.
        return False


class Expirer(Worker):
    """Drops audit events whose retention ended, and audits that it did."""

    def __init__(
        self,
        audit: AuditStore,
        index: AuditIndex,
        policy: RetentionPolicy,
        interval_seconds: float,
    ) -> None:
        super().__init__("expirer", idle_seconds=interval_seconds)
        self.audit = audit
        self.index = index
        self.policy = policy

    def step(self) -> bool:
        expired = self.audit.chain.expired(
            self.audit.engine, self.policy, datetime.now(UTC)
        )
        if not expired:
            return False
        sequences = [sequence for _offset, sequence in expired]
        # The index first: a crash before the chain is pruned finds the same
        # entries again next time, so nothing expired stays searchable.
        self.index.remove(sequences)
        self.audit.chain.prune(expired)
        with self.audit.engine.begin() as conn:
            stage_audit(
                conn,
                service=SERVICE,
                action="audit.expire",
                actor=SYSTEM,
                resource_type="audit_trail",
                details={
                    "events": len(sequences),
                    "first_sequence": min(sequences),
                    "last_sequence": max(sequences),
                },
            )
        logger.info("audit_events_expired", extra={"count": len(sequences)})
        return False


def build(settings: Settings, backends: Backends) -> ServiceDefinition:
    audit = open_store(settings)
    index = open_audit_index(settings)
    key = signing.load_signing_key(signing_key_path(settings))
    return ServiceDefinition(
        name=SERVICE,
        engine=audit.engine,
        servicers=[
            (
                audit_pb2_grpc.add_AuditServiceServicer_to_server,
                AuditServicer(audit, index, key.public_key(), backends.objects),
            )
        ],
        service_names=[audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name],
        batch_handlers=batch_handlers(audit.chain, index),
        workers=[
            Checkpointer(
                audit, key, backends.objects, settings.audit_checkpoint_interval_seconds
            ),
            Expirer(
                audit,
                index,
                RetentionPolicy(
                    settings.audit_retention_days,
                    settings.audit_retention_days_by_category,
                ),
                settings.audit_expiry_interval_seconds,
            ),
        ],
        checks={"audit_index": index.check},
    )


def main() -> None:
    run_service(SERVICE, build)
