"""Project and queue rules. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from strongroom.services.common.auth import (
    ADMIN,
    ANNOTATOR,
    MANAGER,
    REVIEWER,
    Principal,
)
from strongroom.services.common.errors import InvalidArgument, PermissionDenied

QUEUED = "queued"
LEASED = "leased"
COMPLETED = "completed"

MEMBER_ROLES = frozenset({MANAGER, ANNOTATOR, REVIEWER})

_LABEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# A palette with enough contrast on white for labels that bring no colour.
_PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#ff7f0e",
)


@dataclass(frozen=True)
class Label:
    name: str
    color: str = ""
    hotkey: str = ""
    description: str = ""


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    labels: tuple[Label, ...]
    members: dict[str, str] = field(default_factory=dict)
    created_at: str = ""

    def role_of(self, subject: str) -> str:
        return self.members.get(subject, "")


@dataclass(frozen=True)
class Task:
    id: str
    project_id: str
    document_id: str
    state: str
    text_sha256: str
    text_length: int
    lease_holder: str = ""
    lease_expires_at: str = ""
    created_at: str = ""

    def is_leased_to(self, subject: str, now: datetime) -> bool:
        return (
            self.state == LEASED
            and self.lease_holder == subject
            and datetime.fromisoformat(self.lease_expires_at) > now
        )


def check_project(name: str, labels: list[Label]) -> tuple[Label, ...]:
    """Validate a new project and fill in label colours and hotkeys.

    Raises:
        InvalidArgument: the name is empty, or a label is malformed or repeated.
    """
    if not name.strip() or len(name) > 200:
        raise InvalidArgument(
            "A project name must have 1 to 200 characters.", code="project_name_invalid"
        )
    if not labels:
        raise InvalidArgument(
            "A project needs at least one label.", code="labels_required"
        )
    seen: set[str] = set()
    filled: list[Label] = []
    for index, label in enumerate(labels):
        if not _LABEL_NAME.fullmatch(label.name):
            raise InvalidArgument(
                f"Label {index + 1} must start with a letter and use letters, digits, "
                "'_' or '-' (at most 64).",
                code="label_invalid",
            )
        if label.name in seen:
            raise InvalidArgument(
                f"Label {label.name!r} is listed twice.", code="label_duplicate"
            )
        if label.color and not _COLOR.fullmatch(label.color):
            raise InvalidArgument(
                f"Label {label.name!r} needs a colour like #1f77b4.",
                code="label_color_invalid",
            )
        seen.add(label.name)
        filled.append(
            Label(
                name=label.name,
                color=label.color or _PALETTE[index % len(_PALETTE)],
                hotkey=label.hotkey or (str(index + 1) if index < 9 else ""),
                description=label.description,
            )
        )
    return tuple(filled)


def check_member_role(role: str) -> None:
    if role not in MEMBER_ROLES:
        raise InvalidArgument(
            f"A member's role must be one of {', '.join(sorted(MEMBER_ROLES))}.",
            code="member_role_invalid",
        )


def can_manage(principal: Principal, project: Project) -> bool:
    return ADMIN in principal.roles or project.role_of(principal.subject) == MANAGER


def require_manager(principal: Principal, project: Project) -> None:
    """Raises: PermissionDenied: the caller neither administers nor manages it."""
    if not can_manage(principal, project):
        raise PermissionDenied(
            f"Managing project {project.id} needs its manager role.",
            code="project_manager_required",
        )


def require_annotator(principal: Principal, project: Project) -> None:
    """Raises: PermissionDenied: the caller is not an annotator of the project."""
    if project.role_of(principal.subject) != ANNOTATOR:
        raise PermissionDenied(
            f"Tasks of project {project.id} go to its annotators only.",
            code="project_annotator_required",
        )


def require_visible(principal: Principal, project: Project) -> None:
    """Raises: PermissionDenied: the caller is neither an admin nor a member."""
    if ADMIN not in principal.roles and not project.role_of(principal.subject):
        raise PermissionDenied(
            f"Project {project.id} is visible to its members only.",
            code="project_member_required",
        )


def lease_expiry(now: datetime, lease_seconds: int) -> datetime:
    return now + timedelta(seconds=lease_seconds)
