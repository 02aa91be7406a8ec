"""The EventBus port contract, run against every adapter in BUS_KINDS."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strongroom.services.common.adapters.sqlite_event_log import SqliteEventLog
from strongroom.services.common.ports import Event, EventBus

# Cluster adapters (Kafka) join this list once they have a test server.
BUS_KINDS = ["sqlite"]

OpenBus = Callable[[], EventBus]


@pytest.fixture(params=BUS_KINDS)
def open_bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenBus]:
    """Return a function that opens a new client of one shared bus."""
    opened: list[EventBus] = []

    def open_one() -> EventBus:
        if request.param == "sqlite":
            bus: EventBus = SqliteEventLog(tmp_path / "events.db")
        else:
            raise NotImplementedError(request.param)
        opened.append(bus)
        return bus

    yield open_one
    for bus in opened:
        bus.close()


@pytest.fixture
def bus(open_bus: OpenBus) -> EventBus:
    return open_bus()


def _event(topic: str, number: int) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        topic=topic,
        key=f"key-{number}",
        payload={"number": number, "sha256": "ab" * 32},
        time=f"2024-05-01T10:00:00.{number:06d}+00:00",
    )


def _numbers(events: list[Event]) -> list[int]:
    return [e.payload["number"] for e in events]


def test_poll_returns_events_in_publish_order(bus: EventBus) -> None:
    published = [_event("t", n) for n in range(5)]
    bus.publish(published[:2])
    bus.publish(published[2:])

    polled = bus.poll("g", ["t"], limit=100)

    assert [e.id for e in polled] == [e.id for e in published]
    assert [(e.key, e.payload, e.time) for e in polled] == [
        (e.key, e.payload, e.time) for e in published
    ]
    offsets = [e.offset for e in polled]
    assert offsets == sorted(set(offsets))


def test_poll_filters_by_topic(bus: EventBus) -> None:
    bus.publish([_event("a", 1), _event("b", 2), _event("c", 3), _event("a", 4)])

    assert _numbers(bus.poll("g1", ["a"], limit=100)) == [1, 4]
    assert _numbers(bus.poll("g2", ["b", "c"], limit=100)) == [2, 3]
    assert bus.poll("g3", ["missing"], limit=100) == []
    assert bus.poll("g4", [], limit=100) == []


def test_publishing_same_event_twice_keeps_one(bus: EventBus) -> None:
    event = _event("t", 1)

    bus.publish([event])
    bus.publish([event, _event("t", 2)])

    assert _numbers(bus.poll("g", ["t"], limit=100)) == [1, 2]


def test_commit_moves_group_past_the_event(bus: EventBus) -> None:
    bus.publish([_event("t", n) for n in range(4)])
    first_two = bus.poll("g", ["t"], limit=2)

    bus.commit("g", first_two[-1])

    assert _numbers(bus.poll("g", ["t"], limit=100)) == [2, 3]


def test_groups_keep_independent_offsets(bus: EventBus) -> None:
    bus.publish([_event("t", n) for n in range(3)])
    events = bus.poll("g1", ["t"], limit=100)

    bus.commit("g1", events[-1])

    assert bus.poll("g1", ["t"], limit=100) == []
    assert _numbers(bus.poll("g2", ["t"], limit=100)) == [0, 1, 2]


def test_another_client_sees_events_and_offsets(open_bus: OpenBus) -> None:
    first = open_bus()
    first.publish([_event("t", n) for n in range(3)])
    first.commit("g", first.poll("g", ["t"], limit=1)[0])
    first.close()

    second = open_bus()

    assert _numbers(second.poll("g", ["t"], limit=100)) == [1, 2]
    assert _numbers(second.poll("fresh", ["t"], limit=100)) == [0, 1, 2]
    second.publish([_event("t", 3)])
    third = open_bus()
    assert _numbers(third.poll("g", ["t"], limit=100)) == [1, 2, 3]


def test_poll_respects_limit(bus: EventBus) -> None:
    bus.publish([_event("t", n) for n in range(10)])

    assert _numbers(bus.poll("g", ["t"], limit=3)) == [0, 1, 2]
    assert len(bus.poll("g", ["t"], limit=1)) == 1
    assert len(bus.poll("g", ["t"], limit=100)) == 10


def test_commit_of_older_event_does_not_move_back(bus: EventBus) -> None:
    bus.publish([_event("t", n) for n in range(4)])
    events = bus.poll("g", ["t"], limit=100)

    bus.commit("g", events[2])
    bus.commit("g", events[0])

    assert _numbers(bus.poll("g", ["t"], limit=100)) == [3]
