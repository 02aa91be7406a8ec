"""What the audit service does with the events it consumes."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from strongroom.services.audit.store import ChainFile
from strongroom.services.common.events import AUDIT_EVENT, EventHandler
from strongroom.services.common.ports import AuditIndex, Event


def handlers(chain: ChainFile, index: AuditIndex) -> dict[str, EventHandler]:
    def on_audit_event(conn: Connection, event: Event) -> None:
        """Chain an audit event, then make it searchable."""
        entry = chain.append(conn, event.payload)
        if entry is not None:
            index.add([entry])

    return {AUDIT_EVENT: on_audit_event}
