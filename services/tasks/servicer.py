"""gRPC surface of the tasks service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
from sqlalchemy.engine import Engine

from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import ADMIN, require_role
from strongroom.services.common.database import utc_now
from strongroom.services.common.errors import NotFound, PermissionDenied
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.ports import ObjectStore
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.services.common.runtime import DERIVED
from strongroom.services.tasks import domain, store
from strongroom.services.tasks.handlers import SERVICE, close_task
from strongroom.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc

_TASK_STATES = {
    domain.QUEUED: tasks_pb2.TASK_STATE_QUEUED,
    domain.LEASED: tasks_pb2.TASK_STATE_LEASED,
    domain.COMPLETED: tasks_pb2.TASK_STATE_COMPLETED,
}


class TaskServicer(tasks_pb2_grpc.TaskServiceServicer):
    def __init__(
        self, engine: Engine, objects: ObjectStore, lease_seconds: int
    ) -> None:
        self.engine = engine
        self.objects = objects
        self.lease_seconds = lease_seconds

    def CreateProject(
        self, request: tasks_pb2.CreateProjectRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Project:
        """Create a project with its label set; admins only.

        Raises:
            InvalidArgument: the name or a label is not acceptable.
        """
        principal = current_principal()
        require_role(principal, ADMIN)
        labels = domain.check_project(
            request.name,
            [
                domain.Label(
                    name=label.name,
                    color=label.color,
                    hotkey=label.hotkey,
                    description=label.description,
                )
                for label in request.labels
            ],
        )
        project = domain.Project(
            id=str(uuid.uuid4()),
            name=request.name.strip(),
            labels=labels,
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
                details={"labels": len(labels)},
            )
        return _project_proto(project)

    def GetProject(
        self, request: tasks_pb2.GetProjectRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Project:
        principal = current_principal()
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_visible(principal, project)
            stage_audit(
                conn,
                service=SERVICE,
                action="project.read",
                actor=principal,
                resource_type="project",
                resource_id=project.id,
                project_id=project.id,
            )
        return _project_proto(project)

    def ListProjects(
        self, request: tasks_pb2.ListProjectsRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.ListProjectsResponse:
        principal = current_principal()
        limit, offset = page_bounds(request.page)
        member = None if ADMIN in principal.roles else principal.subject
        with self.engine.begin() as conn:
            ids, total = store.list_project_ids(conn, member, limit, offset)
            projects = [store.get_project(conn, project_id) for project_id in ids]
            stage_audit(
                conn,
                service=SERVICE,
                action="project.list",
                actor=principal,
                resource_type="project",
                details={"count": len(projects), "offset": offset},
            )
        return tasks_pb2.ListProjectsResponse(
            projects=[_project_proto(p) for p in projects],
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
        domain.check_member_role(request.member.role)
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_manager(principal, project)
            store.upsert_member(
                conn, project.id, request.member.subject, request.member.role
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="project.member.add",
                actor=principal,
                resource_type="project",
                resource_id=project.id,
                project_id=project.id,
                details={"member": request.member.subject, "role": request.member.role},
            )
            project = store.get_project(conn, project.id)
        return _project_proto(project)

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
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_annotator(principal, project)
            task = store.held_lease(conn, project.id, principal.subject, now)
            if task is None:
                task = store.claim_next(
                    conn,
                    project.id,
                    principal.subject,
                    now,
                    domain.lease_expiry(now, self.lease_seconds),
                )
            if task is None:
                raise NotFound(
                    f"Project {project.id} has no task waiting.", code="queue_empty"
                )
            stage_audit(
                conn,
                service=SERVICE,
                action="task.lease",
                actor=principal,
                resource_type="task",
                resource_id=task.id,
                project_id=project.id,
                details={
                    "document_id": task.document_id,
                    "expires_at": task.lease_expires_at,
                },
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="task.read",
                actor=principal,
                resource_type="task",
                resource_id=task.id,
                project_id=project.id,
                details={"document_id": task.document_id},
            )
        return self._task_proto(task, include_text=True)

    def GetTask(
        self, request: tasks_pb2.GetTaskRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Return a task; its text only to the lease holder and the managers.

        Raises:
            NotFound: no task has that id.
            PermissionDenied: the caller neither holds the lease nor manages.
        """
        principal = current_principal()
        with self.engine.begin() as conn:
            task = store.get_task(conn, request.task_id)
            project = store.get_project(conn, task.project_id)
            is_holder = task.is_leased_to(principal.subject, datetime.now(UTC))
            if not (is_holder or domain.can_manage(principal, project)):
                raise PermissionDenied(
                    f"Task {task.id} is readable by its lease holder only.",
                    code="lease_required",
                )
            # Metadata alone (state, lease holder, document) is a read too.
            stage_audit(
                conn,
                service=SERVICE,
                action="task.read",
                actor=principal,
                resource_type="task",
                resource_id=task.id,
                project_id=task.project_id,
                details={
                    "document_id": task.document_id,
                    "text": int(request.include_text),
                },
            )
        return self._task_proto(task, include_text=request.include_text)

    def CompleteTask(
        self, request: tasks_pb2.CompleteTaskRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.Task:
        """Close a task the caller holds the lease on; closing twice is a no-op.

        Raises:
            NotFound: no task has that id.
            PermissionDenied: the task is open and the caller does not hold it.
        """
        principal = current_principal()
        with self.engine.begin() as conn:
            task = store.get_task(conn, request.task_id)
            if task.state != domain.COMPLETED:
                if not task.is_leased_to(principal.subject, datetime.now(UTC)):
                    raise PermissionDenied(
                        f"Task {task.id} can be closed by its lease holder only.",
                        code="lease_required",
                    )
                close_task(
                    conn, task.id, task.project_id, request.annotation_id, principal
                )
                task = store.get_task(conn, task.id)
            else:
                # Closing again answers with the task, which only the
                # project's members may see; the repeat is recorded too.
                domain.require_visible(
                    principal, store.get_project(conn, task.project_id)
                )
                stage_audit(
                    conn,
                    service=SERVICE,
                    action="task.complete",
                    actor=principal,
                    resource_type="task",
                    resource_id=task.id,
                    project_id=task.project_id,
                    details={"document_id": task.document_id, "repeat": 1},
                )
        return self._task_proto(task, include_text=False)

    def ListTasks(
        self, request: tasks_pb2.ListTasksRequest, context: grpc.ServicerContext
    ) -> tasks_pb2.ListTasksResponse:
        principal = current_principal()
        limit, offset = page_bounds(request.page)
        with self.engine.begin() as conn:
            project = store.get_project(conn, request.project_id)
            domain.require_manager(principal, project)
            tasks, total = store.list_tasks(conn, project.id, limit, offset)
            stage_audit(
                conn,
                service=SERVICE,
                action="task.list",
                actor=principal,
                resource_type="project",
                resource_id=project.id,
                project_id=project.id,
                details={"count": len(tasks), "offset": offset},
                documents=[task.document_id for task in tasks],
            )
        return tasks_pb2.ListTasksResponse(
            tasks=[self._task_proto(t, include_text=False) for t in tasks],
            page=common_pb2.PageInfo(offset=offset, total=total),
        )

    def _task_proto(self, task: domain.Task, include_text: bool) -> tasks_pb2.Task:
        text = ""
        if include_text:
            text = self.objects.read(DERIVED, task.text_sha256).decode("utf-8")
        return tasks_pb2.Task(
            id=task.id,
            project_id=task.project_id,
            document_id=task.document_id,
            state=_TASK_STATES[task.state],
            text_sha256=task.text_sha256,
            text_length=task.text_length,
            lease_holder=task.lease_holder,
            lease_expires_at=to_timestamp(task.lease_expires_at),
            text=text,
        )


def _project_proto(project: domain.Project) -> tasks_pb2.Project:
    return tasks_pb2.Project(
        id=project.id,
        name=project.name,
        labels=[
            common_pb2.Label(
                name=label.name,
                color=label.color,
                hotkey=label.hotkey,
                description=label.description,
            )
            for label in project.labels
        ],
        members=[
            tasks_pb2.Member(subject=s, role=r)
            for s, r in sorted(project.members.items())
        ],
        created_at=to_timestamp(project.created_at),
    )
