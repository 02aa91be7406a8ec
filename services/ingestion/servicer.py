"""gRPC surface of the ingestion service: proto in, domain call, proto out."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import grpc
from sqlalchemy.engine import Engine

from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import ADMIN, MANAGER, require_role
from strongroom.services.common.database import utc_now
from strongroom.services.common.errors import InvalidArgument
from strongroom.services.common.events import DOCUMENT_INGESTED, stage_event
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.ports import ObjectStore
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.services.common.runtime import DERIVED, ORIGINALS
from strongroom.services.ingestion import store
from strongroom.services.ingestion.domain import (
    PDF,
    ParsedDocument,
    parse_text,
    resolve_media_type,
)
from strongroom.services.ingestion.errors import FileTooLarge
from strongroom.services.ingestion.parsers import parse_pdf
from strongroom.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE = "ingestion"
_CHUNK = 256 * 1024
_SNIFF_BYTES = 8192


class IngestionServicer(ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(
        self, engine: Engine, objects: ObjectStore, staging: Path, max_upload_bytes: int
    ) -> None:
        self.engine = engine
        self.objects = objects
        self.staging = staging
        self.max_upload_bytes = max_upload_bytes
        staging.mkdir(parents=True, exist_ok=True)

    def IngestDocument(
        self,
        request_iterator: Iterator[ingestion_pb2.IngestDocumentRequest],
        context: grpc.ServicerContext,
    ) -> common_pb2.Document:
        """Store an uploaded file's original once and extract its text.

        Raises:
            EmptyFile, FileTooLarge, ContentMismatch, UnsupportedFormat,
            CorruptDocument: the file is refused and nothing is stored.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        header = _read_header(request_iterator)
        with tempfile.TemporaryFile(dir=self.staging) as spool:
            sha256, size, head = self._spool(request_iterator, spool)
            media_type = resolve_media_type(
                header.source_name, header.declared_media_type, head, size
            )
            with self.engine.connect() as conn:
                existing = store.find_by_hash(conn, header.project_id, sha256)
            if existing:
                return _document_proto(existing, is_duplicate=True)
            spool.seek(0)
            parsed = _parse(media_type, spool.read())
            spool.seek(0)
            self.objects.put(ORIGINALS, iter(lambda: spool.read(_CHUNK), b""))
        text = self.objects.put(DERIVED, [parsed.text.encode("utf-8")])
        row = store.DocumentRow(
            id=str(uuid.uuid4()),
            project_id=header.project_id,
            sha256=sha256,
            size_bytes=size,
            media_type=media_type,
            text_sha256=text.sha256,
            text_length=len(parsed.text),
            pages=parsed.pages,
            parser=parsed.parser,
            parser_version=parsed.parser_version,
            created_at=utc_now(),
        )
        with self.engine.begin() as conn:
            store.insert_document(conn, row)
            stage_event(
                conn,
                DOCUMENT_INGESTED,
                row.id,
                {
                    "document_id": row.id,
                    "project_id": row.project_id,
                    "sha256": sha256,
                    "text_sha256": row.text_sha256,
                    "text_length": row.text_length,
                    "media_type": media_type,
                    "page_count": len(row.pages),
                },
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="document.ingest",
                actor=principal,
                resource_type="document",
                resource_id=row.id,
                project_id=row.project_id,
                details={
                    "sha256": sha256,
                    "size_bytes": size,
                    "media_type": media_type,
                    "pages": len(row.pages),
                },
            )
        logger.info(
            "document_ingested",
            extra={"document_id": row.id, "size_bytes": size, "pages": len(row.pages)},
        )
        return _document_proto(row)

    def GetDocument(
        self, request: ingestion_pb2.GetDocumentRequest, context: grpc.ServicerContext
    ) -> common_pb2.Document:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        with self.engine.begin() as conn:
            row = store.get_document(conn, request.document_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="document.read",
                actor=principal,
                resource_type="document",
                resource_id=row.id,
                project_id=row.project_id,
            )
        return _document_proto(row)

    def ListDocuments(
        self, request: ingestion_pb2.ListDocumentsRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.ListDocumentsResponse:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        limit, offset = page_bounds(request.page)
        with self.engine.begin() as conn:
            rows, total = store.list_documents(conn, request.project_id, limit, offset)
            stage_audit(
                conn,
                service=SERVICE,
                action="document.list",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
                details={"count": len(rows)},
            )
        return ingestion_pb2.ListDocumentsResponse(
            documents=[_document_proto(r) for r in rows],
            page=common_pb2.PageInfo(offset=offset, total=total),
        )

    def ReadOriginal(
        self, request: ingestion_pb2.ReadOriginalRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.DataChunk]:
        """Stream an original file; only admins may, and only with a reason.

        Raises:
            PermissionDenied: the caller is not an admin.
            InvalidArgument: no reason was given.
        """
        principal = current_principal()
        require_role(principal, ADMIN)
        if not request.reason.strip():
            raise InvalidArgument(
                "Opening an original needs a stated reason.", code="reason_required"
            )
        with self.engine.begin() as conn:
            row = store.get_document(conn, request.document_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="document.original.read",
                actor=principal,
                resource_type="document",
                resource_id=row.id,
                project_id=row.project_id,
                reason=request.reason.strip()[:500],
            )
        for chunk in self.objects.stream(ORIGINALS, row.sha256, _CHUNK):
            yield common_pb2.DataChunk(data=chunk)

    def _spool(
        self, chunks: Iterator[ingestion_pb2.IngestDocumentRequest], spool: IO[bytes]
    ) -> tuple[str, int, bytes]:
        digest = hashlib.sha256()
        size = 0
        head = b""
        for message in chunks:
            data = message.data
            size += len(data)
            if size > self.max_upload_bytes:
                raise FileTooLarge(self.max_upload_bytes)
            if len(head) < _SNIFF_BYTES:
                head += data[: _SNIFF_BYTES - len(head)]
            digest.update(data)
            spool.write(data)
        return digest.hexdigest(), size, head


def _read_header(
    request_iterator: Iterator[ingestion_pb2.IngestDocumentRequest],
) -> ingestion_pb2.IngestHeader:
    first = next(request_iterator, None)
    if first is None or first.WhichOneof("part") != "header":
        raise InvalidArgument(
            "The first message of an upload must be its header.", code="header_required"
        )
    if not first.header.project_id:
        raise InvalidArgument(
            "An upload must name its project.", code="project_required"
        )
    return first.header


def _parse(media_type: str, data: bytes) -> ParsedDocument:
    if media_type == PDF:
        return parse_pdf(data)
    return parse_text(data)


def _document_proto(
    row: store.DocumentRow, is_duplicate: bool = False
) -> common_pb2.Document:
    return common_pb2.Document(
        id=row.id,
        project_id=row.project_id,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        media_type=row.media_type,
        text_sha256=row.text_sha256,
        text_length=row.text_length,
        pages=[
            common_pb2.Page(
                number=p.number,
                span=common_pb2.Span(start=p.start, end=p.end),
                width_pt=p.width_pt,
                height_pt=p.height_pt,
            )
            for p in row.pages
        ],
        provenance=common_pb2.Provenance(
            parser=row.parser, parser_version=row.parser_version
        ),
        state=common_pb2.DOCUMENT_STATE_INGESTED,
        created_at=to_timestamp(row.created_at),
        is_duplicate=is_duplicate,
    )
