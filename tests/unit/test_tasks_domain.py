"""Project rules, member roles, access checks and task leases."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from strongroom.services.common.auth import (
    ADMIN,
    ANNOTATOR,
    MANAGER,
    REVIEWER,
    Principal,
)
from strongroom.services.common.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from strongroom.services.common.text import tokens
from strongroom.services.tasks.domain import (
    COMPLETED,
    FULL,
    LEASED,
    OPEN,
    REVIEW,
    SUBMITTED,
    Assignment,
    FieldSpec,
    Label,
    LabelSchema,
    Project,
    Settings,
    Task,
    Window,
    check_decision,
    check_member_role,
    check_settings,
    check_skip_reason,
    check_suggestions,
    hide_from_outsiders,
    lease_expiry,
    may_read,
    page_of_window,
    require_annotator,
    require_manager,
    require_reopenable,
    require_reviewer,
    split_windows,
    state_after,
    suggestions_in,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

PROJECT = Project(
    id="p1",
    name="Claims",
    settings=Settings(schema=LabelSchema(spans=(Label("PERSON"),))),
    members={"u-manager": MANAGER, "u-annotator": ANNOTATOR, "u-reviewer": REVIEWER},
)
ADMIN_USER = Principal("u-admin", "root", frozenset({ADMIN}))
MANAGER_USER = Principal("u-manager", "mia", frozenset({MANAGER}))
ANNOTATOR_USER = Principal("u-annotator", "ann", frozenset({ANNOTATOR}))
REVIEWER_USER = Principal("u-reviewer", "rev", frozenset({REVIEWER}))
# Holds the global manager role but is not a member of this project.
OUTSIDER = Principal("u-outsider", "out", frozenset({MANAGER, ANNOTATOR}))


SPANS = LabelSchema(spans=(Label("PERSON"),))


def _task(state: str = OPEN, **changes: object) -> Task:
    fields: dict[str, object] = {
        "id": "t1",
        "project_id": "p1",
        "document_id": "d1",
        "state": state,
        "text_sha256": "0" * 64,
        "text_length": 10,
        "window_end": 10,
        "overlap": 2,
    }
    return Task(**{**fields, **changes})  # type: ignore[arg-type]


def _lease(
    state: str = LEASED, expires: datetime = NOW, **changes: object
) -> Assignment:
    return Assignment(
        task_id="t1",
        project_id="p1",
        annotator="u-annotator",
        state=state,
        lease_expires_at=expires.isoformat(),
        **changes,  # type: ignore[arg-type]
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
        ("Claims", [Label("PERSON"), Label("person")], "label_duplicate"),
        ("Claims", [Label("PERSON", color="red")], "label_color_invalid"),
        ("Claims", [Label("PERSON", color="#12345")], "label_color_invalid"),
        ("Claims", [Label("PERSON", hotkey="ab")], "label_hotkey_invalid"),
    ],
)
def test_check_settings_refuses_bad_labels(
    name: str, labels: list[Label], code: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_settings(name, LabelSchema(spans=tuple(labels)))

    assert caught.value.code == code


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"overlap": 11}, "overlap_invalid"),
        ({"overlap": -1}, "overlap_invalid"),
        ({"assignment": "random"}, "assignment_invalid"),
        ({"window": Window("sentence")}, "window_invalid"),
        ({"window": Window("fixed", 10)}, "window_size_invalid"),
        ({"guidelines": "x" * 100_001}, "guidelines_too_long"),
    ],
)
def test_check_settings_refuses_bad_queue_settings(
    changes: dict[str, object], code: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_settings("Claims", SPANS, **changes)  # type: ignore[arg-type]

    assert caught.value.code == code


def test_relations_need_span_labels() -> None:
    schema = LabelSchema(classes=(Label("Urgent"),), relations=(Label("knows"),))

    with pytest.raises(InvalidArgument) as caught:
        check_settings("Claims", schema)

    assert caught.value.code == "relations_need_spans"


def test_check_settings_defaults() -> None:
    settings = check_settings("Claims", SPANS)

    assert settings.overlap == 1
    assert settings.assignment == "pull"
    assert settings.window == Window("document", 0)
    assert settings.review is False


def test_hotkeys_are_shared_by_spans_classes_and_boxes_and_skip_s() -> None:
    schema = LabelSchema(
        spans=tuple(Label(f"S{i}") for i in range(9)),
        classes=(Label("Urgent", hotkey="u"), Label("Routine")),
        boxes=(Label("Signature"),),
        relations=(Label("knows"),),
    )

    filled = check_settings("Claims", schema).schema

    keys = [label.hotkey for label in (*filled.spans, *filled.classes, *filled.boxes)]
    assert keys[:9] == list("123456789")
    assert keys[9:] == ["u", "b", "d"]
    assert filled.relations[0].hotkey == ""
    assert not set("acnrsxz") & set(keys), "keys the web page keeps"
    colours = [label.color for label in (*filled.spans, *filled.classes)]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", colour) for colour in colours)


def test_check_settings_keeps_given_colour_hotkey_and_description() -> None:
    given = Label("PERSON", color="#ABCDEF", hotkey="p", description="A human")

    settings = check_settings("Claims", LabelSchema(spans=(given,)))

    assert settings.schema.spans == (given,)


def test_fields_need_unique_names() -> None:
    schema = LabelSchema(fields=(FieldSpec("summary"), FieldSpec("summary")))

    with pytest.raises(InvalidArgument) as caught:
        check_settings("Claims", schema)

    assert caught.value.code == "field_invalid"


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


@pytest.mark.parametrize("principal", [ANNOTATOR_USER, REVIEWER_USER])
def test_require_manager_refuses_everyone_else(principal: Principal) -> None:
    with pytest.raises(PermissionDenied) as caught:
        require_manager(principal, PROJECT)

    assert caught.value.code == "project_manager_required"


def test_require_annotator_allows_annotator_member() -> None:
    require_annotator(ANNOTATOR_USER, PROJECT)


@pytest.mark.parametrize("principal", [ADMIN_USER, MANAGER_USER, REVIEWER_USER])
def test_require_annotator_refuses_everyone_else(principal: Principal) -> None:
    with pytest.raises(PermissionDenied) as caught:
        require_annotator(principal, PROJECT)

    assert caught.value.code == "project_annotator_required"


@pytest.mark.parametrize("principal", [REVIEWER_USER, MANAGER_USER])
def test_require_reviewer_allows_reviewers_and_managers(principal: Principal) -> None:
    require_reviewer(principal, PROJECT)


@pytest.mark.parametrize("principal", [ANNOTATOR_USER, ADMIN_USER])
def test_require_reviewer_refuses_everyone_else(principal: Principal) -> None:
    with pytest.raises(PermissionDenied) as caught:
        require_reviewer(principal, PROJECT)

    assert caught.value.code == "project_reviewer_required"


@pytest.mark.parametrize(
    "principal", [ADMIN_USER, MANAGER_USER, ANNOTATOR_USER, REVIEWER_USER]
)
def test_members_and_admins_see_the_project(principal: Principal) -> None:
    hide_from_outsiders(principal, PROJECT)


@pytest.mark.parametrize(
    "check", [hide_from_outsiders, require_manager, require_annotator, require_reviewer]
)
def test_outsiders_are_told_the_project_does_not_exist(
    check: Callable[[Principal, Project], None],
) -> None:
    with pytest.raises(NotFound) as caught:
        check(OUTSIDER, PROJECT)

    assert caught.value.code == "project_not_found"
    assert caught.value.message == "Project p1 does not exist."


def test_may_read_while_leased_reviewing_or_managing() -> None:
    task = _task()
    live = _lease(expires=NOW + timedelta(seconds=30))
    lapsed = _lease(expires=NOW)
    reviewed = _task(
        REVIEW,
        reviewer="u-reviewer",
        review_expires_at=(NOW + timedelta(minutes=1)).isoformat(),
    )

    assert may_read(ANNOTATOR_USER, PROJECT, task, live, NOW)
    assert not may_read(ANNOTATOR_USER, PROJECT, task, lapsed, NOW)
    assert not may_read(ANNOTATOR_USER, PROJECT, task, _lease(SUBMITTED), NOW)
    assert not may_read(ANNOTATOR_USER, PROJECT, task, None, NOW)
    assert may_read(REVIEWER_USER, PROJECT, reviewed, None, NOW)
    assert not may_read(REVIEWER_USER, PROJECT, task, None, NOW)
    assert not may_read(
        REVIEWER_USER, PROJECT, reviewed, None, NOW + timedelta(hours=1)
    )
    assert may_read(MANAGER_USER, PROJECT, task, None, NOW)
    assert not may_read(OUTSIDER, PROJECT, task, None, NOW)


def test_without_review_a_completed_answer_can_still_be_taken_back() -> None:
    require_reopenable(_task(COMPLETED), _lease(SUBMITTED), NOW, review=False)


def test_reopen_needs_an_unreviewed_answer_of_ones_own() -> None:
    require_reopenable(_task(FULL), _lease(SUBMITTED), NOW)
    require_reopenable(_task(REVIEW), _lease(SUBMITTED), NOW)
    refusals = [
        (_task(FULL), None, "nothing_to_reopen"),
        (_task(FULL), _lease(LEASED), "nothing_to_reopen"),
        (_task(COMPLETED), _lease(SUBMITTED), "task_reviewed"),
        (
            _task(
                REVIEW,
                reviewer="u-reviewer",
                review_expires_at=(NOW + timedelta(minutes=1)).isoformat(),
            ),
            _lease(SUBMITTED),
            "task_reviewed",
        ),
    ]
    for task, mine, code in refusals:
        with pytest.raises(Conflict) as caught:
            require_reopenable(task, mine, NOW)
        assert caught.value.code == code


@pytest.mark.parametrize(
    ("state", "active", "submitted", "review", "expected"),
    [
        (OPEN, 0, 0, True, OPEN),
        (OPEN, 1, 0, True, OPEN),
        (OPEN, 2, 0, True, FULL),
        (FULL, 2, 1, True, FULL),
        (FULL, 2, 2, True, REVIEW),
        (FULL, 2, 2, False, COMPLETED),
        (REVIEW, 2, 1, True, FULL),
        (COMPLETED, 0, 0, True, COMPLETED),
    ],
)
def test_state_after_follows_the_counts(
    state: str, active: int, submitted: int, review: bool, expected: str
) -> None:
    assert state_after(state, 2, active, submitted, review) == expected


def test_skip_needs_a_reason() -> None:
    assert check_skip_reason("  not English ") == "not English"
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(InvalidArgument):
            check_skip_reason(reason)


def test_reject_needs_an_answer_and_a_comment() -> None:
    check_decision("accept", "", "")
    check_decision("reject", "u-annotator", "Missed a name")
    for decision, annotator, comment in [
        ("reject", "u-annotator", " "),
        ("reject", "", "Missed a name"),
        ("approve", "", ""),
    ]:
        with pytest.raises(InvalidArgument):
            check_decision(decision, annotator, comment)


TEXT = "Page one.\n\nSecond para.\n\fPage two here.\n\fPage three."


def test_document_window_is_the_whole_text() -> None:
    assert split_windows(TEXT, Window("document")) == [(0, len(TEXT))]


def test_page_windows_split_at_the_page_separator() -> None:
    windows = split_windows(TEXT, Window("page"))

    assert [TEXT[a:b] for a, b in windows] == [
        "Page one.\n\nSecond para.",
        "Page two here.",
        "Page three.",
    ]
    assert [page_of_window(TEXT, a) for a, _ in windows] == [1, 2, 3]


def test_paragraph_windows_split_at_blank_lines_and_pages() -> None:
    windows = split_windows(TEXT, Window("paragraph"))

    assert [TEXT[a:b].strip() for a, b in windows] == [
        "Page one.",
        "Second para.",
        "Page two here.",
        "Page three.",
    ]


def test_fixed_windows_cover_the_text_without_cutting_words() -> None:
    text = " ".join(f"word{i}" for i in range(200))

    windows = split_windows(text, Window("fixed", 100))

    assert windows[0][0] == 0 and windows[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in pairwise(windows))
    assert all(b - a <= 100 for a, b in windows)
    assert all(text[a:b].split()[-1].startswith("word") for a, b in windows)
    assert all(b == len(text) or text[b - 1] == " " for _a, b in windows)


def test_blank_pieces_give_no_window_but_empty_text_gives_one() -> None:
    assert split_windows("\n\f\n\fOnly.", Window("page")) == [(4, 9)]
    assert split_windows("", Window("paragraph")) == [(0, 0)]


def test_suggestions_keep_findings_inside_the_window_with_a_matching_label() -> None:
    findings = [
        {"type": "PERSON", "start": 2, "end": 8},
        {"type": "person", "start": 12, "end": 15},
        {"type": "EMAIL", "start": 3, "end": 9},
        {"type": "PERSON", "start": 18, "end": 25},
    ]

    chosen = suggestions_in(findings, (Label("PERSON"),), 0, 20)

    assert [(s.start, s.end, s.label, s.source) for s in chosen] == [
        (2, 8, "PERSON", "redaction"),
        (12, 15, "PERSON", "redaction"),
    ]


def test_lease_expiry_adds_lease_seconds() -> None:
    assert lease_expiry(NOW, 90) == NOW + timedelta(seconds=90)


def test_tokens_are_words_and_punctuation_in_document_offsets() -> None:
    text = "Dr. O'Neil's re-check, 12.5 mg."

    found = [text[a - 100 : b - 100] for a, b in tokens(text, offset=100)]

    assert found == ["Dr", ".", "O'Neil's", "re-check", ",", "12", ".", "5", "mg", "."]


def test_imported_suggestions_fit_the_window_and_the_schema() -> None:
    task = _task(window_start=2, window_end=8)
    made = check_suggestions(
        "import model:ner-v2",
        [(2, 5, "PERSON", 0.7), (5, 8, "PERSON", 3.0)],
        PROJECT,
        task,
    )
    assert [(s.start, s.end, s.source, s.score) for s in made] == [
        (2, 5, "import model:ner-v2", 0.7),
        (5, 8, "import model:ner-v2", 1.0),
    ]
    refusals = [
        ("redaction", [(2, 5, "PERSON", 1.0)], "suggestion_source_invalid"),
        ("bad\nsource", [(2, 5, "PERSON", 1.0)], "suggestion_source_invalid"),
        ("import m", [(0, 5, "PERSON", 1.0)], "span_out_of_window"),
        ("import m", [(2, 9, "PERSON", 1.0)], "span_out_of_window"),
        ("import m", [(2, 5, "PLACE", 1.0)], "label_unknown"),
        ("import m", [(2, 3, "PERSON", 1.0)] * 1001, "too_many_suggestions"),
    ]
    for source, spans, code in refusals:
        with pytest.raises(InvalidArgument) as refused:
            check_suggestions(source, spans, PROJECT, task)
        assert refused.value.code == code


def test_a_suggestion_without_a_span_names_a_class() -> None:
    project = Project(
        id="p2",
        name="Triage",
        settings=Settings(
            schema=LabelSchema(spans=(Label("PERSON"),), classes=(Label("Urgent"),))
        ),
    )
    task = _task(window_start=2, window_end=8)

    (made,) = check_suggestions("model", [(None, None, "Urgent", 0.8)], project, task)

    assert (made.start, made.end, made.label, made.is_class) == (
        None,
        None,
        "Urgent",
        True,
    )
    refusals = [
        ((None, None, "PERSON", 0.8), "class_unknown"),
        ((None, None, "Routine", 0.8), "class_unknown"),
        ((2, 5, "Urgent", 0.8), "label_unknown"),
    ]
    for suggestion, code in refusals:
        with pytest.raises(InvalidArgument) as refused:
            check_suggestions("model", [suggestion], project, task)
        assert refused.value.code == code
