"""Project membership, asked of the tasks service, which keeps it.

Services that hold a project's data but not its members (ingestion,
redaction, export) ask the tasks service with the caller's own token. A
caller outside the project gets the same not-found answer as for an id that
does not exist, so nothing of another project can be told apart from
nothing at all.
"""

from __future__ import annotations

from collections.abc import Collection

from strongroom.services.common.auth import ADMIN, Principal
from strongroom.services.common.errors import (
    HiddenNotFound,
    NotFound,
    PermissionDenied,
)
from strongroom.services.common.grpc_clients import call, caller_metadata
from strongroom.v1 import tasks_pb2, tasks_pb2_grpc


class ProjectAccess:
    def __init__(self, tasks: tasks_pb2_grpc.TaskServiceStub) -> None:
        self.tasks = tasks

    def require(
        self,
        principal: Principal,
        project_id: str,
        roles: Collection[str],
        hidden: HiddenNotFound,
    ) -> None:
        """Refuse the call unless the caller administers Strongroom or holds one
        of the project roles ``roles`` in the project.

        Raises:
            HiddenNotFound: ``hidden``, when the caller is not in the project
                or no project has that id.
            PermissionDenied: the caller is in the project in another role.
        """
        if ADMIN in principal.roles:
            return
        metadata = caller_metadata(principal.token, principal.client_address)
        try:
            project: tasks_pb2.Project = call(
                self.tasks.GetProject,
                tasks_pb2.GetProjectRequest(project_id=project_id),
                metadata,
            )
        except NotFound as exc:
            raise hidden from exc
        role = next(
            (m.role for m in project.members if m.subject == principal.subject), ""
        )
        if role not in roles:
            raise PermissionDenied(
                f"This needs the {' or '.join(sorted(roles))} role in project "
                f"{project_id}.",
                code="project_role_required",
            )


def project_not_found(project_id: str) -> HiddenNotFound:
    """The answer for a project that does not exist, or is not the caller's."""
    return HiddenNotFound(
        f"Project {project_id} does not exist.", code="project_not_found"
    )
