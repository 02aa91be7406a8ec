"""Bringing another tool's export into a project, in the background.

Each item's text is ingested as a document, so it is redacted like any
upload; once its tasks exist, the item's spans are placed on the redacted
text by the redaction service and each answer is stored by the labeling
service under a pseudonymous annotator. What cannot be carried over is
counted by reason, never quoted.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.audit_trail import SYSTEM, stage_audit
from strongroom.services.common.auth import Principal
from strongroom.services.common.database import to_iso
from strongroom.services.common.errors import StrongroomError
from strongroom.services.common.grpc_clients import Metadata, call
from strongroom.services.common.ports import ObjectStore
from strongroom.services.export import importers, store
from strongroom.services.export.builder import SERVICE, Clients
from strongroom.v1 import (
    common_pb2,
    ingestion_pb2,
    labeling_pb2,
    redaction_pb2,
    tasks_pb2,
)

logger = logging.getLogger(__name__)

# How long the import waits for redaction and the tasks service to queue the
# documents it made, beyond a second per ten documents.
_QUEUE_WAIT_SECONDS = 120.0
_TASK_PAGE = 500
_HEARTBEAT_SECONDS = 5.0
STALL_SECONDS = 180.0
_CHUNK = 256 * 1024
_NOT_QUEUED = "items whose document was not queued (held by redaction, or a duplicate)"


@dataclass
class Outcome:
    """What the import carried over and what it left out, by reason."""

    documents: list[str] = field(default_factory=list)
    answers: int = 0
    annotators: set[str] = field(default_factory=set)
    suggestions: int = 0
    left_out: Counter[str] = field(default_factory=Counter)


class Importer:
    def __init__(
        self,
        engine: Engine,
        objects: ObjectStore,
        clients: Clients,
        pseudonym_key: bytes,
    ) -> None:
        self.engine = engine
        self.objects = objects
        self.clients = clients
        self.pseudonym_key = pseudonym_key
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="import")

    def start(
        self,
        row: store.ImportRow,
        items: list[importers.ImportedItem],
        report: importers.ImportReport,
        file_name: str,
        principal: Principal,
        metadata: Metadata,
    ) -> None:
        """Carry the parsed items over in the background, with the caller's
        request id and token."""
        context = contextvars.copy_context()
        self.executor.submit(
            context.run, self.run, row, items, report, file_name, principal, metadata
        )

    def run(
        self,
        row: store.ImportRow,
        items: list[importers.ImportedItem],
        report: importers.ImportReport,
        file_name: str,
        principal: Principal,
        metadata: Metadata,
    ) -> None:
        try:
            self._run(row, items, report, file_name, metadata, principal)
        except StrongroomError as exc:
            logger.warning(
                "import_refused", extra={"import_id": row.id, "code": exc.code}
            )
            self._fail(row, principal, exc.code)
        except Exception:
            logger.exception("import_failed", extra={"import_id": row.id})
            self._fail(row, principal, "import_failed")

    def _run(
        self,
        row: store.ImportRow,
        items: list[importers.ImportedItem],
        report: importers.ImportReport,
        file_name: str,
        metadata: Metadata,
        principal: Principal,
    ) -> None:
        outcome = Outcome(left_out=Counter(report.left_out))
        stem = PurePosixPath(file_name).stem[:80] or row.format
        beat = _Heartbeat(self.engine, row.id, 2 * len(items))
        for index, item in enumerate(items):
            outcome.documents.append(
                self._ingest(
                    row.project_id, f"{stem}-{index + 1:06d}.txt", item, metadata
                )
            )
            beat(index + 1)
        with self.engine.begin() as conn:
            store.add_import_documents(conn, row.id, 0, outcome.documents)
        tasks = self._queued(row.project_id, outcome.documents, metadata, beat)
        for index, (item, document_id) in enumerate(
            zip(items, outcome.documents, strict=True)
        ):
            windows = tasks.get(document_id)
            if not windows:
                outcome.left_out[_NOT_QUEUED] += 1
                continue
            self._answers(row, item, document_id, windows, outcome, metadata)
            beat(len(items) + index + 1)
        self._finish(row, principal, len(items), outcome)

    # --- documents --------------------------------------------------------------

    def _ingest(
        self,
        project_id: str,
        name: str,
        item: importers.ImportedItem,
        metadata: Metadata,
    ) -> str:
        def parts() -> Iterator[ingestion_pb2.IngestDocumentRequest]:
            yield ingestion_pb2.IngestDocumentRequest(
                header=ingestion_pb2.IngestHeader(
                    project_id=project_id,
                    source_name=name,
                    declared_media_type="text/plain",
                )
            )
            yield ingestion_pb2.IngestDocumentRequest(data=item.text.encode("utf-8"))

        document = call(self.clients.ingestion.IngestDocument, parts(), metadata)
        return str(document.id)

    def _queued(
        self,
        project_id: str,
        documents: Sequence[str],
        metadata: Metadata,
        beat: _Heartbeat,
    ) -> dict[str, list[tasks_pb2.Task]]:
        """Each document's tasks, once redaction and the queue have them."""
        wanted = set(documents)
        deadline = time.monotonic() + _QUEUE_WAIT_SECONDS + len(wanted) / 10
        while True:
            found: dict[str, list[tasks_pb2.Task]] = {}
            offset = 0
            while True:
                page = call(
                    self.clients.tasks.ListTasks,
                    tasks_pb2.ListTasksRequest(
                        project_id=project_id,
                        page=common_pb2.PageRequest(limit=_TASK_PAGE, offset=offset),
                    ),
                    metadata,
                )
                for task in page.tasks:
                    if task.document_id in wanted:
                        found.setdefault(task.document_id, []).append(task)
                offset += len(page.tasks)
                if not page.tasks or offset >= page.page.total:
                    break
            if len(found) == len(wanted) or time.monotonic() > deadline:
                return found
            beat.touch()
            time.sleep(1.0)

    # --- answers ----------------------------------------------------------------

    def _answers(
        self,
        row: store.ImportRow,
        item: importers.ImportedItem,
        document_id: str,
        windows: list[tasks_pb2.Task],
        outcome: Outcome,
        metadata: Metadata,
    ) -> None:
        everyone = (*item.answers, *item.predictions)
        spans = [s for answer in everyone for s in answer.spans]
        placed = self._placed(document_id, spans, metadata)
        self._suggestions(item, placed[sum(len(a.spans) for a in item.answers) :],
                          windows, outcome, metadata)  # fmt: skip
        at = 0
        for position, answer in enumerate(item.answers):
            mapped = placed[at : at + len(answer.spans)]
            at += len(answer.spans)
            # A file that does not say who answered: the n-th answer of every
            # item is one unnamed annotator, so no answer replaces another.
            source = answer.annotator or f"\0unnamed-{position + 1}"
            annotator = self._annotator(row, source)
            for task, content in _by_window(answer, mapped, windows, outcome.left_out):
                request = labeling_pb2.ImportAnnotationRequest(
                    task_id=task.id, annotator=annotator, content=content
                )
                given = _timestamp(answer.created_at)
                if given is not None:
                    request.created_at.CopyFrom(given)
                call(self.clients.labeling.ImportAnnotation, request, metadata)
                outcome.answers += 1
                outcome.annotators.add(annotator)

    def _suggestions(
        self,
        item: importers.ImportedItem,
        placed: Sequence[tuple[int, int, str] | None],
        windows: Sequence[tasks_pb2.Task],
        outcome: Outcome,
        metadata: Metadata,
    ) -> None:
        """A model's predictions become that model's suggestions on each task."""
        at = 0
        by_task: dict[tuple[str, str], list[tasks_pb2.Suggestion]] = {}
        for prediction in item.predictions:
            source = f"import {prediction.annotator}"[:64]
            for span in placed[at : at + len(prediction.spans)]:
                home = (
                    None
                    if span is None
                    else next((t for t in windows if _holds(t, *span[:2])), None)
                )
                if span is None or home is None:
                    outcome.left_out["predicted spans inside a redacted identifier "
                                     "or across windows"] += 1  # fmt: skip
                    continue
                by_task.setdefault((home.id, source), []).append(
                    tasks_pb2.Suggestion(
                        span=common_pb2.Span(start=span[0], end=span[1]),
                        label=span[2],
                        source=source,
                        score=1.0,
                    )
                )
            at += len(prediction.spans)
        for (task_id, source), suggestions in by_task.items():
            call(
                self.clients.tasks.SetSuggestions,
                tasks_pb2.SetSuggestionsRequest(
                    task_id=task_id, source=source, suggestions=suggestions
                ),
                metadata,
            )
            outcome.suggestions += len(suggestions)

    def _placed(
        self,
        document_id: str,
        spans: Sequence[importers.ImportedSpan],
        metadata: Metadata,
    ) -> list[tuple[int, int, str] | None]:
        """Each span on the redacted text, or None where redaction removed it."""
        if not spans:
            return []
        response = call(
            self.clients.redaction.MapSpans,
            redaction_pb2.MapSpansRequest(
                document_id=document_id,
                spans=[common_pb2.Span(start=s.start, end=s.end) for s in spans],
            ),
            metadata,
        )
        return [
            (m.span.start, m.span.end, s.label) if m.found else None
            for m, s in zip(response.spans, spans, strict=True)
        ]

    def _annotator(self, row: store.ImportRow, source: str) -> str:
        """The same person of the same tool is the same pseudonym in a project."""
        digest = hmac.new(
            self.pseudonym_key,
            f"{row.project_id}\0{row.format}\0{source}".encode(),
            hashlib.sha256,
        )
        return f"imported-{digest.hexdigest()[:12]}"

    # --- ending -------------------------------------------------------------------

    def _finish(
        self, row: store.ImportRow, principal: Principal, items: int, outcome: Outcome
    ) -> None:
        with self.engine.begin() as conn:
            if not store.finish_import(
                conn,
                row.id,
                items=items,
                documents=len(outcome.documents),
                answers=outcome.answers,
                annotators=len(outcome.annotators),
                suggestions=outcome.suggestions,
                left_out=dict(outcome.left_out),
            ):
                return
            stage_audit(
                conn,
                service=SERVICE,
                action="import.finish",
                actor=principal,
                resource_type="import",
                resource_id=row.id,
                project_id=row.project_id,
                details={
                    "format": row.format,
                    "items": items,
                    "documents": len(outcome.documents),
                    "answers": outcome.answers,
                    "suggestions": outcome.suggestions,
                    "left_out": sum(outcome.left_out.values()),
                },
            )

    def _fail(self, row: store.ImportRow, principal: Principal, code: str) -> None:
        with self.engine.begin() as conn:
            _failed(conn, row.id, row.project_id, principal, code)


def label_names(project: tasks_pb2.Project) -> importers.LabelNames:
    """The names an imported answer may use: the project's schema."""
    schema = project.schema
    return importers.LabelNames(
        spans=frozenset(label.name for label in schema.spans)
        or frozenset(label.name for label in project.labels),
        classes=frozenset(label.name for label in schema.classes),
        relations=frozenset(label.name for label in schema.relations),
        fields=frozenset(f.name for f in schema.fields),
    )


class _Heartbeat:
    """Progress for the import's row, at most every few seconds."""

    def __init__(self, engine: Engine, import_id: str, total: int) -> None:
        self.engine, self.import_id, self.total = engine, import_id, total
        self.done, self.last = 0, 0.0

    def __call__(self, done: int) -> None:
        self.done = done
        if time.monotonic() - self.last > _HEARTBEAT_SECONDS or done >= self.total:
            self.touch()

    def touch(self) -> None:
        with self.engine.begin() as conn:
            store.import_progress(conn, self.import_id, self.done, self.total)
        self.last = time.monotonic()


def _by_window(
    answer: importers.ImportedAnswer,
    placed: Sequence[tuple[int, int, str] | None],
    windows: Sequence[tasks_pb2.Task],
    left_out: Counter[str],
) -> Iterator[tuple[tasks_pb2.Task, common_pb2.AnnotationContent]]:
    """Cut an answer into the tasks of its document: each span goes to the
    window holding it; classes and fields go to the first window."""
    ordered = sorted(windows, key=lambda t: t.window_start)
    per_task: dict[str, list[tuple[int, tuple[int, int, str]]]] = {}
    for index, span in enumerate(placed):
        if span is None:
            left_out["spans inside a redacted identifier"] += 1
            continue
        home = next((t for t in ordered if _holds(t, span[0], span[1])), None)
        if home is None:
            left_out["spans across two tasks' windows"] += 1
            continue
        per_task.setdefault(home.id, []).append((index, span))
    home_of = {
        index: task_id for task_id, spans in per_task.items() for index, _ in spans
    }
    relations: dict[str, list[tuple[int, int, str]]] = {}
    for source, target, label in answer.relations:
        task_id = home_of.get(source)
        if task_id is None or home_of.get(target) != task_id:
            left_out["relations whose spans were left out"] += 1
            continue
        relations.setdefault(task_id, []).append((source, target, label))
    first = ordered[0]
    for task in ordered:
        spans = per_task.get(task.id, [])
        is_first = task.id == first.id
        if not spans and not (is_first and (answer.classes or answer.fields)):
            continue
        position = {old: new for new, (old, _) in enumerate(spans)}
        yield (
            task,
            common_pb2.AnnotationContent(
                spans=[
                    common_pb2.SpanLabel(
                        span=common_pb2.Span(start=s, end=e), label=label
                    )
                    for _, (s, e, label) in spans
                ],
                classes=list(answer.classes) if is_first else [],
                relations=[
                    common_pb2.Relation(
                        from_span=position[a], to_span=position[b], label=label
                    )
                    for a, b, label in relations.get(task.id, [])
                ],
                fields=dict(answer.fields) if is_first else {},
            ),
        )


def _holds(task: tasks_pb2.Task, start: int, end: int) -> bool:
    return task.window_start <= start and (
        not task.window_end or end <= task.window_end
    )


def _timestamp(moment: str) -> Timestamp | None:
    """The source's time of an answer, if it gave a readable one."""
    if not moment:
        return None
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(parsed)
    return stamp


def fail_stalled_imports(engine: Engine, now: datetime) -> None:
    """Report imports whose worker went silent (its process died) as failed."""
    before = to_iso(now - timedelta(seconds=STALL_SECONDS))
    with engine.begin() as conn:
        for import_id, project_id in store.stalled_imports(conn, before):
            _failed(conn, import_id, project_id, SYSTEM, "import_interrupted")


def _failed(
    conn: Connection, import_id: str, project_id: str, actor: Principal, code: str
) -> None:
    """Mark an import failed with its code and audit it, once."""
    if store.fail_import(conn, import_id, code):
        stage_audit(
            conn,
            service=SERVICE,
            action="import.finish",
            actor=actor,
            resource_type="import",
            resource_id=import_id,
            project_id=project_id,
            outcome="error",
            details={"error_code": code},
        )
