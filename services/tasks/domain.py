"""Project, queue and review rules. Pure: no I/O.

A task is one window of a cleaned document. It wants ``overlap`` answers from
different annotators; each annotator's part in it is an assignment:

    assigned -> leased -> submitted -> (returned -> leased -> submitted)
                       -> skipped            (never offered to them again)
                       -> (lease expired: the slot goes back to the pool)

A task's own state follows from its assignments: ``open`` while it has a free
slot, ``full`` while every slot is taken but not every answer is in,
``review`` once all answers are in and the project reviews, and ``completed``
when the reviewer accepted or corrected it (or straight away without review).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from strongroom.services.common.auth import (
    ADMIN,
    ANNOTATOR,
    MANAGER,
    REVIEWER,
    Principal,
)
from strongroom.services.common.errors import (
    Conflict,
    HiddenNotFound,
    InvalidArgument,
    PermissionDenied,
)

# Task states.
OPEN = "open"
FULL = "full"
REVIEW = "review"
COMPLETED = "completed"

# Assignment states: the first four hold one of the task's slots.
ASSIGNED = "assigned"
LEASED = "leased"
SUBMITTED = "submitted"
RETURNED = "returned"
SKIPPED = "skipped"
HOLDING = (ASSIGNED, LEASED, SUBMITTED, RETURNED)

PULL = "pull"
PRE_ASSIGNED = "assigned"
ASSIGNMENT_MODES = (PULL, PRE_ASSIGNED)

WINDOW_DOCUMENT = "document"
WINDOW_PAGE = "page"
WINDOW_PARAGRAPH = "paragraph"
WINDOW_FIXED = "fixed"
WINDOW_KINDS = (WINDOW_DOCUMENT, WINDOW_PAGE, WINDOW_PARAGRAPH, WINDOW_FIXED)

ACCEPT = "accept"
CORRECT = "correct"
REJECT = "reject"
DECISIONS = (ACCEPT, CORRECT, REJECT)

MEMBER_ROLES = frozenset({MANAGER, ANNOTATOR, REVIEWER})
MAX_OVERLAP = 10
MAX_GUIDELINES = 100_000
MAX_SKIP_REASON = 500
MAX_COMMENT = 2_000
MAX_ASSIGN = 10_000
SYNTHETIC_METHODS = frozenset({"entity_swap", "template", "tabular"})
MAX_SYNTHETIC_TEXT = 100_000
# The ingestion service separates pages with this, so no offset straddles two.
PAGE_SEPARATOR = "\n\f"

_LABEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_HOTKEY = re.compile(r"[A-Za-z0-9]")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n|\f")
# Runs of letters and digits (with inner apostrophes and hyphens), or one
# other visible character.
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
class FieldSpec:
    name: str
    description: str = ""


@dataclass(frozen=True)
class LabelSchema:
    spans: tuple[Label, ...] = ()
    classes: tuple[Label, ...] = ()
    multi_label: bool = False
    relations: tuple[Label, ...] = ()
    boxes: tuple[Label, ...] = ()
    fields: tuple[FieldSpec, ...] = ()

    def is_empty(self) -> bool:
        return not (
            self.spans or self.classes or self.relations or self.boxes or self.fields
        )


@dataclass(frozen=True)
class Window:
    kind: str = WINDOW_DOCUMENT
    size: int = 0


@dataclass(frozen=True)
class Settings:
    schema: LabelSchema
    guidelines: str = ""
    overlap: int = 1
    assignment: str = PULL
    window: Window = Window()
    review: bool = False


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    settings: Settings
    members: dict[str, str] = field(default_factory=dict)
    created_at: str = ""

    @property
    def labels(self) -> tuple[Label, ...]:
        return self.settings.schema.spans

    def role_of(self, subject: str) -> str:
        return self.members.get(subject, "")


@dataclass(frozen=True)
class Suggestion:
    """A span label proposed for [start, end), or, with no span (start and
    end None), a class proposed for the whole task."""

    start: int | None
    end: int | None
    label: str
    source: str
    score: float = 1.0

    @property
    def is_class(self) -> bool:
        return self.start is None


@dataclass(frozen=True)
class PageImage:
    page: int
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Task:
    id: str
    project_id: str
    document_id: str
    state: str
    text_sha256: str
    text_length: int
    window_start: int = 0
    window_end: int = 0
    priority: int = 0
    overlap: int = 1
    active: int = 0
    submitted: int = 0
    suggestions: tuple[Suggestion, ...] = ()
    pages: tuple[PageImage, ...] = ()
    reviewer: str = ""
    review_expires_at: str = ""
    created_at: str = ""
    seq: int = 0
    # How a synthetic example was made, and from which task; empty for
    # tasks of real documents.
    synthetic: str = ""
    synthetic_source: str = ""

    def is_reviewed_by(self, subject: str, now: datetime) -> bool:
        return (
            self.state == REVIEW
            and self.reviewer == subject
            and datetime.fromisoformat(self.review_expires_at) > now
        )


@dataclass(frozen=True)
class Assignment:
    task_id: str
    project_id: str
    annotator: str
    state: str
    lease_expires_at: str = ""
    pre_assigned: bool = False
    annotation_id: str = ""
    comment: str = ""
    seconds: float = 0.0
    answer_version: int = 0
    started_at: str = ""
    submitted_at: str = ""

    def is_leased(self, now: datetime) -> bool:
        return (
            self.state == LEASED
            and bool(self.lease_expires_at)
            and datetime.fromisoformat(self.lease_expires_at) > now
        )


def check_settings(
    name: str,
    schema: LabelSchema,
    guidelines: str = "",
    overlap: int = 0,
    assignment: str = "",
    window: Window | None = None,
    review: bool | None = None,
) -> Settings:
    """Validate a new project and fill in defaults, colours and hotkeys.

    Raises:
        InvalidArgument: the name, a label, the overlap, the assignment mode
            or the window is not acceptable.
    """
    if not name.strip() or len(name) > 200:
        raise InvalidArgument(
            "A project name must have 1 to 200 characters.", code="project_name_invalid"
        )
    if schema.is_empty():
        raise InvalidArgument(
            "A project needs at least one label, class, box label or field.",
            code="labels_required",
        )
    if schema.relations and len(schema.spans) == 0:
        raise InvalidArgument(
            "Relations join spans, so a project with relations needs span labels.",
            code="relations_need_spans",
        )
    if len(guidelines) > MAX_GUIDELINES:
        raise InvalidArgument(
            f"Guidelines hold at most {MAX_GUIDELINES} characters.",
            code="guidelines_too_long",
        )
    overlap = overlap or 1
    if not 1 <= overlap <= MAX_OVERLAP:
        raise InvalidArgument(
            f"Overlap must be between 1 and {MAX_OVERLAP}.", code="overlap_invalid"
        )
    assignment = assignment or PULL
    if assignment not in ASSIGNMENT_MODES:
        raise InvalidArgument(
            "Assignment must be 'pull' or 'assigned'.", code="assignment_invalid"
        )
    window = _check_window(window or Window())
    return Settings(
        schema=_fill_schema(schema),
        guidelines=guidelines,
        overlap=overlap,
        assignment=assignment,
        window=window,
        review=bool(review),
    )


def _check_window(window: Window) -> Window:
    kind = window.kind or WINDOW_DOCUMENT
    if kind not in WINDOW_KINDS:
        raise InvalidArgument(
            f"A window is one of {', '.join(WINDOW_KINDS)}.", code="window_invalid"
        )
    if kind == WINDOW_FIXED and not 100 <= window.size <= 1_000_000:
        raise InvalidArgument(
            "A fixed window has 100 to 1,000,000 characters.",
            code="window_size_invalid",
        )
    return Window(kind, window.size if kind == WINDOW_FIXED else 0)


def _fill_schema(schema: LabelSchema) -> LabelSchema:
    """Check every label and give each a colour and, where free, a hotkey.

    Span, class and box labels share one hotkey space, since one view shows
    them together; relation labels are chosen after picking two spans.
    """
    names: set[tuple[str, str]] = set()
    taken = {
        label.hotkey.lower()
        for group in (schema.spans, schema.classes, schema.boxes)
        for label in group
        if label.hotkey
    }
    # Letters the web page keeps for itself (accept, correct, next, reject,
    # skip, reject a suggestion in binary review, undo) are never given out.
    free = [key for key in "123456789bdefghijklmopqtuvwy" if key not in taken]
    counter = 0

    def fill(group: Sequence[Label], kind: str, hotkeys: bool) -> tuple[Label, ...]:
        nonlocal counter
        filled = []
        for index, label in enumerate(group):
            _check_label(label, kind, index)
            key = (label.name.lower(), kind)
            if key in names:
                raise InvalidArgument(
                    f"The {kind} label {label.name!r} is listed twice.",
                    code="label_duplicate",
                )
            names.add(key)
            hotkey = label.hotkey.lower()
            if not hotkey and hotkeys and free:
                hotkey = free.pop(0)
            filled.append(
                Label(
                    name=label.name,
                    color=label.color or _PALETTE[counter % len(_PALETTE)],
                    hotkey=hotkey,
                    description=label.description,
                )
            )
            counter += 1
        return tuple(filled)

    fields: list[FieldSpec] = []
    for index, spec in enumerate(schema.fields):
        if not _LABEL_NAME.fullmatch(spec.name) or spec.name in {
            f.name for f in fields
        }:
            raise InvalidArgument(
                f"Field {index + 1} needs a unique name of letters, digits, '_' "
                "or '-', starting with a letter.",
                code="field_invalid",
            )
        fields.append(spec)
    return LabelSchema(
        spans=fill(schema.spans, "span", True),
        classes=fill(schema.classes, "class", True),
        multi_label=schema.multi_label,
        relations=fill(schema.relations, "relation", False),
        boxes=fill(schema.boxes, "box", True),
        fields=tuple(fields),
    )


def _check_label(label: Label, kind: str, index: int) -> None:
    if not _LABEL_NAME.fullmatch(label.name):
        raise InvalidArgument(
            f"The {kind} label {index + 1} must start with a letter and use "
            "letters, digits, '_' or '-' (at most 64).",
            code="label_invalid",
        )
    if label.color and not _COLOR.fullmatch(label.color):
        raise InvalidArgument(
            f"Label {label.name!r} needs a colour like #1f77b4.",
            code="label_color_invalid",
        )
    if label.hotkey and not _HOTKEY.fullmatch(label.hotkey):
        raise InvalidArgument(
            f"Label {label.name!r} needs a hotkey of one letter or digit.",
            code="label_hotkey_invalid",
        )
    if len(label.description) > 2_000:
        raise InvalidArgument(
            f"Label {label.name!r} has a description over 2,000 characters.",
            code="label_description_too_long",
        )


def check_member_role(role: str) -> None:
    if role not in MEMBER_ROLES:
        raise InvalidArgument(
            f"A member's role must be one of {', '.join(sorted(MEMBER_ROLES))}.",
            code="member_role_invalid",
        )


def check_skip_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_SKIP_REASON:
        raise InvalidArgument(
            f"Skipping a task needs a reason of 1 to {MAX_SKIP_REASON} characters.",
            code="skip_reason_required",
        )
    return reason


def check_decision(decision: str, annotator: str, comment: str) -> None:
    if decision not in DECISIONS:
        raise InvalidArgument(
            "A review decision is 'accept', 'correct' or 'reject'.",
            code="decision_invalid",
        )
    if decision == REJECT and not (annotator and comment.strip()):
        raise InvalidArgument(
            "Rejecting an answer names it and says why in a comment.",
            code="comment_required",
        )
    if len(comment) > MAX_COMMENT:
        raise InvalidArgument(
            f"A review comment holds at most {MAX_COMMENT} characters.",
            code="comment_too_long",
        )


def split_windows(text: str, window: Window) -> list[tuple[int, int]]:
    """Cut a document's text into the half-open ranges its tasks cover.

    Pages split at the ingestion service's page separator, paragraphs at blank
    lines (and page breaks), fixed windows at the last whitespace before the
    size so no word is cut. Empty and whitespace-only pieces give no task; a
    document with no text at all still gives one (it may have page images).
    """
    if window.kind == WINDOW_DOCUMENT or not text:
        return [(0, len(text))]
    if window.kind == WINDOW_PAGE:
        ranges = _split_at(text, re.compile(re.escape(PAGE_SEPARATOR)))
    elif window.kind == WINDOW_PARAGRAPH:
        ranges = _split_at(text, _PARAGRAPH_BREAK)
    else:
        ranges = _fixed(text, window.size)
    kept = [r for r in ranges if text[r[0] : r[1]].strip()]
    return kept or [(0, len(text))]


def _split_at(text: str, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    ranges, start = [], 0
    for match in separator.finditer(text):
        ranges.append((start, match.start()))
        start = match.end()
    ranges.append((start, len(text)))
    return ranges


def _fixed(text: str, size: int) -> list[tuple[int, int]]:
    ranges, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            if cut > start:
                end = cut + 1
        ranges.append((start, end))
        start = end
    return ranges


def page_of_window(text: str, start: int) -> int:
    """The 1-based page a window starts on."""
    return text.count(PAGE_SEPARATOR, 0, start) + 1


def suggestions_in(
    findings: Sequence[dict[str, object]],
    labels: Sequence[Label],
    start: int,
    end: int,
) -> tuple[Suggestion, ...]:
    """The redaction stage's findings that fall inside a window, as
    suggestions for the project's span labels of the same name."""
    by_name = {label.name.lower(): label.name for label in labels}
    chosen = []
    for finding in findings:
        label = by_name.get(str(finding.get("type", "")).lower())
        f_start, f_end = int(finding["start"]), int(finding["end"])  # type: ignore[call-overload]
        if label and start <= f_start < f_end <= end:
            chosen.append(Suggestion(f_start, f_end, label, "redaction", 1.0))
    return tuple(chosen)


_SUGGESTION_SOURCE = re.compile(r"[\w .:/+-]{1,64}")
MAX_SUGGESTIONS = 1000


def check_suggestions(
    source: str,
    suggestions: Sequence[tuple[int | None, int | None, str, float]],
    project: Project,
    task: Task,
) -> tuple[Suggestion, ...]:
    """Suggestions from ``source`` that fit the task's window and schema.

    Each is (start, end, label, score): a span label on [start, end), or,
    with start and end None, one of the project's classes for the whole task.

    Raises:
        InvalidArgument: a bad or reserved source, too many suggestions, a
            span outside the window, a span with a label the project lacks,
            or a suggestion without a span that names no class.
    """
    if not _SUGGESTION_SOURCE.fullmatch(source) or source == "redaction":
        raise InvalidArgument(
            "A suggestion source is 1 to 64 letters, digits and . : / + - "
            "and not 'redaction'.",
            code="suggestion_source_invalid",
        )
    if len(suggestions) > MAX_SUGGESTIONS:
        raise InvalidArgument(
            f"A task takes at most {MAX_SUGGESTIONS} suggestions from one source.",
            code="too_many_suggestions",
        )
    schema = project.settings.schema
    spans = {label.name for label in schema.spans}
    classes = {label.name for label in schema.classes}
    end_of_window = task.window_end or task.text_length
    made = []
    for start, end, label, score in suggestions:
        if start is None or end is None:
            if label not in classes:
                raise InvalidArgument(
                    f"A suggestion without a span names a class; the project "
                    f"has no class {label!r}.",
                    code="class_unknown",
                )
            start = end = None
        elif not task.window_start <= start < end <= end_of_window:
            raise InvalidArgument(
                "A suggestion must lie inside the task's window.",
                code="span_out_of_window",
            )
        elif label not in spans:
            raise InvalidArgument(
                f"The project has no span label {label!r}.", code="label_unknown"
            )
        made.append(Suggestion(start, end, label, source, min(max(score, 0.0), 1.0)))
    return tuple(made)


def state_after(
    state: str,
    overlap: int,
    active: int,
    submitted: int,
    review: bool,
    reviewed: bool = False,
) -> str:
    """A task's state once its counts are ``active`` and ``submitted``.

    ``reviewed``: a reviewer accepted or corrected it. A completed task stays
    completed; reopening one passes the state it reopens from.
    """
    if state == COMPLETED:
        return COMPLETED
    if submitted >= overlap:
        return COMPLETED if reviewed or not review else REVIEW
    return OPEN if active < overlap else FULL


def can_manage(principal: Principal, project: Project) -> bool:
    return ADMIN in principal.roles or project.role_of(principal.subject) == MANAGER


def is_member(principal: Principal, project: Project) -> bool:
    return ADMIN in principal.roles or bool(project.role_of(principal.subject))


def hide_from_outsiders(principal: Principal, project: Project) -> None:
    """Answer a caller outside the project exactly as for a project that does
    not exist, so no id, count or error tells them anything about it.

    Raises:
        NotFound: the caller is neither an admin nor a member.
    """
    if not is_member(principal, project):
        raise HiddenNotFound(
            f"Project {project.id} does not exist.", code="project_not_found"
        )


def require_manager(principal: Principal, project: Project) -> None:
    """Raises: NotFound: the caller is not in the project.
    PermissionDenied: the caller neither administers nor manages it."""
    hide_from_outsiders(principal, project)
    if not can_manage(principal, project):
        raise PermissionDenied(
            f"Managing project {project.id} needs its manager role.",
            code="project_manager_required",
        )


def require_annotator(principal: Principal, project: Project) -> None:
    """Raises: NotFound: the caller is not in the project.
    PermissionDenied: the caller is not an annotator of the project."""
    hide_from_outsiders(principal, project)
    if project.role_of(principal.subject) != ANNOTATOR:
        raise PermissionDenied(
            f"Tasks of project {project.id} go to its annotators only.",
            code="project_annotator_required",
        )


def require_reviewer(principal: Principal, project: Project) -> None:
    """Raises: NotFound: the caller is not in the project.
    PermissionDenied: the caller neither reviews nor manages it."""
    hide_from_outsiders(principal, project)
    if project.role_of(principal.subject) not in (REVIEWER, MANAGER):
        raise PermissionDenied(
            f"Reviews of project {project.id} go to its reviewers only.",
            code="project_reviewer_required",
        )


def may_read(
    principal: Principal,
    project: Project,
    task: Task,
    mine: Assignment | None,
    now: datetime,
) -> bool:
    """Whether the caller may read a task's text and page images: while they
    hold its lease, while they review it, or as a manager of the project."""
    if mine is not None and mine.is_leased(now):
        return True
    return task.is_reviewed_by(principal.subject, now) or can_manage(principal, project)


def require_reopenable(
    task: Task, mine: Assignment | None, now: datetime, review: bool = True
) -> None:
    """An answer can be taken back until a reviewer holds or decided it; in a
    project without review, also once its task completed.

    Raises:
        Conflict: the answer is not the caller's to take back now.
    """
    if mine is None or mine.state != SUBMITTED:
        raise Conflict(
            f"Task {task.id} has no answer of yours to take back.",
            code="nothing_to_reopen",
        )
    if (task.state == COMPLETED and review) or (
        task.reviewer and datetime.fromisoformat(task.review_expires_at) > now
    ):
        raise Conflict(
            f"Task {task.id} is reviewed or under review; its answer stays.",
            code="task_reviewed",
        )


def lease_expiry(now: datetime, lease_seconds: int) -> datetime:
    return now + timedelta(seconds=lease_seconds)


def synthetic_task(
    project: Project,
    method: str,
    source_task_id: str,
    text_sha256: str,
    text_length: int,
    now: str,
) -> Task:
    """A synthetic example's task: answered by its generator when it is made,
    so it is complete at once and never offered to anyone.

    Raises:
        InvalidArgument: an unknown method, or a text empty or too long.
    """
    if method not in SYNTHETIC_METHODS:
        methods = ", ".join(sorted(SYNTHETIC_METHODS))
        raise InvalidArgument(
            f"A synthetic example is made by one of {methods}.",
            code="synthesis_method_unknown",
        )
    if not 0 < text_length <= MAX_SYNTHETIC_TEXT:
        raise InvalidArgument(
            f"A synthetic example holds 1 to {MAX_SYNTHETIC_TEXT} characters.",
            code="synthetic_text_invalid",
        )
    task_id = str(uuid.uuid4())
    return Task(
        id=task_id,
        project_id=project.id,
        # Its own stand-in document, so it splits and groups on its own.
        document_id=f"synthetic-{task_id}",
        state=COMPLETED,
        text_sha256=text_sha256,
        text_length=text_length,
        window_start=0,
        window_end=text_length,
        overlap=project.settings.overlap,
        submitted=project.settings.overlap,
        created_at=now,
        synthetic=method,
        synthetic_source=source_task_id,
    )
