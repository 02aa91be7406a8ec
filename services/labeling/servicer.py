"""gRPC surface of the labeling service."""

from __future__ import annotations

import logging
import uuid

import grpc
from sqlalchemy.engine import Engine

from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import ADMIN, MANAGER, require_role
from strongroom.services.common.database import utc_now
from strongroom.services.common.errors import Conflict, StrongroomError
from strongroom.services.common.events import ANNOTATION_SUBMITTED, stage_event
from strongroom.services.common.grpc_clients import Metadata, call, caller_metadata
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.services.labeling import store
from strongroom.services.labeling.domain import Annotation, SpanLabel, check_spans
from strongroom.v1 import (
    common_pb2,
    labeling_pb2,
    labeling_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)

logger = logging.getLogger(__name__)

SERVICE = "labeling"


class LabelingServicer(labeling_pb2_grpc.LabelingServiceServicer):
    def __init__(self, engine: Engine, tasks: tasks_pb2_grpc.TaskServiceStub) -> None:
        self.engine = engine
        self.tasks = tasks

    def SubmitAnnotation(
        self,
        request: labeling_pb2.SubmitAnnotationRequest,
        context: grpc.ServicerContext,
    ) -> common_pb2.Annotation:
        """Store the caller's annotation of a task they hold the lease on.

        Raises:
            PermissionDenied: the caller does not hold the task's lease.
            InvalidArgument: a span is out of range or has an unknown label.
            Conflict: the caller already annotated this task.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        # The tasks service checks the lease with the caller's own token.
        task = call(
            self.tasks.GetTask,
            tasks_pb2.GetTaskRequest(task_id=request.task_id),
            metadata,
        )
        project = call(
            self.tasks.GetProject,
            tasks_pb2.GetProjectRequest(project_id=task.project_id),
            metadata,
        )
        spans = check_spans(
            [SpanLabel(s.span.start, s.span.end, s.label) for s in request.spans],
            task.text_length,
            {label.name for label in project.labels},
        )
        annotation = Annotation(
            id=str(uuid.uuid4()),
            task_id=task.id,
            project_id=task.project_id,
            document_id=task.document_id,
            text_sha256=task.text_sha256,
            annotator=principal.subject,
            spans=spans,
            created_at=utc_now(),
        )
        with self.engine.begin() as conn:
            if not store.insert_annotation(conn, annotation):
                raise Conflict(
                    f"Task {task.id} already has an annotation by this user.",
                    code="annotation_exists",
                )
            stage_event(
                conn,
                ANNOTATION_SUBMITTED,
                task.id,
                {
                    "annotation_id": annotation.id,
                    "task_id": task.id,
                    "project_id": task.project_id,
                    "document_id": task.document_id,
                    "span_count": len(spans),
                },
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="annotation.submit",
                actor=principal,
                resource_type="annotation",
                resource_id=annotation.id,
                project_id=task.project_id,
                details={
                    "task_id": task.id,
                    "document_id": task.document_id,
                    "spans": len(spans),
                },
            )
        self._close_task(task.id, annotation.id, metadata)
        return _annotation_proto(annotation)

    def _close_task(self, task_id: str, annotation_id: str, metadata: Metadata) -> None:
        request = tasks_pb2.CompleteTaskRequest(
            task_id=task_id, annotation_id=annotation_id
        )
        try:
            call(self.tasks.CompleteTask, request, metadata)
        except StrongroomError as exc:
            # The annotation is stored and its annotation.submitted event will
            # close the task; the annotator only gets the next one a bit later.
            logger.warning(
                "task_not_closed", extra={"task_id": task_id, "code": exc.code}
            )

    def ListAnnotations(
        self,
        request: labeling_pb2.ListAnnotationsRequest,
        context: grpc.ServicerContext,
    ) -> labeling_pb2.ListAnnotationsResponse:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        limit, offset = page_bounds(request.page, maximum=1000)
        with self.engine.begin() as conn:
            annotations, total = store.list_annotations(
                conn, request.project_id, limit, offset
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="annotation.list",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
                details={"count": len(annotations), "offset": offset},
            )
        return labeling_pb2.ListAnnotationsResponse(
            annotations=[_annotation_proto(a) for a in annotations],
            page=common_pb2.PageInfo(offset=offset, total=total),
        )


def _annotation_proto(annotation: Annotation) -> common_pb2.Annotation:
    return common_pb2.Annotation(
        id=annotation.id,
        task_id=annotation.task_id,
        project_id=annotation.project_id,
        document_id=annotation.document_id,
        text_sha256=annotation.text_sha256,
        annotator=annotation.annotator,
        spans=[
            common_pb2.SpanLabel(
                span=common_pb2.Span(start=s.start, end=s.end), label=s.label
            )
            for s in annotation.spans
        ],
        created_at=to_timestamp(annotation.created_at),
    )
