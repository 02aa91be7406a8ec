"""The cluster event bus: one Kafka topic per event type, keyed by document.

Events with the same key land in the same partition, so one document's or
project's events keep their order; events with different keys may interleave.
Each consumer group reads through its own ``KafkaConsumer``, and offsets are
committed only by ``commit``, so an event a consumer polled but never
committed is delivered again, to this bus's next poll or to the next member of
the group. Publishing uses Kafka's idempotent producer, which drops the
copies its own retries would create; an event published twice on purpose
arrives twice, and consumers drop it by id (see ``events.is_processed``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka import errors as kafka_errors
from kafka.admin import KafkaAdminClient
from kafka.structs import MemberState, OffsetAndMetadata

from strongroom.services.common.errors import (
    Conflict,
    DependencyUnavailable,
    InternalError,
    InvalidArgument,
    PermissionDenied,
    QuotaExceeded,
    StrongroomError,
)
from strongroom.services.common.ports import Event

logger = logging.getLogger(__name__)

PARTITIONS = 3
# -1 asks the broker for its default.replication.factor, so a three-broker
# cluster keeps three copies and a single test broker keeps one.
REPLICATION_FACTOR = -1
# How long one consumer.poll waits for records before poll() re-checks
# whether the group has caught up with the end of its partitions.
_POLL_STEP_MS = 100


@dataclass(frozen=True)
class KafkaSasl:
    """How the bus signs in to the brokers; an empty mechanism means it does not."""

    mechanism: str = ""
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass
class _Group:
    """One consumer group's consumer and what this bus knows of its offsets."""

    consumer: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    topics: frozenset[str] = frozenset()
    generation: int = -1
    # Next offset to read per partition: the committed offset as this bus
    # knows it. Every poll starts here, so uncommitted events come back.
    committed: dict[Any, int] = field(default_factory=dict)
    # Offset after the last record handed out per partition.
    fetched: dict[Any, int] = field(default_factory=dict)
    # (event id, topic, offset) -> partition, for events polled since the
    # last poll or not yet committed; Event.offset alone cannot name the
    # partition.
    polled: dict[tuple[str, str, int], Any] = field(default_factory=dict)

    def forget_partitions(self) -> None:
        self.committed.clear()
        self.fetched.clear()
        self.polled.clear()


class KafkaEventBus:
    """The EventBus port on Kafka: durable, ordered per key, at least once."""

    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str,
        *,
        timeout: float = 30.0,
        is_tls: bool = False,
        ca_file: str = "",
        sasl: KafkaSasl | None = None,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._timeout = timeout
        self._security = _security_config(is_tls, ca_file, sasl)
        self._lock = threading.Lock()
        self._admin: Any = None
        self._producer: Any = None
        self._groups: dict[str, _Group] = {}
        self._topics: set[str] = set()
        self._is_closed = False

    def publish(self, events: Sequence[Event]) -> None:
        """Append events and return once the broker has acknowledged every one.

        Raises:
            DependencyUnavailable: Kafka cannot be reached or did not confirm.
            QuotaExceeded: an event is larger than the broker accepts.
        """
        if not events:
            return
        self._ensure_topics(e.topic for e in events)
        try:
            producer = self._open_producer()
            futures = [
                producer.send(e.topic, key=e.key.encode(), value=_encode(e))
                for e in events
            ]
            producer.flush(timeout=self._timeout)
            for future in futures:
                future.get(timeout=self._timeout)
        except kafka_errors.KafkaError as exc:
            raise _translate(
                exc, f"Kafka did not confirm {len(events)} events."
            ) from exc
        logger.debug("events_published", extra={"count": len(events)})

    def poll(self, group: str, topics: Sequence[str], limit: int) -> list[Event]:
        """Return up to ``limit`` uncommitted events of ``topics`` for ``group``.

        Every poll starts at the group's committed offsets, so events returned
        earlier but not committed come back. Order holds per key only.

        Raises:
            DependencyUnavailable: Kafka cannot be reached or the group cannot
                be joined.
        """
        if not topics or limit <= 0:
            return []
        self._ensure_topics(topics)
        state = self._open_group(group)
        with state.lock:
            try:
                return self._poll_group(state, group, frozenset(topics), limit)
            except kafka_errors.KafkaError as exc:
                raise _translate(
                    exc, f"Kafka could not be polled for group '{group}'."
                ) from exc

    def commit(self, group: str, event: Event) -> None:
        """Mark ``event`` and the events before it in its partition as done.

        Only an event this bus polled for ``group`` can be committed. After a
        rebalance the bus no longer knows the event's partition and skips the
        commit; the event is then delivered again, which handlers tolerate.

        Raises:
            DependencyUnavailable: Kafka cannot be reached.
            Conflict: the group rebalanced and the partition moved elsewhere.
        """
        with self._lock:
            self._check_open()
            state = self._groups.get(group)
        if state is None:
            self._skip_commit(group, event)
            return
        with state.lock:
            partition = state.polled.get((event.id, event.topic, event.offset))
            if partition is None:
                self._skip_commit(group, event)
                return
            next_offset = event.offset + 1
            if next_offset <= state.committed.get(partition, -1):
                return
            try:
                state.consumer.commit(
                    offsets={partition: OffsetAndMetadata(next_offset, "", -1)},
                    timeout_ms=self._timeout_ms,
                )
            except kafka_errors.KafkaError as exc:
                raise _translate(
                    exc, f"Kafka did not commit event '{event.id}' for '{group}'."
                ) from exc
            state.committed[partition] = next_offset

    def check(self) -> None:
        """Raise DependencyUnavailable unless a Kafka broker answers now."""
        try:
            self._open_admin().describe_cluster()
        except kafka_errors.KafkaError as exc:
            raise DependencyUnavailable(
                "Kafka cannot be reached.", code="event_bus_unavailable"
            ) from exc

    @staticmethod
    def _skip_commit(group: str, event: Event) -> None:
        # Not committing only means the event comes back; handlers drop it by id.
        logger.warning(
            "event_commit_skipped",
            extra={"event_id": event.id, "topic": event.topic, "group": group},
        )

    def close(self) -> None:
        with self._lock:
            if self._is_closed:
                return
            self._is_closed = True
            groups = list(self._groups.values())
            self._groups.clear()
        for state in groups:
            with state.lock:
                # Leaving the group hands its partitions to the other members
                # now instead of after the session timeout.
                state.consumer.close(autocommit=False, timeout_ms=self._timeout_ms)
        if self._producer is not None:
            self._producer.close(timeout=self._timeout)
        if self._admin is not None:
            self._admin.close()

    @property
    def _timeout_ms(self) -> int:
        return int(self._timeout * 1000)

    def _common_config(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self._bootstrap_servers,
            "client_id": self._client_id,
            "bootstrap_timeout_ms": self._timeout_ms,
            "request_timeout_ms": self._timeout_ms,
            **self._security,
        }

    def _open_admin(self) -> Any:
        with self._lock:
            self._check_open()
            if self._admin is None:
                self._admin = KafkaAdminClient(**self._common_config())
            return self._admin

    def _open_producer(self) -> Any:
        with self._lock:
            self._check_open()
            if self._producer is None:
                self._producer = KafkaProducer(
                    **self._common_config(),
                    acks="all",
                    enable_idempotence=True,
                    max_block_ms=self._timeout_ms,
                    delivery_timeout_ms=2 * self._timeout_ms,
                    allow_auto_create_topics=False,
                )
            return self._producer

    def _open_group(self, group: str) -> _Group:
        with self._lock:
            self._check_open()
            state = self._groups.get(group)
            if state is not None:
                return state
        try:
            consumer = KafkaConsumer(
                **self._common_config(),
                group_id=group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                allow_auto_create_topics=False,
            )
        except kafka_errors.KafkaError as exc:
            raise _translate(exc, f"Kafka could not be joined as '{group}'.") from exc
        with self._lock:
            if self._is_closed or group in self._groups:
                consumer.close(autocommit=False, timeout_ms=self._timeout_ms)
                self._check_open()
                return self._groups[group]
            self._groups[group] = state = _Group(consumer)
            return state

    def _check_open(self) -> None:
        if self._is_closed:
            raise InternalError("The event bus was used after close.", code="closed")

    def _ensure_topics(self, topics: Iterable[str]) -> None:
        """Create the topics this bus has not seen yet; existing ones are fine."""
        with self._lock:
            missing = sorted(set(topics) - self._topics)
        if not missing:
            return
        try:
            result = self._open_admin().create_topics(
                {
                    topic: {
                        "num_partitions": PARTITIONS,
                        "replication_factor": REPLICATION_FACTOR,
                    }
                    for topic in missing
                },
                timeout_ms=self._timeout_ms,
                raise_errors=False,
            )
            for topic in result["topics"]:
                error = kafka_errors.for_code(topic["error_code"])
                if error not in (
                    kafka_errors.NoError,
                    kafka_errors.TopicAlreadyExistsError,
                ):
                    raise error(topic["error_message"])
            self._open_admin().wait_for_topics(missing, timeout_ms=self._timeout_ms)
        except kafka_errors.KafkaError as exc:
            raise _translate(
                exc, f"Kafka could not create {len(missing)} topics."
            ) from exc
        logger.debug("topics_ready", extra={"topics": missing})
        with self._lock:
            self._topics.update(missing)

    def _poll_group(
        self, state: _Group, group: str, topics: frozenset[str], limit: int
    ) -> list[Event]:
        consumer = state.consumer
        if state.topics != topics:
            consumer.subscribe(topics=sorted(topics))
            state.topics = topics
            # The group leader assigns only the partitions its metadata knows;
            # joining before that metadata arrives would leave a new topic out
            # until the next rebalance.
            for topic in topics:
                consumer.partitions_for_topic(topic)
        self._follow_rebalance(state)
        self._rewind(state)
        deadline = time.monotonic() + self._timeout
        events: list[Event] = []
        end_offsets: dict[Any, int] = {}
        has_polled = False
        while len(events) < limit:
            assignment = set(consumer.assignment())
            is_stable = consumer.group_metadata().state == MemberState.STABLE
            if is_stable and assignment:
                if not assignment <= end_offsets.keys():
                    end_offsets = consumer.end_offsets(
                        list(assignment), self._timeout_ms
                    )
                if self._is_caught_up(consumer, assignment, end_offsets):
                    break
            elif is_stable and has_polled:
                # More members than partitions: this one has nothing to read.
                break
            if time.monotonic() >= deadline:
                if not assignment:
                    raise DependencyUnavailable(
                        f"Kafka assigned no partitions to group '{group}' in time.",
                        code="event_bus_unavailable",
                    )
                break
            batch = consumer.poll(
                timeout_ms=_POLL_STEP_MS, max_records=limit - len(events)
            )
            has_polled = True
            self._follow_rebalance(state)
            events.extend(self._accept(state, batch))
        return events

    def _is_caught_up(
        self, consumer: Any, assignment: set[Any], end_offsets: dict[Any, int]
    ) -> bool:
        return all(
            (consumer.position(partition, self._timeout_ms) or 0)
            >= end_offsets[partition]
            for partition in assignment
        )

    @staticmethod
    def _follow_rebalance(state: _Group) -> None:
        """Forget offsets known for partitions a rebalance may have moved."""
        generation = int(state.consumer.group_metadata().generation_id)
        if generation != state.generation:
            state.forget_partitions()
            state.generation = generation

    @staticmethod
    def _rewind(state: _Group) -> None:
        """Seek back to the committed offset where events were handed out."""
        assignment = set(state.consumer.assignment())
        for partition, fetched in list(state.fetched.items()):
            committed = state.committed.get(partition, fetched)
            if fetched > committed and partition in assignment:
                state.consumer.seek(partition, committed)
                state.fetched[partition] = committed

    def _accept(self, state: _Group, batch: dict[Any, list[Any]]) -> list[Event]:
        # Forget events already committed. They stay known until the next
        # poll, so committing a batch newest first (one commit per partition)
        # finds each older event's partition and sees it is already covered.
        state.polled = {
            polled_id: partition
            for polled_id, partition in state.polled.items()
            if polled_id[2] >= state.committed.get(partition, -1)
        }
        events: list[Event] = []
        for partition, records in batch.items():
            for record in records:
                # The first record read from a partition sits at the committed
                # offset (or at the start of the log when none is committed).
                state.committed.setdefault(partition, record.offset)
                state.fetched[partition] = record.offset + 1
                event = _decode(record)
                if event is None:
                    if state.committed[partition] == record.offset:
                        # Nothing will ever commit a record that is never
                        # handed out; stepping over it here stops the next
                        # polls from reading it again.
                        state.committed[partition] = record.offset + 1
                    continue
                state.polled[(event.id, event.topic, event.offset)] = partition
                events.append(event)
        return events


def _security_config(
    is_tls: bool, ca_file: str, sasl: KafkaSasl | None
) -> dict[str, Any]:
    """kafka-python's settings for TLS (checked against ca_file) and SASL."""
    config: dict[str, Any] = {}
    if is_tls:
        # None means the system's CAs.
        config["ssl_cafile"] = ca_file or None
    if sasl is None or not sasl.mechanism:
        config["security_protocol"] = "SSL" if is_tls else "PLAINTEXT"
        return config
    return {
        **config,
        "security_protocol": "SASL_SSL" if is_tls else "SASL_PLAINTEXT",
        "sasl_mechanism": sasl.mechanism,
        "sasl_plain_username": sasl.username,
        "sasl_plain_password": sasl.password,
    }


def _encode(event: Event) -> bytes:
    value = {
        "id": event.id,
        "key": event.key,
        "payload": event.payload,
        "time": event.time,
    }
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _decode(record: Any) -> Event | None:
    try:
        value = json.loads(record.value)
        return Event(
            id=str(value["id"]),
            topic=str(record.topic),
            key=str(value["key"]),
            payload=dict(value["payload"]),
            time=str(value["time"]),
            offset=int(record.offset),
        )
    except (ValueError, TypeError, KeyError):
        # Something other than this bus wrote to the topic. Skipping the
        # record keeps the group moving; committing a later event passes it.
        logger.warning(
            "event_undecodable",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
        )
        return None


def _translate(exc: kafka_errors.KafkaError, message: str) -> StrongroomError:
    """Pick the most specific Strongroom error for a kafka-python error."""
    if isinstance(
        exc,
        (kafka_errors.AuthorizationError, kafka_errors.SaslAuthenticationFailedError),
    ):
        return PermissionDenied(message, code="event_bus_denied")
    if isinstance(
        exc,
        (kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordListTooLargeError),
    ):
        return QuotaExceeded(message, code="event_too_large")
    if isinstance(exc, kafka_errors.InvalidTopicError):
        return InvalidArgument(message, code="invalid_topic")
    if isinstance(
        exc,
        (
            kafka_errors.CommitFailedError,
            kafka_errors.IllegalGenerationError,
            kafka_errors.UnknownMemberIdError,
            kafka_errors.RebalanceInProgressError,
        ),
    ):
        return Conflict(message, code="consumer_group_rebalanced")
    if isinstance(
        exc, (kafka_errors.RetriableError, kafka_errors.BrokerNotAvailableError)
    ):
        return DependencyUnavailable(message, code="event_bus_unavailable")
    return InternalError(message, code="event_bus_failed")
