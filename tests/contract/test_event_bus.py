"""The EventBus port contract, run against every adapter in BUS_KINDS.

The port promises order per key, not one order across keys: Kafka spreads
keys over partitions. Tests that need an exact sequence therefore publish
under one key. Each test names its own topics and groups, because the Kafka
broker is shared by the whole session.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from kafka import KafkaProducer

from strongroom.services.common.adapters.kafka_event_bus import (
    KafkaEventBus,
    KafkaSasl,
)
from strongroom.services.common.adapters.sqlite_event_log import SqliteEventLog
from strongroom.services.common.errors import DependencyUnavailable
from strongroom.services.common.ports import Event, EventBus
from tests.backends.base import free_port
from tests.backends.kafka import SASL_PASSWORD, SASL_USERNAME, KafkaServer

BUS_KINDS = ["sqlite", "kafka"]

OpenBus = Callable[[], EventBus]
Name = Callable[[str], str]


@pytest.fixture(params=BUS_KINDS)
def bus_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def open_bus(
    request: pytest.FixtureRequest, bus_kind: str, tmp_path: Path
) -> Iterator[OpenBus]:
    """Return a function that opens a new client of one shared bus."""
    opened: list[EventBus] = []
    bootstrap_servers = ""
    if bus_kind == "kafka":
        bootstrap_servers = request.getfixturevalue("kafka_server").bootstrap_servers

    def open_one() -> EventBus:
        bus: EventBus
        if bus_kind == "sqlite":
            bus = SqliteEventLog(tmp_path / "events.db")
        elif bus_kind == "kafka":
            bus = KafkaEventBus(bootstrap_servers, f"contract-{len(opened)}")
        else:
            raise NotImplementedError(bus_kind)
        opened.append(bus)
        return bus

    yield open_one
    for bus in opened:
        bus.close()


@pytest.fixture
def bus(open_bus: OpenBus) -> EventBus:
    return open_bus()


@pytest.fixture
def name() -> Name:
    """Return a function that makes a topic or group name unique to the test."""
    suffix = uuid.uuid4().hex[:12]
    return lambda base: f"{base}-{suffix}"


def _event(topic: str, number: int, key: str = "") -> Event:
    return Event(
        id=str(uuid.uuid4()),
        topic=topic,
        key=key or f"key-{number}",
        payload={"number": number, "sha256": "ab" * 32},
        time=f"2024-05-01T10:00:00.{number:06d}+00:00",
    )


def _numbers(events: list[Event]) -> list[int]:
    return [e.payload["number"] for e in events]


def test_poll_returns_every_event_intact(bus: EventBus, name: Name) -> None:
    topic = name("t")
    published = [_event(topic, n) for n in range(5)]
    bus.publish(published[:2])
    bus.publish(published[2:])

    polled = bus.poll(name("g"), [topic], limit=100)

    assert len(polled) == len(published)
    assert {e.id: replace(e, offset=0) for e in polled} == {e.id: e for e in published}


def test_events_with_the_same_key_arrive_in_publish_order(
    bus: EventBus, name: Name
) -> None:
    topic = name("t")
    keys = ["document-a", "document-b", "document-c"]
    published = [_event(topic, n, key=keys[n % 3]) for n in range(12)]
    bus.publish(published[:5])
    bus.publish(published[5:])

    polled = bus.poll(name("g"), [topic], limit=100)

    assert sorted(_numbers(polled)) == list(range(12))
    for key in keys:
        of_key = [e for e in polled if e.key == key]
        assert _numbers(of_key) == _numbers([e for e in published if e.key == key])
        offsets = [e.offset for e in of_key]
        assert offsets == sorted(set(offsets))


def test_poll_filters_by_topic(bus: EventBus, name: Name) -> None:
    a, b, c = name("a"), name("b"), name("c")
    bus.publish([_event(a, 1), _event(b, 2), _event(c, 3), _event(a, 4)])

    assert sorted(_numbers(bus.poll(name("g1"), [a], limit=100))) == [1, 4]
    assert sorted(_numbers(bus.poll(name("g2"), [b, c], limit=100))) == [2, 3]
    assert bus.poll(name("g3"), [name("missing")], limit=100) == []
    assert bus.poll(name("g4"), [], limit=100) == []


def test_republished_event_keeps_its_id(bus: EventBus, name: Name) -> None:
    # Consumers drop a second copy by id, so every copy must carry the same one.
    topic = name("t")
    event, later = _event(topic, 1), _event(topic, 2)

    bus.publish([event])
    bus.publish([event, later])

    polled = bus.poll(name("g"), [topic], limit=100)
    assert {e.id for e in polled} == {event.id, later.id}
    assert all(replace(e, offset=0) in (event, later) for e in polled)
    assert _numbers([e for e in polled if e.id == later.id]) == [2]


# Kafka's idempotent producer drops only the copies its own retries make; a
# second publish is a new message there, which consumers drop by event id
# (tests/contract/test_outbox_and_consumer.py).
@pytest.mark.parametrize("bus_kind", ["sqlite"], indirect=True)
def test_publishing_same_event_twice_keeps_one(bus: EventBus, name: Name) -> None:
    topic = name("t")
    event = _event(topic, 1)

    bus.publish([event])
    bus.publish([event, _event(topic, 2)])

    assert _numbers(bus.poll(name("g"), [topic], limit=100)) == [1, 2]


def test_check_passes_while_the_bus_answers(bus: EventBus) -> None:
    bus.check()


def test_commit_moves_group_past_the_event(bus: EventBus, name: Name) -> None:
    topic, group = name("t"), name("g")
    bus.publish([_event(topic, n, key="document-1") for n in range(4)])
    first_two = bus.poll(group, [topic], limit=2)

    bus.commit(group, first_two[-1])

    assert _numbers(bus.poll(group, [topic], limit=100)) == [2, 3]


def test_groups_keep_independent_offsets(bus: EventBus, name: Name) -> None:
    topic, g1, g2 = name("t"), name("g1"), name("g2")
    bus.publish([_event(topic, n) for n in range(3)])
    events = bus.poll(g1, [topic], limit=100)

    for event in events:
        bus.commit(g1, event)

    assert bus.poll(g1, [topic], limit=100) == []
    assert sorted(_numbers(bus.poll(g2, [topic], limit=100))) == [0, 1, 2]


def test_another_client_sees_events_and_offsets(open_bus: OpenBus, name: Name) -> None:
    topic, group = name("t"), name("g")
    first = open_bus()
    first.publish([_event(topic, n, key="document-1") for n in range(3)])
    first.commit(group, first.poll(group, [topic], limit=1)[0])
    first.close()

    second = open_bus()

    assert _numbers(second.poll(group, [topic], limit=100)) == [1, 2]
    assert _numbers(second.poll(name("fresh"), [topic], limit=100)) == [0, 1, 2]
    second.publish([_event(topic, 3, key="document-1")])
    # A live Kafka member keeps its partitions, so it leaves before the next.
    second.close()
    third = open_bus()
    assert _numbers(third.poll(group, [topic], limit=100)) == [1, 2, 3]


def test_new_client_resumes_after_last_committed_event(
    open_bus: OpenBus, name: Name
) -> None:
    topic, group = name("t"), name("g")
    first = open_bus()
    first.publish([_event(topic, n, key=f"document-{n % 3}") for n in range(9)])
    polled = first.poll(group, [topic], limit=100)
    for event in polled[:5]:
        first.commit(group, event)
    first.close()

    resumed = open_bus().poll(group, [topic], limit=100)

    assert sorted(_numbers(resumed)) == sorted(_numbers(polled[5:]))


def test_uncommitted_events_are_delivered_again(open_bus: OpenBus, name: Name) -> None:
    topic, group = name("t"), name("g")
    first = open_bus()
    first.publish([_event(topic, n) for n in range(4)])
    assert sorted(_numbers(first.poll(group, [topic], limit=100))) == [0, 1, 2, 3]
    assert sorted(_numbers(first.poll(group, [topic], limit=100))) == [0, 1, 2, 3]
    first.close()

    again = open_bus().poll(group, [topic], limit=100)

    assert sorted(_numbers(again)) == [0, 1, 2, 3]


def test_poll_respects_limit(bus: EventBus, name: Name) -> None:
    topic, group = name("t"), name("g")
    bus.publish([_event(topic, n, key="document-1") for n in range(10)])

    assert _numbers(bus.poll(group, [topic], limit=3)) == [0, 1, 2]
    assert len(bus.poll(group, [topic], limit=1)) == 1
    assert len(bus.poll(group, [topic], limit=100)) == 10

    spread = name("spread")
    bus.publish([_event(spread, n) for n in range(10)])
    assert len(bus.poll(group, [spread], limit=4)) == 4


def test_commit_of_older_event_does_not_move_back(bus: EventBus, name: Name) -> None:
    topic, group = name("t"), name("g")
    bus.publish([_event(topic, n, key="document-1") for n in range(4)])
    events = bus.poll(group, [topic], limit=100)

    bus.commit(group, events[2])
    bus.commit(group, events[0])

    assert _numbers(bus.poll(group, [topic], limit=100)) == [3]


def test_a_batch_committed_newest_first_is_all_done(
    open_bus: OpenBus, name: Name, caplog: pytest.LogCaptureFixture
) -> None:
    # How the consumer commits a batch: one commit per partition does the work.
    topic, group = name("t"), name("g")
    first = open_bus()
    first.publish([_event(topic, n, key=f"document-{n % 4}") for n in range(12)])
    polled = first.poll(group, [topic], limit=100)

    with caplog.at_level(logging.WARNING):
        for event in reversed(polled):
            first.commit(group, event)
    first.close()

    assert len(polled) == 12
    assert "event_commit_skipped" not in caplog.text
    assert open_bus().poll(group, [topic], limit=100) == []


# The tests below hold the Kafka adapter to what only a network client can get
# wrong: an unreachable broker and a lost acknowledgement.


def test_unreachable_kafka_raises_dependency_unavailable() -> None:
    bus = KafkaEventBus(f"127.0.0.1:{free_port()}", "contract", timeout=2.0)
    try:
        with pytest.raises(DependencyUnavailable):
            bus.check()
        with pytest.raises(DependencyUnavailable):
            bus.publish([_event("t", 1)])
        with pytest.raises(DependencyUnavailable):
            bus.poll("g", ["t"], limit=10)
    finally:
        bus.close()


def test_retry_after_lost_acknowledgement_writes_one_copy(
    kafka_server: KafkaServer, name: Name
) -> None:
    # The broker appends the batch but its answer is lost, so the producer
    # sends the batch again; the idempotent producer's sequence numbers let
    # the broker recognise the copy.
    topic, group = name("t"), name("g")
    bus = KafkaEventBus(kafka_server.proxied_bootstrap_servers, "contract-retry")
    try:
        bus.publish([_event(topic, 0, key="document-1")])
        kafka_server.proxy.drop_produce_responses(1)

        bus.publish([_event(topic, n, key="document-1") for n in (1, 2)])

        assert kafka_server.proxy.dropped == 1
        assert _numbers(bus.poll(group, [topic], limit=100)) == [0, 1, 2]
    finally:
        bus.close()


def test_record_not_written_by_a_bus_is_skipped(
    kafka_server: KafkaServer, name: Name
) -> None:
    topic, group = name("t"), name("g")
    bus = KafkaEventBus(kafka_server.bootstrap_servers, "contract-foreign")
    foreign = KafkaProducer(bootstrap_servers=kafka_server.bootstrap_servers)
    try:
        bus.publish([_event(topic, 0, key="document-1")])
        foreign.send(topic, key=b"document-1", value=b"not an event").get(30)
        bus.publish([_event(topic, 2, key="document-1")])

        events = bus.poll(group, [topic], limit=100)
        bus.commit(group, events[-1])
        foreign.send(topic, key=b"document-1", value=b"{}").get(30)

        assert _numbers(events) == [0, 2]
        assert bus.poll(group, [topic], limit=100) == []
        assert bus.poll(group, [topic], limit=100) == []
    finally:
        foreign.close()
        bus.close()


def test_sasl_sign_in_publishes_and_polls(
    kafka_server: KafkaServer, name: Name
) -> None:
    topic, group = name("t"), name("g")
    sasl = KafkaSasl("PLAIN", SASL_USERNAME, SASL_PASSWORD)
    bus = KafkaEventBus(kafka_server.sasl_bootstrap_servers, "contract-sasl", sasl=sasl)
    try:
        bus.check()
        bus.publish([_event(topic, n, key="document-1") for n in range(3)])
        assert _numbers(bus.poll(group, [topic], limit=10)) == [0, 1, 2]
    finally:
        bus.close()


def test_wrong_sasl_password_is_refused(kafka_server: KafkaServer, name: Name) -> None:
    sasl = KafkaSasl("PLAIN", SASL_USERNAME, "not the password")
    bus = KafkaEventBus(
        kafka_server.sasl_bootstrap_servers, "contract-sasl", sasl=sasl, timeout=5.0
    )
    try:
        with pytest.raises(DependencyUnavailable):
            bus.check()
        # The broker closes the connection at sign-in, so to the bus Kafka is
        # out of reach: readiness says so and nothing is published.
        with pytest.raises(DependencyUnavailable):
            bus.publish([_event(name("t"), 1)])
    finally:
        bus.close()
