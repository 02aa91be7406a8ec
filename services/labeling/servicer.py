"""gRPC surface of the labeling service."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC

import grpc
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common import auth
from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import ADMIN, MANAGER, Principal, require_role
from strongroom.services.common.database import to_iso, utc_now
from strongroom.services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    StrongroomError,
)
from strongroom.services.common.events import (
    ANNOTATION_SUBMITTED,
    TASK_REVIEWED,
    stage_event,
)
from strongroom.services.common.grpc_clients import Metadata, call, caller_metadata
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.services.labeling import (
    agreement,
    assistance,
    domain,
    model_store,
    store,
    synthesis,
)
from strongroom.services.labeling.assistant import ModelAssistant
from strongroom.services.labeling.domain import Annotation, Content
from strongroom.v1 import (
    common_pb2,
    labeling_pb2,
    labeling_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)

logger = logging.getLogger(__name__)

SERVICE = "labeling"
# Answers the caller may still change: their lease, or a reopened answer.
_ANSWERING = ("leased",)
# Who an imported answer is kept under: never a real subject.
_IMPORTED = re.compile(r"imported-[A-Za-z0-9-]{1,64}")
_SYNTHETIC_ANNOTATOR = store.SYNTHETIC_ANNOTATOR
# Tasks per ListAnnotations call when asking for given tasks.
_TASKS_PER_LIST = 1000


class LabelingServicer(labeling_pb2_grpc.LabelingServiceServicer):
    def __init__(
        self,
        engine: Engine,
        tasks: tasks_pb2_grpc.TaskServiceStub,
        assistant: ModelAssistant | None = None,
    ) -> None:
        self.engine = engine
        self.tasks = tasks
        self.assistant = assistant

    def SubmitAnnotation(
        self,
        request: labeling_pb2.SubmitAnnotationRequest,
        context: grpc.ServicerContext,
    ) -> common_pb2.Annotation:
        """Store the caller's answer to a task they hold the lease on.

        Raises:
            PermissionDenied: the caller does not hold the task's lease.
            InvalidArgument: the answer does not fit the project's schema or
                the task's window.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        # The tasks service checks the lease with the caller's own token.
        task = self._task(request.task_id, metadata)
        if task.my_state not in _ANSWERING:
            raise PermissionDenied(
                f"Task {task.id} takes answers from its lease holder only.",
                code="lease_required",
            )
        project = self._project(task.project_id, metadata)
        content = domain.check_content(
            content_from_proto(request.content),
            schema_of(project),
            (task.window_start, task.window_end),
            {page.page for page in task.pages},
        )
        with self.engine.begin() as conn:
            previous = store.current(conn, task.id, principal.subject)
            annotation = Annotation(
                id=str(uuid.uuid4()),
                task_id=task.id,
                project_id=task.project_id,
                document_id=task.document_id,
                text_sha256=task.text_sha256,
                annotator=principal.subject,
                content=content,
                created_at=utc_now(),
                version=previous.version + 1 if previous else 1,
            )
            _store_answer(conn, annotation)
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
                    "version": annotation.version,
                    "spans": len(content.spans),
                    "classes": len(content.classes),
                    "relations": len(content.relations),
                    "boxes": len(content.boxes),
                    "fields": len(content.fields),
                    "suggestions_accepted": content.suggestions_accepted,
                    "suggestions_rejected": content.suggestions_rejected,
                },
            )
        self._tell_tasks(
            self.tasks.CompleteTask,
            tasks_pb2.CompleteTaskRequest(
                task_id=task.id,
                annotation_id=annotation.id,
                seconds=content.seconds,
                version=annotation.version,
            ),
            metadata,
        )
        if self.assistant is not None:
            self.assistant.wake()
        return annotation_proto(annotation)

    def ImportAnnotation(
        self,
        request: labeling_pb2.ImportAnnotationRequest,
        context: grpc.ServicerContext,
    ) -> common_pb2.Annotation:
        """Keep an answer from another tool under a pseudonymous annotator.

        The tasks service counts it from its annotation.submitted event.

        Raises:
            PermissionDenied: the caller does not manage the task's project.
            InvalidArgument: the annotator is not an imported identity, or the
                answer does not fit the schema or the task's window.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        if not _IMPORTED.fullmatch(request.annotator):
            raise InvalidArgument(
                "An imported answer's annotator is 'imported-' and 1 to 64 "
                "letters, digits or dashes.",
                code="annotator_invalid",
            )
        task = self._task(request.task_id, metadata)
        project = self._managed_project(principal, task.project_id, metadata, "Imports")
        content = domain.check_content(
            content_from_proto(request.content),
            schema_of(project),
            (task.window_start, task.window_end),
            {page.page for page in task.pages},
        )
        created = (
            to_iso(request.created_at.ToDatetime(UTC))
            if request.HasField("created_at")
            else utc_now()
        )
        with self.engine.begin() as conn:
            existing = store.current(conn, task.id, request.annotator)
            if existing is not None:
                return annotation_proto(existing)
            annotation = Annotation(
                id=str(uuid.uuid4()),
                task_id=task.id,
                project_id=task.project_id,
                document_id=task.document_id,
                text_sha256=task.text_sha256,
                annotator=request.annotator,
                content=content,
                created_at=created,
            )
            _store_answer(conn, annotation)
            stage_audit(
                conn,
                service=SERVICE,
                action="annotation.import",
                actor=principal,
                resource_type="annotation",
                resource_id=annotation.id,
                project_id=task.project_id,
                details={
                    "task_id": task.id,
                    "document_id": task.document_id,
                    "annotator": request.annotator,
                    "spans": len(content.spans),
                    "classes": len(content.classes),
                },
                documents=[task.document_id],
            )
        return annotation_proto(annotation)

    def _tell_tasks(self, method: object, request: object, metadata: Metadata) -> None:
        try:
            call(method, request, metadata)  # type: ignore[arg-type]
        except StrongroomError as exc:
            # What was stored has its event, which the tasks service handles
            # too; the annotator or reviewer only sees the queue move later.
            logger.warning("tasks_not_told", extra={"code": exc.code})

    def _project(self, project_id: str, metadata: Metadata) -> tasks_pb2.Project:
        project: tasks_pb2.Project = call(
            self.tasks.GetProject,
            tasks_pb2.GetProjectRequest(project_id=project_id),
            metadata,
        )
        return project

    def ListAnnotations(
        self,
        request: labeling_pb2.ListAnnotationsRequest,
        context: grpc.ServicerContext,
    ) -> labeling_pb2.ListAnnotationsResponse:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        metadata = caller_metadata(principal.token, principal.client_address)
        self._managed_project(principal, request.project_id, metadata, "Answers")
        kind = request.kind or domain.ANSWER
        if kind not in (domain.ANSWER, domain.GOLD):
            raise InvalidArgument(
                "Annotations are of kind 'answer' or 'gold'.", code="kind_invalid"
            )
        if len(request.task_ids) > _TASKS_PER_LIST:
            raise InvalidArgument(
                f"Ask for the annotations of at most {_TASKS_PER_LIST} tasks at once.",
                code="too_many_tasks",
            )
        limit, offset = page_bounds(request.page, maximum=1000)
        with self.engine.begin() as conn:
            annotations, total = store.list_annotations(
                conn, request.project_id, limit, offset, kind, list(request.task_ids)
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="annotation.list",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
                details={"count": len(annotations), "offset": offset, "kind": kind},
                documents=sorted({a.document_id for a in annotations}),
            )
        return labeling_pb2.ListAnnotationsResponse(
            annotations=[annotation_proto(a) for a in annotations],
            page=common_pb2.PageInfo(offset=offset, total=total),
        )

    def ListTaskAnnotations(
        self,
        request: labeling_pb2.ListTaskAnnotationsRequest,
        context: grpc.ServicerContext,
    ) -> labeling_pb2.ListAnnotationsResponse:
        """A task's current answers: all for its reviewer and the project's
        managers, only the caller's own for an annotator.

        Raises:
            PermissionDenied: the caller has no part in the task.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        task = self._task(request.task_id, metadata)
        sees_all = task.reviewer == principal.subject or manages(
            principal, self._project(task.project_id, metadata)
        )
        with self.engine.begin() as conn:
            answers = store.task_annotations(conn, task.id)
            if not sees_all:
                answers = [a for a in answers if a.annotator == principal.subject]
            gold = (
                store.task_annotations(conn, task.id, domain.GOLD) if sees_all else []
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="annotation.read",
                actor=principal,
                resource_type="task",
                resource_id=task.id,
                project_id=task.project_id,
                details={
                    "document_id": task.document_id,
                    "count": len(answers) + len(gold),
                },
                documents=[task.document_id],
            )
        return labeling_pb2.ListAnnotationsResponse(
            annotations=[annotation_proto(a) for a in [*answers, *gold]],
            page=common_pb2.PageInfo(offset=0, total=len(answers) + len(gold)),
        )

    def _task(self, task_id: str, metadata: Metadata) -> tasks_pb2.Task:
        """The task as the tasks service shows it to the caller: it refuses
        those with no part in it."""
        task: tasks_pb2.Task = call(
            self.tasks.GetTask, tasks_pb2.GetTaskRequest(task_id=task_id), metadata
        )
        return task

    def _managed_project(
        self, principal: Principal, project_id: str, metadata: Metadata, what: str
    ) -> tasks_pb2.Project:
        """Raises: PermissionDenied: the caller does not manage the project."""
        project = self._project(project_id, metadata)
        if not manages(principal, project):
            raise PermissionDenied(
                f"{what} of project {project_id} are for its managers.",
                code="project_manager_required",
            )
        return project

    def ReviewTask(
        self, request: labeling_pb2.ReviewTaskRequest, context: grpc.ServicerContext
    ) -> labeling_pb2.Review:
        """Accept an answer as gold, correct it into gold, or reject one back
        to its annotator with a comment.

        Raises:
            PermissionDenied: the caller does not hold the task's review.
            InvalidArgument: the decision does not fit the task's answers, or a
                corrected answer does not fit the schema.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        task = self._task(request.task_id, metadata)
        if task.reviewer != principal.subject:
            raise PermissionDenied(
                f"Task {task.id} is decided by the reviewer holding it.",
                code="review_lease_required",
            )
        project = self._project(task.project_id, metadata)
        now = utc_now()
        with self.engine.begin() as conn:
            answers = {a.id: a for a in store.task_annotations(conn, task.id)}
            domain.check_review(
                request.decision, request.annotation_id, request.comment, answers
            )
            gold: Annotation | None = None
            if request.decision == domain.CORRECT:
                content = domain.check_content(
                    content_from_proto(request.content),
                    schema_of(project),
                    (task.window_start, task.window_end),
                    {page.page for page in task.pages},
                )
                gold = self._gold(task, principal, content, "", now)
            elif request.decision == domain.ACCEPT:
                accepted = answers[request.annotation_id]
                gold = self._gold(task, principal, accepted.content, accepted.id, now)
            if gold is not None:
                previous = store.current(conn, task.id, principal.subject, domain.GOLD)
                if previous is not None:
                    gold = Annotation(
                        **{**gold.__dict__, "version": previous.version + 1}
                    )
                store.insert_annotation(conn, gold)
            review = domain.Review(
                id=str(uuid.uuid4()),
                task_id=task.id,
                project_id=task.project_id,
                decision=request.decision,
                annotation_id=request.annotation_id,
                gold_annotation_id=gold.id if gold else "",
                comment=request.comment.strip(),
                reviewer=principal.subject,
                created_at=now,
            )
            store.insert_review(conn, review)
            annotator = (
                answers[request.annotation_id].annotator
                if request.decision == domain.REJECT
                else ""
            )
            stage_event(
                conn,
                TASK_REVIEWED,
                task.id,
                {
                    "review_id": review.id,
                    "task_id": task.id,
                    "project_id": task.project_id,
                    "document_id": task.document_id,
                    "decision": review.decision,
                    "annotator": annotator,
                    "annotation_id": review.annotation_id,
                    "gold_annotation_id": review.gold_annotation_id,
                },
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="annotation.review",
                actor=principal,
                resource_type="task",
                resource_id=task.id,
                project_id=task.project_id,
                details={
                    "document_id": task.document_id,
                    "review_id": review.id,
                    "decision": review.decision,
                    "annotation_id": review.annotation_id,
                    "gold_annotation_id": review.gold_annotation_id,
                },
                documents=[task.document_id],
            )
        self._tell_tasks(
            self.tasks.ResolveReview,
            tasks_pb2.ResolveReviewRequest(
                task_id=task.id,
                decision=review.decision,
                annotator=annotator,
                annotation_id=review.annotation_id,
                comment=review.comment,
                review_id=review.id,
            ),
            metadata,
        )
        if self.assistant is not None:
            self.assistant.wake()
        return review_proto(review)

    @staticmethod
    def _gold(
        task: tasks_pb2.Task,
        reviewer: Principal,
        content: Content,
        source: str,
        now: str,
    ) -> Annotation:
        return Annotation(
            id=str(uuid.uuid4()),
            task_id=task.id,
            project_id=task.project_id,
            document_id=task.document_id,
            text_sha256=task.text_sha256,
            annotator=reviewer.subject,
            content=content,
            created_at=now,
            kind=domain.GOLD,
            source_annotation_id=source,
        )

    def GetProjectStats(
        self,
        request: labeling_pb2.GetProjectStatsRequest,
        context: grpc.ServicerContext,
    ) -> labeling_pb2.ProjectStats:
        """Agreement by label and annotator pair, agreement with gold, and
        review counts; for the project's managers.

        Raises:
            PermissionDenied: the caller does not manage the project.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        project = self._managed_project(
            principal, request.project_id, metadata, "Figures"
        )
        items: dict[str, dict[str, agreement.Content]] = defaultdict(dict)
        gold: dict[str, agreement.Content] = {}
        with self.engine.begin() as conn:
            # Synthetic examples are no one's work: agreement leaves them out.
            for answer in store.iter_current(conn, project.id, domain.ANSWER):
                if not answer.annotator.startswith(_SYNTHETIC_ANNOTATOR):
                    content = _agreement_content(answer)
                    items[answer.task_id][answer.annotator] = content
            for entry in store.iter_current(conn, project.id, domain.GOLD):
                if not entry.annotator.startswith(_SYNTHETIC_ANNOTATOR):
                    gold[entry.task_id] = _agreement_content(entry)
            reviews = store.review_counts(conn, project.id)
            stage_audit(
                conn,
                service=SERVICE,
                action="project.stats.read",
                actor=principal,
                resource_type="project",
                resource_id=project.id,
                project_id=project.id,
                details={"tasks": len(items), "gold": len(gold)},
            )
        labels = sorted(
            {
                label.name
                for group in (project.schema.spans, project.schema.classes)
                for label in group
            }
            | {label.name for label in project.schema.boxes}
        )
        report = agreement.project_agreement(items, labels)
        annotators = sorted({a for answers in items.values() for a in answers})
        per_annotator = []
        for annotator in annotators:
            answered = sum(1 for answers in items.values() if annotator in answers)
            score = agreement.gold_agreement(items, gold, annotator)
            per_annotator.append(
                labeling_pb2.AnnotatorStats(
                    subject=annotator,
                    answers=answered,
                    gold=_gold_measures(score),
                    gold_tasks=score.n,
                )
            )
        return labeling_pb2.ProjectStats(
            agreement_json=json.dumps(report.to_dict(), sort_keys=True),
            annotators=per_annotator,
            accepted=reviews.get(domain.ACCEPT, 0),
            rejected=reviews.get(domain.REJECT, 0),
            corrected=reviews.get(domain.CORRECT, 0),
            gold_tasks=len(gold),
        )

    def Synthesize(
        self, request: labeling_pb2.SynthesizeRequest, context: grpc.ServicerContext
    ) -> labeling_pb2.SynthesizeResponse:
        """Make synthetic examples from the project's reviewed examples (its
        current answers when it has no review), each a new synthetic task with
        the answer it was made with, kept as gold when its source was.

        Raises:
            PermissionDenied: the caller does not manage the project.
            InvalidArgument: an unknown method or count, or examples the
                method cannot work from (``synthesis_unsupported``).
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        synthesis.check_request(request.method, request.count)
        project = self._managed_project(
            principal, request.project_id, metadata, "Synthetic examples"
        )
        kind = domain.GOLD if project.review else domain.ANSWER
        with self.engine.connect() as conn:
            sources = [
                a
                for a in store.iter_current(conn, project.id, kind)
                if not a.annotator.startswith(_SYNTHETIC_ANNOTATOR)
            ]
        examples = [self._example(a, metadata) for a in sources]
        made = synthesis.synthesize(
            request.method,
            [e for e in examples if e is not None],
            request.count,
            request.seed,
        )
        created = [
            self._add_synthetic(principal, project, kind, s, metadata) for s in made
        ]
        with self.engine.begin() as conn:
            stage_audit(
                conn,
                service=SERVICE,
                action="synthesis.run",
                actor=principal,
                resource_type="project",
                resource_id=project.id,
                project_id=project.id,
                details={
                    "method": request.method,
                    "asked": request.count,
                    "made": len(created),
                    "sources": len(sources),
                    "seed": request.seed,
                },
            )
        return labeling_pb2.SynthesizeResponse(task_ids=created, sources=len(sources))

    def _example(
        self, answer: Annotation, metadata: Metadata
    ) -> synthesis.Example | None:
        """A real example as synthesis reads it: its window's text and labels."""
        task: tasks_pb2.Task = call(
            self.tasks.GetTask,
            tasks_pb2.GetTaskRequest(task_id=answer.task_id, include_text=True),
            metadata,
        )
        if task.synthetic or answer.content.boxes:
            return None
        start, end = task.window_start, task.window_end
        return synthesis.Example(
            task.id,
            task.text,
            tuple(
                (s.start - start, s.end - start, s.label)
                for s in answer.content.spans
                if start <= s.start and s.end <= end
            ),
            answer.content.classes,
        )

    def _add_synthetic(
        self,
        principal: Principal,
        project: tasks_pb2.Project,
        kind: str,
        made: synthesis.Synthetic,
        metadata: Metadata,
    ) -> str:
        task: tasks_pb2.Task = call(
            self.tasks.AddSyntheticTask,
            tasks_pb2.AddSyntheticTaskRequest(
                project_id=project.id,
                text=made.text,
                method=made.method,
                source_task_id=made.source_task_id,
            ),
            metadata,
        )
        content = Content(
            spans=tuple(domain.SpanLabel(a, b, label) for a, b, label in made.spans),
            classes=made.classes,
        )
        with self.engine.begin() as conn:
            # Kept without an annotation.submitted event: the task is complete
            # already, and no annotator gave this answer.
            store.insert_annotation(
                conn,
                Annotation(
                    id=str(uuid.uuid4()),
                    task_id=task.id,
                    project_id=project.id,
                    document_id=task.document_id,
                    text_sha256=task.text_sha256,
                    annotator=f"{_SYNTHETIC_ANNOTATOR}{made.method.replace('_', '-')}",
                    content=content,
                    created_at=utc_now(),
                    kind=kind,
                ),
            )
        return task.id

    # --- model assistance -----------------------------------------------------

    def SetAssistance(
        self,
        request: labeling_pb2.SetAssistanceRequest,
        context: grpc.ServicerContext,
    ) -> labeling_pb2.AssistanceSettings:
        """Switch a project's model assistance on or off and set its options;
        fields left unset keep their value.

        Raises:
            PermissionDenied: the caller does not manage the project.
            InvalidArgument: an ordering, review mode or number out of range.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        project = self._managed_project(
            principal, request.project_id, metadata, "Models"
        )
        with self.engine.begin() as conn:
            before = model_store.get_settings(conn, request.project_id).settings
            changes = {
                name: getattr(request, name)
                for name in (
                    "enabled",
                    "ordering",
                    "min_answers",
                    "retrain_every",
                    "diversity",
                    "review_mode",
                )
                if request.HasField(name)
            }
            after = assistance.check_settings(dataclasses.replace(before, **changes))
            row = model_store.SettingsRow(
                request.project_id, after, principal.subject, utc_now()
            )
            model_store.put_settings(conn, row)
            stage_audit(
                conn,
                service=SERVICE,
                action="model.settings",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
                details={
                    "enabled": int(after.enabled),
                    "ordering": after.ordering,
                    "min_answers": after.min_answers,
                    "retrain_every": after.retrain_every,
                    "diversity": str(after.diversity),
                    "review_mode": after.review_mode,
                },
            )
        if self.assistant is not None:
            self.assistant.remember(request.project_id, principal, project.review)
            if before.ordering == assistance.UNCERTAINTY != after.ordering:
                self.assistant.reset_priorities(request.project_id)
            self.assistant.wake()
        return settings_proto(row)

    def TrainModel(
        self, request: labeling_pb2.TrainModelRequest, context: grpc.ServicerContext
    ) -> labeling_pb2.ModelVersion:
        """Queue a training run for an assisted project now.

        Raises:
            PermissionDenied: the caller does not manage the project.
            FailedPrecondition: assistance is off for the project.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        project = self._managed_project(
            principal, request.project_id, metadata, "Models"
        )
        with self.engine.begin() as conn:
            settings = model_store.get_settings(conn, request.project_id).settings
        if not settings.enabled or self.assistant is None:
            raise FailedPrecondition(
                f"Model assistance is off for project {request.project_id}; a "
                "manager switches it on first.",
                code="assistance_off",
            )
        row, is_new = self.assistant.queue(
            request.project_id, principal, project.review
        )
        with self.engine.begin() as conn:
            stage_audit(
                conn,
                service=SERVICE,
                action="model.train.request",
                actor=principal,
                resource_type="model",
                resource_id=f"{row.project_id}:{row.version}",
                project_id=row.project_id,
                details={"version": row.version, "queued": int(is_new)},
            )
        return model_proto(row)

    def ListModels(
        self, request: labeling_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> labeling_pb2.ListModelsResponse:
        """A project's assistance settings and model versions, newest first.

        Raises:
            PermissionDenied: the caller does not manage the project.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        project = self._managed_project(
            principal, request.project_id, metadata, "Models"
        )
        with self.engine.begin() as conn:
            settings = model_store.get_settings(conn, request.project_id)
            versions = model_store.list_versions(conn, request.project_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="model.list",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
                details={"versions": len(versions)},
            )
        if self.assistant is not None and settings.settings.enabled:
            self.assistant.remember(request.project_id, principal, project.review)
        return labeling_pb2.ListModelsResponse(
            settings=settings_proto(settings),
            models=[model_proto(v) for v in versions],
        )

    def GetTaskAssistance(
        self,
        request: labeling_pb2.GetTaskAssistanceRequest,
        context: grpc.ServicerContext,
    ) -> labeling_pb2.TaskAssistance:
        """How the suggestions of a task the caller may read are reviewed: the
        project's review mode, and none of its other model settings.

        Raises:
            NotFound: no task has that id, or the caller is not in its project.
            PermissionDenied: the caller has no part in the task.
        """
        principal = current_principal()
        metadata = caller_metadata(principal.token, principal.client_address)
        # The tasks service decides who may read the task, from the caller's
        # own token, and audits the read.
        task = self._task(request.task_id, metadata)
        with self.engine.begin() as conn:
            settings = model_store.get_settings(conn, task.project_id).settings
        return labeling_pb2.TaskAssistance(
            task_id=task.id, review_mode=settings.review_mode
        )


def settings_proto(row: model_store.SettingsRow) -> labeling_pb2.AssistanceSettings:
    settings = row.settings
    return labeling_pb2.AssistanceSettings(
        project_id=row.project_id,
        enabled=settings.enabled,
        ordering=settings.ordering,
        min_answers=settings.min_answers,
        retrain_every=settings.retrain_every,
        diversity=settings.diversity,
        review_mode=settings.review_mode,
        updated_by=row.updated_by,
        updated_at=to_timestamp(row.updated_at),
    )


def model_proto(row: model_store.ModelRow) -> labeling_pb2.ModelVersion:
    return labeling_pb2.ModelVersion(
        project_id=row.project_id,
        version=row.version,
        state=row.state,
        kind=row.kind,
        train_answers=row.train_answers,
        held_out=row.held_out,
        scores=row.scores,
        baseline=row.baseline,
        score=row.score,
        baseline_score=row.baseline_score,
        seconds=row.seconds,
        created_at=to_timestamp(row.created_at),
        trained_at=to_timestamp(row.trained_at),
        model_sha256=row.model_sha256,
        snapshot_sha256=row.snapshot_sha256,
        predicted_tasks=row.predicted_tasks,
        error=row.error,
        trigger=row.trigger,
        settings_json=row.settings,
    )


def _agreement_content(annotation: Annotation) -> agreement.Content:
    content = annotation.content
    return agreement.Content(
        spans=tuple((s.start, s.end, s.label) for s in content.spans),
        classes=frozenset(content.classes),
        boxes=tuple(
            (b.page, b.x, b.y, b.width, b.height, b.label) for b in content.boxes
        ),
    )


def _gold_measures(score: agreement.GoldScore) -> dict[str, float]:
    """The defined measures of a gold comparison, by name."""
    measures = {
        "class_accuracy": score.class_accuracy,
        "span_f1_exact": score.spans_exact.f1,
        "span_f1_overlap": score.spans_overlap.f1,
        "box_f1": score.boxes.f1,
        "box_mean_iou": score.boxes.mean_iou,
    }
    return {name: value for name, value in measures.items() if value is not None}


def _store_answer(conn: Connection, annotation: Annotation) -> None:
    """Keep an answer and announce it to the tasks service, which counts it."""
    store.insert_annotation(conn, annotation)
    stage_event(
        conn,
        ANNOTATION_SUBMITTED,
        annotation.task_id,
        {
            "annotation_id": annotation.id,
            "task_id": annotation.task_id,
            "project_id": annotation.project_id,
            "document_id": annotation.document_id,
            "annotator": annotation.annotator,
            "version": annotation.version,
            "seconds": annotation.content.seconds,
            "span_count": len(annotation.content.spans),
        },
    )


def manages(principal: Principal, project: tasks_pb2.Project) -> bool:
    return auth.manages(principal, ((m.subject, m.role) for m in project.members))


def schema_of(project: tasks_pb2.Project) -> domain.Schema:
    schema = project.schema
    return domain.Schema(
        spans={label.name for label in schema.spans}
        or {label.name for label in project.labels},
        classes={label.name for label in schema.classes},
        multi_label=schema.multi_label,
        relations={label.name for label in schema.relations},
        boxes={label.name for label in schema.boxes},
        fields={f.name for f in schema.fields},
    )


def content_from_proto(content: common_pb2.AnnotationContent) -> Content:
    return Content(
        spans=tuple(
            domain.SpanLabel(s.span.start, s.span.end, s.label) for s in content.spans
        ),
        classes=tuple(content.classes),
        relations=tuple(
            domain.Relation(r.from_span, r.to_span, r.label) for r in content.relations
        ),
        boxes=tuple(
            domain.BoxLabel(b.page, b.x, b.y, b.width, b.height, b.label)
            for b in content.boxes
        ),
        fields=dict(content.fields),
        seconds=content.seconds,
        suggestions_accepted=content.suggestions_accepted,
        suggestions_rejected=content.suggestions_rejected,
    )


def content_proto(content: Content) -> common_pb2.AnnotationContent:
    return common_pb2.AnnotationContent(
        spans=_span_protos(content.spans),
        classes=list(content.classes),
        relations=[
            common_pb2.Relation(from_span=r.from_span, to_span=r.to_span, label=r.label)
            for r in content.relations
        ],
        boxes=[
            common_pb2.Box(
                page=b.page, x=b.x, y=b.y, width=b.width, height=b.height, label=b.label
            )
            for b in content.boxes
        ],
        fields=dict(content.fields),
        seconds=content.seconds,
        suggestions_accepted=content.suggestions_accepted,
        suggestions_rejected=content.suggestions_rejected,
    )


def _span_protos(spans: Iterable[domain.SpanLabel]) -> list[common_pb2.SpanLabel]:
    return [
        common_pb2.SpanLabel(
            span=common_pb2.Span(start=s.start, end=s.end), label=s.label
        )
        for s in spans
    ]


def annotation_proto(annotation: Annotation) -> common_pb2.Annotation:
    return common_pb2.Annotation(
        id=annotation.id,
        task_id=annotation.task_id,
        project_id=annotation.project_id,
        document_id=annotation.document_id,
        text_sha256=annotation.text_sha256,
        annotator=annotation.annotator,
        content=content_proto(annotation.content),
        created_at=to_timestamp(annotation.created_at),
        version=annotation.version,
        kind=annotation.kind,
        source_annotation_id=annotation.source_annotation_id,
    )


def review_proto(review: domain.Review) -> labeling_pb2.Review:
    return labeling_pb2.Review(
        id=review.id,
        task_id=review.task_id,
        decision=review.decision,
        annotation_id=review.annotation_id,
        gold_annotation_id=review.gold_annotation_id,
        comment=review.comment,
        reviewer=review.reviewer,
        created_at=to_timestamp(review.created_at),
    )
