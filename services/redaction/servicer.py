"""gRPC surface of the redaction service."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import grpc
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import (
    ADMIN,
    MANAGER,
    REIDENTIFIER,
    REVIEWER,
    Principal,
    require_role,
)
from strongroom.services.common.database import utc_now
from strongroom.services.common.errors import (
    FailedPrecondition,
    HiddenNotFound,
    InvalidArgument,
)
from strongroom.services.common.grpc_server import current_principal
from strongroom.services.common.project_access import (
    ProjectAccess,
    project_not_found,
)
from strongroom.services.common.runtime import DERIVED
from strongroom.services.redaction import pipeline, store
from strongroom.services.redaction import policy as policies
from strongroom.services.redaction.detectors import TYPES
from strongroom.services.redaction.handlers import SERVICE, Redactor, Source
from strongroom.services.redaction.surrogates import SurrogateBook
from strongroom.v1 import common_pb2, redaction_pb2, redaction_pb2_grpc

_MAX_CORRECTIONS = 500
_MAX_MAPPED_SPANS = 10_000


def _report_message(report: store.ReportRow) -> redaction_pb2.RedactionReport:
    details = report.details
    actions = details.get("actions") or []
    quality = details.get("quality") or {}
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
                action=actions[i] if i < len(actions) else "",
            )
            for i, f in enumerate(report.findings)
        ],
        counts_by_type=Counter(f.type for f in report.findings),
        redacted_text_sha256=report.redacted_text_sha256,
        redacted_text_length=report.redacted_text_length,
        counts_by_detector=details.get("counts_by_detector", {}),
        counts_by_action=details.get("counts_by_action", {}),
        status=report.status,
        hold_reasons=details.get("hold_reasons", []),
        quality_score=float(quality.get("score", 0.0)),
        quality_reasons=quality.get("reasons", []),
        duplicate_of=details.get("duplicate_of", ""),
        near_duplicate_of=details.get("near_duplicate_of", ""),
        rules_version=details.get("rules_version", ""),
        model_version=details.get("model_version", ""),
        page_images=len(details.get("page_images", [])),
        revision=int(details.get("revision", 1)),
        cleaning_version=details.get("cleaning_version", ""),
    )


def _policy_message(
    project_id: str, policy: policies.Policy
) -> redaction_pb2.RedactionPolicy:
    return redaction_pb2.RedactionPolicy(
        project_id=project_id,
        default_action=policy.default_action,
        actions=policy.actions,
        allow=list(policy.allow),
        deny=policy.deny,
        reidentification=policy.reidentification,
        hold_duplicates=policy.hold_duplicates,
        hold_low_quality=policy.hold_low_quality,
        quality_threshold=policy.quality_threshold,
        near_duplicate_threshold=policy.near_duplicate_threshold,
        shingle_size=policy.shingle_size,
        version=policy.version,
    )


class RedactionServicer(redaction_pb2_grpc.RedactionServiceServicer):
    def __init__(
        self, engine: Engine, redactor: Redactor, access: ProjectAccess
    ) -> None:
        self.engine = engine
        self.redactor = redactor
        self.access = access

    def _require_in_project(
        self, principal: Principal, project_id: str, roles: tuple[str, ...]
    ) -> None:
        self.access.require(principal, project_id, roles, project_not_found(project_id))

    def _require_of_document(
        self, principal: Principal, document_id: str, roles: tuple[str, ...]
    ) -> None:
        """Raises: NotFound: no report, or the document is in a project the
        caller is not in (the same answer). PermissionDenied: another role."""
        with self.engine.begin() as conn:
            report = store.get_report(conn, document_id)
        hidden = HiddenNotFound(
            f"Document {document_id} has no redaction report.",
            code="report_not_found",
        )
        self.access.require(principal, report.project_id, roles, hidden)

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
        self._require_of_document(principal, request.document_id, (MANAGER,))
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
        return _report_message(report)

    def GetProjectRedactionReport(
        self,
        request: redaction_pb2.GetProjectRedactionReportRequest,
        context: grpc.ServicerContext,
    ) -> redaction_pb2.ProjectRedactionReport:
        """Totals over a project's documents; no values, no offsets."""
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        self._require_in_project(principal, request.project_id, (MANAGER,))
        with self.engine.begin() as conn:
            reports = store.project_reports(conn, request.project_id)
            policy = self.redactor.policy(conn, request.project_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="redaction.project_report.read",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
            )
        by_type: Counter[str] = Counter()
        by_detector: Counter[str] = Counter()
        by_action: Counter[str] = Counter()
        holds: Counter[str] = Counter()
        rules: set[str] = set()
        models: set[str] = set()
        clusters: set[str] = set()
        links = []
        for r in reports:
            by_type.update(f.type for f in r.findings)
            by_detector.update(r.details.get("counts_by_detector", {}))
            by_action.update(r.details.get("counts_by_action", {}))
            holds.update(r.details.get("hold_reasons", []))
            rules.add(r.details.get("rules_version", ""))
            models.add(r.details.get("model_version", ""))
            for key in ("duplicate_of", "near_duplicate_of"):
                if r.details.get(key):
                    clusters.add(r.details[key])
            if of := r.details.get("duplicate_of") or r.details.get(
                "near_duplicate_of"
            ):
                links.append(
                    redaction_pb2.DuplicateLink(
                        document_id=r.document_id, duplicate_of=of
                    )
                )
        return redaction_pb2.ProjectRedactionReport(
            project_id=request.project_id,
            documents=len(reports),
            held=sum(r.status == "held" for r in reports),
            counts_by_type=dict(by_type),
            counts_by_detector=dict(by_detector),
            counts_by_action=dict(by_action),
            hold_reasons=dict(holds),
            policy=policy.name,
            rules_versions=sorted(v for v in rules if v),
            model_versions=sorted(v for v in models if v),
            duplicate_clusters=len(clusters),
            duplicates=links,
        )

    def GetRedactionPolicy(
        self,
        request: redaction_pb2.GetRedactionPolicyRequest,
        context: grpc.ServicerContext,
    ) -> redaction_pb2.RedactionPolicy:
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        self._require_in_project(principal, request.project_id, (MANAGER,))
        with self.engine.begin() as conn:
            policy = self.redactor.policy(conn, request.project_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="redaction.policy.read",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
            )
        return _policy_message(request.project_id, policy)

    def SetRedactionPolicy(
        self,
        request: redaction_pb2.SetRedactionPolicyRequest,
        context: grpc.ServicerContext,
    ) -> redaction_pb2.RedactionPolicy:
        """Replace a project's policy; applies to documents redacted from now on.

        Raises:
            InvalidArgument: an unknown action or type, or a value out of range.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        message = request.policy
        project_id = message.project_id
        if not project_id:
            raise InvalidArgument("A project id is required.", code="project_required")
        self._require_in_project(principal, project_id, (MANAGER,))
        data: dict[str, Any] = {
            "default_action": message.default_action or policies.MASK,
            "actions": dict(message.actions),
            "allow": list(message.allow),
            "deny": dict(message.deny),
            "reidentification": message.reidentification,
            "hold_duplicates": message.hold_duplicates,
            "hold_low_quality": message.hold_low_quality,
            "quality_threshold": message.quality_threshold or 0.5,
            "near_duplicate_threshold": message.near_duplicate_threshold or 0.8,
            "shingle_size": message.shingle_size or 5,
        }
        policies.from_json(data)  # validates before anything is written
        with self.engine.begin() as conn:
            previous = self.redactor.policy(conn, project_id)
            data["version"] = previous.version + 1
            policy = policies.from_json(data)
            store.put_policy(
                conn, project_id, policy.to_json(), principal.subject, utc_now()
            )
            stage_audit(
                conn,
                service=SERVICE,
                action="redaction.policy.set",
                actor=principal,
                resource_type="project",
                resource_id=project_id,
                project_id=project_id,
                details={
                    "version": policy.version,
                    "default_action": policy.default_action,
                    "reidentification": policy.reidentification,
                    "allow_terms": len(policy.allow),
                    "deny_terms": len(policy.deny),
                    **{f"action.{k}": v for k, v in sorted(policy.actions.items())},
                },
            )
        return _policy_message(project_id, policy)

    def CorrectRedaction(
        self,
        request: redaction_pb2.CorrectRedactionRequest,
        context: grpc.ServicerContext,
    ) -> redaction_pb2.RedactionReport:
        """Add missed identifiers or undo false ones, then redact again.

        Offsets are on the document's current redacted text; they are kept
        on the original's, so later corrections and policies still apply.

        Raises:
            InvalidArgument: no corrections, an unknown action or type, or a
                span outside the text.
            NotFound: the document has not been redacted.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER, REVIEWER)
        if not request.corrections or len(request.corrections) > _MAX_CORRECTIONS:
            raise InvalidArgument(
                f"Send between 1 and {_MAX_CORRECTIONS} corrections.",
                code="corrections_required",
            )
        self._require_of_document(principal, request.document_id, (MANAGER, REVIEWER))
        with self.engine.begin() as conn:
            report = store.get_report(conn, request.document_id)
            source = _source_of(report, "corrections were possible", "correction")
            current = self._current_outcome(conn, source)
            added = removed = 0
            for correction in request.corrections:
                start, end = correction.span.start, correction.span.end
                if not 0 <= start < end <= len(current.redaction.text):
                    raise InvalidArgument(
                        "A correction's span must lie inside the redacted text.",
                        code="span_out_of_range",
                    )
                span, index = pipeline.redacted_to_original(current, start, end)
                if correction.action == pipeline.REMOVE:
                    if index is None:
                        raise InvalidArgument(
                            "An undo must point at a redacted span.",
                            code="not_a_redaction",
                        )
                    f = current.original_findings[index]
                    store.add_correction(
                        conn, report.document_id, pipeline.REMOVE, f.type,
                        f.start, f.end, principal.subject, utc_now(),
                    )  # fmt: skip
                    removed += 1
                elif correction.action == pipeline.ADD:
                    if correction.type not in TYPES:
                        raise InvalidArgument(
                            f"Unknown identifier type '{correction.type}'.",
                            code="unknown_identifier_type",
                        )
                    if span is None:
                        raise InvalidArgument(
                            "An added span must not overlap a redaction.",
                            code="overlaps_redaction",
                        )
                    store.add_correction(
                        conn, report.document_id, pipeline.ADD, correction.type,
                        span[0], span[1], principal.subject, utc_now(),
                    )  # fmt: skip
                    added += 1
                else:
                    raise InvalidArgument(
                        "A correction's action is 'add' or 'remove'.",
                        code="unknown_correction_action",
                    )
            stage_audit(
                conn,
                service=SERVICE,
                action="redaction.correct",
                actor=principal,
                resource_type="document",
                resource_id=report.document_id,
                project_id=report.project_id,
                details={"added": added, "removed": removed},
            )
            updated = self.redactor.process(conn, source, principal)
        return _report_message(updated)

    def MapSpans(
        self, request: redaction_pb2.MapSpansRequest, context: grpc.ServicerContext
    ) -> redaction_pb2.MapSpansResponse:
        """Place spans of a document's original text on its redacted text.

        Raises:
            InvalidArgument: too many spans, or one outside the original text.
            NotFound: the document has no redaction report.
            FailedPrecondition: it was redacted before its source was kept.
        """
        principal = current_principal()
        require_role(principal, ADMIN, MANAGER)
        if len(request.spans) > _MAX_MAPPED_SPANS:
            raise InvalidArgument(
                f"Map at most {_MAX_MAPPED_SPANS} spans at once.",
                code="too_many_spans",
            )
        self._require_of_document(principal, request.document_id, (MANAGER,))
        with self.engine.begin() as conn:
            report = store.get_report(conn, request.document_id)
            source = _source_of(report, "its source text was kept", "mapping")
            text = self.redactor.objects.read(DERIVED, source.text_sha256).decode()
            length = len(text)
            current = self._current_outcome(conn, source, text)
            mapped = []
            for span in request.spans:
                if not 0 <= span.start < span.end <= length:
                    raise InvalidArgument(
                        "A span must lie inside the document's original text.",
                        code="span_out_of_range",
                    )
                place, widened = pipeline.original_to_redacted(
                    current, span.start, span.end
                )
                if place is None:
                    mapped.append(redaction_pb2.MappedSpan(found=False))
                    continue
                mapped.append(
                    redaction_pb2.MappedSpan(
                        span=common_pb2.Span(start=place[0], end=place[1]),
                        found=True,
                        widened=widened,
                    )
                )
            stage_audit(
                conn,
                service=SERVICE,
                action="redaction.spans.map",
                actor=principal,
                resource_type="document",
                resource_id=report.document_id,
                project_id=report.project_id,
                details={"spans": len(request.spans)},
                documents=[report.document_id],
            )
        return redaction_pb2.MapSpansResponse(
            redacted_text_sha256=hashlib.sha256(
                current.redaction.text.encode("utf-8")
            ).hexdigest(),
            spans=mapped,
        )

    def _current_outcome(
        self, conn: Connection, source: Source, text: str | None = None
    ) -> pipeline.Outcome:
        """The redaction as it stands, rebuilt to map offsets between the
        original (``text``, read when not given) and the redacted text."""
        if text is None:
            text = self.redactor.objects.read(DERIVED, source.text_sha256).decode()
        policy = self.redactor.policy(conn, source.project_id)
        key = self.redactor.project_key(conn, source.project_id)
        book = SurrogateBook.load(key, store.surrogates(conn, source.project_id))
        corrections = [
            pipeline.Correction(a, s, e, t)
            for a, t, s, e in store.corrections(conn, source.document_id)
        ]
        return pipeline.run(
            text,
            policy,
            book,
            entities=self.redactor.entities,
            corrections=corrections,
        )

    def ReadReidentification(
        self,
        request: redaction_pb2.ReadReidentificationRequest,
        context: grpc.ServicerContext,
    ) -> redaction_pb2.ReidentificationMapping:
        """The originals behind a project's surrogates, for the reidentifier role.

        Raises:
            PermissionDenied: the caller does not hold the reidentifier role.
            InvalidArgument: no reason was given.
        """
        principal = current_principal()
        require_role(principal, REIDENTIFIER)
        reason = request.reason.strip()
        if not reason:
            raise InvalidArgument(
                "Reading the re-identification mapping needs a stated reason.",
                code="reason_required",
            )
        with self.engine.begin() as conn:
            rows = store.sealed_originals(conn, request.project_id)
            stage_audit(
                conn,
                service=SERVICE,
                action="redaction.reidentify",
                actor=principal,
                resource_type="project",
                resource_id=request.project_id,
                project_id=request.project_id,
                reason=reason[:500],
                details={"entries": len(rows)},
            )
        vault = self.redactor.vault
        return redaction_pb2.ReidentificationMapping(
            project_id=request.project_id,
            entries=[
                redaction_pb2.ReidentificationEntry(
                    type=type_,
                    surrogate=surrogate,
                    original=vault.open(
                        sealed, f"original:{request.project_id}:{type_}"
                    ).decode(),
                )
                for type_, surrogate, sealed in rows
            ],
        )


def _source_of(report: store.ReportRow, since: str, what: str) -> Source:
    """What a report's redaction was made from, to make it again.

    Raises: FailedPrecondition: the document was redacted before ``since``.
    """
    source = Source(
        report.document_id,
        report.project_id,
        report.details.get("source_text_sha256", ""),
        report.details.get("structure_sha256", ""),
    )
    if not source.text_sha256:
        raise FailedPrecondition(
            f"Document {report.document_id} was redacted before {since}.",
            code=f"{what}_unsupported",
        )
    return source
