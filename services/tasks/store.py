"""The tasks service's tables: projects, members, tasks and assignments.

Correctness under concurrency rests on two conditional updates. A slot is
taken with ``UPDATE tasks SET active = active + 1 WHERE ... AND active <
overlap``, which both SQLite (one writer at a time) and PostgreSQL (the row
lock, with the condition re-checked after a concurrent commit) apply to one
caller at a time; and an annotator's part in a task is a row keyed by
``(task_id, annotator)``, so nobody holds the same task twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration, to_iso, utc_now
from strongroom.services.common.errors import Conflict, NotFound
from strongroom.services.tasks.domain import (
    ASSIGNED,
    COMPLETED,
    FULL,
    LEASED,
    OPEN,
    RETURNED,
    REVIEW,
    SKIPPED,
    SUBMITTED,
    Assignment,
    FieldSpec,
    Label,
    LabelSchema,
    PageImage,
    Project,
    Settings,
    Suggestion,
    Task,
    Window,
    state_after,
)

MIGRATIONS = (
    Migration(
        100,
        "projects, members and tasks",
        (
            """CREATE TABLE projects (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                labels TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            """CREATE TABLE members (
                project_id TEXT NOT NULL REFERENCES projects (id),
                subject TEXT NOT NULL,
                role TEXT NOT NULL,
                PRIMARY KEY (project_id, subject)
            )""",
            """CREATE TABLE tasks (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                document_id TEXT NOT NULL,
                state TEXT NOT NULL,
                text_sha256 TEXT NOT NULL,
                text_length BIGINT NOT NULL,
                lease_holder TEXT NOT NULL DEFAULT '',
                lease_expires_at TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                completed_at TEXT,
                UNIQUE (project_id, document_id)
            )""",
            "CREATE INDEX tasks_queue ON tasks (project_id, state, created_at)",
        ),
    ),
    Migration(
        200,
        "windows, overlap, assignments and review",
        (
            "ALTER TABLE projects ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'",
            "DROP INDEX tasks_queue",
            "ALTER TABLE tasks RENAME TO tasks_v1",
            """CREATE TABLE tasks (
                seq {serial_pk},
                id TEXT NOT NULL UNIQUE,
                project_id TEXT NOT NULL,
                document_id TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                window_end BIGINT NOT NULL,
                state TEXT NOT NULL,
                text_sha256 TEXT NOT NULL,
                text_length BIGINT NOT NULL,
                priority INTEGER NOT NULL DEFAULT 0,
                overlap INTEGER NOT NULL,
                active INTEGER NOT NULL DEFAULT 0,
                submitted INTEGER NOT NULL DEFAULT 0,
                suggestions TEXT NOT NULL DEFAULT '[]',
                pages TEXT NOT NULL DEFAULT '[]',
                reviewer TEXT NOT NULL DEFAULT '',
                review_expires_at TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                completed_at TEXT,
                UNIQUE (project_id, document_id, window_start)
            )""",
            """INSERT INTO tasks (id, project_id, document_id, window_start,
                window_end, state, text_sha256, text_length, overlap, active,
                submitted, created_at, completed_at)
               SELECT id, project_id, document_id, 0, text_length,
                CASE state WHEN 'completed' THEN 'completed' ELSE 'open' END,
                text_sha256, text_length, 1,
                CASE state WHEN 'completed' THEN 1 ELSE 0 END,
                CASE state WHEN 'completed' THEN 1 ELSE 0 END,
                created_at, completed_at
               FROM tasks_v1 ORDER BY created_at, id""",
            "DROP TABLE tasks_v1",
            # The pool: open tasks by priority, then in arrival order.
            # In the order the pool is read, so a lease reads its candidates
            # off the index instead of sorting every open task.
            "CREATE INDEX tasks_pool ON tasks (project_id, state, priority DESC, seq)",
            "CREATE INDEX tasks_document ON tasks (document_id)",
            """CREATE TABLE assignments (
                task_id TEXT NOT NULL,
                project_id TEXT NOT NULL,
                annotator TEXT NOT NULL,
                state TEXT NOT NULL,
                lease_expires_at TEXT NOT NULL DEFAULT '',
                pre_assigned INTEGER NOT NULL DEFAULT 0,
                annotation_id TEXT NOT NULL DEFAULT '',
                comment TEXT NOT NULL DEFAULT '',
                skip_reason TEXT NOT NULL DEFAULT '',
                seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
                answer_version INTEGER NOT NULL DEFAULT 0,
                started_at TEXT NOT NULL DEFAULT '',
                submitted_at TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (task_id, annotator)
            )""",
            "CREATE INDEX assignments_mine ON assignments "
            "(project_id, annotator, state)",
            "CREATE INDEX assignments_expiry ON assignments (state, lease_expires_at)",
        ),
    ),
    Migration(
        201,
        "a project's tasks in arrival order, for listing and export",
        ("CREATE INDEX tasks_by_arrival ON tasks (project_id, seq)",),
    ),
    Migration(
        210,
        "synthetic examples: how each was made and from which task",
        (
            "ALTER TABLE tasks ADD COLUMN synthetic TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE tasks ADD COLUMN synthetic_source TEXT NOT NULL DEFAULT ''",
        ),
    ),
)

_TASK_COLUMNS = (
    "seq, id, project_id, document_id, window_start, window_end, state, "
    "text_sha256, text_length, priority, overlap, active, submitted, "
    "suggestions, pages, reviewer, review_expires_at, created_at, synthetic, "
    "synthetic_source"
)
_ASSIGNMENT_COLUMNS = (
    "task_id, project_id, annotator, state, lease_expires_at, pre_assigned, "
    "annotation_id, comment, seconds, answer_version, started_at, submitted_at"
)
_ASSIGNMENT_COLUMNS_OF_A = ", ".join(
    f"a.{name}" for name in _ASSIGNMENT_COLUMNS.split(", ")
)
# How many pool candidates one lease looks at before giving up on a race.
_CANDIDATES = 16
EXPIRY_BATCH = 500


# Projects and members.


def insert_project(conn: Connection, project: Project) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO projects (id, name, labels, settings, created_at) "
            "VALUES (:id, :name, :labels, :settings, :at)"
        ),
        {
            "id": project.id,
            "name": project.name,
            "at": project.created_at,
            "labels": json.dumps([asdict(label) for label in project.labels]),
            "settings": json.dumps(asdict(project.settings)),
        },
    )


def upsert_member(conn: Connection, project_id: str, subject: str, role: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO members (project_id, subject, role) VALUES (:p, :s, :r) "
            "ON CONFLICT (project_id, subject) DO UPDATE SET role = excluded.role"
        ),
        {"p": project_id, "s": subject, "r": role},
    )


def get_project(conn: Connection, project_id: str) -> Project:
    """Raises: NotFound: no project has that id."""
    row = conn.execute(
        sa.text(
            "SELECT id, name, labels, settings, created_at FROM projects WHERE id = :id"
        ),
        {"id": project_id},
    ).first()
    if row is None:
        raise NotFound(
            f"Project {project_id} does not exist.", code="project_not_found"
        )
    members = conn.execute(
        sa.text("SELECT subject, role FROM members WHERE project_id = :id"),
        {"id": project_id},
    ).all()
    return Project(
        id=row.id,
        name=row.name,
        settings=_settings(json.loads(row.settings), json.loads(row.labels)),
        members={m.subject: m.role for m in members},
        created_at=row.created_at,
    )


def _settings(data: dict[str, Any], legacy_labels: list[dict[str, str]]) -> Settings:
    if not data:  # a project from before schemas: span labels only
        return Settings(schema=LabelSchema(spans=_labels(legacy_labels)))
    schema = data["schema"]
    return Settings(
        schema=LabelSchema(
            spans=_labels(schema["spans"]),
            classes=_labels(schema["classes"]),
            multi_label=schema["multi_label"],
            relations=_labels(schema["relations"]),
            boxes=_labels(schema["boxes"]),
            fields=tuple(FieldSpec(**f) for f in schema["fields"]),
        ),
        guidelines=data["guidelines"],
        overlap=data["overlap"],
        assignment=data["assignment"],
        window=Window(**data["window"]),
        review=data["review"],
    )


def _labels(rows: list[dict[str, str]]) -> tuple[Label, ...]:
    return tuple(Label(**row) for row in rows)


def list_project_ids(
    conn: Connection, member: str | None, limit: int, offset: int
) -> tuple[list[str], int]:
    """List all project ids, or those ``member`` belongs to, oldest first."""
    where, params = "", dict[str, object]()
    if member is not None:
        where = "WHERE id IN (SELECT project_id FROM members WHERE subject = :s)"
        params["s"] = member
    total = conn.execute(
        sa.text(f"SELECT COUNT(*) FROM projects {where}"), params
    ).scalar_one()
    rows = conn.execute(
        sa.text(
            f"SELECT id FROM projects {where} ORDER BY created_at, id "
            "LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": limit, "offset": offset},
    ).all()
    return [r.id for r in rows], int(total)


# Tasks.


def insert_task(conn: Connection, task: Task) -> bool:
    """Insert a task unless its window of the document already has one."""
    result = conn.execute(
        sa.text(
            "INSERT INTO tasks (id, project_id, document_id, window_start, "
            "window_end, state, text_sha256, text_length, priority, overlap, "
            "active, submitted, suggestions, pages, created_at, synthetic, "
            "synthetic_source) VALUES (:id, :project_id, :document_id, "
            ":window_start, :window_end, :state, :text_sha256, :text_length, "
            ":priority, :overlap, :active, :submitted, :suggestions, :pages, "
            ":created_at, :synthetic, :synthetic_source) ON CONFLICT DO NOTHING"
        ),
        {
            **{k: v for k, v in task.__dict__.items() if k in _INSERTED},
            "suggestions": _dump(task.suggestions),
            "pages": _dump(task.pages),
        },
    )
    return bool(result.rowcount)


_INSERTED = frozenset(
    {
        "id",
        "project_id",
        "document_id",
        "window_start",
        "window_end",
        "state",
        "text_sha256",
        "text_length",
        "priority",
        "overlap",
        "active",
        "submitted",
        "created_at",
        "synthetic",
        "synthetic_source",
    }
)


def _dump(items: Iterable[object]) -> str:
    return json.dumps([asdict(item) for item in items])  # type: ignore[call-overload]


def update_document_text(
    conn: Connection,
    document_id: str,
    project_id: str,
    text_sha256: str,
    text_length: int,
    pages: Sequence[PageImage],
) -> int:
    """Point a document's unfinished tasks at its re-redacted text."""
    result = conn.execute(
        sa.text(
            "UPDATE tasks SET text_sha256 = :sha, text_length = :length, "
            "pages = :pages, window_end = CASE WHEN window_start = 0 AND "
            "window_end = text_length THEN :length ELSE window_end END "
            "WHERE document_id = :d AND project_id = :p AND state != :done"
        ),
        {
            "sha": text_sha256,
            "length": text_length,
            "pages": _dump(pages),
            "d": document_id,
            "p": project_id,
            "done": COMPLETED,
        },
    )
    return int(result.rowcount)


def has_tasks(conn: Connection, project_id: str, document_id: str) -> bool:
    return (
        conn.execute(
            sa.text(
                "SELECT 1 FROM tasks WHERE document_id = :d AND project_id = :p LIMIT 1"
            ),
            {"d": document_id, "p": project_id},
        ).first()
        is not None
    )


def get_task(conn: Connection, task_id: str) -> Task:
    """Raises: NotFound: no task has that id."""
    row = conn.execute(
        sa.text(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = :id"), {"id": task_id}
    ).first()
    if row is None:
        raise NotFound(f"Task {task_id} does not exist.", code="task_not_found")
    return _task(row._mapping)


def _task(m: sa.RowMapping) -> Task:
    return Task(
        **{
            k: v
            for k, v in m.items()
            if k not in ("suggestions", "pages", "text_length", "window_start")
        },
        text_length=int(m["text_length"]),
        window_start=int(m["window_start"]),
        suggestions=tuple(Suggestion(**s) for s in json.loads(m["suggestions"])),
        pages=tuple(PageImage(**p) for p in json.loads(m["pages"])),
    )


def list_tasks(
    conn: Connection, project_id: str, limit: int, offset: int
) -> tuple[list[Task], int]:
    total = conn.execute(
        sa.text("SELECT COUNT(*) FROM tasks WHERE project_id = :p"), {"p": project_id}
    ).scalar_one()
    rows = conn.execute(
        sa.text(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE project_id = :p "
            "ORDER BY seq LIMIT :limit OFFSET :offset"
        ),
        {"p": project_id, "limit": limit, "offset": offset},
    ).all()
    return [_task(r._mapping) for r in rows], int(total)


def set_suggestions(
    conn: Connection, task: Task, source: str, suggestions: Sequence[Suggestion]
) -> None:
    """Replace the task's suggestions from ``source``, keeping the others."""
    kept = [s for s in task.suggestions if s.source != source]
    conn.execute(
        sa.text("UPDATE tasks SET suggestions = :suggestions WHERE id = :id"),
        {"id": task.id, "suggestions": _dump([*kept, *suggestions])},
    )


def set_priority(conn: Connection, task_id: str, priority: int) -> None:
    conn.execute(
        sa.text("UPDATE tasks SET priority = :priority WHERE id = :id"),
        {"id": task_id, "priority": priority},
    )


def _recount(
    conn: Connection,
    task: Task,
    active: int,
    submitted: int,
    review: bool,
    *,
    reviewed: bool = False,
    reopen: bool = False,
) -> str:
    """Change a task's counts by ``active`` and ``submitted`` and set the
    state they give; return it."""
    row = conn.execute(
        sa.text(
            "UPDATE tasks SET active = active + :active, submitted = submitted + "
            ":submitted WHERE id = :id RETURNING state, overlap, active, submitted"
        ),
        {"id": task.id, "active": active, "submitted": submitted},
    ).one()
    state = state_after(
        FULL if reopen else row.state,
        row.overlap,
        row.active,
        row.submitted,
        review,
        reviewed,
    )
    conn.execute(
        sa.text(
            "UPDATE tasks SET state = :state, completed_at = CASE WHEN "
            ":state = 'completed' THEN :now WHEN :state = 'open' OR "
            ":state = 'full' THEN NULL ELSE completed_at END"
            + (", reviewer = '', review_expires_at = ''" if state != REVIEW else "")
            + " WHERE id = :id"
        ),
        {"id": task.id, "state": state, "now": utc_now()},
    )
    return state


# Assignments.


def get_assignment(conn: Connection, task_id: str, annotator: str) -> Assignment | None:
    row = conn.execute(
        sa.text(
            f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments "
            "WHERE task_id = :t AND annotator = :a"
        ),
        {"t": task_id, "a": annotator},
    ).first()
    return _assignment(row._mapping) if row else None


def _assignment(m: sa.RowMapping) -> Assignment:
    return Assignment(**{**m, "pre_assigned": bool(m["pre_assigned"])})


def mine(
    conn: Connection, project_id: str, annotator: str, *states: str
) -> Assignment | None:
    """The caller's first assignment in one of ``states``: by the order the
    states are given, then highest priority, then oldest task."""
    rank = " ".join(f"WHEN :s{i} THEN {i}" for i in range(len(states)))
    marks = ", ".join(f":s{i}" for i in range(len(states)))
    row = conn.execute(
        sa.text(
            f"SELECT {_ASSIGNMENT_COLUMNS_OF_A} FROM assignments a "
            "JOIN tasks t ON t.id = a.task_id WHERE a.project_id = :p "
            f"AND a.annotator = :a AND a.state IN ({marks}) "
            f"ORDER BY CASE a.state {rank} END, t.priority DESC, t.seq LIMIT 1"
        ),
        {"p": project_id, "a": annotator, **{f"s{i}": s for i, s in enumerate(states)}},
    ).first()
    return _assignment(row._mapping) if row else None


def lease(conn: Connection, task_id: str, annotator: str, expires: datetime) -> None:
    """Turn the caller's assigned or returned part in a task into a lease."""
    conn.execute(
        sa.text(
            "UPDATE assignments SET state = :leased, lease_expires_at = :expires, "
            "started_at = :now WHERE task_id = :t AND annotator = :a"
        ),
        {
            "t": task_id,
            "a": annotator,
            "leased": LEASED,
            "expires": to_iso(expires),
            "now": utc_now(),
        },
    )


def claim_from_pool(
    conn: Connection,
    project_id: str,
    annotator: str,
    expires: datetime,
    pre_assigned: bool = False,
) -> str | None:
    """Take a free slot of the best open task the annotator never had.

    Returns the task id, or None when the pool has nothing for them.
    """
    state = ASSIGNED if pre_assigned else LEASED
    for _round in range(4):
        candidates = conn.execute(
            sa.text(
                "SELECT id FROM tasks t WHERE project_id = :p AND state = :open "
                "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE "
                "a.task_id = t.id AND a.annotator = :a) "
                "ORDER BY priority DESC, seq LIMIT :n"
            ),
            {"p": project_id, "open": OPEN, "a": annotator, "n": _CANDIDATES},
        ).all()
        if not candidates:
            return None
        for candidate in candidates:
            if _take_slot(conn, candidate.id, project_id, annotator, state, expires):
                return str(candidate.id)
    return None


def _take_slot(
    conn: Connection,
    task_id: str,
    project_id: str,
    annotator: str,
    state: str,
    expires: datetime,
) -> bool:
    taken = conn.execute(
        sa.text(
            "UPDATE tasks SET active = active + 1, state = CASE WHEN "
            "active + 1 >= overlap THEN :full ELSE :open END "
            "WHERE id = :id AND state = :open AND active < overlap"
        ),
        {"id": task_id, "open": OPEN, "full": FULL},
    )
    if not taken.rowcount:
        return False
    inserted = conn.execute(
        sa.text(
            "INSERT INTO assignments (task_id, project_id, annotator, state, "
            "lease_expires_at, pre_assigned, started_at) VALUES (:t, :p, :a, "
            ":state, :expires, :pre, :now) ON CONFLICT DO NOTHING"
        ),
        {
            "t": task_id,
            "p": project_id,
            "a": annotator,
            "state": state,
            "expires": to_iso(expires) if state == LEASED else "",
            "pre": int(state == ASSIGNED),
            "now": utc_now() if state == LEASED else "",
        },
    )
    if not inserted.rowcount:
        # The same annotator took it in a concurrent call: give the slot back.
        conn.execute(
            sa.text(
                "UPDATE tasks SET active = active - 1, state = :open WHERE id = :id"
            ),
            {"id": task_id, "open": OPEN},
        )
        return False
    return True


def submit(
    conn: Connection,
    task: Task,
    annotator: str,
    annotation_id: str,
    seconds: float,
    review: bool,
    version: int = 1,
) -> bool:
    """Record an annotator's answer; False when it changes nothing.

    An answer is never turned away: one whose lease ran out (and whose slot
    went back to the pool) is counted all the same. One no newer than the
    answer already recorded (the same one reported twice, or an older one
    reported late) is ignored.

    The same answer often arrives twice at once (the labeling service's call
    and its event), so every write is conditional on the assignment being as
    it was read: the loser of a race reads again and finds the answer in.
    """
    for _round in range(8):
        mine = get_assignment(conn, task.id, annotator)
        if mine is not None and version <= mine.answer_version:
            return False
        changed = _record_answer(
            conn, task, annotator, annotation_id, seconds, version, mine
        )
        if changed is None:
            continue
        if changed:
            # A new assignment takes a slot; a lease or a returned answer
            # already holds one. A newer answer replacing a counted one
            # changes no count.
            _recount(conn, task, int(mine is None or mine.state == SKIPPED), 1, review)
        return changed
    raise Conflict(
        f"Task {task.id} changed under every attempt to record an answer.",
        code="task_contended",
    )


def _record_answer(
    conn: Connection,
    task: Task,
    annotator: str,
    annotation_id: str,
    seconds: float,
    version: int,
    seen: Assignment | None,
) -> bool | None:
    """Write the answer if the assignment is still ``seen``.

    Returns whether it now counts anew (False: it replaced a counted one),
    or None when another writer got there first.
    """
    params = {
        "t": task.id,
        "p": task.project_id,
        "a": annotator,
        "an": annotation_id,
        "s": seconds,
        "now": utc_now(),
        "v": version,
        "submitted": SUBMITTED,
    }
    if seen is None:
        inserted = conn.execute(
            sa.text(
                "INSERT INTO assignments (task_id, project_id, annotator, state, "
                "annotation_id, seconds, submitted_at, answer_version) VALUES (:t, "
                ":p, :a, :submitted, :an, :s, :now, :v) ON CONFLICT DO NOTHING"
            ),
            params,
        )
        return True if inserted.rowcount else None
    sets = "annotation_id = :an, submitted_at = :now, answer_version = :v"
    if seen.state == SKIPPED:
        sets += ", state = :submitted, seconds = :s"
    elif seen.state != SUBMITTED:
        sets += (
            ", state = :submitted, seconds = seconds + :s, lease_expires_at = '', "
            "comment = ''"
        )
    updated = conn.execute(
        sa.text(
            f"UPDATE assignments SET {sets} WHERE task_id = :t AND annotator = :a "
            "AND state = :seen AND answer_version = :seen_version"
        ),
        {**params, "seen": seen.state, "seen_version": seen.answer_version},
    )
    if not updated.rowcount:
        return None
    return seen.state != SUBMITTED


def skip(conn: Connection, task: Task, annotator: str, reason: str) -> bool:
    """Give a leased slot back for good; False when the lease is gone."""
    skipped = conn.execute(
        sa.text(
            "UPDATE assignments SET state = :skipped, skip_reason = :reason, "
            "lease_expires_at = '', pre_assigned = 0 "
            "WHERE task_id = :t AND annotator = :a AND state = :leased"
        ),
        {
            "t": task.id,
            "a": annotator,
            "skipped": SKIPPED,
            "leased": LEASED,
            "reason": reason,
        },
    )
    if not skipped.rowcount:
        return False
    _recount(conn, task, -1, 0, review=True)
    return True


def reopen(
    conn: Connection, task: Task, annotator: str, expires: datetime, review: bool
) -> bool:
    """Lease a submitted answer back to its annotator; False when it is not
    submitted (any more)."""
    reopened = conn.execute(
        sa.text(
            "UPDATE assignments SET state = :leased, lease_expires_at = :expires "
            "WHERE task_id = :t AND annotator = :a AND state = :submitted"
        ),
        {
            "t": task.id,
            "a": annotator,
            "leased": LEASED,
            "submitted": SUBMITTED,
            "expires": to_iso(expires),
        },
    )
    if not reopened.rowcount:
        return False
    # A completed task (no review) opens again until the answer is back.
    _recount(conn, task, 0, -1, review, reopen=True)
    return True


def _state_after_lapse(lease_: Assignment) -> str | None:
    if lease_.comment:
        return RETURNED
    if lease_.annotation_id:
        return SUBMITTED
    if lease_.pre_assigned:
        return ASSIGNED
    return None


def expire_leases(
    conn: Connection,
    now: datetime,
    project_id: str | None = None,
    limit: int = EXPIRY_BATCH,
) -> list[Assignment]:
    """Give the slots of lapsed leases back; pre-assigned ones stay assigned.

    Returns the leases that lapsed, for the audit trail.
    """
    where = "state = :leased AND lease_expires_at != '' AND lease_expires_at <= :now"
    params: dict[str, Any] = {"leased": LEASED, "now": to_iso(now), "n": limit}
    if project_id is not None:
        where += " AND project_id = :p"
        params["p"] = project_id
    rows = conn.execute(
        sa.text(
            f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE {where} LIMIT :n"
        ),
        params,
    ).all()
    lapsed = [_assignment(r._mapping) for r in rows]
    for lease_ in lapsed:
        key = {"t": lease_.task_id, "a": lease_.annotator, "leased": LEASED}
        back = _state_after_lapse(lease_)
        if back is not None:
            # A returned or reopened answer, or a task assigned to them,
            # stays theirs: it never goes to the pool.
            moved = conn.execute(
                sa.text(
                    "UPDATE assignments SET state = :back, lease_expires_at = '' "
                    "WHERE task_id = :t AND annotator = :a AND state = :leased"
                ),
                {**key, "back": back},
            )
            if moved.rowcount and back == SUBMITTED:
                task = get_task(conn, lease_.task_id)
                review = get_project(conn, task.project_id).settings.review
                _recount(conn, task, 0, 1, review)
            continue
        gone = conn.execute(
            sa.text(
                "DELETE FROM assignments WHERE task_id = :t AND annotator = :a "
                "AND state = :leased"
            ),
            key,
        )
        if gone.rowcount:
            conn.execute(
                sa.text(
                    "UPDATE tasks SET active = active - 1, state = CASE WHEN "
                    "state = :full THEN :open ELSE state END WHERE id = :t"
                ),
                {"t": lease_.task_id, "full": FULL, "open": OPEN},
            )
    return lapsed


# Review.


def claim_review(
    conn: Connection, project_id: str, reviewer: str, now: datetime, expires: datetime
) -> Task | None:
    """The reviewer's held review, or the best task waiting for one."""
    held = conn.execute(
        sa.text(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE project_id = :p AND "
            "state = :review AND reviewer = :r AND review_expires_at > :now "
            "ORDER BY priority DESC, seq LIMIT 1"
        ),
        {"p": project_id, "review": REVIEW, "r": reviewer, "now": to_iso(now)},
    ).first()
    if held is not None:
        return _task(held._mapping)
    free = "(reviewer = '' OR review_expires_at <= :now)"
    for _round in range(4):
        rows = conn.execute(
            sa.text(
                f"SELECT id FROM tasks WHERE project_id = :p AND state = :review "
                f"AND {free} ORDER BY priority DESC, seq LIMIT :n"
            ),
            {"p": project_id, "review": REVIEW, "now": to_iso(now), "n": _CANDIDATES},
        ).all()
        if not rows:
            return None
        for row in rows:
            taken = conn.execute(
                sa.text(
                    "UPDATE tasks SET reviewer = :r, review_expires_at = :expires "
                    f"WHERE id = :id AND state = :review AND {free}"
                ),
                {
                    "id": row.id,
                    "r": reviewer,
                    "expires": to_iso(expires),
                    "review": REVIEW,
                    "now": to_iso(now),
                },
            )
            if taken.rowcount:
                return get_task(conn, row.id)
    return None


def return_answer(
    conn: Connection, task: Task, annotator: str, annotation_id: str, comment: str
) -> bool:
    """Send one submitted answer back to its annotator with the comment.

    Only that answer: once they answered again, a late copy of the decision
    finds a different answer and changes nothing.
    """
    result = conn.execute(
        sa.text(
            "UPDATE assignments SET state = :returned, comment = :comment "
            "WHERE task_id = :t AND annotator = :a AND state = :submitted "
            "AND annotation_id = :an"
        ),
        {
            "t": task.id,
            "a": annotator,
            "an": annotation_id,
            "returned": RETURNED,
            "submitted": SUBMITTED,
            "comment": comment,
        },
    )
    if not result.rowcount:
        return False
    _recount(conn, task, 0, -1, review=True)
    return True


def fill_comment(
    conn: Connection,
    task_id: str,
    annotator: str,
    annotation_id: str,
    comment: str,
    placeholder: str,
) -> None:
    """Put the reviewer's comment where a returned answer has a placeholder."""
    conn.execute(
        sa.text(
            "UPDATE assignments SET comment = :comment WHERE task_id = :t AND "
            "annotator = :a AND annotation_id = :an AND comment = :placeholder"
        ),
        {
            "t": task_id,
            "a": annotator,
            "an": annotation_id,
            "comment": comment,
            "placeholder": placeholder,
        },
    )


def close_review(conn: Connection, task: Task) -> bool:
    if task.state == COMPLETED:
        return False
    _recount(conn, task, 0, 0, review=True, reviewed=True)
    return True


# Figures.


def task_counts(conn: Connection, project_id: str) -> dict[str, int]:
    rows = conn.execute(
        sa.text(
            "SELECT state, active > 0 AS started, COUNT(*) AS n, "
            "SUM(overlap - active) AS free FROM tasks WHERE project_id = :p "
            "GROUP BY state, active > 0"
        ),
        {"p": project_id},
    ).all()
    counts = {"open": 0, "in_progress": 0, "in_review": 0, "completed": 0}
    depth = 0
    for row in rows:
        n = int(row.n)
        if row.state == OPEN and not row.started:
            counts["open"] += n
        elif row.state in (OPEN, FULL):
            counts["in_progress"] += n
        elif row.state == REVIEW:
            counts["in_review"] += n
        else:
            counts["completed"] += n
        if row.state == OPEN:
            depth += int(row.free or 0)
    counts["total"] = sum(counts.values())
    counts["queue_depth"] = depth
    return counts


def annotator_counts(conn: Connection, project_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT annotator, state, COUNT(*) AS n, SUM(seconds) AS seconds, "
            "MIN(submitted_at) AS first, MAX(submitted_at) AS last "
            "FROM assignments WHERE project_id = :p GROUP BY annotator, state"
        ),
        {"p": project_id},
    ).all()
    by_annotator: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = by_annotator.setdefault(
            row.annotator,
            {"subject": row.annotator, "submitted": 0, "skipped": 0, "leased": 0},
        )
        if row.state == SUBMITTED:
            entry["submitted"] = int(row.n)
            entry["seconds"] = float(row.seconds or 0)
            entry["first"], entry["last"] = row.first, row.last
        elif row.state == SKIPPED:
            entry["skipped"] = int(row.n)
        elif row.state == LEASED:
            entry["leased"] = int(row.n)
    return sorted(by_annotator.values(), key=lambda e: e["subject"])
