"""The ports: small interfaces that every backend adapter implements.

Configuration picks the adapter; code that holds a port never asks which
one it is. Each port has an embedded default and passes the same contract
test suite as its cluster adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from strongroom.services.common.auth import Principal


@dataclass(frozen=True)
class Event:
    """One message on the bus: ids, hashes and counts, never document text."""

    id: str
    topic: str
    key: str
    payload: dict[str, Any]
    time: str
    # Position in the log, filled in by the bus when the event is polled.
    offset: int = 0


class EventBus(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Durably append events, returning only once every one is stored.

        A retry inside the bus never stores an event twice, but a second
        publish of the same event may (Kafka keeps both); consumers drop
        repeats by event id, so delivery stays at least once and effect once.
        """

    def poll(self, group: str, topics: Sequence[str], limit: int) -> list[Event]:
        """Return the next uncommitted events for a consumer group, in order."""

    def commit(self, group: str, event: Event) -> None:
        """Mark every event up to and including ``event`` as done for ``group``."""

    def check(self) -> None:
        """Raise DependencyUnavailable unless the backend answers now."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    size: int


class ObjectStore(Protocol):
    def put(self, bucket: str, chunks: Iterable[bytes]) -> StoredObject:
        """Store bytes under their SHA-256; storing the same bytes again is a no-op.

        The object becomes visible only once it is complete.
        """

    def read(self, bucket: str, sha256: str) -> bytes:
        """Return the object's bytes, checked against its hash.

        Raises:
            NotFound: no object has that hash.
            InternalError: the stored bytes no longer match their hash.
        """

    def stream(self, bucket: str, sha256: str, chunk_size: int) -> Iterator[bytes]:
        """Yield the object's bytes in chunks, checking the hash at the end."""

    def exists(self, bucket: str, sha256: str) -> bool: ...

    def batch(self) -> AbstractContextManager[None]:
        """A block whose puts become durable together when it ends: one flush
        to disk for many objects. Objects are durable once the block has
        left without an error; store references to them after it."""

    def check(self) -> None:
        """Raise DependencyUnavailable unless the backend answers now."""


class IdentityProvider(Protocol):
    def verify(self, token: str) -> Principal:
        """Check a bearer token's signature, issuer, audience and expiry.

        Raises:
            Unauthenticated: the token is missing, malformed, expired or forged.
            DependencyUnavailable: the issuer's keys cannot be fetched.
        """


@dataclass(frozen=True)
class AuditQuery:
    text: str = ""
    action: str = ""
    resource_id: str = ""
    actor_subject: str = ""
    project_id: str = ""
    outcome: str = ""
    resource_type: str = ""
    # Events that touched this document: as their resource or among the
    # documents they name (the document's lineage).
    document_id: str = ""
    # Every event one request caused, across the services it crossed.
    request_id: str = ""
    since: str = ""
    until: str = ""
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class AuditSearchResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


class AuditIndex(Protocol):
    def add(self, entries: Sequence[dict[str, Any]]) -> None:
        """Index chained audit entries; adding an entry twice keeps one copy."""

    def search(self, query: AuditQuery) -> AuditSearchResult:
        """Return matching entries, newest first (by event time, then chain
        sequence), with the total match count."""

    def remove(self, sequences: Sequence[int]) -> None:
        """Drop entries from the index (their retention ended)."""

    def last_sequence(self) -> int:
        """Return the highest chain sequence indexed, 0 when empty."""

    def check(self) -> None:
        """Raise DependencyUnavailable unless the backend answers now."""
