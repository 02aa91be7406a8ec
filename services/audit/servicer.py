"""gRPC surface of the audit service: search, lineage, verification, proofs.

Every method is for auditors and admins, and every answer is itself audited.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.timestamp_pb2 import Timestamp

from strongroom.services.audit import merkle, store
from strongroom.services.audit.domain import (
    SignedCheckpoint,
    Verification,
    locate_rewrite,
    parse_line,
    verify_chain,
)
from strongroom.services.audit.store import AuditStore
from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import ADMIN, AUDITOR, Principal, require_role
from strongroom.services.common.errors import InvalidArgument, NotFound
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.ports import AuditIndex, AuditQuery, ObjectStore
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.services.common.runtime import AUDIT_ARCHIVE
from strongroom.v1 import audit_pb2, audit_pb2_grpc, common_pb2

SERVICE = "audit"
# The most events one lineage or activity answer carries.
STORY_LIMIT = 5000
_STORY_PAGE = 500

_OUTCOMES = {
    "success": common_pb2.OUTCOME_SUCCESS,
    "denied": common_pb2.OUTCOME_DENIED,
    "error": common_pb2.OUTCOME_ERROR,
}


def verify_stored_trail(
    audit: AuditStore, public_key: Ed25519PublicKey, archive: ObjectStore | None
) -> Verification:
    """Verify the chain and checkpoint files up to what the database recorded.

    When the chain no longer matches a signed checkpoint, the segment that
    checkpoint archived names the exact entry that differs.
    """
    with audit.engine.connect() as conn:
        sealed = store.read_head(conn)
        checkpoint_bytes = audit.checkpoints.file_size(conn)
    try:
        checkpoints = audit.checkpoints.from_file(checkpoint_bytes)
    except (ValueError, KeyError, TypeError):
        return Verification(
            False, 0, 0, "the checkpoint file is not readable", kind="checkpoint"
        )
    result = verify_chain(
        audit.chain.lines(sealed.file_size), sealed.head, checkpoints, public_key
    )
    broken = result.broken_checkpoint
    if broken is None or archive is None:
        return result
    try:
        original = archive.read(AUDIT_ARCHIVE, broken.segment_sha256)
    except NotFound:
        return result
    local = [
        line
        for position, line in enumerate(audit.chain.lines(sealed.file_size), start=1)
        if position > broken.segment_start
    ]
    position, kind = locate_rewrite(
        local, original.splitlines(keepends=True), broken.segment_start + 1
    )
    return dataclasses.replace(
        result,
        damaged_position=position,
        kind=kind,
        problem=f"entry {position} was {kind}: the chain was rewritten after it "
        f"(found against the archive of checkpoint {broken.number})",
    )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(
        self,
        audit: AuditStore,
        index: AuditIndex,
        public_key: Ed25519PublicKey,
        archive: ObjectStore,
    ) -> None:
        self.audit = audit
        self.engine = audit.engine
        self.index = index
        self.public_key = public_key
        self.archive = archive

    def SearchEvents(
        self, request: audit_pb2.SearchEventsRequest, context: grpc.ServicerContext
    ) -> audit_pb2.SearchEventsResponse:
        """Search the trail; auditors and admins only, and the search is audited."""
        principal = _auditor()
        limit, offset = page_bounds(request.page)
        query = AuditQuery(
            text=request.query,
            action=request.action,
            resource_id=request.resource_id,
            actor_subject=request.actor_subject,
            project_id=request.project_id,
            outcome=request.outcome,
            resource_type=request.resource_type,
            document_id=request.document_id,
            request_id=request.request_id,
            since=_time_bound(request, "since"),
            until=_time_bound(request, "until"),
            limit=limit,
            offset=offset,
        )
        result = self.index.search(query)
        self._audit(principal, "audit.search", details={"matches": result.total})
        return audit_pb2.SearchEventsResponse(
            events=[_event_proto(entry) for entry in result.events],
            page=common_pb2.PageInfo(offset=offset, total=result.total),
        )

    def GetDocumentLineage(
        self,
        request: audit_pb2.GetDocumentLineageRequest,
        context: grpc.ServicerContext,
    ) -> audit_pb2.LineageResponse:
        principal = _auditor()
        if not request.document_id:
            raise InvalidArgument("Name the document.", code="document_required")
        events, is_truncated = self._story(AuditQuery(document_id=request.document_id))
        self._audit(
            principal,
            "audit.lineage",
            resource_type="document",
            resource_id=request.document_id,
            details={"events": len(events)},
        )
        return audit_pb2.LineageResponse(events=events, is_truncated=is_truncated)

    def GetActorActivity(
        self, request: audit_pb2.GetActorActivityRequest, context: grpc.ServicerContext
    ) -> audit_pb2.LineageResponse:
        principal = _auditor()
        if not request.actor_subject:
            raise InvalidArgument("Name the person.", code="actor_required")
        events, is_truncated = self._story(
            AuditQuery(
                actor_subject=request.actor_subject,
                since=_time_bound(request, "since"),
                until=_time_bound(request, "until"),
            )
        )
        self._audit(
            principal,
            "audit.activity",
            resource_type="user",
            resource_id=request.actor_subject,
            details={"events": len(events)},
        )
        return audit_pb2.LineageResponse(events=events, is_truncated=is_truncated)

    def _story(self, query: AuditQuery) -> tuple[list[common_pb2.AuditEvent], bool]:
        """The matching events, oldest first, up to STORY_LIMIT of the newest."""
        collected: list[dict[str, Any]] = []
        total = 0
        while len(collected) < STORY_LIMIT:
            page = self.index.search(
                dataclasses.replace(query, limit=_STORY_PAGE, offset=len(collected))
            )
            total = page.total
            collected += page.events
            if not page.events or len(collected) >= total:
                break
        collected.sort(key=lambda entry: int(entry["sequence"]))
        return [_event_proto(entry) for entry in collected], total > len(collected)

    def VerifyChain(
        self, request: audit_pb2.VerifyChainRequest, context: grpc.ServicerContext
    ) -> audit_pb2.VerifyChainResponse:
        principal = _auditor()
        result = verify_stored_trail(self.audit, self.public_key, self.archive)
        self._audit(
            principal,
            "audit.verify",
            details={"intact": int(result.is_intact), "events": result.event_count},
        )
        return audit_pb2.VerifyChainResponse(
            is_intact=result.is_intact,
            event_count=result.event_count,
            damaged_position=result.damaged_position,
            problem=result.problem,
            head_hash=result.head_hash,
            damage=result.kind,
            checkpoint_count=result.checkpoint_count,
        )

    def ListCheckpoints(
        self, request: audit_pb2.ListCheckpointsRequest, context: grpc.ServicerContext
    ) -> audit_pb2.ListCheckpointsResponse:
        principal = _auditor()
        with self.engine.connect() as conn:
            checkpoints = self.audit.checkpoints.all(conn)
        self._audit(
            principal, "audit.checkpoints", details={"checkpoints": len(checkpoints)}
        )
        pem = self.public_key.public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
        return audit_pb2.ListCheckpointsResponse(
            checkpoints=[_checkpoint_proto(c) for c in checkpoints],
            public_key_pem=pem,
        )

    def ProveInclusion(
        self, request: audit_pb2.ProveInclusionRequest, context: grpc.ServicerContext
    ) -> audit_pb2.InclusionProof:
        """Raises: NotFound: the event is not chained, or not sealed yet."""
        principal = _auditor()
        with self.engine.connect() as conn:
            chained = store.location_of(conn, request.event_id)
            if chained is None:
                raise NotFound("No such audit event.", code="audit_event_not_found")
            sequence = chained.sequence
            signed = (
                self.audit.checkpoints.get(conn, request.checkpoint_number)
                if request.checkpoint_number
                else self.audit.checkpoints.covering(conn, sequence)
            )
            if signed is None or signed.checkpoint.tree_size < sequence:
                raise NotFound(
                    "No checkpoint seals that event yet.", code="not_sealed_yet"
                )
            lookup = store.node_lookup(conn)
            path = merkle.audit_path(sequence - 1, signed.checkpoint.tree_size, lookup)
            entry_hash = _entry_hash(self.audit, chained, lookup)
        self._audit(
            principal,
            "audit.proof",
            resource_id=request.event_id,
            details={"checkpoint": signed.checkpoint.number},
        )
        return audit_pb2.InclusionProof(
            sequence=sequence,
            entry_hash=entry_hash,
            audit_path=[node.hex() for node in path],
            checkpoint=_checkpoint_proto(signed),
        )

    def ProveConsistency(
        self,
        request: audit_pb2.ProveConsistencyRequest,
        context: grpc.ServicerContext,
    ) -> audit_pb2.ConsistencyProof:
        principal = _auditor()
        if not 0 < request.first_checkpoint <= request.second_checkpoint:
            raise InvalidArgument(
                "The first checkpoint must come no later than the second.",
                code="checkpoint_order",
            )
        with self.engine.connect() as conn:
            first = self.audit.checkpoints.get(conn, request.first_checkpoint)
            second = self.audit.checkpoints.get(conn, request.second_checkpoint)
            if first is None or second is None:
                raise NotFound("No such checkpoint.", code="checkpoint_not_found")
            proof = merkle.consistency_proof(
                first.checkpoint.tree_size,
                second.checkpoint.tree_size,
                store.node_lookup(conn),
            )
        self._audit(
            principal,
            "audit.proof",
            details={
                "first": first.checkpoint.number,
                "second": second.checkpoint.number,
            },
        )
        return audit_pb2.ConsistencyProof(
            first=_checkpoint_proto(first),
            second=_checkpoint_proto(second),
            proof=[node.hex() for node in proof],
        )

    def _audit(
        self,
        principal: Principal,
        action: str,
        *,
        resource_type: str = "audit_trail",
        resource_id: str = "",
        details: dict[str, str | int],
    ) -> None:
        with self.engine.begin() as conn:
            stage_audit(
                conn,
                service=SERVICE,
                action=action,
                actor=principal,
                resource_type=resource_type,
                resource_id=resource_id,
                details=details,
            )


def _auditor() -> Principal:
    principal = current_principal()
    require_role(principal, AUDITOR, ADMIN)
    return principal


def _time_bound(request: Any, name: str) -> str:
    if not request.HasField(name):
        return ""
    value: Timestamp = getattr(request, name)
    return str(value.ToJsonString())


def _entry_hash(
    audit: AuditStore, chained: store.ChainedAt, lookup: merkle.NodeLookup
) -> str:
    """The entry's hash, read from its line and checked against its leaf."""
    if chained.file_offset is not None:
        line = audit.chain.line_at(chained.file_offset)
    else:
        with audit.engine.connect() as conn:
            sealed = store.read_head(conn)
        lines = audit.chain.lines(sealed.file_size)
        line = next(
            (line for n, line in enumerate(lines, start=1) if n == chained.sequence),
            b"",
        )
    parsed = parse_line(line)
    if parsed is None or parsed.leaf != lookup(0, chained.sequence - 1):
        raise NotFound("The chain entry is damaged.", code="audit_entry_damaged")
    return parsed.hash


def _checkpoint_proto(signed: SignedCheckpoint) -> audit_pb2.SignedCheckpoint:
    checkpoint = signed.checkpoint
    return audit_pb2.SignedCheckpoint(
        number=checkpoint.number,
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        chain_hash=checkpoint.chain_hash,
        time=to_timestamp(checkpoint.time),
        key_id=checkpoint.key_id,
        statement=checkpoint.statement().decode("ascii"),
        signature=signed.signature,
        segment_sha256=checkpoint.segment_sha256,
    )


def _event_proto(entry: dict[str, Any]) -> common_pb2.AuditEvent:
    event = entry["event"]
    actor, resource = event["actor"], event["resource"]
    # Stored times are ISO 8601 with an offset; the proto wants RFC 3339 UTC.
    return common_pb2.AuditEvent(
        id=event["id"],
        time=to_timestamp(event["time"]),
        actor=common_pb2.Actor(
            subject=actor["subject"],
            username=actor["username"],
            roles=actor["roles"],
            client_address=actor["client_address"],
            display_name=actor.get("display_name", ""),
            user_agent=actor.get("user_agent", ""),
        ),
        action=event["action"],
        resource=common_pb2.Resource(
            type=resource["type"], id=resource["id"], project_id=resource["project_id"]
        ),
        outcome=_OUTCOMES.get(event["outcome"], common_pb2.OUTCOME_UNSPECIFIED),
        reason=event["reason"],
        request_id=event["request_id"],
        service=event["service"],
        details=event["details"],
        sequence=entry["sequence"],
        prev_hash=entry["prev_hash"],
        hash=entry["hash"],
        documents=event.get("documents", []),
    )
