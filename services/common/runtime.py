"""Running one service as its own process: adapters, workers, server, signals."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy.engine import Engine

from strongroom.services.common.adapters.local_object_store import LocalObjectStore
from strongroom.services.common.adapters.sqlite_audit_index import SqliteAuditIndex
from strongroom.services.common.adapters.sqlite_event_log import SqliteEventLog
from strongroom.services.common.audit_trail import DENIED, ERROR, stage_audit
from strongroom.services.common.auth import OidcTokenVerifier, Principal
from strongroom.services.common.config import Settings
from strongroom.services.common.database import check_database
from strongroom.services.common.errors import (
    HiddenNotFound,
    PermissionDenied,
    StrongroomError,
    Unauthenticated,
)
from strongroom.services.common.events import (
    BatchHandler,
    EventConsumer,
    EventHandler,
    OutboxRelay,
)
from strongroom.services.common.grpc_server import GrpcServer, ServiceInterceptor
from strongroom.services.common.logs import configure_logging
from strongroom.services.common.object_encryption import ObjectCipher, load_key
from strongroom.services.common.ports import (
    AuditIndex,
    EventBus,
    IdentityProvider,
    ObjectStore,
)
from strongroom.services.common.readiness import BackendCheck, ReadinessMonitor

logger = logging.getLogger(__name__)

# What Strongroom writes (databases, objects, keys, logs) is readable by the
# user that runs it alone; every process sets this mask first.
PRIVATE_UMASK = 0o077

ORIGINALS = "originals"
DERIVED = "derived"
EXPORTS = "exports"
AUDIT_ARCHIVE = "audit-archive"


@dataclass
class Backends:
    """The adapters configuration picked for this process."""

    bus: EventBus
    objects: ObjectStore
    identity: IdentityProvider


def open_backends(settings: Settings, client_id: str = "strongroom") -> Backends:
    """Open the adapters the configuration names; nothing else chooses them."""
    return Backends(
        bus=open_event_bus(settings, client_id),
        objects=open_object_store(settings),
        identity=OidcTokenVerifier(
            settings.oidc_issuer, settings.oidc_audience, settings.tls_ca_file
        ),
    )


def open_event_bus(settings: Settings, client_id: str) -> EventBus:
    if settings.event_bus == "kafka":
        from strongroom.services.common.adapters.kafka_event_bus import (
            KafkaEventBus,
            KafkaSasl,
        )

        return KafkaEventBus(
            settings.kafka_bootstrap_servers,
            client_id,
            is_tls=settings.kafka_tls,
            ca_file=settings.tls_ca_file,
            sasl=KafkaSasl(
                settings.kafka_sasl_mechanism,
                settings.kafka_sasl_username,
                settings.kafka_sasl_password.get_secret_value(),
            ),
        )
    return SqliteEventLog(settings.data_dir / "events" / "events.db")


def open_object_store(settings: Settings) -> ObjectStore:
    """Open the configured object store.

    Raises:
        DependencyUnavailable: the embedded store's key file is refused, or
            does not match the objects already stored.
    """
    if settings.object_store == "s3":
        from strongroom.services.common.adapters.s3_object_store import S3ObjectStore

        return S3ObjectStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            bucket_prefix=settings.s3_bucket_prefix,
            retention_days=settings.s3_retention_days,
            ca_file=settings.tls_ca_file,
        )
    cipher = None
    if settings.object_store_key_file:
        key = load_key(Path(settings.object_store_key_file), settings.data_dir)
        cipher = ObjectCipher(key)
    return LocalObjectStore(
        settings.data_dir / "objects",
        cipher,
        reserve_bytes=settings.disk_reserve_mb << 20,
    )


def open_audit_index(settings: Settings) -> AuditIndex:
    if settings.audit_index == "opensearch":
        from strongroom.services.common.adapters.opensearch_audit_index import (
            OpenSearchAuditIndex,
        )

        return OpenSearchAuditIndex(
            settings.opensearch_url,
            index_prefix=settings.opensearch_index_prefix,
            ca_file=settings.tls_ca_file,
            username=settings.opensearch_username,
            password=settings.opensearch_password.get_secret_value(),
            # The chain is the record; the index may trail it by one refresh
            # (a second) rather than hold every batch until it is searchable.
            wait_for_refresh=False,
        )
    return SqliteAuditIndex(settings.service_dir("audit") / "index.db")


def backend_checks(engine: Engine, backends: Backends) -> dict[str, BackendCheck]:
    """The readiness checks every process shares: its database, bus and objects."""
    return {
        "database": lambda: check_database(engine),
        "event_bus": backends.bus.check,
        "object_store": backends.objects.check,
    }


@dataclass
class ServiceDefinition:
    """What a service brings to the runtime: its tables, RPCs and event handlers."""

    name: str
    engine: Engine
    # Pairs of (generated add_*Servicer_to_server function, servicer).
    servicers: Sequence[tuple[Callable[[Any, grpc.Server], None], Any]]
    # Full proto names of the services, for health checking and reflection.
    service_names: Sequence[str]
    handlers: Mapping[str, EventHandler] = field(default_factory=dict)
    batch_handlers: Mapping[str, BatchHandler] = field(default_factory=dict)
    workers: Sequence[threading.Thread] = ()
    # Backends this service needs beyond its database, bus and object store.
    checks: Mapping[str, BackendCheck] = field(default_factory=dict)


def audit_refusal(
    service: str, engine: Engine
) -> Callable[[str, Principal | None, StrongroomError], None]:
    """Return a callback that records every refused call in the audit trail."""

    def record(method: str, principal: Principal | None, exc: StrongroomError) -> None:
        is_denial = isinstance(exc, (Unauthenticated, PermissionDenied, HiddenNotFound))
        actor = principal or Principal(subject="", username="", roles=frozenset())
        with engine.begin() as conn:
            stage_audit(
                conn,
                service=service,
                action=f"rpc.{method.rsplit('/', 1)[-1]}",
                actor=actor,
                resource_type="rpc",
                outcome=DENIED if is_denial else ERROR,
                reason=exc.code,
                details={"code": exc.code},
            )

    return record


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS for a service's gRPC server, when the deployment has a certificate."""
    if not settings.is_tls:
        return None
    return grpc.ssl_server_credentials(
        [
            (
                Path(settings.tls_key_file).read_bytes(),
                Path(settings.tls_cert_file).read_bytes(),
            )
        ]
    )


def serve(
    definition: ServiceDefinition, settings: Settings, backends: Backends
) -> None:
    """Run the service until SIGTERM or SIGINT, then stop it cleanly."""
    interceptor = ServiceInterceptor(
        backends.identity, audit_refusal(definition.name, definition.engine)
    )
    server = GrpcServer(
        settings.listen_address_of(definition.name),
        interceptor,
        definition.service_names,
        credentials=server_credentials(settings),
    )
    for add_to_server, servicer in definition.servicers:
        add_to_server(servicer, server.server)
    relay = OutboxRelay(
        definition.engine, backends.bus, idle_seconds=settings.outbox_idle_seconds
    )
    workers: list[Any] = [relay, *definition.workers]
    if definition.handlers or definition.batch_handlers:
        workers.append(
            EventConsumer(
                definition.name,
                backends.bus,
                definition.engine,
                definition.handlers,
                batch_handlers=definition.batch_handlers,
            )
        )

    readiness = ReadinessMonitor(
        {**backend_checks(definition.engine, backends), **definition.checks},
        server.set_serving,
        settings.readiness_interval_seconds,
    )

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    readiness.check_now()
    for worker in workers:
        worker.start()
    server.start()
    server.set_alive(True)
    readiness.start()
    logger.info(
        "service_started",
        extra={"address": settings.listen_address_of(definition.name)},
    )
    stopping.wait()

    logger.info("service_stopping")
    readiness.stop()
    server.stop(grace=5.0)
    for worker in workers:
        worker.stop()
    backends.bus.close()
    definition.engine.dispose()


def run_service(
    name: str, build: Callable[[Settings, Backends], ServiceDefinition]
) -> None:
    """Entry point body shared by every service's ``main``."""
    os.umask(PRIVATE_UMASK)
    settings = Settings()
    configure_logging(name, settings.log_level)
    try:
        backends = open_backends(settings, client_id=f"strongroom-{name}")
    except StrongroomError as exc:
        # A refused configuration (a key file open to others): one line that
        # says why instead of a traceback; typed messages carry no content.
        logger.error(
            "service_refused_start", extra={"code": exc.code, "detail": exc.message}
        )
        raise SystemExit(1) from exc
    serve(build(settings, backends), settings, backends)
