"""gRPC surface of the ingestion service: proto in, domain call, proto out."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.audit_trail import DENIED, stage_audit
from strongroom.services.common.auth import (
    ADMIN,
    MANAGER,
    ORIGINAL_READER,
    Principal,
    require_role,
)
from strongroom.services.common.database import utc_now
from strongroom.services.common.errors import (
    DependencyUnavailable,
    HiddenNotFound,
    InternalError,
    InvalidArgument,
    NotFound,
    StrongroomError,
)
from strongroom.services.common.events import DOCUMENT_INGESTED, stage_event
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.ports import ObjectStore
from strongroom.services.common.project_access import (
    ProjectAccess,
    project_not_found,
)
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.services.common.runtime import DERIVED, ORIGINALS
from strongroom.services.ingestion import store
from strongroom.services.ingestion.domain import Limits, resolve_media_type
from strongroom.services.ingestion.errors import FileTooLarge
from strongroom.services.ingestion.model import ParsedDocument, to_json
from strongroom.services.ingestion.sandbox import ParserPool
from strongroom.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE = "ingestion"
# Refused uploads are kept apart from originals, by hash, for inspection.
QUARANTINE = "quarantine"
_CHUNK = 256 * 1024
_SNIFF_BYTES = 8192
_ORIGINAL = "original"
# ZIP and OLE files, whose entry names tell what they really are.
_CONTAINER_MAGIC = (b"PK", b"\xd0\xcf\x11\xe0")


class IngestionServicer(ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(
        self,
        engine: Engine,
        objects: ObjectStore,
        staging: Path,
        max_upload_bytes: int,
        access: ProjectAccess,
        pool: ParserPool | None = None,
    ) -> None:
        self.engine = engine
        self.access = access
        self.objects = objects
        self.staging = staging
        self.max_upload_bytes = max_upload_bytes
        self.pool = pool or ParserPool(Limits())
        staging.mkdir(parents=True, exist_ok=True)

    def IngestDocument(
        self,
        request_iterator: Iterator[ingestion_pb2.IngestDocumentRequest],
        context: grpc.ServicerContext,
    ) -> common_pb2.Document:
        """Store an uploaded file's original once and extract its document.

        The file is parsed in a worker process; documents found inside it
        (attachments, archive entries, CSV rows) are stored as its children
        in the same transaction. A refused file is quarantined and audited.

        Raises:
            EmptyFile, FileTooLarge, ContentMismatch, UnsupportedFormat,
            CorruptDocument, EncryptedDocument, UnsafeDocument, LimitExceeded,
            ParseTimeout, ParseMemoryExceeded: the file is refused, nothing
            but its quarantine record is stored.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        header = _read_header(request_iterator)
        project_id = header.project_id
        self.access.require(
            principal, project_id, (MANAGER,), project_not_found(project_id)
        )
        with tempfile.TemporaryDirectory(dir=self.staging) as folder:
            original = Path(folder) / _ORIGINAL
            with self._quarantining(principal, project_id, None):
                sha256, size, head = self._spool(request_iterator, original)
            with self._quarantining(principal, project_id, (original, sha256)):
                media_type = resolve_media_type(
                    header.source_name,
                    header.declared_media_type,
                    head,
                    size,
                    self._container_names(original, head),
                )
            existing = self._find_existing(principal, project_id, sha256)
            if existing is not None:
                return existing
            out_dir = Path(folder) / "derived"
            out_dir.mkdir()
            with self._quarantining(principal, project_id, (original, sha256)):
                parsed = self.pool.parse(original, media_type, out_dir)
            tree = _Stored(sha256, size, media_type, header.source_name, parsed)
            # Every object of the file and of what it holds, durable at once
            # before any row points at them.
            with self.objects.batch():
                with original.open("rb") as spool:
                    self.objects.put(ORIGINALS, iter(lambda: spool.read(_CHUNK), b""))
                pending = self._prepare(tree, out_dir)
        with self.engine.begin() as conn:
            row, children = self._insert_tree(conn, principal, project_id, pending)
        logger.info(
            "document_ingested",
            extra={
                "document_id": row.id,
                "size_bytes": size,
                "pages": len(row.pages),
                "children": len(children),
            },
        )
        return _document_proto(row, children)

    def _container_names(self, path: Path, head: bytes) -> list[str]:
        if not head.startswith(_CONTAINER_MAGIC):
            return []
        return self.pool.container_names(path)

    def _find_existing(
        self, principal: Principal, project_id: str, sha256: str
    ) -> common_pb2.Document | None:
        """The document already stored for these bytes, its re-upload audited."""
        with self.engine.begin() as conn:
            existing = store.find_by_hash(conn, project_id, sha256)
            if existing is None:
                return None
            _audit_reupload(conn, principal, existing)
            children = store.child_ids(conn, existing.id)
        return _document_proto(existing, children, is_duplicate=True)

    @contextlib.contextmanager
    def _quarantining(
        self, principal: Principal, project_id: str, spooled: tuple[Path, str] | None
    ) -> Iterator[None]:
        """Quarantine the upload if the block refuses it, then let the error go.

        An unavailable backend or OCR engine is not the file's fault, so it is
        not quarantined.
        """
        try:
            yield
        except (DependencyUnavailable, InternalError):
            raise
        except StrongroomError as exc:
            self._quarantine(principal, project_id, spooled, exc)
            raise

    def GetDocument(
        self, request: ingestion_pb2.GetDocumentRequest, context: grpc.ServicerContext
    ) -> common_pb2.Document:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        self._require_manager_of(principal, request.document_id)
        with self.engine.begin() as conn:
            row = store.get_document(conn, request.document_id)
            children = store.child_ids(conn, row.id)
            stage_audit(
                conn,
                service=SERVICE,
                action="document.read",
                actor=principal,
                resource_type="document",
                resource_id=row.id,
                project_id=row.project_id,
            )
        return _document_proto(row, children)

    def ListDocuments(
        self, request: ingestion_pb2.ListDocumentsRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.ListDocumentsResponse:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        self.access.require(
            principal,
            request.project_id,
            (MANAGER,),
            project_not_found(request.project_id),
        )
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
            documents=[_document_proto(r, []) for r in rows],
            page=common_pb2.PageInfo(offset=offset, total=total),
        )

    def ReadOriginal(
        self, request: ingestion_pb2.ReadOriginalRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.DataChunk]:
        """Stream an original file: only for the original_reader role, and only
        with a reason.

        Raises:
            PermissionDenied: the caller does not hold the original_reader role.
            InvalidArgument: no reason was given.
        """
        principal = current_principal()
        require_role(principal, ORIGINAL_READER)
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

    def ReadStructure(
        self, request: ingestion_pb2.ReadStructureRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.DataChunk]:
        """Stream a document's structure artefact (JSON) from the derived store.

        Raises:
            NotFound: no such document, or it has no structure artefact.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        self._require_manager_of(principal, request.document_id)
        with self.engine.begin() as conn:
            row = store.get_document(conn, request.document_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="document.structure.read",
                actor=principal,
                resource_type="document",
                resource_id=row.id,
                project_id=row.project_id,
            )
        if not row.structure_sha256:
            raise NotFound(
                f"Document {row.id} has no structure artefact.",
                code="structure_not_found",
            )
        for chunk in self.objects.stream(DERIVED, row.structure_sha256, _CHUNK):
            yield common_pb2.DataChunk(data=chunk)

    def ListQuarantined(
        self,
        request: ingestion_pb2.ListQuarantinedRequest,
        context: grpc.ServicerContext,
    ) -> ingestion_pb2.ListQuarantinedResponse:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        self.access.require(
            principal,
            request.project_id,
            (MANAGER,),
            project_not_found(request.project_id),
        )
        with self.engine.begin() as conn:
            entries = store.list_quarantined(conn, request.project_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="quarantine.list",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
                details={"count": len(entries)},
            )
        return ingestion_pb2.ListQuarantinedResponse(
            files=[
                ingestion_pb2.QuarantinedFile(
                    id=e.id,
                    project_id=e.project_id,
                    sha256=e.sha256,
                    size_bytes=e.size_bytes,
                    is_stored=e.is_stored,
                    code=e.code,
                    created_at=to_timestamp(e.created_at),
                )
                for e in entries
            ]
        )

    def _require_manager_of(self, principal: Principal, document_id: str) -> None:
        """Raises: NotFound: no such document, or not in a project the caller
        manages (the same answer). PermissionDenied: a member, not a manager."""
        with self.engine.begin() as conn:
            row = store.get_document(conn, document_id)
        hidden = HiddenNotFound(
            f"Document {document_id} does not exist.", code="document_not_found"
        )
        self.access.require(principal, row.project_id, (MANAGER,), hidden)

    def _spool(
        self, chunks: Iterator[ingestion_pb2.IngestDocumentRequest], path: Path
    ) -> tuple[str, int, bytes]:
        digest = hashlib.sha256()
        size = 0
        head = b""
        with path.open("wb") as spool:
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

    def _quarantine(
        self,
        principal: Principal,
        project_id: str,
        spooled: tuple[Path, str] | None,
        error: StrongroomError,
    ) -> None:
        """Keep a refused file apart, with the refusal's code, and audit it."""
        sha256, size = "", 0
        if spooled is not None:
            path, sha256 = spooled
            size = path.stat().st_size
            if size:
                with path.open("rb") as spool:
                    self.objects.put(QUARANTINE, iter(lambda: spool.read(_CHUNK), b""))
        entry = store.QuarantinedFile(
            id=str(uuid.uuid4()),
            project_id=project_id,
            sha256=sha256,
            size_bytes=size,
            is_stored=bool(size),
            code=error.code,
            created_at=utc_now(),
        )
        with self.engine.begin() as conn:
            store.insert_quarantined(conn, entry)
            stage_audit(
                conn,
                service=SERVICE,
                action="document.quarantine",
                actor=principal,
                resource_type="quarantined_file",
                resource_id=entry.id,
                project_id=project_id,
                outcome=DENIED,
                reason=error.code,
                details={"sha256": sha256, "size_bytes": size},
            )
        logger.info(
            "document_quarantined",
            extra={"quarantine_id": entry.id, "code": error.code, "size_bytes": size},
        )

    def _prepare(self, tree: _Stored, out_dir: Path) -> _Pending:
        """Put a document's text, structure and page images in the stores.

        Runs before the transaction: objects are content-addressed, so a
        crash leaves at most an unreferenced object, never a row without one.
        """
        parsed = tree.parsed
        text = self.objects.put(DERIVED, [parsed.text.encode("utf-8")])
        for page in parsed.pages:
            if page.image_sha256:
                image = out_dir / f"{page.image_sha256}.png"
                self.objects.put(DERIVED, [image.read_bytes()])
        children: list[_Pending] = []
        for child in parsed.children:
            path = out_dir / child.original
            with path.open("rb") as source:
                self.objects.put(ORIGINALS, iter(lambda: source.read(_CHUNK), b""))
            stored = _Stored(
                child.sha256,
                child.size_bytes,
                child.media_type,
                child.name,
                child.document,
            )
            children.append(self._prepare(stored, out_dir))
        artefact = to_json(parsed)
        artefact["metadata"] = {
            **artefact["metadata"],
            "source_name": tree.source_name,
            "sha256": tree.sha256,
            "text_sha256": text.sha256,
        }
        encoded = json.dumps(artefact, ensure_ascii=False, sort_keys=True).encode()
        structure = self.objects.put(DERIVED, [encoded])
        return _Pending(tree, text.sha256, structure.sha256, children)

    def _insert_tree(
        self,
        conn: Connection,
        principal: Principal,
        project_id: str,
        pending: _Pending,
        parent_id: str = "",
    ) -> tuple[store.DocumentRow, list[str]]:
        tree, parsed = pending.tree, pending.tree.parsed
        row = store.DocumentRow(
            id=str(uuid.uuid4()),
            project_id=project_id,
            sha256=tree.sha256,
            size_bytes=tree.size,
            media_type=tree.media_type,
            text_sha256=pending.text_sha256,
            text_length=len(parsed.text),
            pages=parsed.pages,
            parser=parsed.parser,
            parser_version=parsed.parser_version,
            created_at=utc_now(),
            parent_id=parent_id,
            structure_sha256=pending.structure_sha256,
            summary=_summary(parsed),
        )
        store.insert_document(conn, row)
        if not parsed.is_container:
            _stage_ingested(conn, row)
        stage_audit(
            conn,
            service=SERVICE,
            action="document.ingest",
            actor=principal,
            resource_type="document",
            resource_id=row.id,
            project_id=row.project_id,
            details={
                "sha256": tree.sha256,
                "size_bytes": tree.size,
                "media_type": tree.media_type,
                "pages": len(row.pages),
                "parent_id": parent_id,
                "children": len(pending.children),
            },
        )
        children: list[str] = []
        seen: set[str] = set()
        for child in pending.children:
            sha256 = child.tree.sha256
            existing = store.find_by_hash(conn, project_id, sha256)
            if existing or sha256 in seen:
                # The same bytes are one document per project, wherever found.
                if existing:
                    children.append(existing.id)
                continue
            seen.add(sha256)
            child_row, _ = self._insert_tree(conn, principal, project_id, child, row.id)
            children.append(child_row.id)
        return row, children


@dataclass(frozen=True)
class _Stored:
    sha256: str
    size: int
    media_type: str
    source_name: str
    parsed: ParsedDocument


@dataclass(frozen=True)
class _Pending:
    tree: _Stored
    text_sha256: str
    structure_sha256: str
    children: list[_Pending]


def _stage_ingested(conn: Connection, row: store.DocumentRow) -> None:
    stage_event(
        conn,
        DOCUMENT_INGESTED,
        row.id,
        {
            "document_id": row.id,
            "project_id": row.project_id,
            "sha256": row.sha256,
            "text_sha256": row.text_sha256,
            "text_length": row.text_length,
            "media_type": row.media_type,
            "page_count": len(row.pages),
            # Pages, word boxes and page images, for redacting the images.
            "structure_sha256": row.structure_sha256,
        },
    )


def _audit_reupload(
    conn: Connection, principal: Principal, existing: store.DocumentRow
) -> None:
    stage_audit(
        conn,
        service=SERVICE,
        action="document.reupload",
        actor=principal,
        resource_type="document",
        resource_id=existing.id,
        project_id=existing.project_id,
        details={"sha256": existing.sha256},
    )


def _summary(parsed: ParsedDocument) -> dict[str, Any]:
    metadata = parsed.metadata
    return {
        "page_count": len(parsed.pages),
        "block_count": len(parsed.blocks),
        "table_count": len(parsed.tables),
        "segment_count": len(parsed.segments),
        "ocr_page_count": int(metadata.get("ocr_page_count", 0)),
        "language": str(metadata.get("language", "")),
        "child_count": len(parsed.children),
        "refused_children": dict(metadata.get("refused_children", {})),
        "is_container": parsed.is_container,
        "ocr_engine": parsed.ocr_engine,
        "settings": dict(parsed.settings),
    }


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


def _document_proto(
    row: store.DocumentRow, child_ids: list[str], is_duplicate: bool = False
) -> common_pb2.Document:
    summary = row.summary
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
                source=p.source,
                image_sha256=p.image_sha256,
            )
            for p in row.pages
        ],
        provenance=common_pb2.Provenance(
            parser=row.parser,
            parser_version=row.parser_version,
            ocr_engine=str(summary.get("ocr_engine", "")),
            settings=summary.get("settings", {}),
        ),
        state=common_pb2.DOCUMENT_STATE_INGESTED,
        created_at=to_timestamp(row.created_at),
        is_duplicate=is_duplicate,
        parent_id=row.parent_id,
        structure_sha256=row.structure_sha256,
        structure=common_pb2.DocumentStructure(
            page_count=len(row.pages),
            block_count=int(summary.get("block_count", 0)),
            table_count=int(summary.get("table_count", 0)),
            segment_count=int(summary.get("segment_count", 0)),
            ocr_page_count=int(summary.get("ocr_page_count", 0)),
            language=str(summary.get("language", "")),
            child_count=int(summary.get("child_count", 0)),
            refused_children=summary.get("refused_children", {}),
        ),
        child_ids=child_ids,
        is_container=bool(summary.get("is_container", False)),
    )
