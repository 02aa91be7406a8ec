"""gRPC surface of the export service."""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
from sqlalchemy.engine import Engine

from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import (
    ADMIN,
    MANAGER,
    Principal,
    manages,
    require_role,
)
from strongroom.services.common.database import to_iso, utc_now
from strongroom.services.common.errors import (
    Conflict,
    HiddenNotFound,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
)
from strongroom.services.common.grpc_clients import call, caller_metadata
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.ports import ObjectStore
from strongroom.services.common.project_access import (
    ProjectAccess,
    project_not_found,
)
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.services.common.runtime import EXPORTS
from strongroom.services.common.signing import public_pem
from strongroom.services.export import domain, importers, store
from strongroom.services.export.builder import (
    SERVICE,
    ExportBuilder,
    export_schema,
    fail_stalled,
)
from strongroom.services.export.formats import writer_for
from strongroom.services.export.importer import (
    Importer,
    fail_stalled_imports,
    label_names,
)
from strongroom.services.export.records import ExportSchema
from strongroom.v1 import common_pb2, export_pb2, export_pb2_grpc, tasks_pb2

logger = logging.getLogger(__name__)

_CHUNK = 256 * 1024
_STATES = {
    domain.BUILDING: export_pb2.EXPORT_STATE_BUILDING,
    domain.READY: export_pb2.EXPORT_STATE_READY,
    domain.FAILED: export_pb2.EXPORT_STATE_FAILED,
}


class ExportServicer(export_pb2_grpc.ExportServiceServicer):
    def __init__(
        self,
        engine: Engine,
        objects: ObjectStore,
        builder: ExportBuilder,
        importer: Importer,
    ) -> None:
        self.engine = engine
        self.objects = objects
        self.builder = builder
        self.importer = importer
        self.access = ProjectAccess(builder.clients.tasks)

    def _require_manager(
        self,
        principal: Principal,
        project_id: str,
        hidden: HiddenNotFound | None = None,
    ) -> None:
        self.access.require(
            principal, project_id, (MANAGER,), hidden or project_not_found(project_id)
        )

    def _require_manager_of_export(self, principal: Principal, export_id: str) -> None:
        """Raises: NotFound: no such export, or one of a project the caller is
        not in (the same answer). PermissionDenied: a member, not a manager."""
        with self.engine.begin() as conn:
            project_id = store.get_export(conn, export_id).project_id
        hidden = HiddenNotFound(
            f"Export {export_id} does not exist.", code="export_not_found"
        )
        self._require_manager(principal, project_id, hidden)

    def CreateExport(
        self, request: export_pb2.CreateExportRequest, context: grpc.ServicerContext
    ) -> export_pb2.Export:
        """Start building a dataset version; it is ready when GetExport says so.

        Raises:
            InvalidArgument: a format, ratio, name or time range is unusable.
            Conflict: the project already has a version of that name.
            PermissionDenied: the caller does not manage the project.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        metadata = caller_metadata(principal.token, principal.client_address)
        # The tasks service answers members only, as if the project did not
        # exist for anyone else.
        project = call(
            self.builder.clients.tasks.GetProject,
            tasks_pb2.GetProjectRequest(project_id=request.project_id),
            metadata,
        )
        if not manages(principal, ((m.subject, m.role) for m in project.members)):
            raise PermissionDenied(
                f"Exports of project {project.id} are for its managers.",
                code="project_manager_required",
            )
        formats = list(request.formats) or ([request.format] if request.format else [])
        settings = domain.check_settings(
            request.name,
            formats,
            _filter(request.filter),
            _ratios(request.splits) if request.HasField("splits") else None,
            request.intended_use,
        )
        check_suitable(settings.formats, export_schema(project.schema))
        with self.engine.begin() as conn:
            name = settings.name or f"v{store.count_exports(conn, project.id) + 1}"
            row = store.ExportRow(
                id=str(uuid.uuid4()),
                project_id=project.id,
                name=name,
                settings=domain.ExportSettings(**{**settings.__dict__, "name": name}),
                created_at=utc_now(),
            )
            if not store.insert_export(conn, row):
                raise Conflict(
                    f"Project {project.id} already has an export named {name!r}.",
                    code="export_name_taken",
                )
            stage_audit(
                conn,
                service=SERVICE,
                action="export.create",
                actor=principal,
                resource_type="export",
                resource_id=row.id,
                project_id=project.id,
                details={
                    "formats": ",".join(row.settings.formats),
                    "gold_only": int(row.settings.filter.gold_only),
                    "reviewed_only": int(row.settings.filter.reviewed_only),
                    "labels": len(row.settings.filter.labels),
                },
            )
        self.builder.start(row, principal, metadata)
        return _export_proto(row)

    def GetExport(
        self, request: export_pb2.GetExportRequest, context: grpc.ServicerContext
    ) -> export_pb2.Export:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        self._require_manager_of_export(principal, request.export_id)
        fail_stalled(self.engine, datetime.now(UTC), self.builder.stall_seconds)
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
        self._require_manager(principal, request.project_id)
        limit, offset = page_bounds(request.page)
        fail_stalled(self.engine, datetime.now(UTC), self.builder.stall_seconds)
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
        """Stream one file of a ready export; every download is audited.

        Raises:
            NotFound: the export or the file does not exist.
            Conflict: the export is still building or failed.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        self._require_manager_of_export(principal, request.export_id)
        with self.engine.begin() as conn:
            row = store.get_export(conn, request.export_id)
            if row.state != domain.READY:
                raise Conflict(
                    f"Export {row.id} is {row.state}; its files are not readable.",
                    code="export_not_ready",
                )
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

    def GetSigningKey(
        self, request: export_pb2.GetSigningKeyRequest, context: grpc.ServicerContext
    ) -> export_pb2.SigningKey:
        """The public key manifests are signed with: public, for any caller
        who is signed in."""
        principal = current_principal()
        with self.engine.begin() as conn:
            stage_audit(
                conn,
                service=SERVICE,
                action="export.key.read",
                actor=principal,
                resource_type="key",
                resource_id=self.builder.key_id,
            )
        key = self.builder.signing_key.public_key()
        return export_pb2.SigningKey(
            public_key_pem=public_pem(key).decode("ascii"), key_id=self.builder.key_id
        )

    # --- imports ----------------------------------------------------------------

    def StartImport(
        self,
        request_iterator: Iterator[export_pb2.ImportChunk],
        context: grpc.ServicerContext,
    ) -> export_pb2.ImportJob:
        """Keep the uploaded file and start bringing it into the project.

        Raises:
            InvalidArgument: no header first, an unknown format, or no data.
            FileTooLarge: the file is over the import limit.
            PermissionDenied: the caller does not manage the project.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        metadata = caller_metadata(principal.token, principal.client_address)
        first = next(request_iterator, None)
        if first is None or not first.HasField("header"):
            raise InvalidArgument(
                "An import starts with its header.", code="import_header_required"
            )
        header = first.header
        if header.format not in importers.FORMATS:
            raise InvalidArgument(
                f"Import format {header.format!r} is not supported; choose one of "
                f"{', '.join(importers.FORMATS)}.",
                code="import_format_unknown",
            )
        project = call(
            self.builder.clients.tasks.GetProject,
            tasks_pb2.GetProjectRequest(project_id=header.project_id),
            metadata,
        )
        if not manages(principal, ((m.subject, m.role) for m in project.members)):
            raise PermissionDenied(
                f"Imports into project {project.id} are for its managers.",
                code="project_manager_required",
            )
        data = b"".join(_upload(request_iterator))
        if not data:
            raise InvalidArgument("The import file is empty.", code="import_empty")
        # Read now, so a file that cannot be read is refused with its reason.
        items, report = importers.parse(header.format, data, label_names(project))
        stored = self.objects.put(EXPORTS, [data])
        del data
        row = store.ImportRow(
            id=str(uuid.uuid4()),
            project_id=project.id,
            format=header.format,
            upload_sha256=stored.sha256,
            created_at=utc_now(),
        )
        with self.engine.begin() as conn:
            store.insert_import(conn, row)
            stage_audit(
                conn,
                service=SERVICE,
                action="import.start",
                actor=principal,
                resource_type="import",
                resource_id=row.id,
                project_id=project.id,
                details={"format": row.format, "size_bytes": stored.size},
            )
        self.importer.start(row, items, report, header.file_name, principal, metadata)
        return _import_proto(row)

    def GetImport(
        self, request: export_pb2.GetImportRequest, context: grpc.ServicerContext
    ) -> export_pb2.ImportJob:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        with self.engine.begin() as conn:
            project_id = store.get_import(conn, request.import_id).project_id
        hidden = HiddenNotFound(
            f"Import {request.import_id} does not exist.", code="import_not_found"
        )
        self._require_manager(principal, project_id, hidden)
        fail_stalled_imports(self.engine, datetime.now(UTC))
        with self.engine.begin() as conn:
            row = store.get_import(conn, request.import_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="import.read",
                actor=principal,
                resource_type="import",
                resource_id=row.id,
                project_id=row.project_id,
            )
        return _import_proto(row)


def _upload(chunks: Iterator[export_pb2.ImportChunk]) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        size += len(chunk.data)
        if size > MAX_IMPORT_BYTES:
            raise QuotaExceeded(
                f"An import file holds at most {MAX_IMPORT_BYTES // 2**20} MiB.",
                code="import_too_large",
            )
        yield chunk.data


MAX_IMPORT_BYTES = 100 * 2**20

_IMPORT_STATES = {
    store.RUNNING: export_pb2.IMPORT_STATE_RUNNING,
    store.DONE: export_pb2.IMPORT_STATE_DONE,
    domain.FAILED: export_pb2.IMPORT_STATE_FAILED,
}


def _import_proto(row: store.ImportRow) -> export_pb2.ImportJob:
    job = export_pb2.ImportJob(
        id=row.id,
        project_id=row.project_id,
        format=row.format,
        state=_IMPORT_STATES.get(row.state, export_pb2.IMPORT_STATE_UNSPECIFIED),
        items=row.items,
        documents=row.documents,
        answers=row.answers,
        annotators=row.annotators,
        suggestions=row.suggestions,
        left_out=row.left_out,
        progress_done=row.progress_done,
        progress_total=row.progress_total,
        error_code=row.error_code,
        created_at=to_timestamp(row.created_at),
        document_ids=list(row.document_ids),
    )
    if row.finished_at:
        job.finished_at.CopyFrom(to_timestamp(row.finished_at))
    return job


def check_suitable(names: tuple[str, ...], schema: ExportSchema) -> None:
    """Refuse at once a format that cannot carry the project's labels, rather
    than fail the build later.

    Raises: InvalidArgument: export_format_unsuitable.
    """
    with tempfile.TemporaryDirectory(prefix="export-check-") as scratch:
        for name in names:
            writer_for(name, schema, Path(scratch))


def _filter(message: export_pb2.ExportFilter) -> domain.Filter:
    return domain.Filter(
        reviewed_only=message.reviewed_only,
        gold_only=message.gold_only,
        labels=frozenset(label for label in message.labels if label),
        since=to_iso(message.since.ToDatetime(UTC))
        if message.HasField("since")
        else "",
        until=to_iso(message.until.ToDatetime(UTC))
        if message.HasField("until")
        else "",
        exclude_synthetic=message.exclude_synthetic,
    )


def _ratios(message: export_pb2.SplitRatios) -> domain.Ratios:
    return domain.Ratios(message.train, message.dev, message.test)


def _export_proto(row: store.ExportRow) -> export_pb2.Export:
    settings = row.settings
    f = settings.filter
    export = export_pb2.Export(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        format=settings.formats[0],
        formats=list(settings.formats),
        files=[
            common_pb2.ExportFile(name=e.name, sha256=e.sha256, size_bytes=e.size_bytes)
            for e in row.files
        ],
        annotation_count=row.annotation_count,
        manifest_sha256=row.manifest_sha256,
        created_at=to_timestamp(row.created_at),
        state=_STATES.get(row.state, export_pb2.EXPORT_STATE_UNSPECIFIED),
        filter=export_pb2.ExportFilter(
            reviewed_only=f.reviewed_only,
            gold_only=f.gold_only,
            labels=sorted(f.labels),
            exclude_synthetic=f.exclude_synthetic,
        ),
        splits=export_pb2.SplitRatios(
            train=settings.ratios.train,
            dev=settings.ratios.dev,
            test=settings.ratios.test,
        ),
        progress_done=row.progress_done,
        progress_total=row.progress_total,
        error_code=row.error_code,
        split_counts=row.split_counts,
        manifest_signature=row.signature,
        key_id=row.key_id,
    )
    if f.since:
        export.filter.since.CopyFrom(to_timestamp(f.since))
    if f.until:
        export.filter.until.CopyFrom(to_timestamp(f.until))
    if row.finished_at:
        export.finished_at.CopyFrom(to_timestamp(row.finished_at))
    return export
