"""The labeling service's model tables: each project's assistance settings
and its model versions (the pipelines themselves are objects in the object
store, named by their hash)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strongroom.services.common.database import Migration
from strongroom.services.labeling.assistance import AssistanceSettings

QUEUED = "queued"
TRAINING = "training"
READY = "ready"
FAILED = "failed"

MIGRATIONS = (
    Migration(
        300,
        "model assistance",
        (
            """CREATE TABLE model_settings (
                project_id TEXT PRIMARY KEY,
                enabled INTEGER NOT NULL,
                ordering TEXT NOT NULL,
                min_answers INTEGER NOT NULL,
                retrain_every INTEGER NOT NULL,
                diversity REAL NOT NULL,
                updated_by TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE model_versions (
                project_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                state TEXT NOT NULL,
                kind TEXT NOT NULL DEFAULT '',
                trigger TEXT NOT NULL,
                requested_by TEXT NOT NULL,
                due_answers INTEGER NOT NULL DEFAULT 0,
                train_answers INTEGER NOT NULL DEFAULT 0,
                held_out INTEGER NOT NULL DEFAULT 0,
                scores TEXT NOT NULL DEFAULT '{}',
                baseline TEXT NOT NULL DEFAULT '{}',
                score REAL NOT NULL DEFAULT 0,
                baseline_score REAL NOT NULL DEFAULT 0,
                seconds REAL NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL,
                trained_at TEXT NOT NULL DEFAULT '',
                model_sha256 TEXT NOT NULL DEFAULT '',
                snapshot_sha256 TEXT NOT NULL DEFAULT '',
                settings TEXT NOT NULL DEFAULT '{}',
                predicted_tasks INTEGER NOT NULL DEFAULT 0,
                error TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (project_id, version)
            )""",
            "CREATE INDEX model_versions_state ON model_versions (state, created_at)",
        ),
    ),
    Migration(
        310,
        "how annotators review a project's suggestions",
        (
            "ALTER TABLE model_settings ADD COLUMN review_mode TEXT NOT NULL "
            "DEFAULT 'edit'",
        ),
    ),
)


@dataclass(frozen=True)
class SettingsRow:
    project_id: str
    settings: AssistanceSettings
    updated_by: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class ModelRow:
    project_id: str
    version: int
    state: str
    trigger: str
    requested_by: str
    created_at: str
    kind: str = ""
    # Answered tasks (real ones, not synthetic) when it was queued: what the
    # next version's due date counts from, whatever this one's fate.
    due_answers: int = 0
    train_answers: int = 0
    held_out: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    score: float = 0.0
    baseline_score: float = 0.0
    seconds: float = 0.0
    trained_at: str = ""
    model_sha256: str = ""
    snapshot_sha256: str = ""
    settings: str = "{}"
    predicted_tasks: int = 0
    error: str = ""


def get_settings(conn: Connection, project_id: str) -> SettingsRow:
    """A project's settings; the defaults (assistance off) when never set."""
    row = conn.execute(
        sa.text("SELECT * FROM model_settings WHERE project_id = :p"),
        {"p": project_id},
    ).first()
    if row is None:
        return SettingsRow(project_id, AssistanceSettings())
    return _settings_row(row._mapping)


def put_settings(conn: Connection, row: SettingsRow) -> None:
    values = {
        "p": row.project_id,
        "enabled": int(row.settings.enabled),
        "ordering": row.settings.ordering,
        "min_answers": row.settings.min_answers,
        "retrain_every": row.settings.retrain_every,
        "diversity": row.settings.diversity,
        "review_mode": row.settings.review_mode,
        "by": row.updated_by,
        "at": row.updated_at,
    }
    conn.execute(sa.text("DELETE FROM model_settings WHERE project_id = :p"), values)
    conn.execute(
        sa.text(
            "INSERT INTO model_settings (project_id, enabled, ordering, min_answers, "
            "retrain_every, diversity, review_mode, updated_by, updated_at) VALUES "
            "(:p, :enabled, :ordering, :min_answers, :retrain_every, :diversity, "
            ":review_mode, :by, :at)"
        ),
        values,
    )


def enabled_projects(conn: Connection) -> list[SettingsRow]:
    rows = conn.execute(
        sa.text("SELECT * FROM model_settings WHERE enabled = 1 ORDER BY project_id")
    ).all()
    return [_settings_row(row._mapping) for row in rows]


def _settings_row(m: sa.RowMapping) -> SettingsRow:
    return SettingsRow(
        project_id=m["project_id"],
        settings=AssistanceSettings(
            enabled=bool(m["enabled"]),
            ordering=m["ordering"],
            min_answers=int(m["min_answers"]),
            retrain_every=int(m["retrain_every"]),
            diversity=float(m["diversity"]),
            review_mode=m["review_mode"],
        ),
        updated_by=m["updated_by"],
        updated_at=m["updated_at"],
    )


def queue_version(
    conn: Connection,
    project_id: str,
    trigger: str,
    requested_by: str,
    now: str,
    answers: int,
) -> tuple[ModelRow, bool]:
    """Queue the project's next version; return it and whether it is new.

    ``answers`` (the answered tasks now) is what the next version's due date
    counts from, so a failed run is not retried before enough new answers
    arrive. A version already queued or training is
    returned instead, so repeated requests start one run.
    """
    waiting = conn.execute(
        sa.text(
            "SELECT * FROM model_versions WHERE project_id = :p AND state IN "
            "(:queued, :training) ORDER BY version DESC LIMIT 1"
        ),
        {"p": project_id, "queued": QUEUED, "training": TRAINING},
    ).first()
    if waiting is not None:
        return _model_row(waiting._mapping), False
    number = conn.execute(
        sa.text(
            "SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE project_id = :p"
        ),
        {"p": project_id},
    ).scalar_one()
    row = ModelRow(
        project_id=project_id,
        version=int(number) + 1,
        state=QUEUED,
        trigger=trigger,
        requested_by=requested_by,
        created_at=now,
        due_answers=answers,
    )
    conn.execute(
        sa.text(
            "INSERT INTO model_versions (project_id, version, state, trigger, "
            "requested_by, created_at, due_answers) VALUES (:project_id, "
            ":version, :state, :trigger, :requested_by, :created_at, :answers)"
        ),
        {
            "project_id": row.project_id,
            "version": row.version,
            "state": row.state,
            "trigger": row.trigger,
            "requested_by": row.requested_by,
            "created_at": row.created_at,
            "answers": answers,
        },
    )
    return row, True


def queued(conn: Connection) -> list[ModelRow]:
    """Versions waiting to train, oldest first."""
    rows = conn.execute(
        sa.text(
            "SELECT * FROM model_versions WHERE state = :queued ORDER BY created_at"
        ),
        {"queued": QUEUED},
    ).all()
    return [_model_row(row._mapping) for row in rows]


def fail_unfinished(conn: Connection) -> int:
    """Mark runs that a stopped process left in training as failed."""
    result = conn.execute(
        sa.text(
            "UPDATE model_versions SET state = :failed, error = 'training_interrupted' "
            "WHERE state = :training"
        ),
        {"failed": FAILED, "training": TRAINING},
    )
    return int(result.rowcount or 0)


def update_version(conn: Connection, row: ModelRow) -> None:
    conn.execute(
        sa.text(
            "UPDATE model_versions SET state = :state, kind = :kind, "
            "train_answers = :train_answers, held_out = :held_out, scores = :scores, "
            "baseline = :baseline, score = :score, baseline_score = :baseline_score, "
            "seconds = :seconds, trained_at = :trained_at, "
            "model_sha256 = :model_sha256, snapshot_sha256 = :snapshot_sha256, "
            "settings = :settings, predicted_tasks = :predicted_tasks, "
            "error = :error WHERE project_id = :project_id AND version = :version"
        ),
        {
            **row.__dict__,
            "scores": json.dumps(row.scores, sort_keys=True),
            "baseline": json.dumps(row.baseline, sort_keys=True),
        },
    )


def list_versions(conn: Connection, project_id: str) -> list[ModelRow]:
    rows = conn.execute(
        sa.text(
            "SELECT * FROM model_versions WHERE project_id = :p ORDER BY version DESC"
        ),
        {"p": project_id},
    ).all()
    return [_model_row(row._mapping) for row in rows]


def last_ready(conn: Connection, project_id: str) -> ModelRow | None:
    row = conn.execute(
        sa.text(
            "SELECT * FROM model_versions WHERE project_id = :p AND state = :ready "
            "ORDER BY version DESC LIMIT 1"
        ),
        {"p": project_id, "ready": READY},
    ).first()
    return _model_row(row._mapping) if row else None


def last_trained_answers(conn: Connection, project_id: str) -> int | None:
    """Answered tasks when the project's newest version was queued."""
    value = conn.execute(
        sa.text(
            "SELECT due_answers FROM model_versions WHERE "
            "project_id = :p ORDER BY version DESC LIMIT 1"
        ),
        {"p": project_id},
    ).first()
    return int(value[0]) if value else None


def _model_row(m: sa.RowMapping) -> ModelRow:
    return ModelRow(
        project_id=m["project_id"],
        version=int(m["version"]),
        state=m["state"],
        trigger=m["trigger"],
        requested_by=m["requested_by"],
        created_at=m["created_at"],
        kind=m["kind"],
        due_answers=int(m["due_answers"]),
        train_answers=int(m["train_answers"]),
        held_out=int(m["held_out"]),
        scores=json.loads(m["scores"]),
        baseline=json.loads(m["baseline"]),
        score=float(m["score"]),
        baseline_score=float(m["baseline_score"]),
        seconds=float(m["seconds"]),
        trained_at=m["trained_at"],
        model_sha256=m["model_sha256"],
        snapshot_sha256=m["snapshot_sha256"],
        settings=m["settings"],
        predicted_tasks=int(m["predicted_tasks"]),
        error=m["error"],
    )
