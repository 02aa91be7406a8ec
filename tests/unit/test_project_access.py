"""Project membership as other services ask the tasks service for it."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.services.common.auth import ADMIN, MANAGER, REVIEWER, Principal
from strongroom.services.common.errors import (
    HiddenNotFound,
    NotFound,
    PermissionDenied,
)
from strongroom.services.common.project_access import (
    ProjectAccess,
    project_not_found,
)
from strongroom.v1 import tasks_pb2

PROJECT = tasks_pb2.Project(
    id="p1",
    members=[
        tasks_pb2.Member(subject="u-manager", role=MANAGER),
        tasks_pb2.Member(subject="u-reviewer", role=REVIEWER),
    ],
)


class FakeTasks:
    """Answers GetProject as the tasks service does: members only."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def GetProject(self, request: tasks_pb2.GetProjectRequest, **_: Any) -> Any:
        self.asked.append(request.project_id)
        if request.project_id != PROJECT.id:
            raise NotFound("Project does not exist.", code="project_not_found")
        return PROJECT


def _caller(subject: str, *roles: str) -> Principal:
    return Principal(subject, subject, frozenset(roles), token="t")


def test_a_member_in_the_role_passes() -> None:
    access = ProjectAccess(FakeTasks())  # type: ignore[arg-type]

    access.require(
        _caller("u-manager", MANAGER), "p1", (MANAGER,), project_not_found("p1")
    )


def test_a_member_in_another_role_is_denied() -> None:
    access = ProjectAccess(FakeTasks())  # type: ignore[arg-type]

    with pytest.raises(PermissionDenied) as caught:
        access.require(
            _caller("u-reviewer", MANAGER), "p1", (MANAGER,), project_not_found("p1")
        )

    assert caught.value.code == "project_role_required"


def test_outside_the_project_the_answer_is_the_one_for_a_missing_id() -> None:
    access = ProjectAccess(FakeTasks())  # type: ignore[arg-type]

    with pytest.raises(HiddenNotFound) as foreign:
        access.require(
            _caller("u-outsider", MANAGER), "p2", (MANAGER,), project_not_found("p2")
        )

    assert foreign.value.code == "project_not_found"
    assert foreign.value.message == "Project p2 does not exist."


def test_admins_are_not_asked_about() -> None:
    tasks = FakeTasks()

    ProjectAccess(tasks).require(  # type: ignore[arg-type]
        _caller("u-admin", ADMIN), "p2", (MANAGER,), project_not_found("p2")
    )

    assert tasks.asked == []
