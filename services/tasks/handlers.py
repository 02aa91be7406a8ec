"""What the tasks service does with the events it consumes, and its lease
expiry loop."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.audit_trail import SYSTEM, stage_audit
from strongroom.services.common.auth import Principal
from strongroom.services.common.database import utc_now
from strongroom.services.common.events import (
    ANNOTATION_SUBMITTED,
    DOCUMENT_CLEANED,
    TASK_CREATED,
    TASK_REVIEWED,
    EventHandler,
    Worker,
    stage_event,
)
from strongroom.services.common.ports import Event, ObjectStore
from strongroom.services.common.runtime import DERIVED
from strongroom.services.tasks import domain, store

logger = logging.getLogger(__name__)

SERVICE = "tasks"
RETURNED_WITHOUT_COMMENT = "A reviewer returned this answer; ask them for the comment."


def handlers(objects: ObjectStore) -> dict[str, EventHandler]:
    def on_document_cleaned(conn: Connection, event: Event) -> None:
        """Queue a cleaned document as tasks, one per window of its text.

        A document cleaned again (a redaction corrected) keeps its tasks:
        those not yet completed point at the new text and page images.
        """
        payload = event.payload
        project = store.get_project(conn, payload["project_id"])
        document_id = payload["document_id"]
        length = int(payload["text_length"])
        pages = _pages(payload.get("page_images", ()))
        if store.has_tasks(conn, project.id, document_id):
            updated = store.update_document_text(
                conn, document_id, project.id, payload["text_sha256"], length, pages
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="task.update",
                actor=SYSTEM,
                resource_type="document",
                resource_id=document_id,
                project_id=project.id,
                details={"document_id": document_id, "tasks": updated},
            )
            return
        window = project.settings.window
        text = ""
        if window.kind != domain.WINDOW_DOCUMENT:
            text = objects.read(DERIVED, payload["text_sha256"]).decode("utf-8")
        ranges = domain.split_windows(text, window) if text else [(0, length)]
        findings = payload.get("findings", ())
        now = utc_now()
        for start, end in ranges:
            task_pages = pages
            if window.kind == domain.WINDOW_PAGE and text:
                number = domain.page_of_window(text, start)
                task_pages = tuple(p for p in pages if p.page == number)
            task = domain.Task(
                id=str(uuid.uuid4()),
                project_id=project.id,
                document_id=document_id,
                state=domain.OPEN,
                text_sha256=payload["text_sha256"],
                text_length=length,
                window_start=start,
                window_end=end,
                overlap=project.settings.overlap,
                suggestions=domain.suggestions_in(
                    findings, project.settings.schema.spans, start, end
                ),
                pages=task_pages,
                created_at=now,
            )
            if not store.insert_task(conn, task):
                continue
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
                details={
                    "document_id": task.document_id,
                    "window_start": start,
                    "window_end": end,
                },
            )
        logger.info(
            "tasks_created", extra={"document_id": document_id, "tasks": len(ranges)}
        )

    return {
        DOCUMENT_CLEANED: on_document_cleaned,
        ANNOTATION_SUBMITTED: on_annotation_submitted,
        TASK_REVIEWED: on_task_reviewed,
    }


# Documents arrive in bursts (a folder, a CSV of records): queuing a run of
# them in one transaction saves a commit per document.
BATCHED = frozenset({DOCUMENT_CLEANED, ANNOTATION_SUBMITTED})


def _pages(rows: Any) -> tuple[domain.PageImage, ...]:
    return tuple(
        domain.PageImage(
            page=int(row["page"]),
            sha256=str(row["sha256"]),
            width=int(row["width"]),
            height=int(row["height"]),
        )
        for row in rows
    )


def record_submission(
    conn: Connection,
    task: domain.Task,
    annotator: str,
    annotation_id: str,
    seconds: float,
    version: int,
    actor: Principal,
) -> bool:
    """Count an answer toward its task, auditing it the first time only."""
    project = store.get_project(conn, task.project_id)
    if not store.submit(
        conn,
        task,
        annotator,
        annotation_id,
        seconds,
        project.settings.review,
        version,
    ):
        return False
    after = store.get_task(conn, task.id)
    stage_audit(
        conn,
        service=SERVICE,
        action="task.complete",
        actor=actor,
        resource_type="task",
        resource_id=task.id,
        project_id=task.project_id,
        details={
            "annotation_id": annotation_id,
            "document_id": task.document_id,
            "annotator": annotator,
            "state": after.state,
        },
    )
    return True


def on_annotation_submitted(conn: Connection, event: Event) -> None:
    """Count an answer the labeling service could not report itself."""
    payload = event.payload
    task = store.get_task(conn, payload["task_id"])
    record_submission(
        conn,
        task,
        payload["annotator"],
        payload["annotation_id"],
        float(payload.get("seconds", 0.0)),
        int(payload.get("version", 1)),
        SYSTEM,
    )


def apply_review(
    conn: Connection,
    task: domain.Task,
    decision: str,
    annotator: str,
    annotation_id: str,
    comment: str,
    review_id: str,
    actor: Principal,
) -> bool:
    """Close a reviewed task or return one answer; False when already done."""
    if decision == domain.REJECT:
        changed = store.return_answer(conn, task, annotator, annotation_id, comment)
    else:
        changed = store.close_review(conn, task)
    stage_audit(
        conn,
        service=SERVICE,
        action="task.return" if decision == domain.REJECT else "task.close",
        actor=actor,
        resource_type="task",
        resource_id=task.id,
        project_id=task.project_id,
        details={
            "document_id": task.document_id,
            "review_id": review_id,
            "decision": decision,
            **({"annotator": annotator} if decision == domain.REJECT else {}),
            **({} if changed else {"repeat": 1}),
        },
    )
    return changed


def on_task_reviewed(conn: Connection, event: Event) -> None:
    """Apply a review decision the labeling service could not report itself."""
    payload: Mapping[str, Any] = event.payload
    apply_review(
        conn,
        store.get_task(conn, payload["task_id"]),
        payload["decision"],
        payload.get("annotator", ""),
        payload.get("annotation_id", ""),
        # Comments are free text and stay out of events; the labeling service
        # keeps it with the review.
        RETURNED_WITHOUT_COMMENT,
        payload["review_id"],
        SYSTEM,
    )


class LeaseExpirer(Worker):
    """Gives the slots of lapsed leases back to the pool, and audits it."""

    def __init__(self, engine: Engine, interval_seconds: float) -> None:
        super().__init__("lease-expirer", idle_seconds=interval_seconds)
        self.engine = engine

    def step(self) -> bool:
        with self.engine.begin() as conn:
            lapsed = expire(conn, datetime.now(UTC))
        return len(lapsed) >= store.EXPIRY_BATCH


def expire(
    conn: Connection, now: datetime, project_id: str | None = None
) -> list[domain.Assignment]:
    lapsed = store.expire_leases(conn, now, project_id)
    for lease in lapsed:
        stage_audit(
            conn,
            service=SERVICE,
            action="task.lease.expire",
            actor=SYSTEM,
            resource_type="task",
            resource_id=lease.task_id,
            project_id=lease.project_id,
            details={"annotator": lease.annotator},
        )
    return lapsed
