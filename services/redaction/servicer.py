"""gRPC surface of the redaction service."""

from __future__ import annotations

from collections import Counter

import grpc
from sqlalchemy.engine import Engine

from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import ADMIN, MANAGER, require_role
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.redaction import store
from strongroom.services.redaction.handlers import SERVICE
from strongroom.v1 import common_pb2, redaction_pb2, redaction_pb2_grpc


class RedactionServicer(redaction_pb2_grpc.RedactionServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def GetRedactionReport(
        self,
        request: redaction_pb2.GetRedactionReportRequest,
        context: grpc.ServicerContext,
    ) -> redaction_pb2.RedactionReport:
        """Return what was found in a document: types and offsets, never values.

        Raises:
            NotFound: the document has not been redacted (yet).
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        with self.engine.begin() as conn:
            report = store.get_report(conn, request.document_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="redaction.report.read",
                actor=principal,
                resource_type="document",
                resource_id=report.document_id,
                project_id=report.project_id,
            )
        counts = Counter(finding.type for finding in report.findings)
        return redaction_pb2.RedactionReport(
            document_id=report.document_id,
            project_id=report.project_id,
            policy=report.policy,
            findings=[
                redaction_pb2.Finding(
                    type=f.type,
                    span=common_pb2.Span(start=f.start, end=f.end),
                    confidence=f.confidence,
                    detector=f.detector,
                )
                for f in report.findings
            ],
            counts_by_type=counts,
            redacted_text_sha256=report.redacted_text_sha256,
            redacted_text_length=report.redacted_text_length,
        )
