"""The labeling service's tables: annotations (answers and gold) and reviews.

Every version of an answer is kept: a resubmission marks the previous row
superseded rather than overwriting it, so the trail of what each annotator
said stays complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration
from strongroom.services.labeling import model_store
from strongroom.services.labeling.domain import (
    ANSWER,
    GOLD,
    Annotation,
    BoxLabel,
    Content,
    Relation,
    Review,
    SpanLabel,
)

# The annotator of a synthetic example's answer: its generator, never a person.
SYNTHETIC_ANNOTATOR = "synthetic-"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        100,
        "annotations",
        (
            """CREATE TABLE annotations (
                id TEXT PRIMARY KEY,
                task_id TEXT NOT NULL,
                project_id TEXT NOT NULL,
                document_id TEXT NOT NULL,
                text_sha256 TEXT NOT NULL,
                annotator TEXT NOT NULL,
                spans TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (task_id, annotator)
            )""",
            "CREATE INDEX annotations_project ON annotations (project_id, created_at)",
        ),
    ),
    Migration(
        200,
        "answer versions, gold and reviews",
        (
            "DROP INDEX annotations_project",
            "ALTER TABLE annotations RENAME TO annotations_v1",
            """CREATE TABLE annotations (
                seq {serial_pk},
                id TEXT NOT NULL UNIQUE,
                task_id TEXT NOT NULL,
                project_id TEXT NOT NULL,
                document_id TEXT NOT NULL,
                text_sha256 TEXT NOT NULL,
                annotator TEXT NOT NULL,
                kind TEXT NOT NULL,
                version INTEGER NOT NULL,
                is_current INTEGER NOT NULL,
                content TEXT NOT NULL,
                source_annotation_id TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL
            )""",
            """INSERT INTO annotations (id, task_id, project_id, document_id,
                text_sha256, annotator, kind, version, is_current, content,
                created_at)
               SELECT id, task_id, project_id, document_id, text_sha256,
                annotator, 'answer', 1, 1, '{"spans": ' || spans || '}', created_at
               FROM annotations_v1 ORDER BY created_at, id""",
            "DROP TABLE annotations_v1",
            # One current answer per annotator and task, one current gold.
            "CREATE UNIQUE INDEX annotations_current ON annotations "
            "(task_id, kind, annotator) WHERE is_current = 1",
            "CREATE INDEX annotations_project ON annotations "
            "(project_id, kind, is_current, seq)",
            "CREATE INDEX annotations_task ON annotations (task_id, is_current)",
            """CREATE TABLE reviews (
                id TEXT PRIMARY KEY,
                task_id TEXT NOT NULL,
                project_id TEXT NOT NULL,
                decision TEXT NOT NULL,
                annotation_id TEXT NOT NULL,
                gold_annotation_id TEXT NOT NULL,
                comment TEXT NOT NULL,
                reviewer TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX reviews_project ON reviews (project_id, decision)",
            "CREATE INDEX reviews_task ON reviews (task_id, created_at)",
        ),
    ),
)
# The model tables live with their code; one migration list serves both.
MIGRATIONS += model_store.MIGRATIONS

_COLUMNS = (
    "id, task_id, project_id, document_id, text_sha256, annotator, kind, "
    "version, content, source_annotation_id, created_at"
)


def content_json(content: Content) -> str:
    return json.dumps(
        {
            "spans": [[s.start, s.end, s.label] for s in content.spans],
            "classes": list(content.classes),
            "relations": [[r.from_span, r.to_span, r.label] for r in content.relations],
            "boxes": [list(asdict(b).values()) for b in content.boxes],
            "fields": dict(content.fields),
            "seconds": content.seconds,
            "suggestions_accepted": content.suggestions_accepted,
            "suggestions_rejected": content.suggestions_rejected,
        },
        separators=(",", ":"),
    )


def _content(text: str) -> Content:
    data = json.loads(text)
    return Content(
        spans=tuple(SpanLabel(*s) for s in data.get("spans", ())),
        classes=tuple(data.get("classes", ())),
        relations=tuple(Relation(*r) for r in data.get("relations", ())),
        boxes=tuple(BoxLabel(*b) for b in data.get("boxes", ())),
        fields=data.get("fields", {}),
        seconds=float(data.get("seconds", 0.0)),
        suggestions_accepted=int(data.get("suggestions_accepted", 0)),
        suggestions_rejected=int(data.get("suggestions_rejected", 0)),
    )


def current(
    conn: Connection, task_id: str, annotator: str, kind: str = ANSWER
) -> Annotation | None:
    row = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM annotations WHERE task_id = :t AND kind = :k "
            "AND annotator = :a AND is_current = 1"
        ),
        {"t": task_id, "k": kind, "a": annotator},
    ).first()
    return _annotation(row._mapping) if row else None


def insert_annotation(conn: Connection, annotation: Annotation) -> None:
    """Store a new current version, superseding the one before it."""
    conn.execute(
        sa.text(
            "UPDATE annotations SET is_current = 0 WHERE task_id = :t AND "
            "kind = :k AND annotator = :a AND is_current = 1"
        ),
        {"t": annotation.task_id, "k": annotation.kind, "a": annotation.annotator},
    )
    conn.execute(
        sa.text(
            f"INSERT INTO annotations ({_COLUMNS}, is_current) VALUES (:id, "
            ":task_id, :project_id, :document_id, :text_sha256, :annotator, :kind, "
            ":version, :content, :source_annotation_id, :created_at, 1)"
        ),
        {
            **{k: v for k, v in annotation.__dict__.items() if k != "content"},
            "content": content_json(annotation.content),
        },
    )


def get_annotation(conn: Connection, annotation_id: str) -> Annotation | None:
    row = conn.execute(
        sa.text(f"SELECT {_COLUMNS} FROM annotations WHERE id = :id"),
        {"id": annotation_id},
    ).first()
    return _annotation(row._mapping) if row else None


def task_annotations(
    conn: Connection, task_id: str, kind: str = ANSWER
) -> list[Annotation]:
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM annotations WHERE task_id = :t AND "
            "is_current = 1 AND kind = :k ORDER BY seq"
        ),
        {"t": task_id, "k": kind},
    ).all()
    return [_annotation(r._mapping) for r in rows]


def list_annotations(
    conn: Connection,
    project_id: str,
    limit: int,
    offset: int,
    kind: str = ANSWER,
    task_ids: Sequence[str] = (),
) -> tuple[list[Annotation], int]:
    """A page of a project's current annotations of a kind, oldest first;
    with ``task_ids``, of those tasks only."""
    where = "project_id = :p AND kind = :k AND is_current = 1"
    params: dict[str, Any] = {"p": project_id, "k": kind}
    if task_ids:
        # By task first: the planner would otherwise walk the whole project's
        # answers by its project index. Task ids are unique, and the project
        # is still checked.
        marks = ", ".join(f":t{i}" for i in range(len(task_ids)))
        where = f"task_id IN ({marks}) AND is_current = 1 AND kind = :k AND " + (
            "project_id || '' = :p"
        )
        params.update({f"t{i}": task_id for i, task_id in enumerate(task_ids)})
    total = conn.execute(
        sa.text(f"SELECT COUNT(*) FROM annotations WHERE {where}"), params
    ).scalar_one()
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM annotations WHERE {where} "
            "ORDER BY seq LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": limit, "offset": offset},
    ).all()
    return [_annotation(r._mapping) for r in rows], int(total)


def iter_current(
    conn: Connection, project_id: str, kind: str, batch: int = 5000
) -> Iterator[Annotation]:
    """Every current annotation of a kind, in batches by position."""
    after = 0
    while True:
        rows = conn.execute(
            sa.text(
                f"SELECT seq, {_COLUMNS} FROM annotations WHERE project_id = :p "
                "AND kind = :k AND is_current = 1 AND seq > :after ORDER BY seq "
                "LIMIT :n"
            ),
            {"p": project_id, "k": kind, "after": after, "n": batch},
        ).all()
        if not rows:
            return
        for row in rows:
            yield _annotation(row._mapping)
        after = rows[-1].seq


def _annotation(m: sa.RowMapping) -> Annotation:
    return Annotation(
        id=m["id"],
        task_id=m["task_id"],
        project_id=m["project_id"],
        document_id=m["document_id"],
        text_sha256=m["text_sha256"],
        annotator=m["annotator"],
        kind=m["kind"],
        version=int(m["version"]),
        content=_content(m["content"]),
        source_annotation_id=m["source_annotation_id"],
        created_at=m["created_at"],
    )


def insert_review(conn: Connection, review: Review) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO reviews (id, task_id, project_id, decision, annotation_id, "
            "gold_annotation_id, comment, reviewer, created_at) VALUES (:id, "
            ":task_id, :project_id, :decision, :annotation_id, :gold_annotation_id, "
            ":comment, :reviewer, :created_at)"
        ),
        review.__dict__,
    )


def review_counts(conn: Connection, project_id: str) -> dict[str, int]:
    rows = conn.execute(
        sa.text(
            "SELECT decision, COUNT(*) AS n FROM reviews WHERE project_id = :p "
            "GROUP BY decision"
        ),
        {"p": project_id},
    ).all()
    return {row.decision: int(row.n) for row in rows}


def gold_count(conn: Connection, project_id: str) -> int:
    return int(
        conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM annotations WHERE project_id = :p AND "
                "kind = :gold AND is_current = 1"
            ),
            {"p": project_id, "gold": GOLD},
        ).scalar_one()
    )


def latest_reviews(conn: Connection, task_ids: Sequence[str]) -> dict[str, Review]:
    """The last review of each task, for showing a rejection's comment."""
    if not task_ids:
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT id, task_id, project_id, decision, annotation_id, "
            "gold_annotation_id, comment, reviewer, created_at FROM reviews "
            "WHERE task_id IN :ids ORDER BY created_at"
        ).bindparams(sa.bindparam("ids", expanding=True)),
        {"ids": list(task_ids)},
    ).all()
    return {row.task_id: Review(**row._mapping) for row in rows}


def answered_tasks(conn: Connection, project_id: str, kind: str) -> int:
    """Real tasks with a current annotation of a kind: the answers that make
    a new model due. Synthetic examples' answers are not counted."""
    return int(
        conn.execute(
            sa.text(
                "SELECT COUNT(DISTINCT task_id) FROM annotations WHERE "
                "project_id = :p AND kind = :k AND is_current = 1 AND "
                "annotator NOT LIKE :synthetic"
            ),
            {"p": project_id, "k": kind, "synthetic": f"{SYNTHETIC_ANNOTATOR}%"},
        ).scalar_one()
    )
