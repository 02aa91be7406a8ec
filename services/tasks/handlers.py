"""What the tasks service does with the events it consumes."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.engine import Connection

from strongroom.services.common.audit_trail import SYSTEM, stage_audit
from strongroom.services.common.auth import Principal
from strongroom.services.common.database import utc_now
from strongroom.services.common.events import (
    ANNOTATION_SUBMITTED,
    DOCUMENT_CLEANED,
    TASK_CREATED,
    EventHandler,
    stage_event,
)
from strongroom.services.common.ports import Event
from strongroom.services.tasks import store
from strongroom.services.tasks.domain import QUEUED, Task

logger = logging.getLogger(__name__)

SERVICE = "tasks"


def on_document_cleaned(conn: Connection, event: Event) -> None:
    """Queue one task per cleaned document."""
    payload = event.payload
    task = Task(
        id=str(uuid.uuid4()),
        project_id=payload["project_id"],
        document_id=payload["document_id"],
        state=QUEUED,
        text_sha256=payload["text_sha256"],
        text_length=int(payload["text_length"]),
        created_at=utc_now(),
    )
    if not store.insert_task(conn, task):
        return
    stage_event(
        conn,
        TASK_CREATED,
        task.id,
        {
            "task_id": task.id,
            "project_id": task.project_id,
            "document_id": task.document_id,
        },
    )
    stage_audit(
        conn,
        service=SERVICE,
        action="task.create",
        actor=SYSTEM,
        resource_type="task",
        resource_id=task.id,
        project_id=task.project_id,
        details={"document_id": task.document_id},
    )
    logger.info(
        "task_created", extra={"task_id": task.id, "document_id": task.document_id}
    )


def close_task(
    conn: Connection,
    task_id: str,
    project_id: str,
    annotation_id: str,
    actor: Principal,
) -> None:
    """Complete a task and release its lease, auditing it the first time only."""
    if store.complete_task(conn, task_id):
        stage_audit(
            conn,
            service=SERVICE,
            action="task.complete",
            actor=actor,
            resource_type="task",
            resource_id=task_id,
            project_id=project_id,
            details={"annotation_id": annotation_id},
        )


def on_annotation_submitted(conn: Connection, event: Event) -> None:
    """Close the task an annotation was submitted for, if labeling could not."""
    payload = event.payload
    close_task(
        conn,
        payload["task_id"],
        payload["project_id"],
        payload["annotation_id"],
        SYSTEM,
    )


HANDLERS: dict[str, EventHandler] = {
    DOCUMENT_CLEANED: on_document_cleaned,
    ANNOTATION_SUBMITTED: on_annotation_submitted,
}
