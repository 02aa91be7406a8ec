"""The audit trail over REST: search, lineage reports, verification, proofs.

No `from __future__ import annotations`: FastAPI reads these signatures at
run time. Auditors and admins only, checked here and again by the audit
service, which also records every question asked of it.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from google.protobuf.timestamp_pb2 import Timestamp

from strongroom.gateway import schemas
from strongroom.gateway.clients import ServiceClients
from strongroom.gateway.reports import Report, render_html, render_pdf
from strongroom.services.common.auth import ADMIN, AUDITOR, Principal, require_role
from strongroom.services.common.errors import InvalidArgument
from strongroom.services.common.grpc_clients import Metadata, call
from strongroom.v1 import audit_pb2, common_pb2

ReportFormat = Literal["json", "html", "pdf"]
Outcome = Literal["", "success", "denied", "error"]
_ID = Query(max_length=128)


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidArgument(
            "Times need a UTC offset, such as 2026-05-01T00:00:00Z.",
            code="time_without_offset",
        )
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def audit_router(
    clients: ServiceClients,
    authenticate: Callable[[Request], Principal],
    meta: Callable[[Principal], Metadata],
    subject_of: Callable[[str], str],
) -> APIRouter:
    """Build the /api/v1/audit routes around the gateway's clients.

    ``subject_of`` turns a username into the subject the trail records.
    """
    router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
    Caller = Annotated[Principal, Depends(authenticate)]

    def auditor(caller: Principal) -> Principal:
        require_role(caller, AUDITOR, ADMIN)
        return caller

    @router.get("/events", response_model=schemas.AuditEventList)
    def search_audit(
        caller: Caller,
        q: Annotated[str, Query(max_length=500)] = "",
        action: Annotated[str, _ID] = "",
        resource_id: Annotated[str, _ID] = "",
        resource_type: Annotated[str, _ID] = "",
        document_id: Annotated[str, _ID] = "",
        project_id: Annotated[str, _ID] = "",
        actor: Annotated[str, _ID] = "",
        username: Annotated[str, _ID] = "",
        request_id: Annotated[str, _ID] = "",
        outcome: Outcome = "",
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=schemas.MAX_INDEX)] = 0,
    ) -> schemas.AuditEventList:
        """Search the trail by person (``actor`` subject or ``username``), action,
        resource, document, project, outcome, period and free text."""
        if username:
            auditor(caller)
            actor = subject_of(username)
        response = call(
            clients.audit.SearchEvents,
            audit_pb2.SearchEventsRequest(
                query=q,
                action=action,
                resource_id=resource_id,
                resource_type=resource_type,
                document_id=document_id,
                request_id=request_id,
                project_id=project_id,
                actor_subject=actor,
                outcome=outcome,
                since=_timestamp(since),
                until=_timestamp(until),
                page=common_pb2.PageRequest(limit=limit, offset=offset),
            ),
            meta(caller),
        )
        return schemas.AuditEventList(
            events=[schemas.AuditEvent.from_proto(e) for e in response.events],
            total=response.page.total,
        )

    @router.get("/verify", response_model=schemas.ChainVerification)
    def verify_audit(caller: Caller) -> schemas.ChainVerification:
        result = call(
            clients.audit.VerifyChain, audit_pb2.VerifyChainRequest(), meta(caller)
        )
        return schemas.ChainVerification.from_proto(result)

    @router.get(
        "/lineage/documents/{document_id}",
        response_model=schemas.AuditStory,
        responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
    )
    def document_lineage(
        document_id: str,
        caller: Caller,
        format: ReportFormat = "json",
    ) -> Any:
        """Every event that touched one document, from upload to every export."""
        response = call(
            clients.audit.GetDocumentLineage,
            audit_pb2.GetDocumentLineageRequest(document_id=document_id),
            meta(auditor(caller)),
        )
        story = schemas.AuditStory.from_proto(response)
        return _answer(
            story,
            format,
            caller,
            title=f"Lineage of document {document_id}",
            subtitle="Every recorded action on this document and everything "
            "derived from it, oldest first.",
            filename=f"lineage-{document_id}",
        )

    @router.get(
        "/activity/{username}",
        response_model=schemas.AuditStory,
        responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
    )
    def actor_activity(
        username: str,
        caller: Caller,
        since: datetime | None = None,
        until: datetime | None = None,
        format: ReportFormat = "json",
    ) -> Any:
        """Everything one person did, and every access they made, in a period."""
        auditor(caller)
        subject = subject_of(username)
        response = call(
            clients.audit.GetActorActivity,
            audit_pb2.GetActorActivityRequest(
                actor_subject=subject, since=_timestamp(since), until=_timestamp(until)
            ),
            meta(caller),
        )
        period = f"{since.isoformat() if since else 'the start'} to " + (
            until.isoformat() if until else "now"
        )
        return _answer(
            schemas.AuditStory.from_proto(response),
            format,
            caller,
            title=f"Activity of {username}",
            subtitle=f"Every recorded action by {username}, from {period}.",
            filename=f"activity-{username}",
        )

    @router.get("/checkpoints", response_model=schemas.CheckpointList)
    def list_checkpoints(caller: Caller) -> schemas.CheckpointList:
        response = call(
            clients.audit.ListCheckpoints,
            audit_pb2.ListCheckpointsRequest(),
            meta(caller),
        )
        return schemas.CheckpointList(
            checkpoints=[
                schemas.Checkpoint.from_proto(c) for c in response.checkpoints
            ],
            public_key_pem=response.public_key_pem,
        )

    @router.get("/events/{event_id}/proof", response_model=schemas.InclusionProof)
    def prove_inclusion(
        event_id: str,
        caller: Caller,
        checkpoint: Annotated[int, Query(ge=0, le=schemas.MAX_INDEX)] = 0,
    ) -> schemas.InclusionProof:
        """The audit path from one event to a signed checkpoint's tree head."""
        proof = call(
            clients.audit.ProveInclusion,
            audit_pb2.ProveInclusionRequest(
                event_id=event_id, checkpoint_number=checkpoint
            ),
            meta(caller),
        )
        return schemas.InclusionProof(
            event_id=event_id,
            sequence=proof.sequence,
            entry_hash=proof.entry_hash,
            audit_path=list(proof.audit_path),
            checkpoint=schemas.Checkpoint.from_proto(proof.checkpoint),
        )

    @router.get("/consistency", response_model=schemas.ConsistencyProof)
    def prove_consistency(
        caller: Caller,
        first: Annotated[int, Query(ge=1, le=schemas.MAX_INDEX)],
        second: Annotated[int, Query(ge=1, le=schemas.MAX_INDEX)],
    ) -> schemas.ConsistencyProof:
        """The proof that checkpoint ``second`` extends checkpoint ``first``."""
        proof = call(
            clients.audit.ProveConsistency,
            audit_pb2.ProveConsistencyRequest(
                first_checkpoint=first, second_checkpoint=second
            ),
            meta(caller),
        )
        return schemas.ConsistencyProof(
            first=schemas.Checkpoint.from_proto(proof.first),
            second=schemas.Checkpoint.from_proto(proof.second),
            proof=list(proof.proof),
        )

    return router


def _answer(
    story: schemas.AuditStory,
    format: str,
    caller: Principal,
    *,
    title: str,
    subtitle: str,
    filename: str,
) -> Any:
    if format == "json":
        return story
    report = Report(
        title=title,
        subtitle=subtitle,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        generated_by=caller.username or caller.subject,
        events=story.events,
        is_truncated=story.is_truncated,
    )
    safe = "".join(
        c if (c.isascii() and c.isalnum()) or c in "-_" else "_" for c in filename
    )
    if format == "html":
        body, media_type = render_html(report).encode("utf-8"), "text/html"
    else:
        body, media_type = render_pdf(report), "application/pdf"
    return Response(
        body,
        media_type=media_type,
        headers={
            "content-disposition": f'attachment; filename="{safe}.{format}"',
            "cache-control": "no-store",
        },
    )
