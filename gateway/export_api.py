"""Dataset versions over REST: build, follow, list, download, and the key
their manifests are signed with.

No `from __future__ import annotations`: FastAPI reads these signatures at
run time. A build runs in the export service; the gateway only starts it
and relays its state, so a large export never holds a gateway worker.
"""

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import PlainTextResponse, StreamingResponse
from google.protobuf.timestamp_pb2 import Timestamp

from strongroom.gateway import schemas
from strongroom.gateway.clients import ServiceClients
from strongroom.services.common.auth import Principal
from strongroom.services.common.grpc_clients import Metadata, call, call_streaming
from strongroom.v1 import common_pb2, export_pb2


def export_router(
    clients: ServiceClients,
    authenticate: Callable[[Request], Principal],
    meta: Callable[[Principal], Metadata],
    download: Callable[[Iterator[common_pb2.DataChunk]], StreamingResponse],
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["exports"])
    Caller = Annotated[Principal, Depends(authenticate)]

    @router.post(
        "/projects/{project_id}/exports",
        status_code=202,
        response_model=schemas.Export,
    )
    def create_export(
        project_id: str, body: schemas.ExportIn, caller: Caller
    ) -> schemas.Export:
        """Start a dataset version; poll `GET /exports/{id}` until it is ready."""
        request = export_pb2.CreateExportRequest(
            project_id=project_id,
            name=body.name,
            formats=body.formats or [body.format],
            intended_use=body.intended_use,
            filter=export_pb2.ExportFilter(
                reviewed_only=body.filter.reviewed_only,
                gold_only=body.filter.gold_only,
                labels=body.filter.labels,
                exclude_synthetic=body.filter.exclude_synthetic,
            ),
        )
        for field, moment in (
            ("since", body.filter.since),
            ("until", body.filter.until),
        ):
            if moment is not None:
                getattr(request.filter, field).CopyFrom(_timestamp(moment))
        if body.splits is not None:
            request.splits.CopyFrom(
                export_pb2.SplitRatios(
                    train=body.splits.train, dev=body.splits.dev, test=body.splits.test
                )
            )
        export = call(clients.export.CreateExport, request, meta(caller))
        return schemas.Export.from_proto(export)

    @router.get("/projects/{project_id}/exports", response_model=schemas.ExportList)
    def list_exports(
        project_id: str,
        caller: Caller,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=schemas.MAX_INDEX)] = 0,
    ) -> schemas.ExportList:
        response = call(
            clients.export.ListExports,
            export_pb2.ListExportsRequest(
                project_id=project_id,
                page=common_pb2.PageRequest(limit=limit, offset=offset),
            ),
            meta(caller),
        )
        return schemas.ExportList(
            exports=[schemas.Export.from_proto(e) for e in response.exports],
            total=response.page.total,
        )

    @router.get("/exports/signing-key", response_class=PlainTextResponse)
    def signing_key(caller: Caller) -> PlainTextResponse:
        """The PEM public key that checks every manifest's signature."""
        key = call(
            clients.export.GetSigningKey,
            export_pb2.GetSigningKeyRequest(),
            meta(caller),
        )
        return PlainTextResponse(
            key.public_key_pem,
            media_type="application/x-pem-file",
            headers={"X-Key-Id": key.key_id},
        )

    @router.get("/exports/{export_id}", response_model=schemas.Export)
    def get_export(export_id: str, caller: Caller) -> schemas.Export:
        export = call(
            clients.export.GetExport,
            export_pb2.GetExportRequest(export_id=export_id),
            meta(caller),
        )
        return schemas.Export.from_proto(export)

    @router.get(
        "/exports/{export_id}/files/{name:path}", response_class=StreamingResponse
    )
    def download_export_file(
        export_id: str, name: str, caller: Caller
    ) -> StreamingResponse:
        request = export_pb2.ReadExportFileRequest(export_id=export_id, name=name)
        return download(
            call_streaming(clients.export.ReadExportFile, request, meta(caller))
        )

    # --- imports ----------------------------------------------------------------

    @router.post(
        "/projects/{project_id}/imports",
        status_code=202,
        response_model=schemas.ImportJob,
        tags=["imports"],
    )
    def start_import(
        project_id: str,
        file: Annotated[UploadFile, File()],
        format: Annotated[str, Form(max_length=32)],
        caller: Caller,
    ) -> schemas.ImportJob:
        """Bring a Label Studio JSON, Prodigy JSONL or Doccano JSONL export into
        the project; poll `GET /imports/{id}` for its report."""

        def chunks() -> Iterator[export_pb2.ImportChunk]:
            yield export_pb2.ImportChunk(
                header=export_pb2.ImportHeader(
                    project_id=project_id, format=format, file_name=file.filename or ""
                )
            )
            while data := file.file.read(_CHUNK):
                yield export_pb2.ImportChunk(data=data)

        job = call(clients.export.StartImport, chunks(), meta(caller), timeout=600.0)
        return schemas.ImportJob.from_proto(job)

    @router.get(
        "/imports/{import_id}", response_model=schemas.ImportJob, tags=["imports"]
    )
    def get_import(import_id: str, caller: Caller) -> schemas.ImportJob:
        job = call(
            clients.export.GetImport,
            export_pb2.GetImportRequest(import_id=import_id),
            meta(caller),
        )
        return schemas.ImportJob.from_proto(job)

    return router


_CHUNK = 256 * 1024


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp
