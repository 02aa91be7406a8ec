"""gRPC surface of the export service."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from importlib.metadata import version

import grpc
from sqlalchemy.engine import Engine

from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import ADMIN, MANAGER, Principal, require_role
from strongroom.services.common.database import utc_now
from strongroom.services.common.errors import Conflict, NotFound
from strongroom.services.common.events import EXPORT_CREATED, stage_event
from strongroom.services.common.grpc_clients import Metadata, call, caller_metadata
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.ports import ObjectStore
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.services.common.runtime import DERIVED, EXPORTS
from strongroom.services.export import domain, store
from strongroom.v1 import (
    common_pb2,
    export_pb2,
    export_pb2_grpc,
    labeling_pb2,
    labeling_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)

logger = logging.getLogger(__name__)

SERVICE = "export"
_PAGE = 1000
_CHUNK = 256 * 1024


# Document ids listed per export.contents audit event.
_CONTENTS_PER_EVENT = 1000


class ExportServicer(export_pb2_grpc.ExportServiceServicer):
    def __init__(
        self,
        engine: Engine,
        objects: ObjectStore,
        tasks: tasks_pb2_grpc.TaskServiceStub,
        labeling: labeling_pb2_grpc.LabelingServiceStub,
    ) -> None:
        self.engine = engine
        self.objects = objects
        self.tasks = tasks
        self.labeling = labeling

    def CreateExport(
        self, request: export_pb2.CreateExportRequest, context: grpc.ServicerContext
    ) -> export_pb2.Export:
        """Freeze the project's annotations into an immutable, hashed export.

        Raises:
            InvalidArgument: the format is unknown.
            Conflict: the project already has an export of that name.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        export_format = domain.check_format(request.format)
        metadata = caller_metadata(principal.token, principal.client_address)
        project = call(
            self.tasks.GetProject,
            tasks_pb2.GetProjectRequest(project_id=request.project_id),
            metadata,
        )
        annotations = self._annotations(project.id, metadata)
        texts = {
            a.text_sha256: self.objects.read(DERIVED, a.text_sha256).decode("utf-8")
            for a in annotations
        }
        export_id, created_at = str(uuid.uuid4()), utc_now()
        with self.engine.connect() as conn:
            name = (
                request.name.strip() or f"v{store.count_exports(conn, project.id) + 1}"
            )
        data = domain.render_jsonl(annotations, texts)
        data_entry = domain.file_entry(domain.DATA_FILE, data)
        manifest = domain.render_manifest(
            export_id=export_id,
            name=name,
            created_at=created_at,
            export_format=export_format,
            project={
                "id": project.id,
                "name": project.name,
                "labels": [label.name for label in project.labels],
            },
            files=[data_entry],
            annotations=annotations,
            pipeline={
                "strongroom": version("strongroom"),
                "text": "redacted",
                "export_format": export_format,
            },
        )
        manifest_entry = domain.file_entry(domain.MANIFEST_FILE, manifest)
        self.objects.put(EXPORTS, [data])
        self.objects.put(EXPORTS, [manifest])
        row = store.ExportRow(
            id=export_id,
            project_id=project.id,
            name=name,
            format=export_format,
            files=(data_entry, manifest_entry),
            annotation_count=len(annotations),
            manifest_sha256=manifest_entry.sha256,
            created_at=created_at,
        )
        self._record(row, principal, sorted({a.document_id for a in annotations}))
        logger.info(
            "export_created",
            extra={"export_id": export_id, "annotations": len(annotations)},
        )
        return _export_proto(row)

    def GetExport(
        self, request: export_pb2.GetExportRequest, context: grpc.ServicerContext
    ) -> export_pb2.Export:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        with self.engine.begin() as conn:
            row = store.get_export(conn, request.export_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="export.read",
                actor=principal,
                resource_type="export",
                resource_id=row.id,
                project_id=row.project_id,
            )
        return _export_proto(row)

    def ListExports(
        self, request: export_pb2.ListExportsRequest, context: grpc.ServicerContext
    ) -> export_pb2.ListExportsResponse:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        limit, offset = page_bounds(request.page)
        with self.engine.begin() as conn:
            rows, total = store.list_exports(conn, request.project_id, limit, offset)
            stage_audit(
                conn,
                service=SERVICE,
                action="export.list",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
                details={"count": len(rows), "offset": offset},
            )
        return export_pb2.ListExportsResponse(
            exports=[_export_proto(r) for r in rows],
            page=common_pb2.PageInfo(offset=offset, total=total),
        )

    def ReadExportFile(
        self, request: export_pb2.ReadExportFileRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.DataChunk]:
        """Stream one file of an export; every download is audited.

        Raises:
            NotFound: the export or the file does not exist.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        with self.engine.begin() as conn:
            row = store.get_export(conn, request.export_id)
            entry = next((f for f in row.files if f.name == request.name), None)
            if entry is None:
                raise NotFound(
                    f"Export {row.id} has no file with that name.",
                    code="export_file_not_found",
                )
            stage_audit(
                conn,
                service=SERVICE,
                action="export.download",
                actor=principal,
                resource_type="export",
                resource_id=row.id,
                project_id=row.project_id,
                details={"file": entry.name, "sha256": entry.sha256},
            )
        for chunk in self.objects.stream(EXPORTS, entry.sha256, _CHUNK):
            yield common_pb2.DataChunk(data=chunk)

    def _annotations(
        self, project_id: str, metadata: Metadata
    ) -> list[domain.ExportedAnnotation]:
        collected: list[domain.ExportedAnnotation] = []
        while True:
            response = call(
                self.labeling.ListAnnotations,
                labeling_pb2.ListAnnotationsRequest(
                    project_id=project_id,
                    page=common_pb2.PageRequest(limit=_PAGE, offset=len(collected)),
                ),
                metadata,
            )
            collected += [_exported(a) for a in response.annotations]
            if not response.annotations or len(collected) >= response.page.total:
                return collected

    def _record(
        self, row: store.ExportRow, principal: Principal, documents: list[str]
    ) -> None:
        with self.engine.begin() as conn:
            if not store.insert_export(conn, row):
                raise Conflict(
                    f"Project {row.project_id} already has an export named "
                    f"{row.name!r}.",
                    code="export_name_taken",
                )
            stage_event(
                conn,
                EXPORT_CREATED,
                row.project_id,
                {
                    "export_id": row.id,
                    "project_id": row.project_id,
                    "manifest_sha256": row.manifest_sha256,
                    "annotation_count": row.annotation_count,
                },
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="export.create",
                actor=principal,
                resource_type="export",
                resource_id=row.id,
                project_id=row.project_id,
                details={
                    "format": row.format,
                    "annotations": row.annotation_count,
                    "documents": len(documents),
                    "manifest_sha256": row.manifest_sha256,
                },
            )
            # Which documents went into the export, for their lineage; in
            # parts, so no single event grows with the export.
            for start in range(0, len(documents), _CONTENTS_PER_EVENT):
                stage_audit(
                    conn,
                    service=SERVICE,
                    action="export.contents",
                    actor=principal,
                    resource_type="export",
                    resource_id=row.id,
                    project_id=row.project_id,
                    details={"part_start": start},
                    documents=documents[start : start + _CONTENTS_PER_EVENT],
                )


def _exported(annotation: common_pb2.Annotation) -> domain.ExportedAnnotation:
    return domain.ExportedAnnotation(
        id=annotation.id,
        task_id=annotation.task_id,
        document_id=annotation.document_id,
        text_sha256=annotation.text_sha256,
        annotator=annotation.annotator,
        spans=tuple(
            domain.ExportedSpan(s.span.start, s.span.end, s.label)
            for s in annotation.content.spans
        ),
        created_at=annotation.created_at.ToJsonString(),
    )


def _export_proto(row: store.ExportRow) -> export_pb2.Export:
    return export_pb2.Export(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        format=row.format,
        files=[
            common_pb2.ExportFile(name=f.name, sha256=f.sha256, size_bytes=f.size_bytes)
            for f in row.files
        ],
        annotation_count=row.annotation_count,
        manifest_sha256=row.manifest_sha256,
        created_at=to_timestamp(row.created_at),
    )
