"""Outbox relay and event consumer over a real service database and bus.

Each test names its own topics and groups, because the Kafka broker is
shared by the whole session; events that must keep their order share a key,
since Kafka orders per key only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.adapters.kafka_event_bus import KafkaEventBus
from strongroom.services.common.adapters.sqlite_event_log import SqliteEventLog
from strongroom.services.common.database import (
    Migration,
    create_database_engine,
    migrate,
)
from strongroom.services.common.errors import DependencyUnavailable, NotFound
from strongroom.services.common.events import (
    DEAD_LETTER,
    EventConsumer,
    OutboxRelay,
    stage_event,
)
from strongroom.services.common.ports import Event, EventBus

BUS_KINDS = ["sqlite", "kafka"]
KEY = "document-1"

Name = Callable[[str], str]

# A table the handlers under test write to, like a service's own state.
SEEN_MIGRATION = Migration(
    100, "seen", ("CREATE TABLE seen (event_id TEXT NOT NULL, number INTEGER)",)
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'svc.db'}")
    migrate(engine, [SEEN_MIGRATION])
    yield engine
    engine.dispose()


@pytest.fixture(params=BUS_KINDS)
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventBus]:
    bus: EventBus
    if request.param == "sqlite":
        bus = SqliteEventLog(tmp_path / "events.db")
    elif request.param == "kafka":
        server = request.getfixturevalue("kafka_server")
        bus = KafkaEventBus(server.bootstrap_servers, "outbox-contract")
    else:
        raise NotImplementedError(request.param)
    yield bus
    bus.close()


@pytest.fixture
def name() -> Name:
    """Return a function that makes a topic or group name unique to the test."""
    suffix = uuid.uuid4().hex[:12]
    return lambda base: f"{base}-{suffix}"


def _stage(engine: Engine, topic: str, number: int, key: str = KEY) -> str:
    with engine.begin() as conn:
        return stage_event(conn, topic, key, {"number": number})


def _dead_letters(bus: EventBus, name: Name, group: str) -> list[Event]:
    """The dead letters the consumer group ``group`` sent, in order."""
    dead = bus.poll(name("dlq-reader"), [DEAD_LETTER], limit=1000)
    return [event for event in dead if event.payload["group"] == group]


def _unrelayed(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT COUNT(*) FROM outbox WHERE relayed_at IS NULL")
            ).scalar_one()
        )


def _seen(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT number FROM seen ORDER BY rowid"))
        return [row.number for row in rows]


def _record(conn: Connection, event: Event) -> None:
    conn.execute(
        sa.text("INSERT INTO seen (event_id, number) VALUES (:id, :n)"),
        {"id": event.id, "n": event.payload["number"]},
    )


def test_migrate_is_idempotent(engine: Engine) -> None:
    assert migrate(engine, [SEEN_MIGRATION]) == 0


def test_relay_publishes_staged_events_once(
    engine: Engine, bus: EventBus, name: Name
) -> None:
    topic = name("t")
    ids = [_stage(engine, topic, n) for n in range(3)]
    relay = OutboxRelay(engine, bus)

    assert relay.step() is True
    assert relay.step() is False

    polled = bus.poll(name("g"), [topic], limit=100)
    assert [e.id for e in polled] == ids
    assert [e.payload for e in polled] == [{"number": n} for n in range(3)]
    assert {e.key for e in polled} == {KEY}
    assert _unrelayed(engine) == 0


def test_relay_publishes_in_batches(engine: Engine, bus: EventBus, name: Name) -> None:
    topic = name("t")
    for n in range(5):
        _stage(engine, topic, n)
    relay = OutboxRelay(engine, bus, batch_size=2)

    steps = 0
    while relay.step():
        steps += 1

    assert steps == 3
    polled = bus.poll(name("g"), [topic], 100)
    assert [e.payload["number"] for e in polled] == [0, 1, 2, 3, 4]


def test_rolled_back_event_is_never_published(
    engine: Engine, bus: EventBus, name: Name
) -> None:
    topic = name("t")
    with pytest.raises(RuntimeError), engine.begin() as conn:
        stage_event(conn, topic, KEY, {"number": 1})
        raise RuntimeError("the change failed")
    kept = _stage(engine, topic, 2)

    OutboxRelay(engine, bus).step()

    assert [e.id for e in bus.poll(name("g"), [topic], limit=100)] == [kept]


def test_consumer_handles_each_event_once_and_commits(
    engine: Engine, bus: EventBus, name: Name
) -> None:
    topic, other, group = name("t"), name("other"), name("g")
    for n in range(3):
        _stage(engine, topic, n)
    _stage(engine, other, 99)
    OutboxRelay(engine, bus).step()
    consumer = EventConsumer(group, bus, engine, {topic: _record})

    assert consumer.step() is True
    assert consumer.step() is False

    assert _seen(engine) == [0, 1, 2]
    assert bus.poll(group, [topic], limit=100) == []


def test_redelivery_after_crash_does_not_repeat_handler(
    engine: Engine, bus: EventBus, name: Name
) -> None:
    topic, group = name("t"), name("g")
    _stage(engine, topic, 7)
    OutboxRelay(engine, bus).step()
    crashed = EventConsumer(group, bus, engine, {topic: _record})
    (event,) = bus.poll(group, [topic], limit=100)
    crashed._handle_once(event)
    crashed._handle_once(event)

    # The crash came before the commit, so a restarted consumer gets it again.
    restarted = EventConsumer(group, bus, engine, {topic: _record})
    assert restarted.step() is True

    assert _seen(engine) == [7]
    assert bus.poll(group, [topic], limit=100) == []


def test_event_published_twice_is_handled_once(
    engine: Engine, bus: EventBus, name: Name
) -> None:
    topic, group = name("t"), name("g")
    _stage(engine, topic, 1)
    OutboxRelay(engine, bus).step()
    (event,) = bus.poll(name("reader"), [topic], limit=100)
    # A relay that crashed between publishing and marking its rows sends the
    # same events again; the Kafka log then holds two copies.
    bus.publish([event])
    consumer = EventConsumer(group, bus, engine, {topic: _record})

    while consumer.step():
        pass

    assert _seen(engine) == [1]
    assert bus.poll(group, [topic], limit=100) == []


def test_failed_attempt_leaves_no_partial_change(
    engine: Engine, bus: EventBus, name: Name
) -> None:
    topic, group = name("t"), name("g")
    _stage(engine, topic, 1)
    OutboxRelay(engine, bus).step()
    attempts: list[str] = []

    def flaky(conn: Connection, event: Event) -> None:
        _record(conn, event)
        attempts.append(event.id)
        if len(attempts) == 1:
            raise ConnectionError("backend blipped")

    consumer = EventConsumer(group, bus, engine, {topic: flaky}, max_attempts=2)

    assert consumer.step() is True

    assert len(attempts) == 2
    assert _seen(engine) == [1]
    assert _dead_letters(bus, name, group) == []


def test_failing_handler_sends_event_to_dead_letter(
    engine: Engine, bus: EventBus, name: Name
) -> None:
    topic, group = name("t"), name("g")
    poison_id = _stage(engine, topic, 1)
    _stage(engine, topic, 2)
    OutboxRelay(engine, bus).step()
    calls: list[int] = []

    def handler(conn: Connection, event: Event) -> None:
        calls.append(event.payload["number"])
        if event.payload["number"] == 1:
            raise ValueError("cannot handle this one")
        _record(conn, event)

    consumer = EventConsumer(group, bus, engine, {topic: handler}, max_attempts=2)

    assert consumer.step() is True

    assert calls == [1, 1, 2]
    assert _seen(engine) == [2]
    assert bus.poll(group, [topic], limit=100) == []
    (dead,) = _dead_letters(bus, name, group)
    assert dead.payload == {
        "group": group,
        "event_id": poison_id,
        "topic": topic,
        "reason": "ValueError",
    }
    assert dead.key == KEY


def test_dead_letter_reason_is_the_error_code(
    engine: Engine, bus: EventBus, name: Name
) -> None:
    topic, group = name("t"), name("g")
    _stage(engine, topic, 1)
    OutboxRelay(engine, bus).step()

    def handler(conn: Connection, event: Event) -> None:
        raise NotFound("No document has id d-1.", code="document_not_found")

    EventConsumer(group, bus, engine, {topic: handler}, max_attempts=1).step()

    (dead,) = _dead_letters(bus, name, group)
    assert dead.payload["reason"] == "document_not_found"


@pytest.mark.parametrize(
    "outage",
    [
        DependencyUnavailable("The object store cannot be reached.", code="x"),
        sa.exc.OperationalError("SELECT 1", {}, ConnectionError("server closed")),
    ],
    ids=["dependency_unavailable", "database_lost"],
)
def test_backend_outage_waits_instead_of_dead_lettering(
    engine: Engine, bus: EventBus, name: Name, outage: Exception
) -> None:
    topic, group = name("t"), name("g")
    _stage(engine, topic, 1)
    OutboxRelay(engine, bus).step()
    calls: list[int] = []

    def handler(conn: Connection, event: Event) -> None:
        calls.append(event.payload["number"])
        # Down for longer than max_attempts would allow a faulty event.
        if len(calls) <= 6:
            raise outage
        _record(conn, event)

    consumer = EventConsumer(
        group, bus, engine, {topic: handler}, max_attempts=2, backend_retry_seconds=0
    )

    assert consumer.step() is True

    assert len(calls) == 7
    assert _seen(engine) == [1]
    assert _dead_letters(bus, name, group) == []
