"""gRPC surface of the tasks service."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import grpc
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import (
    ADMIN,
    ANNOTATOR,
    MANAGER,
    Principal,
    require_role,
)
from strongroom.services.common.database import utc_now
from strongroom.services.common.errors import (
    Conflict,
    HiddenNotFound,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.ports import ObjectStore
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.services.common.runtime import DERIVED
from strongroom.services.common.text import tokens
from strongroom.services.tasks import domain, store
from strongroom.services.tasks.handlers import (
    SERVICE,
    apply_review,
    expire,
    record_submission,
)
from strongroom.services.tasks.label_config import parse_label_config
from strongroom.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc

_TASK_STATES = {
    domain.OPEN: tasks_pb2.TASK_STATE_QUEUED,
    domain.FULL: tasks_pb2.TASK_STATE_LEASED,
    domain.REVIEW: tasks_pb2.TASK_STATE_IN_REVIEW,
    domain.COMPLETED: tasks_pb2.TASK_STATE_COMPLETED,
}


class TaskServicer(tasks_pb2_grpc.TaskServiceServicer):
    def __init__(
        self,
        engine: Engine,
        objects: ObjectStore,
        lease_seconds: int,
        review_lease_seconds: int | None = None,
    ) -> None:
        self.engine = engine
        self.objects = objects
        self.lease_seconds = lease_seconds
        self.review_lease_seconds = review_lease_seconds or lease_seconds

    # Projects.

    def CreateProject(
        self, request: tasks_pb2.CreateProjectRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Project:
        """Create a project with its label schema and queue settings; admins only.

        Raises:
            InvalidArgument: the name, a label, a setting or the Label Studio
                configuration is not acceptable.
        """
        principal = current_principal()
        require_role(principal, ADMIN)
        schema = _schema(request.schema)
        if request.label_config:
            if not schema.is_empty() or request.labels:
                raise InvalidArgument(
                    "Give either a Label Studio configuration or labels, not both.",
                    code="label_config_conflict",
                )
            schema = parse_label_config(request.label_config)
        if request.labels:
            named = {label.name for label in schema.spans}
            extra = tuple(lb for lb in _labels(request.labels) if lb.name not in named)
            schema = domain.LabelSchema(
                spans=(*extra, *schema.spans),
                classes=schema.classes,
                multi_label=schema.multi_label,
                relations=schema.relations,
                boxes=schema.boxes,
                fields=schema.fields,
            )
        settings = domain.check_settings(
            request.name,
            schema,
            guidelines=request.guidelines,
            overlap=request.overlap,
            assignment=request.assignment,
            window=domain.Window(request.window.kind, request.window.size),
            review=request.review if request.HasField("review") else None,
        )
        project = domain.Project(
            id=str(uuid.uuid4()),
            name=request.name.strip(),
            settings=settings,
            created_at=utc_now(),
        )
        with self.engine.begin() as conn:
            store.insert_project(conn, project)
            stage_audit(
                conn,
                service=SERVICE,
                action="project.create",
                actor=principal,
                resource_type="project",
                resource_id=project.id,
                project_id=project.id,
                details={
                    "labels": len(settings.schema.spans),
                    "classes": len(settings.schema.classes),
                    "boxes": len(settings.schema.boxes),
                    "overlap": settings.overlap,
                    "assignment": settings.assignment,
                    "window": settings.window.kind,
                    "review": int(settings.review),
                    "label_config": int(bool(request.label_config)),
                },
            )
        return project_proto(project)

    def GetProject(
        self, request: tasks_pb2.GetProjectRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Project:
        principal = current_principal()
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.hide_from_outsiders(principal, project)
            self._audit(
                conn, principal, "project.read", "project", project.id, project.id
            )
        return project_proto(project)

    def ListProjects(
        self, request: tasks_pb2.ListProjectsRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.ListProjectsResponse:
        principal = current_principal()
        limit, offset = page_bounds(request.page)
        member = None if ADMIN in principal.roles else principal.subject
        with self.engine.begin() as conn:
            ids, total = store.list_project_ids(conn, member, limit, offset)
            projects = [store.get_project(conn, project_id) for project_id in ids]
            self._audit(
                conn,
                principal,
                "project.list",
                "project",
                "",
                "",
                {"count": len(projects), "offset": offset},
            )
        return tasks_pb2.ListProjectsResponse(
            projects=[project_proto(p) for p in projects],
            page=common_pb2.PageInfo(offset=offset, total=total),
        )

    def AddMember(
        self, request: tasks_pb2.AddMemberRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Project:
        """Add a user to a project, or change their role in it.

        Raises:
            NotFound: the project does not exist.
            PermissionDenied: the caller does not manage the project.
            InvalidArgument: the role is not a project role.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        domain.check_member_role(request.member.role)
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_manager(principal, project)
            store.upsert_member(
                conn, project.id, request.member.subject, request.member.role
            )
            self._audit(
                conn,
                principal,
                "project.member.add",
                "project",
                project.id,
                project.id,
                {"member": request.member.subject, "role": request.member.role},
            )
            project = store.get_project(conn, project.id)
        return project_proto(project)

    # The annotator's queue.

    def LeaseNextTask(
        self, request: tasks_pb2.LeaseNextTaskRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Lease the caller's next task and return it with its redacted text.

        Raises:
            PermissionDenied: the caller is not an annotator of the project.
            NotFound: the queue has nothing left for the caller.
        """
        principal = current_principal()
        now = datetime.now(UTC)
        expires = domain.lease_expiry(now, self.lease_seconds)
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_annotator(principal, project)
            expire(conn, now, project.id)
            task_id = self._next_for(conn, project, principal.subject, now, expires)
            if task_id is None:
                raise NotFound(
                    f"Project {project.id} has no task waiting for you.",
                    code="queue_empty",
                )
            task = store.get_task(conn, task_id)
            mine = store.get_assignment(conn, task_id, principal.subject)
            until = {"expires_at": mine.lease_expires_at} if mine else {}
            self._audit_handover(conn, principal, "task.lease", task, until)
        return self._task_proto(task, mine, include_text=True)

    def _next_for(
        self,
        conn: Connection,
        project: domain.Project,
        subject: str,
        now: datetime,
        expires: datetime,
    ) -> str | None:
        """Returned answers first, then the held lease, then assigned tasks,
        then (pulling) the pool."""
        own = store.mine(
            conn, project.id, subject, domain.RETURNED, domain.LEASED, domain.ASSIGNED
        )
        if own is not None:
            if not own.is_leased(now):
                store.lease(conn, own.task_id, subject, expires)
            return own.task_id
        if project.settings.assignment != domain.PULL:
            return None
        return store.claim_from_pool(conn, project.id, subject, expires)

    def GetTask(
        self, request: tasks_pb2.GetTaskRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Return a task to its lease holder, its reviewer or a manager; to an
        annotator whose answer is in, without its text.

        Raises:
            NotFound: no task has that id.
            PermissionDenied: the caller has no part in the task.
        """
        principal = current_principal()
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            task, project, mine = self._load(conn, request.task_id, principal)
            readable = domain.may_read(principal, project, task, mine, now)
            if not readable and mine is None:
                raise PermissionDenied(
                    f"Task {task.id} is readable by its lease holder only.",
                    code="lease_required",
                )
            include_text = request.include_text and readable
            # Metadata alone (state, lease, document) is a read too.
            self._audit(
                conn,
                principal,
                "task.read",
                "task",
                task.id,
                task.project_id,
                {"document_id": task.document_id, "text": int(include_text)},
                documents=[task.document_id],
            )
        return self._task_proto(task, mine, include_text=include_text)

    def CompleteTask(
        self, request: tasks_pb2.CompleteTaskRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Count the caller's stored answer toward the task; repeats are no-ops.

        Raises:
            NotFound: no task has that id.
            PermissionDenied: the caller has no part in the task.
        """
        principal = current_principal()
        with self.engine.begin() as conn:
            task, _project, mine = self._load(conn, request.task_id, principal)
            if mine is None or mine.state == domain.SKIPPED:
                raise PermissionDenied(
                    f"Task {task.id} was not leased to you.", code="lease_required"
                )
            if not record_submission(
                conn,
                task,
                principal.subject,
                request.annotation_id,
                request.seconds,
                request.version or 1,
                principal,
            ):
                self._audit(
                    conn,
                    principal,
                    "task.complete",
                    "task",
                    task.id,
                    task.project_id,
                    {"document_id": task.document_id, "repeat": 1},
                )
            task = store.get_task(conn, task.id)
            mine = store.get_assignment(conn, task.id, principal.subject)
        return self._task_proto(task, mine, include_text=False)

    def SkipTask(
        self, request: tasks_pb2.SkipTaskRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Hand a leased task back with a reason; it never returns to the caller.

        Raises:
            InvalidArgument: no reason is given.
            PermissionDenied: the caller does not hold the task's lease.
        """
        principal = current_principal()
        reason = domain.check_skip_reason(request.reason)
        with self.engine.begin() as conn:
            task, _project, mine = self._load(conn, request.task_id, principal)
            if (
                mine is None
                or not mine.is_leased(datetime.now(UTC))
                or not store.skip(conn, task, principal.subject, reason)
            ):
                raise PermissionDenied(
                    f"Task {task.id} can be skipped by its lease holder only.",
                    code="lease_required",
                )
            # The reason is free text and stays in the tasks table only.
            self._audit(
                conn,
                principal,
                "task.skip",
                "task",
                task.id,
                task.project_id,
                {"document_id": task.document_id, "reason_length": len(reason)},
            )
            task = store.get_task(conn, task.id)
            mine = store.get_assignment(conn, task.id, principal.subject)
        return self._task_proto(task, mine, include_text=False)

    def ReopenTask(
        self, request: tasks_pb2.ReopenTaskRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Lease a task again to the annotator who answered it, to change the
        answer before review.

        Raises:
            Conflict: the caller has no answer to take back, or it is reviewed.
        """
        principal = current_principal()
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            task, project, mine = self._load(conn, request.task_id, principal)
            if mine is None:
                raise PermissionDenied(
                    f"Task {task.id} is reopened by its annotators only.",
                    code="lease_required",
                )
            domain.require_reopenable(task, mine, now, project.settings.review)
            if not store.reopen(
                conn,
                task,
                principal.subject,
                domain.lease_expiry(now, self.lease_seconds),
                project.settings.review,
            ):
                raise Conflict(
                    f"Task {task.id} has no answer of yours to take back.",
                    code="nothing_to_reopen",
                )
            task = store.get_task(conn, task.id)
            mine = store.get_assignment(conn, task.id, principal.subject)
            self._audit_handover(conn, principal, "task.reopen", task)
        return self._task_proto(task, mine, include_text=True)

    def GetTaskPage(
        self, request: tasks_pb2.GetTaskPageRequest, context: grpc.ServicerContext
    ) -> common_pb2.DataChunk:
        """The redacted image of one of a task's pages.

        Raises:
            PermissionDenied: the caller may not read the task.
            NotFound: the task has no image of that page.
        """
        principal = current_principal()
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            task, project, mine = self._load(conn, request.task_id, principal)
            if not domain.may_read(principal, project, task, mine, now):
                raise PermissionDenied(
                    f"Task {task.id} is readable by its lease holder only.",
                    code="lease_required",
                )
            image = next((p for p in task.pages if p.page == request.page), None)
            if image is None:
                raise NotFound(
                    f"Task {task.id} has no image of page {request.page}.",
                    code="page_not_found",
                )
            self._audit(
                conn,
                principal,
                "task.page.read",
                "task",
                task.id,
                task.project_id,
                {"document_id": task.document_id, "page": image.page},
                documents=[task.document_id],
            )
        return common_pb2.DataChunk(data=self.objects.read(DERIVED, image.sha256))

    # Managers.

    def UpdateTask(
        self, request: tasks_pb2.UpdateTaskRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Change a task's priority (higher goes first).

        Raises:
            PermissionDenied: the caller does not manage the task's project.
        """
        principal = current_principal()
        if abs(request.priority) > 1_000_000:
            raise InvalidArgument(
                "A priority lies between -1,000,000 and 1,000,000.",
                code="priority_invalid",
            )
        with self.engine.begin() as conn:
            task, project, mine = self._load(conn, request.task_id, principal)
            domain.require_manager(principal, project)
            store.set_priority(conn, task.id, request.priority)
            self._audit(
                conn,
                principal,
                "task.update",
                "task",
                task.id,
                project.id,
                {"document_id": task.document_id, "priority": request.priority},
            )
            task = store.get_task(conn, task.id)
        return self._task_proto(task, mine, include_text=False)

    def SetSuggestions(
        self, request: tasks_pb2.SetSuggestionsRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Set one source's suggestions on a task (an imported model's
        predictions), shown to its annotators like the redaction stage's.

        Raises:
            PermissionDenied: the caller does not manage the task's project.
            InvalidArgument: a bad source, too many suggestions, or one outside
                the window or with a label the project lacks.
        """
        principal = current_principal()
        with self.engine.begin() as conn:
            task, project, mine = self._load(conn, request.task_id, principal)
            domain.require_manager(principal, project)
            suggestions = domain.check_suggestions(
                request.source,
                [(*_span_of(s), s.label, s.score) for s in request.suggestions],
                project,
                task,
            )
            store.set_suggestions(conn, task, request.source, suggestions)
            self._audit(
                conn,
                principal,
                "task.suggestions.set",
                "task",
                task.id,
                project.id,
                {"document_id": task.document_id, "suggestions": len(suggestions)},
            )
            task = store.get_task(conn, task.id)
        return self._task_proto(task, mine, include_text=False)

    def AssignTasks(
        self, request: tasks_pb2.AssignTasksRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.AssignTasksResponse:
        """Assign up to ``count`` open tasks to one annotator of the project.

        Raises:
            PermissionDenied: the caller does not manage the project.
            InvalidArgument: the user is not an annotator of it, or the count
                is out of range.
        """
        principal = current_principal()
        if not 1 <= request.count <= domain.MAX_ASSIGN:
            raise InvalidArgument(
                f"Assign 1 to {domain.MAX_ASSIGN} tasks at a time.",
                code="assign_count_invalid",
            )
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_manager(principal, project)
            if project.role_of(request.annotator) != ANNOTATOR:
                raise InvalidArgument(
                    "Tasks are assigned to the project's annotators only.",
                    code="annotator_required",
                )
            assigned = []
            expires = datetime.now(UTC)
            for _ in range(request.count):
                task_id = store.claim_from_pool(
                    conn, project.id, request.annotator, expires, pre_assigned=True
                )
                if task_id is None:
                    break
                assigned.append(task_id)
            self._audit(
                conn,
                principal,
                "task.assign",
                "project",
                project.id,
                project.id,
                {"annotator": request.annotator, "tasks": len(assigned)},
            )
        return tasks_pb2.AssignTasksResponse(assigned=len(assigned))

    def ListTasks(
        self, request: tasks_pb2.ListTasksRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.ListTasksResponse:
        principal = current_principal()
        limit, offset = page_bounds(request.page)
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_manager(principal, project)
            tasks, total = store.list_tasks(conn, project.id, limit, offset)
            self._audit(
                conn,
                principal,
                "task.list",
                "project",
                project.id,
                project.id,
                {"count": len(tasks), "offset": offset},
                documents=[task.document_id for task in tasks],
            )
        return tasks_pb2.ListTasksResponse(
            tasks=[self._task_proto(t, None, include_text=False) for t in tasks],
            page=common_pb2.PageInfo(offset=offset, total=total),
        )

    def GetQueueStats(
        self, request: tasks_pb2.GetQueueStatsRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.QueueStats:
        """Progress and per-annotator figures; managers only, no text."""
        principal = current_principal()
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_manager(principal, project)
            counts = store.task_counts(conn, project.id)
            annotators = store.annotator_counts(conn, project.id)
            self._audit(
                conn, principal, "project.stats.read", "project", project.id, project.id
            )
        return tasks_pb2.QueueStats(
            total=counts["total"],
            open=counts["open"],
            in_progress=counts["in_progress"],
            in_review=counts["in_review"],
            completed=counts["completed"],
            queue_depth=counts["queue_depth"],
            annotators=[_annotator_stats(a) for a in annotators],
        )

    def AddSyntheticTask(
        self, request: tasks_pb2.AddSyntheticTaskRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Add a synthetic example's task, complete from the start.

        Raises:
            PermissionDenied: the caller does not manage the project.
            NotFound: the source task is not one of the project's.
            InvalidArgument: an unknown method, or a text empty or too long.
        """
        principal = current_principal()
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_manager(principal, project)
            source = store.get_task(conn, request.source_task_id)
            if source.project_id != project.id:
                raise NotFound(
                    f"Task {request.source_task_id} does not exist.",
                    code="task_not_found",
                )
        text = request.text.encode("utf-8")
        stored = self.objects.put(DERIVED, [text])
        with self.engine.begin() as conn:
            task = domain.synthetic_task(
                project,
                request.method,
                source.id,
                stored.sha256,
                len(request.text),
                utc_now(),
            )
            store.insert_task(conn, task)
            self._audit(
                conn,
                principal,
                "task.synthetic.add",
                "task",
                task.id,
                project.id,
                {"method": task.synthetic, "source_task_id": source.id},
            )
        return self._task_proto(task, None, include_text=False)

    # Review.

    def LeaseNextReview(
        self, request: tasks_pb2.LeaseNextReviewRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Lease the next fully answered task to a reviewer of the project.

        Raises:
            PermissionDenied: the caller neither reviews nor manages it.
            NotFound: nothing waits for review.
        """
        principal = current_principal()
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_reviewer(principal, project)
            task = store.claim_review(
                conn,
                project.id,
                principal.subject,
                now,
                domain.lease_expiry(now, self.review_lease_seconds),
            )
            if task is None:
                raise NotFound(
                    f"Project {project.id} has no task waiting for review.",
                    code="review_queue_empty",
                )
            self._audit_handover(conn, principal, "review.lease", task)
        return self._task_proto(task, None, include_text=True)

    def ResolveReview(
        self, request: tasks_pb2.ResolveReviewRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Apply the caller's review decision; applying it twice is a no-op.

        Raises:
            PermissionDenied: the caller does not hold the task's review.
            InvalidArgument: the decision is unknown, or a rejection names no
                answer or gives no comment.
        """
        principal = current_principal()
        domain.check_decision(request.decision, request.annotator, request.comment)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            task, project, _mine = self._load(conn, request.task_id, principal)
            if task.state == domain.REVIEW and not task.is_reviewed_by(
                principal.subject, now
            ):
                raise PermissionDenied(
                    f"Task {task.id} is decided by the reviewer holding it.",
                    code="review_lease_required",
                )
            if task.state not in (domain.REVIEW, domain.COMPLETED):
                domain.require_manager(principal, project)
            apply_review(
                conn,
                task,
                request.decision,
                request.annotator,
                request.annotation_id,
                request.comment,
                request.review_id,
                principal,
            )
            task = store.get_task(conn, task.id)
        return self._task_proto(task, None, include_text=False)

    # Helpers.

    def _load(
        self, conn: Connection, task_id: str, principal: Principal
    ) -> tuple[domain.Task, domain.Project, domain.Assignment | None]:
        """The task, its project and the caller's part in it.

        Raises:
            NotFound: no task has that id, or it is in a project the caller is
                not in (the same answer, so ids of other projects reveal nothing).
        """
        task = store.get_task(conn, task_id)
        project = store.get_project(conn, task.project_id)
        if not domain.is_member(principal, project):
            raise HiddenNotFound(
                f"Task {task_id} does not exist.", code="task_not_found"
            )
        return task, project, store.get_assignment(conn, task.id, principal.subject)

    def _audit(
        self,
        conn: Connection,
        principal: Principal,
        action: str,
        resource_type: str,
        resource_id: str,
        project_id: str,
        details: Mapping[str, str | int] | None = None,
        documents: Iterable[str] = (),
    ) -> None:
        stage_audit(
            conn,
            service=SERVICE,
            action=action,
            actor=principal,
            resource_type=resource_type,
            resource_id=resource_id,
            project_id=project_id,
            details=details or {},
            documents=list(documents),
        )

    def _audit_handover(
        self,
        conn: Connection,
        principal: Principal,
        action: str,
        task: domain.Task,
        details: Mapping[str, str | int] | None = None,
    ) -> None:
        """Record a task handed to the caller, and the read of its text."""
        for name in (action, "task.read"):
            self._audit(
                conn,
                principal,
                name,
                "task",
                task.id,
                task.project_id,
                {"document_id": task.document_id, **(details or {})},
                documents=[task.document_id],
            )

    def _task_proto(
        self, task: domain.Task, mine: domain.Assignment | None, include_text: bool
    ) -> tasks_pb2.Task:
        text = ""
        if include_text:
            whole = self.objects.read(DERIVED, task.text_sha256).decode("utf-8")
            text = whole[task.window_start : task.window_end]
        lease = mine if mine is not None and mine.state == domain.LEASED else None
        return tasks_pb2.Task(
            id=task.id,
            project_id=task.project_id,
            document_id=task.document_id,
            state=_TASK_STATES[task.state],
            text_sha256=task.text_sha256,
            text_length=task.text_length,
            lease_holder=lease.annotator if lease else "",
            lease_expires_at=to_timestamp(lease.lease_expires_at if lease else ""),
            text=text,
            window_start=task.window_start,
            window_end=task.window_end,
            priority=task.priority,
            overlap=task.overlap,
            submitted=task.submitted,
            suggestions=[suggestion_proto(s) for s in task.suggestions],
            pages=[
                tasks_pb2.PageImage(page=p.page, width=p.width, height=p.height)
                for p in task.pages
            ],
            my_state=mine.state if mine is not None else "",
            review_comment=mine.comment if mine is not None else "",
            reviewer=task.reviewer,
            created_at=to_timestamp(task.created_at),
            tokens=[
                common_pb2.Span(start=start, end=end)
                for start, end in tokens(text, task.window_start)
            ],
            synthetic=task.synthetic,
            synthetic_source_task_id=task.synthetic_source,
        )


def _annotator_stats(entry: dict[str, object]) -> tasks_pb2.AnnotatorQueueStats:
    submitted = int(entry["submitted"])  # type: ignore[call-overload]
    seconds = float(entry.get("seconds", 0.0))  # type: ignore[arg-type]
    per_hour = 0.0
    if submitted and entry.get("first") and entry.get("last"):
        first = datetime.fromisoformat(str(entry["first"]))
        last = datetime.fromisoformat(str(entry["last"]))
        # Active time: from the first answer to the last, plus the time the
        # first answer took, so a single answer still gives a rate.
        span = (last - first).total_seconds() + seconds / submitted
        per_hour = submitted * 3600 / span if span > 0 else 0.0
    return tasks_pb2.AnnotatorQueueStats(
        subject=str(entry["subject"]),
        submitted=submitted,
        skipped=int(entry["skipped"]),  # type: ignore[call-overload]
        leased=int(entry["leased"]),  # type: ignore[call-overload]
        seconds_per_task=seconds / submitted if submitted else 0.0,
        per_hour=per_hour,
    )


def _labels(labels: Iterable[common_pb2.Label]) -> tuple[domain.Label, ...]:
    return tuple(
        domain.Label(
            name=label.name,
            color=label.color,
            hotkey=label.hotkey,
            description=label.description,
        )
        for label in labels
    )


def _schema(schema: tasks_pb2.LabelSchema) -> domain.LabelSchema:
    return domain.LabelSchema(
        spans=_labels(schema.spans),
        classes=_labels(schema.classes),
        multi_label=schema.multi_label,
        relations=_labels(schema.relations),
        boxes=_labels(schema.boxes),
        fields=tuple(domain.FieldSpec(f.name, f.description) for f in schema.fields),
    )


def _label_protos(labels: Iterable[domain.Label]) -> list[common_pb2.Label]:
    return [
        common_pb2.Label(
            name=label.name,
            color=label.color,
            hotkey=label.hotkey,
            description=label.description,
        )
        for label in labels
    ]


def project_proto(project: domain.Project) -> tasks_pb2.Project:
    settings = project.settings
    schema = settings.schema
    return tasks_pb2.Project(
        id=project.id,
        name=project.name,
        labels=_label_protos(schema.spans),
        members=[
            tasks_pb2.Member(subject=s, role=r)
            for s, r in sorted(project.members.items())
        ],
        created_at=to_timestamp(project.created_at),
        schema=tasks_pb2.LabelSchema(
            spans=_label_protos(schema.spans),
            classes=_label_protos(schema.classes),
            multi_label=schema.multi_label,
            relations=_label_protos(schema.relations),
            boxes=_label_protos(schema.boxes),
            fields=[
                tasks_pb2.FieldSpec(name=f.name, description=f.description)
                for f in schema.fields
            ],
        ),
        guidelines=settings.guidelines,
        overlap=settings.overlap,
        assignment=settings.assignment,
        window=tasks_pb2.Window(kind=settings.window.kind, size=settings.window.size),
        review=settings.review,
    )


def suggestion_proto(suggestion: domain.Suggestion) -> tasks_pb2.Suggestion:
    """A suggestion as the API shows it: a class suggestion has no span."""
    made = tasks_pb2.Suggestion(
        label=suggestion.label, source=suggestion.source, score=suggestion.score
    )
    if not suggestion.is_class:
        made.span.CopyFrom(common_pb2.Span(start=suggestion.start, end=suggestion.end))
    return made


def _span_of(suggestion: tasks_pb2.Suggestion) -> tuple[int | None, int | None]:
    """A suggestion's span, or (None, None) for a class suggestion."""
    if not suggestion.HasField("span"):
        return None, None
    return suggestion.span.start, suggestion.span.end
