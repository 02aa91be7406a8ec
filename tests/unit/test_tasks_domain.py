"""Project rules, member roles, access checks and task leases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.services.common.auth import (
    ADMIN,
    ANNOTATOR,
    MANAGER,
    REVIEWER,
    Principal,
)
from strongroom.services.common.errors import InvalidArgument, PermissionDenied
from strongroom.services.tasks.domain import (
    COMPLETED,
    LEASED,
    QUEUED,
    Label,
    Project,
    Task,
    check_member_role,
    check_project,
    lease_expiry,
    require_annotator,
    require_manager,
    require_visible,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

PROJECT = Project(
    id="p1",
    name="Claims",
    labels=(Label("PERSON"),),
    members={"u-manager": MANAGER, "u-annotator": ANNOTATOR, "u-reviewer": REVIEWER},
)
ADMIN_USER = Principal("u-admin", "root", frozenset({ADMIN}))
MANAGER_USER = Principal("u-manager", "mia", frozenset({MANAGER}))
ANNOTATOR_USER = Principal("u-annotator", "ann", frozenset({ANNOTATOR}))
REVIEWER_USER = Principal("u-reviewer", "rev", frozenset({REVIEWER}))
# Holds the global manager role but is not a member of this project.
OUTSIDER = Principal("u-outsider", "out", frozenset({MANAGER, ANNOTATOR}))


def _task(state: str, holder: str, expires: datetime) -> Task:
    return Task(
        id="t1",
        project_id="p1",
        document_id="d1",
        state=state,
        text_sha256="0" * 64,
        text_length=10,
        lease_holder=holder,
        lease_expires_at=expires.isoformat(),
    )


@pytest.mark.parametrize(
    ("name", "labels", "code"),
    [
        ("", [Label("PERSON")], "project_name_invalid"),
        ("   ", [Label("PERSON")], "project_name_invalid"),
        ("x" * 201, [Label("PERSON")], "project_name_invalid"),
        ("Claims", [], "labels_required"),
        ("Claims", [Label("1PERSON")], "label_invalid"),
        ("Claims", [Label("PER SON")], "label_invalid"),
        ("Claims", [Label("")], "label_invalid"),
        ("Claims", [Label("A" * 65)], "label_invalid"),
        ("Claims", [Label("PERSON"), Label("PERSON")], "label_duplicate"),
        ("Claims", [Label("PERSON", color="red")], "label_color_invalid"),
        ("Claims", [Label("PERSON", color="#12345")], "label_color_invalid"),
    ],
)
def test_check_project_refuses_bad_input(
    name: str, labels: list[Label], code: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_project(name, labels)

    assert caught.value.code == code


def test_check_project_fills_in_colours_and_hotkeys() -> None:
    names = [f"L{index}" for index in range(11)]

    labels = check_project("Claims", [Label(name) for name in names])

    assert [label.name for label in labels] == names
    assert [label.hotkey for label in labels] == [*"123456789", "", ""]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", label.color) for label in labels)
    assert len({label.color for label in labels[:10]}) == 10
    assert labels[10].color == labels[0].color


def test_check_project_keeps_given_colour_hotkey_and_description() -> None:
    given = Label("PERSON", color="#ABCDEF", hotkey="p", description="A human")

    (label,) = check_project("Claims", [given])

    assert label == given


@pytest.mark.parametrize("role", [MANAGER, ANNOTATOR, REVIEWER])
def test_check_member_role_accepts_project_roles(role: str) -> None:
    check_member_role(role)


@pytest.mark.parametrize("role", [ADMIN, "auditor", "", "Manager"])
def test_check_member_role_refuses_other_roles(role: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_member_role(role)

    assert caught.value.code == "member_role_invalid"


@pytest.mark.parametrize("principal", [ADMIN_USER, MANAGER_USER])
def test_require_manager_allows_admin_and_project_manager(
    principal: Principal,
) -> None:
    require_manager(principal, PROJECT)


@pytest.mark.parametrize("principal", [ANNOTATOR_USER, REVIEWER_USER, OUTSIDER])
def test_require_manager_refuses_everyone_else(principal: Principal) -> None:
    with pytest.raises(PermissionDenied) as caught:
        require_manager(principal, PROJECT)

    assert caught.value.code == "project_manager_required"


def test_require_annotator_allows_annotator_member() -> None:
    require_annotator(ANNOTATOR_USER, PROJECT)


@pytest.mark.parametrize(
    "principal", [ADMIN_USER, MANAGER_USER, REVIEWER_USER, OUTSIDER]
)
def test_require_annotator_refuses_everyone_else(principal: Principal) -> None:
    with pytest.raises(PermissionDenied) as caught:
        require_annotator(principal, PROJECT)

    assert caught.value.code == "project_annotator_required"


@pytest.mark.parametrize(
    "principal", [ADMIN_USER, MANAGER_USER, ANNOTATOR_USER, REVIEWER_USER]
)
def test_require_visible_allows_admin_and_members(principal: Principal) -> None:
    require_visible(principal, PROJECT)


def test_require_visible_refuses_outsider() -> None:
    with pytest.raises(PermissionDenied) as caught:
        require_visible(OUTSIDER, PROJECT)

    assert caught.value.code == "project_member_required"


def test_is_leased_to_holder_until_lease_expires() -> None:
    task = _task(LEASED, "u-annotator", NOW + timedelta(seconds=30))

    assert task.is_leased_to("u-annotator", NOW)
    assert not task.is_leased_to("u-other", NOW)
    assert not task.is_leased_to("u-annotator", NOW + timedelta(seconds=30))
    assert not task.is_leased_to("u-annotator", NOW + timedelta(minutes=5))


@pytest.mark.parametrize("state", [QUEUED, COMPLETED])
def test_is_leased_to_is_false_unless_leased(state: str) -> None:
    task = _task(state, "u-annotator", NOW + timedelta(hours=1))

    assert not task.is_leased_to("u-annotator", NOW)


def test_lease_expiry_adds_lease_seconds() -> None:
    assert lease_expiry(NOW, 90) == NOW + timedelta(seconds=90)
