"""What the redaction service does with the events it consumes."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Connection

from strongroom.services.common.audit_trail import SYSTEM, stage_audit
from strongroom.services.common.database import utc_now
from strongroom.services.common.events import (
    DOCUMENT_CLEANED,
    DOCUMENT_INGESTED,
    EventHandler,
    stage_event,
)
from strongroom.services.common.ports import Event, ObjectStore
from strongroom.services.common.runtime import DERIVED
from strongroom.services.redaction import store
from strongroom.services.redaction.domain import POLICY, redact

logger = logging.getLogger(__name__)

SERVICE = "redaction"


def handlers(objects: ObjectStore) -> dict[str, EventHandler]:
    def on_document_ingested(conn: Connection, event: Event) -> None:
        """Redact a newly ingested document and announce the cleaned text."""
        payload = event.payload
        document_id, project_id = payload["document_id"], payload["project_id"]
        text = objects.read(DERIVED, payload["text_sha256"]).decode("utf-8")
        redaction = redact(text)
        redacted = objects.put(DERIVED, [redaction.text.encode("utf-8")])
        counts = redaction.counts_by_type()
        store.insert_report(
            conn,
            store.ReportRow(
                document_id=document_id,
                project_id=project_id,
                policy=POLICY,
                findings=redaction.findings,
                redacted_text_sha256=redacted.sha256,
                redacted_text_length=len(redaction.text),
                created_at=utc_now(),
            ),
        )
        stage_event(
            conn,
            DOCUMENT_CLEANED,
            document_id,
            {
                "document_id": document_id,
                "project_id": project_id,
                "policy": POLICY,
                "text_sha256": redacted.sha256,
                "text_length": len(redaction.text),
                "counts_by_type": counts,
            },
        )
        stage_audit(
            conn,
            service=SERVICE,
            action="document.redact",
            actor=SYSTEM,
            resource_type="document",
            resource_id=document_id,
            project_id=project_id,
            details={
                "policy": POLICY,
                "findings": len(redaction.findings),
                **{f"count.{k}": v for k, v in sorted(counts.items())},
            },
        )
        logger.info(
            "document_redacted",
            extra={"document_id": document_id, "findings": len(redaction.findings)},
        )

    return {DOCUMENT_INGESTED: on_document_ingested}
