"""Every service's tables, on SQLite and on a real PostgreSQL, with one set of asserts.

Each test gets a fresh database: a SQLite file in its temporary folder, or a
new database on the session's PostgreSQL server (tests/backends/postgres.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from strongroom.services.audit import store as audit_store
from strongroom.services.audit.domain import GENESIS_HASH, ChainHead, verify_chain
from strongroom.services.common.adapters import local_oidc
from strongroom.services.common.adapters.local_object_store import LocalObjectStore
from strongroom.services.common.adapters.sqlite_event_log import SqliteEventLog
from strongroom.services.common.auth import ANNOTATOR, MANAGER
from strongroom.services.common.config import SERVICE_NAMES
from strongroom.services.common.database import (
    COMMON_MIGRATIONS,
    Migration,
    check_database,
    create_database_engine,
    migrate,
    to_iso,
)
from strongroom.services.common.errors import (
    Conflict,
    DependencyUnavailable,
    NotFound,
    Unauthenticated,
)
from strongroom.services.common.events import (
    AUDIT_EVENT,
    DOCUMENT_CLEANED,
    TASK_CREATED,
    EventConsumer,
    OutboxRelay,
    stage_event,
)
from strongroom.services.common.ports import Event, EventBus
from strongroom.services.export import store as export_store
from strongroom.services.export.domain import (
    BUILDING,
    FAILED,
    READY,
    ExportSettings,
    FileEntry,
    Filter,
)
from strongroom.services.ingestion import store as ingestion_store
from strongroom.services.ingestion.domain import PageText
from strongroom.services.labeling import store as labeling_store
from strongroom.services.redaction import store as redaction_store
from strongroom.services.redaction.domain import POLICY, Finding
from strongroom.services.tasks import handlers as task_handlers
from strongroom.services.tasks import store as task_store
from strongroom.services.tasks.domain import (
    FieldSpec,
    Label,
    LabelSchema,
    Project,
    Settings,
    Window,
)
from tests.backends.base import free_port
from tests.backends.postgres import PostgresCluster

DATABASE_KINDS = ["sqlite", "postgresql"]

# The tables each migration list creates, besides the common ones.
SCHEMAS: dict[str, tuple[Sequence[Migration], set[str]]] = {
    "ingestion": (ingestion_store.MIGRATIONS, {"documents", "quarantined_files"}),
    "redaction": (
        redaction_store.MIGRATIONS,
        {
            "reports",
            "policies",
            "project_keys",
            "surrogates",
            "exact_keys",
            "signatures",
            "lsh_bands",
            "corrections",
        },
    ),
    "tasks": (task_store.MIGRATIONS, {"projects", "members", "tasks", "assignments"}),
    "labeling": (
        labeling_store.MIGRATIONS,
        {"annotations", "reviews", "model_settings", "model_versions"},
    ),
    "export": (export_store.MIGRATIONS, {"exports"}),
    "audit": (audit_store.MIGRATIONS, {"chain_head", "chained_events"}),
    "local_oidc": (local_oidc.MIGRATIONS, {"users"}),
}
COMMON_TABLES = {"schema_migrations", "outbox", "processed_events"}

PROJECT = "p-claims"
OTHER_PROJECT = "p-invoices"
PASSWORD = "correct horse battery"
# Larger than a 32-bit integer: the size columns are BIGINT on PostgreSQL.
FIVE_GIB = 5 * 2**30


@pytest.fixture(params=DATABASE_KINDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_database_engine(f"sqlite:///{tmp_path / 'state.db'}")
        yield engine
        engine.dispose()
        return
    server: PostgresCluster = request.getfixturevalue("postgres_server")
    database = f"state_{uuid.uuid4().hex}"
    engine = create_database_engine(server.url_for(database))
    yield engine
    engine.dispose()
    server.drop(database)


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[SqliteEventLog]:
    bus = SqliteEventLog(tmp_path / "events.db")
    yield bus
    bus.close()


def _moment(minute: int) -> datetime:
    return datetime(2024, 5, 6, 9, 0, tzinfo=UTC) + timedelta(minutes=minute)


def _at(minute: int) -> str:
    return to_iso(_moment(minute))


def _hex(number: int) -> str:
    return f"{number:064x}"


def _count(engine: Engine, table: str, where: str = "TRUE") -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT COUNT(*) FROM {table} WHERE {where}")
            ).scalar_one()
        )


# Readiness


def test_check_passes_while_the_database_answers(engine: Engine) -> None:
    check_database(engine)


def test_unreachable_postgresql_fails_its_check() -> None:
    engine = create_database_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    )

    with pytest.raises(DependencyUnavailable):
        check_database(engine)


# Migrations


def test_every_service_has_its_migrations_checked() -> None:
    assert set(SERVICE_NAMES) <= set(SCHEMAS)


@pytest.mark.parametrize("service", sorted(SCHEMAS))
def test_migrations_apply_once(engine: Engine, service: str) -> None:
    migrations, tables = SCHEMAS[service]

    assert migrate(engine, migrations) == len(COMMON_MIGRATIONS) + len(migrations)
    assert migrate(engine, migrations) == 0

    assert tables | COMMON_TABLES <= set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT version FROM schema_migrations ORDER BY version")
        ).scalars()
        assert list(versions) == sorted(
            m.version for m in (*COMMON_MIGRATIONS, *migrations)
        )


# Ingestion


def _document(number: int, project_id: str = PROJECT) -> ingestion_store.DocumentRow:
    return ingestion_store.DocumentRow(
        id=f"d-{number}",
        project_id=project_id,
        sha256=_hex(number),
        size_bytes=FIVE_GIB + number,
        media_type="application/pdf",
        text_sha256=_hex(1000 + number),
        text_length=48_213,
        pages=(
            PageText(1, 0, 20_000, 612.0, 792.0),
            PageText(2, 20_000, 48_213, 595.28, 841.89),
        ),
        parser="pdfium",
        parser_version="5.15.2",
        created_at=_at(number),
    )


def test_document_round_trip(engine: Engine) -> None:
    migrate(engine, ingestion_store.MIGRATIONS)
    document = _document(1)

    with engine.begin() as conn:
        ingestion_store.insert_document(conn, document)

    with engine.connect() as conn:
        assert ingestion_store.get_document(conn, "d-1") == document
        assert ingestion_store.find_by_hash(conn, PROJECT, _hex(1)) == document
        assert ingestion_store.find_by_hash(conn, OTHER_PROJECT, _hex(1)) is None
        with pytest.raises(NotFound) as missing:
            ingestion_store.get_document(conn, "d-404")
    assert missing.value.code == "document_not_found"


def test_document_hash_is_unique_within_a_project(engine: Engine) -> None:
    migrate(engine, ingestion_store.MIGRATIONS)
    with engine.begin() as conn:
        ingestion_store.insert_document(conn, _document(1))

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        ingestion_store.insert_document(conn, replace(_document(1), id="d-2"))
    with engine.begin() as conn:
        ingestion_store.insert_document(
            conn, replace(_document(1, OTHER_PROJECT), id="d-3")
        )

    assert _count(engine, "documents") == 2


def test_documents_list_oldest_first_in_pages(engine: Engine) -> None:
    migrate(engine, ingestion_store.MIGRATIONS)
    with engine.begin() as conn:
        for number in (3, 1, 5, 2, 4):
            ingestion_store.insert_document(conn, _document(number))
        ingestion_store.insert_document(conn, _document(6, OTHER_PROJECT))

    with engine.connect() as conn:
        pages = [
            ingestion_store.list_documents(conn, PROJECT, limit=2, offset=offset)
            for offset in (0, 2, 4, 6)
        ]

    assert [([d.id for d in rows], total) for rows, total in pages] == [
        (["d-1", "d-2"], 5),
        (["d-3", "d-4"], 5),
        (["d-5"], 5),
        ([], 5),
    ]


# Redaction


def test_report_round_trip(engine: Engine) -> None:
    migrate(engine, redaction_store.MIGRATIONS)
    report = redaction_store.ReportRow(
        document_id="d-1",
        project_id=PROJECT,
        policy=POLICY,
        findings=(
            Finding("EMAIL", 120, 141, 0.99, "regex"),
            Finding("DATE", 300, 310, 0.85, "regex"),
        ),
        redacted_text_sha256=_hex(7),
        redacted_text_length=FIVE_GIB,
        created_at=_at(1),
    )

    with engine.begin() as conn:
        redaction_store.insert_report(conn, report)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        redaction_store.insert_report(conn, replace(report, policy="other"))

    with engine.connect() as conn:
        assert redaction_store.get_report(conn, "d-1") == report
        with pytest.raises(NotFound) as missing:
            redaction_store.get_report(conn, "d-2")
    assert missing.value.code == "report_not_found"


# Tasks: projects and members


def _project(number: int) -> Project:
    return Project(
        id=f"p-{number}",
        name=f"Claims batch {number}",
        settings=Settings(
            schema=LabelSchema(
                spans=(
                    Label("PERSON", "#e6194b", "p", "A named person"),
                    Label("ACCOUNT", "#3cb44b", "a", ""),
                ),
                classes=(Label("Urgent", "#000000", "u", ""),),
                multi_label=True,
                fields=(FieldSpec("summary", "One line"),),
            ),
            guidelines="Mark every person.",
            overlap=2,
            assignment="assigned",
            window=Window("fixed", 500),
            review=True,
        ),
        created_at=_at(number),
    )


def test_project_round_trip_with_members(engine: Engine) -> None:
    migrate(engine, task_store.MIGRATIONS)

    with engine.begin() as conn:
        task_store.insert_project(conn, _project(1))
        task_store.upsert_member(conn, "p-1", "u-mia", MANAGER)
        task_store.upsert_member(conn, "p-1", "u-ann", ANNOTATOR)
    with engine.begin() as conn:
        task_store.upsert_member(conn, "p-1", "u-ann", MANAGER)

    with engine.connect() as conn:
        project = task_store.get_project(conn, "p-1")
        with pytest.raises(NotFound) as missing:
            task_store.get_project(conn, "p-404")
    assert project == replace(_project(1), members={"u-mia": MANAGER, "u-ann": MANAGER})
    assert missing.value.code == "project_not_found"
    assert _count(engine, "members") == 2


def test_project_ids_list_all_or_by_member(engine: Engine) -> None:
    migrate(engine, task_store.MIGRATIONS)
    with engine.begin() as conn:
        for number in (4, 2, 1, 3):
            task_store.insert_project(conn, _project(number))
        for number in (1, 3, 4):
            task_store.upsert_member(conn, f"p-{number}", "u-ann", ANNOTATOR)

    with engine.connect() as conn:
        everyone = task_store.list_project_ids(conn, None, limit=3, offset=0)
        rest = task_store.list_project_ids(conn, None, limit=3, offset=3)
        member = task_store.list_project_ids(conn, "u-ann", limit=2, offset=1)
        stranger = task_store.list_project_ids(conn, "u-zed", limit=10, offset=0)

    assert everyone == (["p-1", "p-2", "p-3"], 4)
    assert rest == (["p-4"], 4)
    assert member == (["p-3", "p-4"], 3)
    assert stranger == ([], 0)


# Export


def _export(number: int, name: str = "") -> export_store.ExportRow:
    chosen = name or f"claims-v{number}"
    return export_store.ExportRow(
        id=f"e-{number}",
        project_id=PROJECT,
        name=chosen,
        settings=ExportSettings(
            name=chosen,
            formats=("jsonl", "spacy"),
            filter=Filter(gold_only=True, labels=frozenset({"DRUG"})),
        ),
        created_at=_at(number),
    )


def _finish(conn: Connection, number: int) -> None:
    assert export_store.finish(
        conn,
        f"e-{number}",
        files=(
            FileEntry("jsonl/train.jsonl", _hex(number), FIVE_GIB),
            FileEntry("manifest.json", _hex(100 + number), 912),
        ),
        records=3_000_000_000,
        manifest_sha256=_hex(100 + number),
        split_counts={"train": 2_400_000_000, "dev": 300_000_000, "test": 300_000_000},
        signature="ab" * 64,
        key_id="k" * 16,
    )


def test_exports_round_trip_once_per_name(engine: Engine) -> None:
    migrate(engine, export_store.MIGRATIONS)

    with engine.begin() as conn:
        for number in (2, 1, 3):
            assert export_store.insert_export(conn, _export(number))
        assert not export_store.insert_export(conn, _export(4, name="claims-v1"))
        assert not export_store.insert_export(conn, _export(1, name="new-name"))
        export_store.report_progress(conn, "e-2", 5, 10)

    with engine.connect() as conn:
        building = export_store.get_export(conn, "e-2")
        assert building.state == BUILDING and building.settings == _export(2).settings
        assert (building.progress_done, building.progress_total) == (5, 10)
        assert export_store.count_exports(conn, PROJECT) == 3
        assert export_store.count_exports(conn, OTHER_PROJECT) == 0
        first = export_store.list_exports(conn, PROJECT, limit=2, offset=0)
        rest = export_store.list_exports(conn, PROJECT, limit=2, offset=2)
        with pytest.raises(NotFound) as missing:
            export_store.get_export(conn, "e-4")

    assert [r.id for r in first[0]] == ["e-1", "e-2"] and first[1] == 3
    assert [r.id for r in rest[0]] == ["e-3"]
    assert missing.value.code == "export_not_found"


def test_a_version_is_written_once_ready_or_failed(engine: Engine) -> None:
    migrate(engine, export_store.MIGRATIONS)
    with engine.begin() as conn:
        for number in (1, 2, 3):
            export_store.insert_export(conn, _export(number))
        _finish(conn, 1)
        assert export_store.fail(conn, "e-2", "export_build_failed")
        # Neither can change again.
        assert not export_store.fail(conn, "e-1", "export_interrupted")
        assert not export_store.finish(
            conn,
            "e-2",
            files=(),
            records=0,
            manifest_sha256="",
            split_counts={},
            signature="",
            key_id="",
        )
        export_store.report_progress(conn, "e-1", 1, 99)

    with engine.connect() as conn:
        ready = export_store.get_export(conn, "e-1")
        failed = export_store.get_export(conn, "e-2")
        stalled = export_store.stalled(conn, "9999-01-01T00:00:00+00:00")
    assert ready.state == READY and ready.annotation_count == 3_000_000_000
    assert ready.files[0] == FileEntry("jsonl/train.jsonl", _hex(1), FIVE_GIB)
    assert ready.split_counts["train"] == 2_400_000_000
    assert ready.progress_total != 99, "a ready version takes no more progress"
    assert (failed.state, failed.error_code) == (FAILED, "export_build_failed")
    assert [r.id for r in stalled] == ["e-3"]


# Audit


def _audit_event(number: int) -> dict[str, Any]:
    return {
        "id": f"evt-{number}",
        "time": _at(number),
        "actor": {"subject": "u-mia", "username": "mia", "roles": ["manager"]},
        "action": "document.ingest",
        "resource": {"type": "document", "id": f"d-{number}", "project_id": PROJECT},
        "outcome": "success",
        "details": {"size_bytes": str(FIVE_GIB)},
    }


def test_chain_appends_inside_the_transaction(engine: Engine, tmp_path: Path) -> None:
    migrate(engine, audit_store.MIGRATIONS)
    chain = audit_store.ChainFile(tmp_path / "audit" / "chain.jsonl")

    with engine.connect() as conn:
        assert audit_store.read_head(conn) == audit_store.SealedHead(
            ChainHead(0, GENESIS_HASH), 0
        )
    with engine.begin() as conn:
        first = chain.append(conn, _audit_event(1))
        second = chain.append(conn, _audit_event(2))
    with engine.begin() as conn:
        repeated = chain.append(conn, _audit_event(1))

    assert first is not None and second is not None
    assert repeated is None
    assert second["prev_hash"] == first["hash"]
    with engine.connect() as conn:
        sealed = audit_store.read_head(conn)
        assert audit_store.is_chained(conn, "evt-2")
        assert not audit_store.is_chained(conn, "evt-3")
    assert sealed == audit_store.SealedHead(
        ChainHead(2, second["hash"]), chain.path.stat().st_size
    )
    assert verify_chain(chain.lines(), sealed.head).is_intact


def test_chain_rewrites_a_line_whose_transaction_rolled_back(
    engine: Engine, tmp_path: Path
) -> None:
    migrate(engine, audit_store.MIGRATIONS)
    chain = audit_store.ChainFile(tmp_path / "chain.jsonl")
    with engine.begin() as conn:
        chain.append(conn, _audit_event(1))

    with pytest.raises(RuntimeError), engine.begin() as conn:
        chain.append(conn, _audit_event(2))
        raise RuntimeError("the commit never happened")
    with engine.begin() as conn:
        third = chain.append(conn, _audit_event(3))

    assert third is not None and third["sequence"] == 2
    with engine.connect() as conn:
        sealed = audit_store.read_head(conn)
    assert sealed.file_size == chain.path.stat().st_size
    assert len(list(chain.lines())) == 2
    assert verify_chain(chain.lines(), sealed.head).is_intact


# Local users


def test_local_users_round_trip(engine: Engine, tmp_path: Path) -> None:
    issuer = local_oidc.LocalOidcIssuer(
        directory=tmp_path / "oidc",
        engine=engine,
        issuer="http://127.0.0.1:1/oidc",
        audience="strongroom",
        token_lifetime_seconds=60,
    )
    assert not issuer.has_users()

    mia = issuer.create_user("mia", PASSWORD, {MANAGER})
    ann = issuer.create_user("ann", PASSWORD, {ANNOTATOR, MANAGER})
    with pytest.raises(Conflict):
        issuer.create_user("mia", PASSWORD, {ANNOTATOR})
    token = issuer.login("mia", PASSWORD, client_address="10.0.0.7")
    with pytest.raises(Unauthenticated):
        issuer.login("mia", "wrong password, long enough")

    assert issuer.has_users()
    assert issuer.find_user("ann") == ann
    assert issuer.list_users() == [ann, mia]
    with pytest.raises(NotFound):
        issuer.find_user("zed")
    assert issuer.verify(token).subject == mia.subject
    # Two users created, one login and one refused: four audit events staged.
    assert _count(engine, "outbox", f"topic = '{AUDIT_EVENT}'") == 4


# The outbox and the consumer


def test_relay_publishes_a_staged_event_and_marks_it(
    engine: Engine, bus: SqliteEventLog
) -> None:
    migrate(engine, [])
    with engine.begin() as conn:
        event_id = stage_event(conn, TASK_CREATED, "t-1", {"task_id": "t-1"})
    with pytest.raises(RuntimeError), engine.begin() as conn:
        stage_event(conn, TASK_CREATED, "t-2", {"task_id": "t-2"})
        raise RuntimeError("the change failed")
    relay = OutboxRelay(engine, bus)

    assert relay.step() is True
    assert relay.step() is False

    (published,) = bus.poll("reader", [TASK_CREATED], limit=10)
    assert (published.id, published.key, published.payload) == (
        event_id,
        "t-1",
        {"task_id": "t-1"},
    )
    assert _count(engine, "outbox", "relayed_at IS NOT NULL") == 1
    assert _count(engine, "outbox") == 1


class _CommitDuringPublish:
    """A bus that lets a pending transaction commit while it publishes."""

    def __init__(self, bus: EventBus, pending: sa.Transaction) -> None:
        self.bus = bus
        self.pending = pending

    def publish(self, events: Sequence[Event]) -> None:
        self.bus.publish(events)
        if self.pending.is_active:
            self.pending.commit()

    def poll(self, group: str, topics: Sequence[str], limit: int) -> list[Event]:
        return self.bus.poll(group, topics, limit)

    def commit(self, group: str, event: Event) -> None:
        self.bus.commit(group, event)

    def close(self) -> None:
        self.bus.close()


# SQLite has one writer, so its outbox rows always commit in position order;
# only PostgreSQL can commit a lower position after a higher one.
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_relay_keeps_an_event_that_commits_while_it_publishes(
    engine: Engine, bus: SqliteEventLog
) -> None:
    migrate(engine, [])

    # The late event takes the lower position but commits after the relay read.
    with engine.connect() as late:
        pending = late.begin()
        late_id = stage_event(late, TASK_CREATED, "t-1", {"task_id": "t-1"})
        with engine.begin() as conn:
            early_id = stage_event(conn, TASK_CREATED, "t-2", {"task_id": "t-2"})
        relay = OutboxRelay(engine, _CommitDuringPublish(bus, pending))
        assert relay.step() is True
    assert relay.step() is True
    assert relay.step() is False

    published = bus.poll("reader", [TASK_CREATED], limit=10)
    assert [e.id for e in published] == [early_id, late_id]


def _cleaned(document: int, event_id: str = "") -> Event:
    return Event(
        id=event_id or str(uuid.uuid4()),
        topic=DOCUMENT_CLEANED,
        key=f"d-{document}",
        payload={
            "project_id": PROJECT,
            "document_id": f"d-{document}",
            "text_sha256": _hex(document),
            "text_length": 48_213,
        },
        time=_at(document),
    )


def _tasks_project(engine: Engine) -> None:
    migrate(engine, task_store.MIGRATIONS)
    with engine.begin() as conn:
        # Whole documents: the handler needs no text to cut windows from.
        project = _project(0)
        whole = replace(project.settings, window=Window())
        task_store.insert_project(conn, replace(project, id=PROJECT, settings=whole))


def _task_handlers(tmp_path: Path) -> dict[str, Any]:
    return task_handlers.handlers(LocalObjectStore(tmp_path / "objects"))


def test_consumer_skips_a_redelivered_event(
    engine: Engine, bus: SqliteEventLog, tmp_path: Path
) -> None:
    _tasks_project(engine)
    bus.publish([_cleaned(1, "evt-1"), _cleaned(2, "evt-2")])
    consumer = EventConsumer("tasks", bus, engine, _task_handlers(tmp_path))

    assert consumer.step() is True
    assert consumer.step() is False
    # Redelivered after a crash before the bus commit, and the same document
    # cleaned again under a new event id (a corrected redaction): neither
    # adds a task; the second points the task at the new text.
    (redelivered,) = bus.poll("late-reader", [DOCUMENT_CLEANED], limit=1)
    consumer._handle_once(redelivered)
    bus.publish([_cleaned(1)])
    assert consumer.step() is True

    with engine.connect() as conn:
        tasks, total = task_store.list_tasks(conn, PROJECT, limit=10, offset=0)
    assert total == 2
    assert sorted(t.document_id for t in tasks) == ["d-1", "d-2"]
    assert _count(engine, "processed_events") == 3
    assert _count(engine, "outbox", f"topic = '{TASK_CREATED}'") == 2

    OutboxRelay(engine, bus).step()
    created = bus.poll("labeling", [TASK_CREATED], limit=10)
    assert sorted(e.payload["document_id"] for e in created) == ["d-1", "d-2"]
    actions = [e.payload["action"] for e in bus.poll("audit", [AUDIT_EVENT], 10)]
    assert sorted(actions) == ["task.create", "task.create", "task.update"]


def test_failed_handler_attempt_leaves_no_partial_change(
    engine: Engine, bus: SqliteEventLog, tmp_path: Path
) -> None:
    _tasks_project(engine)
    bus.publish([_cleaned(1, "evt-1")])
    attempts: list[str] = []
    on_cleaned = _task_handlers(tmp_path)[DOCUMENT_CLEANED]

    def flaky(conn: Connection, event: Event) -> None:
        on_cleaned(conn, event)
        attempts.append(event.id)
        if len(attempts) == 1:
            raise ConnectionError("the backend blipped after the insert")

    consumer = EventConsumer("tasks", bus, engine, {DOCUMENT_CLEANED: flaky})

    assert consumer.step() is True

    assert attempts == ["evt-1", "evt-1"]
    assert _count(engine, "tasks") == 1
    assert _count(engine, "processed_events") == 1
    assert _count(engine, "outbox") == 2
