"""The model assistant: trains each assisted project's model in the
background, then turns its predictions into suggestions and, when asked,
into queue priorities.

Training and prediction run in one child process (spawned, so the service's
threads and locks are not copied into it); the worker thread only waits for
it, so RPCs and the queue never wait for a model.

The tasks service lets managers alone list a project's tasks, set
suggestions and priorities, and there is no service identity yet. The
assistant therefore acts with the bearer token of the last manager who
called one of the model RPCs for the project (switching assistance on,
asking for a model, or reading the learning curve). The token is held in
memory only, never stored, and used until it expires; a run that finds no
live token waits, queued, for the next such call.
"""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy.engine import Engine

from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import Principal
from strongroom.services.common.database import utc_now
from strongroom.services.common.errors import FailedPrecondition, StrongroomError
from strongroom.services.common.events import Worker
from strongroom.services.common.grpc_clients import Metadata, call, caller_metadata
from strongroom.services.common.ports import ObjectStore
from strongroom.services.common.runtime import DERIVED
from strongroom.services.labeling import assistance, domain, model_store, store
from strongroom.services.labeling import training as trainer
from strongroom.services.labeling.assistance import CLASSES, SPANS, Example
from strongroom.services.labeling.model_store import ModelRow
from strongroom.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE = "labeling"
# The object store bucket of trained pipelines.
MODELS = "models"
# The one suggestion source of every model version: a new version's
# suggestions replace the last one's.
SOURCE = "model"
REQUEST = "request"
ANSWERS = "answers"
_TASK_PAGE = 500
# Texts per prediction call to the child process; one audit event each.
PREDICT_BATCH = 200
# What the tasks service takes from one source per task; the most
# confident spans are kept.
MAX_SUGGESTIONS = 1000
# Tasks ranked by uncertainty at most: ranking is quadratic in their number.
MAX_RANKED = 5000
# A token this close to its expiry is not started on.
_TOKEN_MARGIN_SECONDS = 60


class ModelAssistant(Worker):
    def __init__(
        self,
        engine: Engine,
        objects: ObjectStore,
        tasks: tasks_pb2_grpc.TaskServiceStub,
        interval_seconds: float = 5.0,
        executor: Executor | None = None,
    ) -> None:
        super().__init__("model-assistant", idle_seconds=interval_seconds)
        self.engine = engine
        self.objects = objects
        self.tasks = tasks
        self._executor = executor
        self._callers: dict[str, Principal] = {}
        self._reviewed: dict[str, bool] = {}
        self._resets: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        with engine.begin() as conn:
            model_store.fail_unfinished(conn)

    # --- what the servicer tells it -----------------------------------------

    def remember(
        self, project_id: str, principal: Principal, is_reviewed: bool
    ) -> None:
        """Keep a manager's token for the project's background work, and
        whether the project reviews (then its model learns from gold)."""
        if principal.token and _expires_at(principal.token) > time.time():
            with self._lock:
                self._callers[project_id] = principal
                self._reviewed[project_id] = is_reviewed

    def reset_priorities(self, project_id: str) -> None:
        """Give the project's open tasks back their arrival order."""
        with self._lock:
            self._resets.add(project_id)
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def shutdown(self) -> None:
        """Stop the child process, even in the middle of a run: the version
        is marked failed (training_interrupted) on the next start."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # The pool keeps no public handle on its process; without this a run
        # would hold up the service's exit until it finished.
        children = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for child in children:
            child.terminate()

    def stop(self, timeout: float = 5.0) -> None:
        self._wake.set()
        super().stop(timeout)
        self.shutdown()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                did_work = self.step()
            except Exception:
                # A backend that is down must not kill the loop; it retries.
                logger.warning("model_step_failed", exc_info=True)
                did_work = False
            if not did_work:
                self._wake.wait(self._idle_seconds)
                self._wake.clear()

    # --- the loop -------------------------------------------------------------

    def step(self) -> bool:
        """Reset priorities asked for, queue the runs that are due, then train
        the oldest queued version whose project has a live manager token."""
        self._apply_resets()
        assisted = self._queue_due()
        with self.engine.begin() as conn:
            waiting = model_store.queued(conn)
        for row in waiting:
            # A project switched off keeps its queued version for later.
            if row.project_id not in assisted:
                continue
            caller = self._caller(row.project_id)
            if caller is not None:
                self.run_version(row, caller)
                return True
        return False

    def _caller(self, project_id: str) -> Principal | None:
        with self._lock:
            principal = self._callers.get(project_id)
        if principal is None:
            return None
        if _expires_at(principal.token) - _TOKEN_MARGIN_SECONDS < time.time():
            with self._lock:
                self._callers.pop(project_id, None)
            return None
        return principal

    def _apply_resets(self) -> None:
        with self._lock:
            resets, self._resets = self._resets, set()
        for project_id in resets:
            caller = self._caller(project_id)
            if caller is None:
                continue
            metadata = _metadata(caller)
            for task in self._open_tasks(project_id, metadata):
                if task.priority != 0:
                    self._set_priority(task.id, 0, metadata)

    def _queue_due(self) -> set[str]:
        """Queue a version for each assisted project that is due; return the
        assisted projects' ids."""
        with self.engine.begin() as conn:
            assisted = model_store.enabled_projects(conn)
        for row in assisted:
            caller = self._caller(row.project_id)
            if caller is None:
                continue
            # From memory, not the tasks service: this runs every few seconds
            # and every project read there is audited.
            with self._lock:
                is_reviewed = self._reviewed.get(row.project_id, False)
            kind = domain.GOLD if is_reviewed else domain.ANSWER
            with self.engine.begin() as conn:
                answers = store.answered_tasks(conn, row.project_id, kind)
                last = model_store.last_trained_answers(conn, row.project_id)
                if assistance.is_training_due(row.settings, answers, last):
                    model_store.queue_version(
                        conn,
                        row.project_id,
                        ANSWERS,
                        caller.subject,
                        utc_now(),
                        answers,
                    )
        return {row.project_id for row in assisted}

    def queue(
        self, project_id: str, principal: Principal, is_reviewed: bool
    ) -> tuple[ModelRow, bool]:
        """Queue a run a manager asked for; return it and whether it is new."""
        self.remember(project_id, principal, is_reviewed)
        kind = domain.GOLD if is_reviewed else domain.ANSWER
        with self.engine.begin() as conn:
            answers = store.answered_tasks(conn, project_id, kind)
            row, is_new = model_store.queue_version(
                conn, project_id, REQUEST, principal.subject, utc_now(), answers
            )
        self.wake()
        return row, is_new

    # --- one version ------------------------------------------------------------

    def run_version(self, row: ModelRow, caller: Principal) -> ModelRow:
        """Train a queued version, then predict with it; never raises for a
        refused or failed run, which is stored as failed with its code."""
        row = replace(row, state=model_store.TRAINING)
        with self.engine.begin() as conn:
            model_store.update_version(conn, row)
        metadata = _metadata(caller)
        try:
            row = self._train(row, caller, metadata)
        except StrongroomError as exc:
            logger.warning(
                "model_train_refused",
                extra={"project_id": row.project_id, "code": exc.code},
            )
            return self._fail(row, exc.code)
        except Exception:
            # The traceback names code only; no text reaches the log.
            logger.exception("model_train_failed", extra={"project_id": row.project_id})
            return self._fail(row, "model_train_failed")
        try:
            return self._predict(row, caller, metadata)
        except StrongroomError as exc:
            logger.warning(
                "model_predict_refused",
                extra={"project_id": row.project_id, "code": exc.code},
            )
        return row

    def _fail(self, row: ModelRow, code: str) -> ModelRow:
        row = replace(row, state=model_store.FAILED, error=code)
        with self.engine.begin() as conn:
            model_store.update_version(conn, row)
        return row

    def _train(self, row: ModelRow, caller: Principal, metadata: Metadata) -> ModelRow:
        project = self._project(row.project_id, metadata)
        spec = model_spec(project)
        tasks = {t.id: t for t in self._tasks(project.id, metadata)}
        kind = domain.GOLD if project.review else domain.ANSWER
        with self.engine.begin() as conn:
            settings = model_store.get_settings(conn, project.id).settings
            answers = latest_by_task(store.iter_current(conn, project.id, kind))
        examples, answered = self._examples(spec, answers, tasks)
        real = [e for e in examples if not tasks[e.task_id].synthetic]
        if len(real) < 2:
            raise FailedPrecondition(
                "A model needs answers to at least two tasks.",
                code="too_few_answers",
            )
        train, held = assistance.split_examples(real)
        # Synthetic examples only ever train, and not those made from a
        # held-out task, whose text they nearly repeat.
        held_ids = {e.task_id for e in held}
        train += [
            e
            for e in examples
            if tasks[e.task_id].synthetic
            and tasks[e.task_id].synthetic_source_task_id not in held_ids
        ]
        used = {e.task_id for e in train} | held_ids
        snapshot = [pair for task_id, pair in answered if task_id in used]
        run = trainer.TrainingRun(spec, tuple(train), tuple(held))
        trained = self._run(trainer.train, run)
        stored = self.objects.put(MODELS, [trained.model])
        row = replace(
            row,
            state=model_store.READY,
            kind=spec.kind,
            train_answers=len(train),
            held_out=len(held),
            scores=trained.scores,
            baseline=trained.baseline,
            score=assistance.headline(spec.kind, trained.scores),
            baseline_score=assistance.headline(spec.kind, trained.baseline),
            seconds=round(trained.seconds, 3),
            trained_at=utc_now(),
            model_sha256=stored.sha256,
            snapshot_sha256=assistance.snapshot_digest(snapshot),
            settings=json.dumps(
                {
                    "assistance": asdict(settings),
                    "model": asdict(spec),
                    "source": kind,
                    "epochs": trained.epochs,
                    "held_out_fraction": assistance.HELD_OUT_FRACTION,
                    "answers": len(snapshot),
                    "synthetic": sum(1 for e in train if tasks[e.task_id].synthetic),
                },
                sort_keys=True,
            ),
        )
        with self.engine.begin() as conn:
            model_store.update_version(conn, row)
            stage_audit(
                conn,
                service=SERVICE,
                action="model.train",
                actor=caller,
                resource_type="model",
                resource_id=f"{project.id}:{row.version}",
                project_id=project.id,
                details={
                    "version": row.version,
                    "trigger": row.trigger,
                    "kind": spec.kind,
                    "train_answers": row.train_answers,
                    "held_out": row.held_out,
                    "score": f"{row.score:.4f}",
                    "baseline_score": f"{row.baseline_score:.4f}",
                    "model_sha256": row.model_sha256,
                    "snapshot_sha256": row.snapshot_sha256,
                    "misaligned_spans": trained.misaligned_spans,
                },
            )
        logger.info(
            "model_trained",
            extra={
                "project_id": project.id,
                "version": row.version,
                "examples": len(examples),
                "seconds": row.seconds,
            },
        )
        return row

    def _examples(
        self,
        spec: trainer.ModelSpec,
        answers: dict[str, domain.Annotation],
        tasks: dict[str, tasks_pb2.Task],
    ) -> tuple[list[Example], list[tuple[str, tuple[str, int]]]]:
        texts = _Texts(self.objects)
        labels = set(spec.labels)
        examples, snapshot = [], []
        for task_id, answer in sorted(answers.items()):
            task = tasks.get(task_id)
            if task is None:
                continue
            start = task.window_start
            text = texts.window(task)
            examples.append(
                Example(
                    task_id=task_id,
                    text=text,
                    spans=tuple(
                        (s.start - start, s.end - start, s.label)
                        for s in answer.content.spans
                        if s.label in labels
                    ),
                    classes=tuple(c for c in answer.content.classes if c in labels),
                )
            )
            snapshot.append((task_id, (answer.id, answer.version)))
        return examples, snapshot

    def _predict(
        self, row: ModelRow, caller: Principal, metadata: Metadata
    ) -> ModelRow:
        """Suggestions (and, ordered by uncertainty, priorities) for the
        project's open tasks from a ready version."""
        spec = trainer.ModelSpec(**json.loads(row.settings)["model"])
        data = self.objects.read(MODELS, row.model_sha256)
        open_tasks = self._open_tasks(row.project_id, metadata)
        texts = _Texts(self.objects)
        uncertainty: dict[str, float] = {}
        windows: dict[str, str] = {}
        for batch in _batches(open_tasks, PREDICT_BATCH):
            batch_texts = [texts.window(task) for task in batch]
            found = self._run(trainer.predict, spec, data, batch_texts)
            suggested = 0
            for task, text, prediction in zip(batch, batch_texts, found, strict=True):
                uncertainty[task.id] = prediction.uncertainty
                windows[task.id] = text
                suggested += self._suggest(
                    task, suggestions_of(spec, task, prediction), metadata
                )
            with self.engine.begin() as conn:
                stage_audit(
                    conn,
                    service=SERVICE,
                    action="model.predict",
                    actor=caller,
                    resource_type="model",
                    resource_id=f"{row.project_id}:{row.version}",
                    project_id=row.project_id,
                    details={
                        "version": row.version,
                        "tasks": len(batch),
                        "suggestions": suggested,
                    },
                )
        with self.engine.begin() as conn:
            settings = model_store.get_settings(conn, row.project_id).settings
        if settings.ordering == assistance.UNCERTAINTY:
            self._prioritise(uncertainty, windows, settings, metadata)
        row = replace(row, predicted_tasks=len(open_tasks))
        with self.engine.begin() as conn:
            model_store.update_version(conn, row)
        return row

    def _suggest(
        self,
        task: tasks_pb2.Task,
        suggestions: list[tasks_pb2.Suggestion],
        metadata: Metadata,
    ) -> int:
        had = any(s.source == SOURCE for s in task.suggestions)
        if not suggestions and not had:
            return 0
        call(
            self.tasks.SetSuggestions,
            tasks_pb2.SetSuggestionsRequest(
                task_id=task.id, source=SOURCE, suggestions=suggestions
            ),
            metadata,
        )
        return len(suggestions)

    def _prioritise(
        self,
        uncertainty: dict[str, float],
        windows: dict[str, str],
        settings: assistance.AssistanceSettings,
        metadata: Metadata,
    ) -> None:
        ranked = dict(
            sorted(uncertainty.items(), key=lambda item: -item[1])[:MAX_RANKED]
        )
        order = assistance.rank_tasks(ranked, windows, settings.diversity)
        for task_id, priority in assistance.priorities(order).items():
            self._set_priority(task_id, priority, metadata)

    def _set_priority(self, task_id: str, priority: int, metadata: Metadata) -> None:
        call(
            self.tasks.UpdateTask,
            tasks_pb2.UpdateTaskRequest(task_id=task_id, priority=priority),
            metadata,
        )

    def _run(self, function: Any, *args: Any) -> Any:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._executor.submit(function, *args).result()

    # --- the tasks service ------------------------------------------------------

    def _project(self, project_id: str, metadata: Metadata) -> tasks_pb2.Project:
        project: tasks_pb2.Project = call(
            self.tasks.GetProject,
            tasks_pb2.GetProjectRequest(project_id=project_id),
            metadata,
        )
        return project

    def _tasks(self, project_id: str, metadata: Metadata) -> Iterator[tasks_pb2.Task]:
        offset = 0
        while True:
            page = call(
                self.tasks.ListTasks,
                tasks_pb2.ListTasksRequest(
                    project_id=project_id,
                    page=common_pb2.PageRequest(limit=_TASK_PAGE, offset=offset),
                ),
                metadata,
            )
            yield from page.tasks
            offset += len(page.tasks)
            if not page.tasks or offset >= page.page.total:
                return

    def _open_tasks(self, project_id: str, metadata: Metadata) -> list[tasks_pb2.Task]:
        """Tasks still waiting for an annotator: those a suggestion or a
        priority can still help."""
        return [
            task
            for task in self._tasks(project_id, metadata)
            if task.state == tasks_pb2.TASK_STATE_QUEUED
        ]


class _Texts:
    """Window texts from the redacted documents in the object store, each
    document read once."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self._documents: dict[str, str] = {}

    def window(self, task: tasks_pb2.Task) -> str:
        text = self._documents.get(task.text_sha256)
        if text is None:
            text = self.objects.read(DERIVED, task.text_sha256).decode("utf-8")
            if len(self._documents) > 64:
                self._documents.clear()
            self._documents[task.text_sha256] = text
        end = task.window_end or len(text)
        return text[task.window_start : end]


def model_spec(project: tasks_pb2.Project) -> trainer.ModelSpec:
    """The model a project's schema calls for: spans first, else classes.

    Raises:
        FailedPrecondition: the project has neither span nor class labels.
    """
    spans = [label.name for label in project.schema.spans] or [
        label.name for label in project.labels
    ]
    if spans:
        return trainer.ModelSpec(SPANS, trainer.label_space(SPANS, spans))
    classes = [label.name for label in project.schema.classes]
    if classes:
        return trainer.ModelSpec(
            CLASSES,
            trainer.label_space(CLASSES, classes),
            multi_label=project.schema.multi_label,
        )
    raise FailedPrecondition(
        "A model needs span or class labels in the project's schema.",
        code="no_trainable_labels",
    )


def suggestions_of(
    spec: trainer.ModelSpec, task: tasks_pb2.Task, prediction: trainer.Prediction
) -> list[tasks_pb2.Suggestion]:
    """A prediction as suggestions on its task: spans in document offsets,
    the most confident first, or classes above the threshold, with no span."""
    if spec.kind == CLASSES:
        return [
            tasks_pb2.Suggestion(label=label, source=SOURCE, score=score)
            for label, score in assistance.suggested_classes(
                prediction.classes, spec.multi_label
            )
        ]
    start = task.window_start
    ranked = sorted(prediction.spans, key=lambda span: -span[3])[:MAX_SUGGESTIONS]
    return [
        tasks_pb2.Suggestion(
            span=common_pb2.Span(start=s + start, end=e + start),
            label=label,
            source=SOURCE,
            score=score,
        )
        for s, e, label, score in ranked
    ]


def latest_by_task(
    annotations: Iterator[domain.Annotation],
) -> dict[str, domain.Annotation]:
    """One annotation per task: the newest, when several annotators answered."""
    latest: dict[str, domain.Annotation] = {}
    for annotation in annotations:
        latest[annotation.task_id] = annotation
    return latest


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _metadata(principal: Principal) -> Metadata:
    return caller_metadata(principal.token, principal.client_address)


def _expires_at(token: str) -> float:
    """A JWT's expiry from its payload, unverified: the token was verified when
    it arrived, and is only carried on to the tasks service, which verifies it
    again."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
        return float(claims.get("exp", 0))
    except (IndexError, ValueError, TypeError):
        return 0.0
