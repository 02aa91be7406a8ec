"""What the redaction service does with a document: on ``document.ingested``
and again after a reviewer's correction.

The document is cleaned, searched, rewritten under its project's policy and
checked for duplicates and quality; its redacted text and page images go to
the derived store, its report to the service's tables. A document that needs
review, or is a duplicate or of low quality under the policy, is announced
with ``document.held`` instead of ``document.cleaned``, so it is never
queued for annotation; nothing is deleted.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from strongroom.services.common.audit_trail import SYSTEM, stage_audit
from strongroom.services.common.auth import Principal
from strongroom.services.common.database import utc_now
from strongroom.services.common.errors import NotFound
from strongroom.services.common.events import (
    DOCUMENT_CLEANED,
    DOCUMENT_HELD,
    DOCUMENT_INGESTED,
    EventHandler,
    stage_event,
)
from strongroom.services.common.ports import Event, ObjectStore
from strongroom.services.common.runtime import DERIVED
from strongroom.services.ingestion.model import ParsedDocument
from strongroom.services.ingestion.model import from_json as structure_from_json
from strongroom.services.redaction import cleaning, images, pipeline, store
from strongroom.services.redaction import policy as policies
from strongroom.services.redaction.detectors import RULES_VERSION, Finding
from strongroom.services.redaction.surrogates import SURROGATE_VERSION, SurrogateBook
from strongroom.services.redaction.vault import Vault

logger = logging.getLogger(__name__)

SERVICE = "redaction"
CLEANED = "cleaned"
HELD = "held"
NUM_PERM = 128

EntityFinder = Callable[[str], Sequence[Finding]]


@dataclass(frozen=True)
class Source:
    """Where a document's original text and structure are."""

    document_id: str
    project_id: str
    text_sha256: str
    structure_sha256: str = ""


class Redactor:
    def __init__(
        self,
        objects: ObjectStore,
        vault: Vault,
        entities: EntityFinder | None = None,
        model_version: str = "",
    ) -> None:
        self.objects = objects
        self.vault = vault
        self.entities = entities
        self.model_version = model_version if entities is not None else "none"

    # --- policy and keys ------------------------------------------------------

    def policy(self, conn: Connection, project_id: str) -> policies.Policy:
        stored = store.get_policy(conn, project_id)
        return policies.from_json(stored) if stored else policies.Policy()

    def project_key(self, conn: Connection, project_id: str) -> bytes:
        context = f"project-key:{project_id}"
        sealed = store.get_sealed_key(conn, project_id)
        if sealed is None:
            store.put_sealed_key(
                conn, project_id, self.vault.seal(secrets.token_bytes(32), context)
            )
            sealed = store.get_sealed_key(conn, project_id)
            assert sealed is not None
        return self.vault.open(sealed, context)

    # --- one document ------------------------------------------------------------

    def process(
        self, conn: Connection, source: Source, actor: Principal = SYSTEM
    ) -> store.ReportRow:
        """Redact a document (again) and announce the outcome."""
        project_id, document_id = source.project_id, source.document_id
        text = self.objects.read(DERIVED, source.text_sha256).decode("utf-8")
        structure = None
        if source.structure_sha256:
            data = json.loads(self.objects.read(DERIVED, source.structure_sha256))
            structure = structure_from_json({**data, "children": []}, text)
        policy = self.policy(conn, project_id)
        key = self.project_key(conn, project_id)
        book = SurrogateBook.load(key, store.surrogates(conn, project_id))
        corrections = [
            pipeline.Correction(action, start, end, type_)
            for action, type_, start, end in store.corrections(conn, document_id)
        ]
        confidences = [
            s.confidence for s in (structure.segments if structure else ())
            if s.confidence is not None
        ]  # fmt: skip
        outcome = pipeline.run(
            text,
            policy,
            book,
            entities=self.entities,
            corrections=corrections,
            ocr_confidences=[c / 100 if c > 1 else c for c in confidences],
        )
        self._keep_surrogates(conn, project_id, policy, book)
        duplicate_of, near_of, similarity = self._duplicates(
            conn, project_id, document_id, outcome, policy
        )
        reasons = _hold_reasons(policy, outcome, duplicate_of, near_of)
        redacted = self.objects.put(DERIVED, [outcome.redaction.text.encode("utf-8")])
        page_images = self._page_images(structure, outcome) if structure else []
        previous = _previous(conn, document_id)
        revision = previous + 1
        replaced = [
            (outcome.original_findings[i], outcome.redaction.output_spans[i])
            for i in range(len(outcome.findings))
            if i not in outcome.redaction.kept
        ]
        actions = [policy.action_for(f.type) for f in outcome.findings]
        details: dict[str, Any] = {
            "actions": actions,
            "counts_by_detector": dict(Counter(f.detector for f in outcome.findings)),
            "counts_by_action": dict(Counter(actions)),
            "hold_reasons": reasons,
            "quality": {
                "score": outcome.quality.score,
                "reasons": list(outcome.quality.reasons),
                "measures": outcome.quality.measures,
            },
            "duplicate_of": duplicate_of or "",
            "near_duplicate_of": near_of or "",
            "near_duplicate_similarity": similarity,
            "rules_version": RULES_VERSION,
            "model_version": self.model_version,
            "surrogate_version": SURROGATE_VERSION,
            "cleaning_version": cleaning.CLEANING_VERSION,
            "cleaning": {
                "normalised": outcome.cleaned.normalised,
                "hyphenations": outcome.cleaned.hyphenations,
                "whitespace": outcome.cleaned.whitespace,
                "boilerplate_lines": outcome.cleaned.boilerplate_lines,
            },
            "page_images": page_images,
            "revision": revision,
            "source_text_sha256": source.text_sha256,
            "structure_sha256": source.structure_sha256,
            "corrections": len(corrections),
        }
        row = store.ReportRow(
            document_id=document_id,
            project_id=project_id,
            policy=policy.name,
            findings=outcome.original_findings,
            redacted_text_sha256=redacted.sha256,
            redacted_text_length=len(outcome.redaction.text),
            created_at=utc_now(),
            status=HELD if reasons else CLEANED,
            details=details,
        )
        store.upsert_report(conn, row)
        counts = outcome.redaction.counts_by_type()
        payload: dict[str, Any] = {
            "document_id": document_id,
            "project_id": project_id,
            "policy": policy.name,
            "text_sha256": redacted.sha256,
            "text_length": len(outcome.redaction.text),
            "counts_by_type": counts,
            "revision": revision,
        }
        if reasons:
            stage_event(
                conn, DOCUMENT_HELD, document_id, {**payload, "reasons": reasons}
            )
        else:
            payload["page_images"] = page_images
            payload["findings"] = [
                {"type": t, "start": s, "end": e} for _, (t, s, e) in replaced
            ]
            stage_event(conn, DOCUMENT_CLEANED, document_id, payload)
        stage_audit(
            conn,
            service=SERVICE,
            action="document.redact",
            actor=actor,
            resource_type="document",
            resource_id=document_id,
            project_id=project_id,
            details={
                "policy": policy.name,
                "findings": len(outcome.findings),
                "revision": revision,
                "page_images": len(page_images),
                **{f"count.{k}": v for k, v in sorted(counts.items())},
            },
        )
        if reasons:
            stage_audit(
                conn,
                service=SERVICE,
                action="document.hold",
                actor=actor,
                resource_type="document",
                resource_id=document_id,
                project_id=project_id,
                details={"reasons": ",".join(reasons), "revision": revision},
            )
        logger.info(
            "document_redacted",
            extra={
                "document_id": document_id,
                "findings": len(outcome.findings),
                "status": row.status,
            },
        )
        return row

    def _keep_surrogates(
        self,
        conn: Connection,
        project_id: str,
        policy: policies.Policy,
        book: SurrogateBook,
    ) -> None:
        entries = []
        for type_, digest, surrogate, original in book.new:
            sealed = (
                self.vault.seal(original.encode(), f"original:{project_id}:{type_}")
                if policy.reidentification
                else None
            )
            entries.append((type_, digest, surrogate, sealed))
        store.add_surrogates(conn, project_id, entries)
        book.new.clear()

    def _duplicates(
        self,
        conn: Connection,
        project_id: str,
        document_id: str,
        outcome: pipeline.Outcome,
        policy: policies.Policy,
    ) -> tuple[str | None, str | None, float]:
        text = outcome.cleaned.text
        duplicate_of = store.claim_exact_key(
            conn, project_id, cleaning.exact_key(text), document_id
        )
        hasher = cleaning.MinHasher(num_perm=NUM_PERM, shingle_size=policy.shingle_size)
        signature = hasher.signature(text)
        bands, rows = cleaning.lsh_bands(NUM_PERM, policy.near_duplicate_threshold)
        keys = cleaning.band_keys(signature, bands, rows)
        best: tuple[float, str] | None = None
        for other, encoded in store.band_candidates(
            conn, project_id, keys, document_id
        ):
            theirs = np.frombuffer(bytes.fromhex(encoded), dtype=np.uint64)
            similarity = cleaning.jaccard_estimate(signature, theirs)
            if similarity >= policy.near_duplicate_threshold and (
                best is None or similarity > best[0]
            ):
                best = (similarity, other)
        store.add_signature(
            conn, project_id, document_id, signature.tobytes().hex(), keys
        )
        if duplicate_of is not None or best is None:
            return duplicate_of, None, 0.0
        return None, best[1], round(best[0], 4)

    def _page_images(
        self, structure: ParsedDocument, outcome: pipeline.Outcome
    ) -> list[dict[str, Any]]:
        spans = [
            (f.start, f.end)
            for i, f in enumerate(outcome.original_findings)
            if i not in outcome.redaction.kept
        ]
        out = []
        for page in images.boxes_by_page(structure, spans):
            png = self.objects.read(DERIVED, page.image_sha256)
            burned, width, height = images.burn(png, page)
            stored = self.objects.put(DERIVED, [burned])
            out.append(
                {
                    "page": page.page,
                    "sha256": stored.sha256,
                    "width": width,
                    "height": height,
                }
            )
        return out


def _hold_reasons(
    policy: policies.Policy,
    outcome: pipeline.Outcome,
    duplicate_of: str | None,
    near_of: str | None,
) -> list[str]:
    reasons = []
    if outcome.needs_review:
        reasons.append("review")
    if policy.hold_duplicates and duplicate_of:
        reasons.append("duplicate")
    if policy.hold_duplicates and near_of:
        reasons.append("near_duplicate")
    if policy.hold_low_quality and outcome.quality.score < policy.quality_threshold:
        reasons.append("low_quality")
    return reasons


def _previous(conn: Connection, document_id: str) -> int:
    try:
        report = store.get_report(conn, document_id)
    except NotFound:  # the first redaction
        return 0
    return int(report.details.get("revision", 1))


def handlers(redactor: Redactor) -> dict[str, EventHandler]:
    def on_document_ingested(conn: Connection, event: Event) -> None:
        """Redact a newly ingested document and announce the outcome."""
        payload = event.payload
        redactor.process(
            conn,
            Source(
                document_id=payload["document_id"],
                project_id=payload["project_id"],
                text_sha256=payload["text_sha256"],
                # Ingestion names the structure artefact once it sends it.
                structure_sha256=payload.get("structure_sha256", ""),
            ),
        )

    return {DOCUMENT_INGESTED: on_document_ingested}
