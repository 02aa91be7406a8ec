"""What the audit service does with the events it consumes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from strongroom.services.audit.store import ChainFile
from strongroom.services.common.events import AUDIT_EVENT, BatchHandler
from strongroom.services.common.ports import AuditIndex, Event


def batch_handlers(chain: ChainFile, index: AuditIndex) -> dict[str, BatchHandler]:
    def on_audit_events(conn: Connection, events: Sequence[Event]) -> None:
        """Chain a run of audit events with one write, then make them searchable."""
        entries = chain.append_many(conn, [event.payload for event in events])
        if entries:
            index.add(entries)

    return {AUDIT_EVENT: on_audit_events}
