"""gRPC surface of the audit service."""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy.engine import Engine

from strongroom.services.audit import store
from strongroom.services.audit.domain import Verification, verify_chain
from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import ADMIN, AUDITOR, require_role
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.ports import AuditIndex, AuditQuery
from strongroom.services.common.protos import page_bounds, to_timestamp
from strongroom.v1 import audit_pb2, audit_pb2_grpc, common_pb2

SERVICE = "audit"

_OUTCOMES = {
    "success": common_pb2.OUTCOME_SUCCESS,
    "denied": common_pb2.OUTCOME_DENIED,
    "error": common_pb2.OUTCOME_ERROR,
}


def verify_stored_chain(engine: Engine, chain: store.ChainFile) -> Verification:
    """Verify the chain file up to the head the database recorded."""
    with engine.connect() as conn:
        sealed = store.read_head(conn)
    return verify_chain(chain.lines(sealed.file_size), sealed.head)


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(
        self, engine: Engine, chain: store.ChainFile, index: AuditIndex
    ) -> None:
        self.engine = engine
        self.chain = chain
        self.index = index

    def SearchEvents(
        self, request: audit_pb2.SearchEventsRequest, context: grpc.ServicerContext
    ) -> audit_pb2.SearchEventsResponse:
        """Search the trail; auditors and admins only, and the search is audited."""
        principal = current_principal()
        require_role(principal, AUDITOR, ADMIN)
        limit, offset = page_bounds(request.page)
        query = AuditQuery(
            text=request.query,
            action=request.action,
            resource_id=request.resource_id,
            actor_subject=request.actor_subject,
            since=request.since.ToJsonString() if request.HasField("since") else "",
            until=request.until.ToJsonString() if request.HasField("until") else "",
            limit=limit,
            offset=offset,
        )
        result = self.index.search(query)
        with self.engine.begin() as conn:
            stage_audit(
                conn,
                service=SERVICE,
                action="audit.search",
                actor=principal,
                resource_type="audit_trail",
                details={"matches": result.total},
            )
        return audit_pb2.SearchEventsResponse(
            events=[_event_proto(entry) for entry in result.events],
            page=common_pb2.PageInfo(offset=offset, total=result.total),
        )

    def VerifyChain(
        self, request: audit_pb2.VerifyChainRequest, context: grpc.ServicerContext
    ) -> audit_pb2.VerifyChainResponse:
        principal = current_principal()
        require_role(principal, AUDITOR, ADMIN)
        result = verify_stored_chain(self.engine, self.chain)
        with self.engine.begin() as conn:
            stage_audit(
                conn,
                service=SERVICE,
                action="audit.verify",
                actor=principal,
                resource_type="audit_trail",
                details={"intact": int(result.is_intact), "events": result.event_count},
            )
        return audit_pb2.VerifyChainResponse(
            is_intact=result.is_intact,
            event_count=result.event_count,
            damaged_position=result.damaged_position,
            problem=result.problem,
            head_hash=result.head_hash,
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
    )
