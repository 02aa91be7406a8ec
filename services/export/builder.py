"""Building a dataset version in the background.

The builder pages through the project's tasks, asks the labeling service
for those tasks' answers, cuts each window's redacted text and streams one
record at a time into every chosen format's writer, so memory stays flat in
the size of the project. Progress and a heartbeat go to the export's row;
a build whose heartbeat stops is reported failed, never left half-made.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from google.protobuf.json_format import MessageToDict
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.audit_trail import SYSTEM, stage_audit
from strongroom.services.common.auth import Principal
from strongroom.services.common.database import to_iso
from strongroom.services.common.errors import StrongroomError
from strongroom.services.common.events import EXPORT_CREATED, stage_event
from strongroom.services.common.grpc_clients import Metadata, call
from strongroom.services.common.ports import ObjectStore
from strongroom.services.common.runtime import DERIVED, EXPORTS
from strongroom.services.common.signing import key_id
from strongroom.services.common.text import tokens
from strongroom.services.export import card, domain, formats, store
from strongroom.services.export.records import (
    ANSWER,
    GOLD,
    Box,
    ExportSchema,
    LabelInfo,
    Page,
    Record,
    Relation,
    Span,
)
from strongroom.v1 import (
    common_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
    labeling_pb2,
    labeling_pb2_grpc,
    redaction_pb2,
    redaction_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)

logger = logging.getLogger(__name__)

SERVICE = "export"
# Tasks per page asked of the tasks service; their answers come in one call.
_TASK_PAGE = 500
_ANSWER_PAGE = 1000
_DOCUMENT_PAGE = 500
_CHUNK = 1024 * 1024
# A build reports at least this often; one silent for the stall time (a
# setting, minutes by default) died with its process.
_HEARTBEAT_SECONDS = 5.0
# Document ids listed per export.contents audit event.
_CONTENTS_PER_EVENT = 1000
_TEXTS_KEPT = 16


@dataclass(frozen=True)
class Clients:
    tasks: tasks_pb2_grpc.TaskServiceStub
    labeling: labeling_pb2_grpc.LabelingServiceStub
    redaction: redaction_pb2_grpc.RedactionServiceStub
    ingestion: ingestion_pb2_grpc.IngestionServiceStub


class ExportBuilder:
    def __init__(
        self,
        engine: Engine,
        objects: ObjectStore,
        clients: Clients,
        signing_key: Ed25519PrivateKey,
        work_dir: Path,
        stall_seconds: float,
    ) -> None:
        self.engine = engine
        self.objects = objects
        self.clients = clients
        self.stall_seconds = stall_seconds
        self.signing_key = signing_key
        self.key_id = key_id(signing_key.public_key())
        # Pseudonyms are keyed by the signing key, so one secret serves both.
        self.pseudonym_key = hashlib.sha256(
            b"strongroom export pseudonyms\0" + _raw(signing_key)
        ).digest()
        self.work_dir = work_dir
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="export-build")

    def start(
        self, row: store.ExportRow, principal: Principal, metadata: Metadata
    ) -> None:
        """Build in the background, with the caller's request id and token."""
        context = contextvars.copy_context()
        self.executor.submit(context.run, self.build, row, principal, metadata)

    def build(
        self, row: store.ExportRow, principal: Principal, metadata: Metadata
    ) -> None:
        started = time.monotonic()
        try:
            self._build(row, principal, metadata)
        except StrongroomError as exc:
            # The code says why; the message may name a project, never data.
            logger.warning(
                "export_build_refused", extra={"export_id": row.id, "code": exc.code}
            )
            self._fail(row, principal, exc.code)
        except Exception:
            # The traceback names code only; records never reach the log.
            logger.exception("export_build_failed", extra={"export_id": row.id})
            self._fail(row, principal, "export_build_failed")
        else:
            logger.info(
                "export_built",
                extra={
                    "export_id": row.id,
                    "seconds": round(time.monotonic() - started, 3),
                },
            )

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    # --- the build ------------------------------------------------------------

    def _build(
        self, row: store.ExportRow, principal: Principal, metadata: Metadata
    ) -> None:
        settings = row.settings
        project = call(
            self.clients.tasks.GetProject,
            tasks_pb2.GetProjectRequest(project_id=row.project_id),
            metadata,
        )
        schema = export_schema(project.schema)
        report = call(
            self.clients.redaction.GetProjectRedactionReport,
            redaction_pb2.GetProjectRedactionReportRequest(project_id=project.id),
            metadata,
        )
        duplicates = {link.document_id: link.duplicate_of for link in report.duplicates}
        directory = Path(tempfile.mkdtemp(prefix=f"export-{row.id}-", dir=self._work()))
        try:
            writers = {
                name: formats.writer_for(name, schema, directory)
                for name in settings.formats
            }
            lineage = (directory / "documents.txt").open("w", encoding="ascii")

            def went_in(document_id: str) -> None:
                lineage.write(document_id + "\n")

            tally = domain.Tally(on_document=went_in)
            annotators: Counter[str] = Counter()
            # Page images copied in, by (document, page): the page and its file.
            pages: dict[tuple[str, int], tuple[Page, domain.FileEntry]] = {}
            wants_pages = "coco" in settings.formats or domain.JSONL in settings.formats
            for record in self._records(row, project, duplicates, metadata):
                record = domain.only_labels(record, settings.filter.labels)
                if record.boxes and wants_pages:
                    record = self._with_pages(record, pages, metadata)
                tally.add(record)
                annotators[record.annotator] += 1
                for writer in writers.values():
                    writer.add(record)
            files = [
                self._keep(directory / written, written)
                for writer in writers.values()
                for written in writer.close()
            ]
            files += list({entry.name: entry for _, entry in pages.values()}.values())
            facts = self._facts(
                row, project, report, tally, annotators, writers, metadata
            )
            made = card.build_card(facts)
            card_json = _json_bytes(made)
            card_md = card.render_markdown(made).encode("utf-8")
            files.append(self._keep_bytes(domain.CARD_JSON, card_json))
            files.append(self._keep_bytes(domain.CARD_MARKDOWN, card_md))
            manifest = domain.render_manifest(
                export_id=row.id,
                created_at=row.created_at,
                settings=settings,
                project={
                    "id": project.id,
                    "name": project.name,
                    "schema_version": domain.schema_digest(
                        MessageToDict(project.schema, preserving_proto_field_name=True)
                    ),
                },
                files=files,
                counts=tally.as_dict(),
                pipeline=self._pipeline(project, report, settings, metadata),
                key_id=self.key_id,
            )
            signature = self.signing_key.sign(manifest)
            manifest_entry = self._keep_bytes(domain.MANIFEST_FILE, manifest)
            signature_entry = self._keep_bytes(
                domain.SIGNATURE_FILE, domain.render_signature(signature, self.key_id)
            )
            lineage.close()
            self._finish(
                row,
                principal,
                (
                    *sorted(files, key=lambda f: f.name),
                    manifest_entry,
                    signature_entry,
                ),
                tally,
                directory / "documents.txt",
                manifest_entry.sha256,
                signature.hex(),
            )
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _records(
        self,
        row: store.ExportRow,
        project: Any,
        duplicates: Mapping[str, str],
        metadata: Metadata,
    ) -> Iterator[Record]:
        """Every kept answer, task by task in arrival order."""
        export_filter = row.settings.filter
        kinds = (GOLD,) if export_filter.gold_only else (ANSWER, GOLD)
        texts: OrderedDict[str, str] = OrderedDict()
        offset, last_beat = 0, time.monotonic()
        while True:
            page = call(
                self.clients.tasks.ListTasks,
                tasks_pb2.ListTasksRequest(
                    project_id=project.id,
                    page=common_pb2.PageRequest(limit=_TASK_PAGE, offset=offset),
                ),
                metadata,
            )
            if not page.tasks:
                break
            answers = self._answers(
                project.id, [t.id for t in page.tasks], kinds, metadata
            )
            for task in page.tasks:
                # A synthetic example was made, not reviewed, whatever its state.
                reviewed = (
                    project.review
                    and task.state == tasks_pb2.TASK_STATE_COMPLETED
                    and not task.synthetic
                )
                group = domain.group_of(task.document_id, duplicates)
                window: str | None = None
                for annotation in answers.get(task.id, ()):
                    created = annotation.created_at.ToJsonString()
                    if not domain.keeps(
                        export_filter,
                        annotation.kind,
                        created,
                        reviewed,
                        bool(task.synthetic),
                    ):
                        continue
                    if window is None:
                        window = self._window(task, texts)
                    yield self._record(
                        project.id, task, annotation, window, reviewed, group, row
                    )
            offset += len(page.tasks)
            if (
                time.monotonic() - last_beat > _HEARTBEAT_SECONDS
                or offset >= page.page.total
            ):
                with self.engine.begin() as conn:
                    store.report_progress(conn, row.id, offset, page.page.total)
                last_beat = time.monotonic()
            if offset >= page.page.total:
                break

    def _answers(
        self,
        project_id: str,
        task_ids: list[str],
        kinds: tuple[str, ...],
        metadata: Metadata,
    ) -> dict[str, list[common_pb2.Annotation]]:
        by_task: dict[str, list[common_pb2.Annotation]] = {}
        for kind in kinds:
            offset = 0
            while True:
                response = call(
                    self.clients.labeling.ListAnnotations,
                    labeling_pb2.ListAnnotationsRequest(
                        project_id=project_id,
                        kind=kind,
                        task_ids=task_ids,
                        page=common_pb2.PageRequest(limit=_ANSWER_PAGE, offset=offset),
                    ),
                    metadata,
                )
                for annotation in response.annotations:
                    by_task.setdefault(annotation.task_id, []).append(annotation)
                offset += len(response.annotations)
                if not response.annotations or offset >= response.page.total:
                    break
        for answers in by_task.values():
            answers.sort(
                key=lambda a: (a.kind != ANSWER, a.created_at.ToJsonString(), a.id)
            )
        return by_task

    def _window(self, task: tasks_pb2.Task, texts: OrderedDict[str, str]) -> str:
        text = texts.get(task.text_sha256)
        if text is None:
            text = self.objects.read(DERIVED, task.text_sha256).decode("utf-8")
            texts[task.text_sha256] = text
            if len(texts) > _TEXTS_KEPT:
                texts.popitem(last=False)
        else:
            texts.move_to_end(task.text_sha256)
        end = task.window_end or len(text)
        return text[task.window_start : end]

    def _record(
        self,
        project_id: str,
        task: tasks_pb2.Task,
        annotation: common_pb2.Annotation,
        window: str,
        reviewed: bool,
        group: str,
        row: store.ExportRow,
    ) -> Record:
        start = task.window_start
        content = annotation.content
        synthetic = bool(task.synthetic)
        return Record(
            id=annotation.id,
            task_id=task.id,
            document_id=task.document_id,
            text=window,
            window_start=start,
            text_sha256=task.text_sha256,
            annotator=domain.pseudonym(
                self.pseudonym_key, project_id, annotation.annotator
            ),
            kind=annotation.kind or ANSWER,
            reviewed=reviewed,
            version=annotation.version or 1,
            created_at=annotation.created_at.ToJsonString(),
            split=domain.split_of(project_id, group, row.settings.ratios, synthetic),
            synthetic=synthetic,
            tokens=tuple(tokens(window)),
            spans=tuple(
                Span(s.span.start - start, s.span.end - start, s.label)
                for s in content.spans
            ),
            classes=tuple(content.classes),
            relations=tuple(
                Relation(r.from_span, r.to_span, r.label) for r in content.relations
            ),
            boxes=tuple(
                Box(b.page, b.x, b.y, b.width, b.height, b.label) for b in content.boxes
            ),
            fields=dict(sorted(content.fields.items())),
            pages=tuple(Page(p.page, p.width, p.height, "") for p in task.pages),
            seconds=content.seconds,
        )

    def _with_pages(
        self,
        record: Record,
        kept: dict[tuple[str, int], tuple[Page, domain.FileEntry]],
        metadata: Metadata,
    ) -> Record:
        """The record with each page it has boxes on copied into the export."""
        boxed = {b.page for b in record.boxes}
        pages = []
        for page in record.pages:
            key = (record.document_id, page.number)
            if page.number in boxed and key not in kept:
                image = call(
                    self.clients.tasks.GetTaskPage,
                    tasks_pb2.GetTaskPageRequest(
                        task_id=record.task_id, page=page.number
                    ),
                    metadata,
                )
                stored = self.objects.put(EXPORTS, [image.data])
                copied = Page(page.number, page.width, page.height, stored.sha256)
                entry = domain.FileEntry(copied.file_name, stored.sha256, stored.size)
                kept[key] = (copied, entry)
            pages.append(kept[key][0] if key in kept else page)
        return replace(record, pages=tuple(pages))

    def _keep(self, path: Path, name: str) -> domain.FileEntry:
        stored = self.objects.put(EXPORTS, _chunks(path))
        return domain.FileEntry(name, stored.sha256, stored.size)

    def _keep_bytes(self, name: str, data: bytes) -> domain.FileEntry:
        stored = self.objects.put(EXPORTS, [data])
        return domain.FileEntry(name, stored.sha256, stored.size)

    # --- what the card and manifest say ---------------------------------------

    def _facts(
        self,
        row: store.ExportRow,
        project: Any,
        report: redaction_pb2.ProjectRedactionReport,
        tally: domain.Tally,
        annotators: Counter[str],
        writers: Mapping[str, Any],
        metadata: Metadata,
    ) -> card.CardFacts:
        stats = call(
            self.clients.labeling.GetProjectStats,
            labeling_pb2.GetProjectStatsRequest(project_id=project.id),
            metadata,
        )
        queue = call(
            self.clients.tasks.GetQueueStats,
            tasks_pb2.GetQueueStatsRequest(project_id=project.id),
            metadata,
        )

        def rename(subject: str) -> str:
            return domain.pseudonym(self.pseudonym_key, project.id, subject)

        agreement = card.pseudonymised(json.loads(stats.agreement_json or "{}"), rename)
        schema = project.schema
        return card.CardFacts(
            version=row.name,
            export_id=row.id,
            created_at=row.created_at,
            project={
                "id": project.id,
                "name": project.name,
                "guidelines": project.guidelines,
            },
            settings=row.settings.as_dict(),
            counts=tally.as_dict(),
            sources=self._sources(project.id, metadata),
            redaction={
                "policy": report.policy,
                "documents": report.documents,
                "held": report.held,
                "counts_by_type": dict(sorted(report.counts_by_type.items())),
                "counts_by_action": dict(sorted(report.counts_by_action.items())),
                "counts_by_detector": dict(sorted(report.counts_by_detector.items())),
                "hold_reasons": dict(sorted(report.hold_reasons.items())),
                "rules_versions": list(report.rules_versions),
                "model_versions": list(report.model_versions),
                "duplicate_clusters": report.duplicate_clusters,
            },
            labeling={
                "overlap": project.overlap,
                "review": project.review,
                "window": project.window.kind or "document",
                "assignment": project.assignment,
                "schema_version": domain.schema_digest(
                    MessageToDict(schema, preserving_proto_field_name=True)
                ),
                "span_labels": [label.name for label in schema.spans],
                "class_labels": [label.name for label in schema.classes],
                "relation_labels": [label.name for label in schema.relations],
                "box_labels": [label.name for label in schema.boxes],
                "multi_label": schema.multi_label,
                "descriptions": {
                    label.name: label.description
                    for group in (
                        schema.spans,
                        schema.classes,
                        schema.relations,
                        schema.boxes,
                    )
                    for label in group
                    if label.description
                },
            },
            queue={
                "tasks": queue.total,
                "open": queue.open,
                "in_progress": queue.in_progress,
                "in_review": queue.in_review,
                "completed": queue.completed,
                "skipped": sum(a.skipped for a in queue.annotators),
            },
            review={
                "accepted": stats.accepted,
                "rejected": stats.rejected,
                "corrected": stats.corrected,
                "gold_tasks": stats.gold_tasks,
            },
            agreement=agreement,
            annotators=dict(annotators),
            intended_use=row.settings.intended_use,
            notes={
                name: dict(getattr(writer, "notes", {}) or {})
                for name, writer in writers.items()
            },
        )

    def _sources(self, project_id: str, metadata: Metadata) -> dict[str, Any]:
        media: Counter[str] = Counter()
        parsers: Counter[str] = Counter()
        documents = ocr = duplicates = 0
        offset = 0
        while True:
            response = call(
                self.clients.ingestion.ListDocuments,
                ingestion_pb2.ListDocumentsRequest(
                    project_id=project_id,
                    page=common_pb2.PageRequest(limit=_DOCUMENT_PAGE, offset=offset),
                ),
                metadata,
            )
            for document in response.documents:
                documents += 1
                media[document.media_type] += 1
                provenance = document.provenance
                if provenance.parser:
                    parsers[
                        f"{provenance.parser} {provenance.parser_version}".strip()
                    ] += 1
                ocr += bool(provenance.ocr_engine)
                duplicates += document.is_duplicate
            offset += len(response.documents)
            if not response.documents or offset >= response.page.total:
                break
        return {
            "documents": documents,
            "media_types": dict(sorted(media.items())),
            "parsers": dict(sorted(parsers.items())),
            "ocr_documents": ocr,
            "duplicates": duplicates,
        }

    def _pipeline(
        self,
        project: Any,
        report: redaction_pb2.ProjectRedactionReport,
        settings: domain.ExportSettings,
        metadata: Metadata,
    ) -> dict[str, Any]:
        policy = call(
            self.clients.redaction.GetRedactionPolicy,
            redaction_pb2.GetRedactionPolicyRequest(project_id=project.id),
            metadata,
        )
        return {
            "strongroom": version("strongroom"),
            "ingestion": {"parsers": "see dataset-card.json collection.sources"},
            "redaction": {
                "policy": MessageToDict(policy, preserving_proto_field_name=True),
                "rules_versions": list(report.rules_versions),
                "model_versions": list(report.model_versions),
            },
            "labeling": {
                "schema": MessageToDict(
                    project.schema, preserving_proto_field_name=True
                ),
                "overlap": project.overlap,
                "review": project.review,
                "window": MessageToDict(
                    project.window, preserving_proto_field_name=True
                ),
            },
            "export": {
                "formats": list(settings.formats),
                "split_method": "sha256(project id, group) against the ratios; "
                "a group is a document and its exact and near duplicates",
                "text": "redacted",
            },
        }

    # --- ending ---------------------------------------------------------------

    def _finish(
        self,
        row: store.ExportRow,
        principal: Principal,
        files: tuple[domain.FileEntry, ...],
        tally: domain.Tally,
        lineage: Path,
        manifest_sha256: str,
        signature: str,
    ) -> None:
        with self.engine.begin() as conn:
            if not store.finish(
                conn,
                row.id,
                files=files,
                records=tally.records,
                manifest_sha256=manifest_sha256,
                split_counts=dict(tally.as_dict()["splits"]),
                signature=signature,
                key_id=self.key_id,
            ):
                return  # already reported stalled; the files stay unreferenced
            stage_event(
                conn,
                EXPORT_CREATED,
                row.project_id,
                {
                    "export_id": row.id,
                    "project_id": row.project_id,
                    "manifest_sha256": manifest_sha256,
                    "annotation_count": tally.records,
                },
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="export.build",
                actor=principal,
                resource_type="export",
                resource_id=row.id,
                project_id=row.project_id,
                details={
                    "formats": ",".join(row.settings.formats),
                    "records": tally.records,
                    "documents": tally.documents,
                    "manifest_sha256": manifest_sha256,
                    "key_id": self.key_id,
                },
            )
            # Which documents went into the export, for their lineage; in
            # parts, so no single event grows with the export.
            for start, part in enumerate(_parts(lineage, _CONTENTS_PER_EVENT)):
                stage_audit(
                    conn,
                    service=SERVICE,
                    action="export.contents",
                    actor=principal,
                    resource_type="export",
                    resource_id=row.id,
                    project_id=row.project_id,
                    details={"part_start": start * _CONTENTS_PER_EVENT},
                    documents=part,
                )

    def _fail(self, row: store.ExportRow, principal: Principal, code: str) -> None:
        with self.engine.begin() as conn:
            _failed(conn, row, principal, code)

    def _work(self) -> Path:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir


def fail_stalled(engine: Engine, now: datetime, stall_seconds: float) -> int:
    """Report builds whose builder went silent (its process died) as failed."""
    before = to_iso(now - timedelta(seconds=stall_seconds))
    with engine.begin() as conn:
        return sum(
            _failed(conn, row, SYSTEM, "export_interrupted")
            for row in store.stalled(conn, before)
        )


def _failed(
    conn: Connection, row: store.ExportRow, actor: Principal, code: str
) -> bool:
    """Mark a build failed with its code and audit it, once."""
    if not store.fail(conn, row.id, code):
        return False
    stage_audit(
        conn,
        service=SERVICE,
        action="export.build",
        actor=actor,
        resource_type="export",
        resource_id=row.id,
        project_id=row.project_id,
        outcome="error",
        details={"error_code": code},
    )
    return True


def export_schema(schema: tasks_pb2.LabelSchema) -> ExportSchema:
    def infos(labels: Any) -> tuple[LabelInfo, ...]:
        return tuple(
            LabelInfo(label.name, label.color, label.description) for label in labels
        )

    return ExportSchema(
        spans=infos(schema.spans),
        classes=infos(schema.classes),
        multi_label=schema.multi_label,
        relations=infos(schema.relations),
        boxes=infos(schema.boxes),
        fields=tuple(f.name for f in schema.fields),
    )


def _parts(path: Path, size: int) -> Iterator[list[str]]:
    """The file's lines, ``size`` at a time."""
    part: list[str] = []
    with path.open(encoding="ascii") as lines:
        for line in lines:
            part.append(line.rstrip("\n"))
            if len(part) == size:
                yield part
                part = []
    if part:
        yield part


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _json_bytes(value: Any) -> bytes:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
