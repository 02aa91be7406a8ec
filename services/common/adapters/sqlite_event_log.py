"""The embedded event bus: a durable, append-only event log in SQLite (WAL).

Every service process opens the same file. Publishing is idempotent by event
id; each consumer group keeps one committed offset, so a restarted consumer
resumes after the last event it finished.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from strongroom.services.common.database import check_database, open_sqlite
from strongroom.services.common.errors import DependencyUnavailable
from strongroom.services.common.ports import Event

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        event_key TEXT NOT NULL,
        payload TEXT NOT NULL,
        time TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_topic ON events (topic, position)",
    """CREATE TABLE IF NOT EXISTS consumer_offsets (
        group_name TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    )""",
)


class SqliteEventLog:
    def __init__(self, path: Path) -> None:
        self.engine = open_sqlite(path, _SCHEMA)
        # The highest position this client committed per group: committing
        # an older event again changes nothing, so it needs no write.
        self._committed_here: dict[str, int] = {}

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        rows = [
            {
                "id": e.id,
                "topic": e.topic,
                "key": e.key,
                "payload": json.dumps(e.payload, sort_keys=True),
                "time": e.time,
            }
            for e in events
        ]
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO events "
                        "(event_id, topic, event_key, payload, time) "
                        "VALUES (:id, :topic, :key, :payload, :time) "
                        "ON CONFLICT (event_id) DO NOTHING"
                    ),
                    rows,
                )
        except sa.exc.OperationalError as exc:
            raise DependencyUnavailable(
                "The event log could not be written.", code="event_log_unavailable"
            ) from exc

    def check(self) -> None:
        check_database(self.engine, "event log")

    def poll(self, group: str, topics: Sequence[str], limit: int) -> list[Event]:
        if not topics:
            return []
        query = sa.text(
            "SELECT position, event_id, topic, event_key, payload, time FROM events "
            "WHERE position > :after AND topic IN :topics ORDER BY position LIMIT :n"
        ).bindparams(sa.bindparam("topics", expanding=True))
        with self.engine.connect() as conn:
            after = self._committed(conn, group)
            rows = conn.execute(
                query, {"after": after, "topics": list(topics), "n": limit}
            ).all()
        return [
            Event(
                id=r.event_id,
                topic=r.topic,
                key=r.event_key,
                payload=json.loads(r.payload),
                time=r.time,
                offset=r.position,
            )
            for r in rows
        ]

    def commit(self, group: str, event: Event) -> None:
        if event.offset <= self._committed_here.get(group, 0):
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO consumer_offsets (group_name, position) "
                    "VALUES (:group, :position) ON CONFLICT (group_name) "
                    "DO UPDATE SET position = MAX(position, excluded.position)"
                ),
                {"group": group, "position": event.offset},
            )
        self._committed_here[group] = event.offset

    def close(self) -> None:
        self.engine.dispose()

    @staticmethod
    def _committed(conn: sa.Connection, group: str) -> int:
        row = conn.execute(
            sa.text("SELECT position FROM consumer_offsets WHERE group_name = :g"),
            {"g": group},
        ).first()
        return int(row.position) if row else 0
