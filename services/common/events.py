"""Events on the bus: topic names, the outbox, the relay and the consumer loop.

Delivery is at least once. A service writes each event into its own outbox
table in the same transaction as the change it describes; the relay then
publishes it. Consumers record the ids of events they handled in the same
transaction as the handler's own change, so redelivery changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.database import (
    bulk_insert,
    is_database_unavailable,
    is_disk_full,
    utc_now,
)
from strongroom.services.common.errors import DependencyUnavailable, StrongroomError
from strongroom.services.common.ports import Event, EventBus

logger = logging.getLogger(__name__)

DOCUMENT_INGESTED = "document.ingested"
DOCUMENT_CLEANED = "document.cleaned"
# A redacted document kept out of annotation: held for review, a duplicate
# or of low quality under its project's policy.
DOCUMENT_HELD = "document.held"
TASK_CREATED = "task.created"
ANNOTATION_SUBMITTED = "annotation.submitted"
TASK_REVIEWED = "task.reviewed"
EXPORT_CREATED = "export.created"
AUDIT_EVENT = "audit.event"
DEAD_LETTER = "dead_letter"

EventHandler = Callable[[Connection, Event], None]
# Handles a run of events of one topic in one transaction, for throughput.
BatchHandler = Callable[[Connection, Sequence[Event]], None]


def batched(
    handler: EventHandler,
    around: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> BatchHandler:
    """Handle a run of events one after another in one transaction, inside
    ``around`` (an object store's batch, say): for handlers whose cost is the
    commit and the flush, not the work."""

    def handle_all(conn: Connection, events: Sequence[Event]) -> None:
        with around():
            for event in events:
                handler(conn, event)

    return handle_all


# Statements built once: parsing a text clause costs more than running it.
_STAGE = sa.text(
    "INSERT INTO outbox (event_id, topic, event_key, payload, created_at) "
    "VALUES (:id, :topic, :key, :payload, :at)"
)
_IS_PROCESSED = sa.text("SELECT 1 FROM processed_events WHERE event_id = :id")
_PROCESSED_AMONG = sa.text(
    "SELECT event_id FROM processed_events WHERE event_id IN :ids"
).bindparams(sa.bindparam("ids", expanding=True))


def stage_event(
    conn: Connection, topic: str, key: str, payload: Mapping[str, Any]
) -> str:
    """Write an event into the service's outbox inside the caller's transaction."""
    event_id = str(uuid.uuid4())
    conn.execute(
        _STAGE,
        {
            "id": event_id,
            "topic": topic,
            "key": key,
            "payload": json.dumps(payload, sort_keys=True),
            "at": utc_now(),
        },
    )
    return event_id


def is_processed(conn: Connection, event: Event) -> bool:
    row = conn.execute(_IS_PROCESSED, {"id": event.id}).first()
    return row is not None


def mark_processed(conn: Connection, *events: Event) -> None:
    at = utc_now()
    bulk_insert(
        conn,
        "processed_events",
        ("event_id", "processed_at"),
        [(event.id, at) for event in events],
    )


def processed_ids(conn: Connection, events: Sequence[Event]) -> set[str]:
    ids = [event.id for event in events]
    return {row.event_id for row in conn.execute(_PROCESSED_AMONG, {"ids": ids})}


def runs_by_topic(events: Sequence[Event]) -> Iterator[list[Event]]:
    """Split events into runs of consecutive events of one topic."""
    run: list[Event] = []
    for event in events:
        if run and run[-1].topic != event.topic:
            yield run
            run = []
        run.append(event)
    if run:
        yield run


class Worker(threading.Thread):
    """A daemon loop that runs ``step`` until stopped, pausing when idle."""

    def __init__(self, name: str, idle_seconds: float) -> None:
        super().__init__(name=name, daemon=True)
        self._stopping = threading.Event()
        self._idle_seconds = idle_seconds

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                did_work = self.step()
            except Exception:
                # A backend that is down must not kill the loop; it retries.
                logger.warning(
                    "worker_step_failed", extra={"worker": self.name}, exc_info=True
                )
                did_work = False
            if not did_work:
                self._stopping.wait(self._idle_seconds)

    def step(self) -> bool:
        raise NotImplementedError


class OutboxRelay(Worker):
    """Publishes outbox rows to the bus, oldest first, then marks them relayed."""

    def __init__(
        self,
        engine: Engine,
        bus: EventBus,
        batch_size: int = 500,
        idle_seconds: float = 0.05,
    ) -> None:
        super().__init__("outbox-relay", idle_seconds=idle_seconds)
        self.engine = engine
        self.bus = bus
        self.batch_size = batch_size

    def step(self) -> bool:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT position, event_id, topic, event_key, payload, created_at "
                    "FROM outbox WHERE relayed_at IS NULL ORDER BY position LIMIT :n"
                ),
                {"n": self.batch_size},
            ).all()
        if not rows:
            return False
        events = [
            Event(
                id=r.event_id,
                topic=r.topic,
                key=r.event_key,
                payload=json.loads(r.payload),
                time=r.created_at,
            )
            for r in rows
        ]
        self.bus.publish(events)
        # Mark exactly the rows published. On PostgreSQL a transaction holding
        # a lower position can commit after the read above; a range update
        # would mark its event relayed without it ever being published.
        mark = sa.text(
            "UPDATE outbox SET relayed_at = :at "
            "WHERE relayed_at IS NULL AND position IN :positions"
        ).bindparams(sa.bindparam("positions", expanding=True))
        with self.engine.begin() as conn:
            conn.execute(
                mark, {"at": utc_now(), "positions": [r.position for r in rows]}
            )
        return True


class EventConsumer(Worker):
    """Feeds a consumer group's events to their handlers, committing after each.

    A handler that keeps failing does not block the group forever: after
    ``max_attempts`` the event goes to the dead-letter topic with the reason.
    A backend that is down (DependencyUnavailable, a lost database) is no
    fault of the event's: the consumer waits for it, however long it takes,
    and counts no attempt. Topics with a batch handler are handled a run of
    events per transaction; a run that fails for any other reason is handled
    again one event at a time, so only a bad event is dead-lettered.
    """

    def __init__(
        self,
        group: str,
        bus: EventBus,
        engine: Engine,
        handlers: Mapping[str, EventHandler],
        max_attempts: int = 5,
        backend_retry_seconds: float = 1.0,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
    ) -> None:
        super().__init__(f"consumer-{group}", idle_seconds=0.05)
        # Pause between tries of an event while a backend it needs is down.
        self.backend_retry_seconds = backend_retry_seconds
        self.group = group
        self.bus = bus
        self.engine = engine
        self.handlers = dict(handlers)
        self.batch_handlers = dict(batch_handlers or {})
        self.max_attempts = max_attempts
        self._poll_limit = 500 if self.batch_handlers else 50

    def step(self) -> bool:
        topics = [*self.handlers, *self.batch_handlers]
        events = self.bus.poll(self.group, topics, limit=self._poll_limit)
        for run in runs_by_topic(events):
            if run[0].topic in self.batch_handlers:
                self._deliver_batch(run)
            else:
                for event in run:
                    self._deliver(event)
        # Newest first: one commit per partition covers the events before it.
        for event in reversed(events):
            self.bus.commit(self.group, event)
        return bool(events)

    def _deliver_batch(self, run: list[Event]) -> None:
        handler = self.batch_handlers[run[0].topic]
        while True:
            try:
                with self.engine.begin() as conn:
                    done = processed_ids(conn, run)
                    fresh = [event for event in run if event.id not in done]
                    if fresh:
                        handler(conn, fresh)
                        mark_processed(conn, *fresh)
                return
            except Exception as exc:
                if not self._is_outage(exc):
                    break
                self._wait_for_backend(run[0])
        for event in run:
            self._deliver(event)

    @staticmethod
    def _is_outage(exc: Exception) -> bool:
        return (
            isinstance(exc, DependencyUnavailable)
            or is_database_unavailable(exc)
            or is_disk_full(exc)
        )

    def _deliver(self, event: Event) -> None:
        attempt = 0
        while attempt < self.max_attempts:
            try:
                self._handle_once(event)
                return
            except Exception as exc:
                if self._is_outage(exc):
                    # The event is fine, a backend is not: wait for it as long
                    # as it takes rather than dead-letter good events.
                    self._wait_for_backend(event)
                    continue
                attempt += 1
                reason = self._failure_reason(event, exc, attempt)
            if self._stopping.wait(min(0.1 * 2**attempt, 2.0)):
                raise InterruptedError("consumer stopping")
        self._dead_letter(event, reason)

    def _failure_reason(self, event: Event, exc: Exception, attempt: int) -> str:
        if isinstance(exc, StrongroomError):
            return exc.code
        logger.warning(
            "event_handler_failed",
            extra={"event_id": event.id, "topic": event.topic, "attempt": attempt},
            exc_info=exc,
        )
        return type(exc).__name__

    def _wait_for_backend(self, event: Event) -> None:
        logger.warning(
            "event_waits_for_backend",
            extra={"event_id": event.id, "topic": event.topic},
        )
        if self._stopping.wait(self.backend_retry_seconds):
            raise InterruptedError("consumer stopping")

    def _handle_once(self, event: Event) -> None:
        with self.engine.begin() as conn:
            if is_processed(conn, event):
                return
            if event.topic in self.batch_handlers:
                self.batch_handlers[event.topic](conn, [event])
            else:
                self.handlers[event.topic](conn, event)
            mark_processed(conn, event)

    def _dead_letter(self, event: Event, reason: str) -> None:
        logger.error(
            "event_dead_lettered",
            extra={"event_id": event.id, "topic": event.topic, "reason": reason},
        )
        self.bus.publish(
            [
                Event(
                    id=str(uuid.uuid4()),
                    topic=DEAD_LETTER,
                    key=event.key,
                    payload={
                        "group": self.group,
                        "event_id": event.id,
                        "topic": event.topic,
                        "reason": reason,
                    },
                    time=utc_now(),
                )
            ]
        )


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.05
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
