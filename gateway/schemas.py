"""REST bodies: what the API accepts and returns, converted from the protos."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict, Field

from strongroom.services.common.adapters.service_accounts import ServiceAccount
from strongroom.v1 import (
    audit_pb2,
    common_pb2,
    export_pb2,
    ingestion_pb2,
    labeling_pb2,
    redaction_pb2,
    tasks_pb2,
)

# The largest offset, page, position or checkpoint number a request may name:
# beyond it nothing reaches, and the services' integer fields (32-bit for
# pages) never overflow.
MAX_INDEX = 2**31 - 1


def _time(stamp: Timestamp) -> str | None:
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.ToJsonString()


class Problem(BaseModel):
    """An RFC 9457 problem description."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    # The code and refresh grants only.
    id_token: str | None = None
    refresh_token: str | None = None


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    roles: list[str] = Field(min_length=1)
    # The password policy (not a length here) refuses a weak one as
    # password_weak, naming the rule.
    password: str | None = Field(default=None, max_length=1024)


class UserOut(BaseModel):
    subject: str
    username: str
    roles: list[str]
    # Only when the password was generated: shown once, never stored in clear.
    password: str | None = None
    is_disabled: bool = False
    has_totp: bool = False


class RolesIn(BaseModel):
    roles: list[str] = Field(min_length=1, max_length=16)


class PasswordReset(BaseModel):
    username: str
    # Generated, shown once; it must be changed at the next sign-in.
    password: str


class PasswordChangeIn(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class TotpEnrolment(BaseModel):
    # Shown once: the base32 secret and the otpauth:// URI (for a QR code).
    secret: str
    otpauth_uri: str


class TotpCodeIn(BaseModel):
    code: str = Field(max_length=16)


class LabelIn(BaseModel):
    name: str
    color: str = ""
    hotkey: str = ""
    description: str = ""


class FieldSpecIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=2000)


class LabelSchemaIn(BaseModel):
    spans: list[LabelIn | str] = Field(default=[], max_length=500)
    classes: list[LabelIn | str] = Field(default=[], max_length=500)
    multi_label: bool = False
    relations: list[LabelIn | str] = Field(default=[], max_length=500)
    boxes: list[LabelIn | str] = Field(default=[], max_length=500)
    fields: list[FieldSpecIn] = Field(default=[], max_length=100)


class WindowIn(BaseModel):
    kind: Literal["document", "page", "paragraph", "fixed"] = "document"
    size: int = Field(default=0, ge=0, le=1_000_000)


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    # Span labels; the same as schema.spans.
    labels: list[LabelIn | str] = Field(default=[], max_length=500)
    schema_: LabelSchemaIn | None = Field(default=None, alias="schema")
    # A Label Studio labeling configuration (XML) to take the schema from.
    label_config: str = Field(default="", max_length=256 * 1024)
    guidelines: str = Field(default="", max_length=100_000)
    overlap: int = Field(default=1, ge=1, le=10)
    assignment: Literal["pull", "assigned"] = "pull"
    window: WindowIn = WindowIn()
    review: bool = False


class MemberIn(BaseModel):
    username: str = Field(default="", max_length=64)
    subject: str = Field(default="", max_length=128)
    role: str


class Label(BaseModel):
    name: str
    color: str
    hotkey: str
    description: str


class FieldSpec(BaseModel):
    name: str
    description: str


class LabelSchema(BaseModel):
    spans: list[Label]
    classes: list[Label]
    multi_label: bool
    relations: list[Label]
    boxes: list[Label]
    fields: list[FieldSpec]


class Window(BaseModel):
    kind: str
    size: int


class Member(BaseModel):
    subject: str
    role: str


def _labels(labels: Iterable[common_pb2.Label]) -> list[Label]:
    return [
        Label(
            name=label.name,
            color=label.color,
            hotkey=label.hotkey,
            description=label.description,
        )
        for label in labels
    ]


class Project(BaseModel):
    id: str
    name: str
    labels: list[Label]
    schema_: LabelSchema = Field(alias="schema", serialization_alias="schema")
    guidelines: str
    overlap: int
    assignment: str
    window: Window
    review: bool
    members: list[Member]
    created_at: str | None

    model_config = ConfigDict(populate_by_name=True)

    @classmethod
    def from_proto(cls, p: tasks_pb2.Project) -> Project:
        schema = p.schema
        return cls(
            id=p.id,
            name=p.name,
            labels=_labels(p.labels),
            schema=LabelSchema(
                spans=_labels(schema.spans),
                classes=_labels(schema.classes),
                multi_label=schema.multi_label,
                relations=_labels(schema.relations),
                boxes=_labels(schema.boxes),
                fields=[
                    FieldSpec(name=f.name, description=f.description)
                    for f in schema.fields
                ],
            ),
            guidelines=p.guidelines,
            overlap=p.overlap,
            assignment=p.assignment,
            window=Window(kind=p.window.kind, size=p.window.size),
            review=p.review,
            members=[Member(subject=m.subject, role=m.role) for m in p.members],
            created_at=_time(p.created_at),
        )


class ProjectList(BaseModel):
    projects: list[Project]
    total: int


class Span(BaseModel):
    start: int = Field(ge=0, le=MAX_INDEX)
    end: int = Field(ge=0, le=MAX_INDEX)


class Page(BaseModel):
    number: int
    start: int
    end: int
    width_pt: float
    height_pt: float
    source: str = "text"
    image_sha256: str = ""


class DocumentStructure(BaseModel):
    page_count: int
    block_count: int
    table_count: int
    segment_count: int
    ocr_page_count: int
    language: str
    child_count: int
    refused_children: dict[str, int]


class Document(BaseModel):
    id: str
    project_id: str
    sha256: str
    size_bytes: int
    media_type: str
    text_sha256: str
    text_length: int
    pages: list[Page]
    parser: str
    parser_version: str
    created_at: str | None
    is_duplicate: bool
    ocr_engine: str = ""
    parent_id: str = ""
    structure_sha256: str = ""
    structure: DocumentStructure | None = None
    child_ids: list[str] = []
    is_container: bool = False

    @classmethod
    def from_proto(cls, d: common_pb2.Document) -> Document:
        return cls(
            id=d.id,
            project_id=d.project_id,
            sha256=d.sha256,
            size_bytes=d.size_bytes,
            media_type=d.media_type,
            text_sha256=d.text_sha256,
            text_length=d.text_length,
            pages=[
                Page(
                    number=p.number,
                    start=p.span.start,
                    end=p.span.end,
                    width_pt=p.width_pt,
                    height_pt=p.height_pt,
                    source=p.source or "text",
                    image_sha256=p.image_sha256,
                )
                for p in d.pages
            ],
            parser=d.provenance.parser,
            parser_version=d.provenance.parser_version,
            created_at=_time(d.created_at),
            is_duplicate=d.is_duplicate,
            ocr_engine=d.provenance.ocr_engine,
            parent_id=d.parent_id,
            structure_sha256=d.structure_sha256,
            structure=DocumentStructure(
                page_count=d.structure.page_count,
                block_count=d.structure.block_count,
                table_count=d.structure.table_count,
                segment_count=d.structure.segment_count,
                ocr_page_count=d.structure.ocr_page_count,
                language=d.structure.language,
                child_count=d.structure.child_count,
                refused_children=dict(d.structure.refused_children),
            ),
            child_ids=list(d.child_ids),
            is_container=d.is_container,
        )


class QuarantinedFile(BaseModel):
    id: str
    project_id: str
    sha256: str
    size_bytes: int
    is_stored: bool
    code: str
    created_at: str | None


class QuarantineList(BaseModel):
    files: list[QuarantinedFile]

    @classmethod
    def from_proto(cls, r: ingestion_pb2.ListQuarantinedResponse) -> QuarantineList:
        return cls(
            files=[
                QuarantinedFile(
                    id=f.id,
                    project_id=f.project_id,
                    sha256=f.sha256,
                    size_bytes=f.size_bytes,
                    is_stored=f.is_stored,
                    code=f.code,
                    created_at=_time(f.created_at),
                )
                for f in r.files
            ]
        )


class DocumentList(BaseModel):
    documents: list[Document]
    total: int


class Finding(BaseModel):
    type: str
    start: int
    end: int
    confidence: float
    detector: str
    action: str = ""


class RedactionReport(BaseModel):
    document_id: str
    project_id: str
    policy: str
    findings: list[Finding]
    counts_by_type: dict[str, int]
    redacted_text_sha256: str
    redacted_text_length: int
    counts_by_detector: dict[str, int] = {}
    counts_by_action: dict[str, int] = {}
    status: str = ""
    hold_reasons: list[str] = []
    quality_score: float = 0.0
    quality_reasons: list[str] = []
    duplicate_of: str = ""
    near_duplicate_of: str = ""
    rules_version: str = ""
    model_version: str = ""
    cleaning_version: str = ""
    page_images: int = 0
    revision: int = 0

    @classmethod
    def from_proto(cls, r: redaction_pb2.RedactionReport) -> RedactionReport:
        return cls(
            document_id=r.document_id,
            project_id=r.project_id,
            policy=r.policy,
            findings=[
                Finding(
                    type=f.type,
                    start=f.span.start,
                    end=f.span.end,
                    confidence=f.confidence,
                    detector=f.detector,
                    action=f.action,
                )
                for f in r.findings
            ],
            counts_by_type=dict(r.counts_by_type),
            redacted_text_sha256=r.redacted_text_sha256,
            redacted_text_length=r.redacted_text_length,
            counts_by_detector=dict(r.counts_by_detector),
            counts_by_action=dict(r.counts_by_action),
            status=r.status,
            hold_reasons=list(r.hold_reasons),
            quality_score=r.quality_score,
            quality_reasons=list(r.quality_reasons),
            duplicate_of=r.duplicate_of,
            near_duplicate_of=r.near_duplicate_of,
            rules_version=r.rules_version,
            model_version=r.model_version,
            cleaning_version=r.cleaning_version,
            page_images=r.page_images,
            revision=r.revision,
        )


# --- redaction policy, project report and corrections ------------------------


class RedactionPolicyIn(BaseModel):
    default_action: str = "mask"
    actions: dict[str, str] = {}
    allow: list[str] = Field(default=[], max_length=10_000)
    deny: dict[str, str] = {}
    reidentification: bool = False
    hold_duplicates: bool = False
    hold_low_quality: bool = False
    quality_threshold: float = Field(default=0.5, ge=0, le=1)
    near_duplicate_threshold: float = Field(default=0.8, ge=0.1, le=1)
    shingle_size: int = Field(default=5, ge=1, le=20)

    def to_proto(self, project_id: str) -> redaction_pb2.RedactionPolicy:
        return redaction_pb2.RedactionPolicy(project_id=project_id, **self.model_dump())


class RedactionPolicy(RedactionPolicyIn):
    project_id: str
    version: int

    @classmethod
    def from_proto(cls, p: redaction_pb2.RedactionPolicy) -> RedactionPolicy:
        return cls(
            project_id=p.project_id,
            version=p.version,
            default_action=p.default_action,
            actions=dict(p.actions),
            allow=list(p.allow),
            deny=dict(p.deny),
            reidentification=p.reidentification,
            hold_duplicates=p.hold_duplicates,
            hold_low_quality=p.hold_low_quality,
            quality_threshold=p.quality_threshold,
            near_duplicate_threshold=p.near_duplicate_threshold,
            shingle_size=p.shingle_size,
        )


class ProjectRedactionReport(BaseModel):
    project_id: str
    documents: int
    held: int
    counts_by_type: dict[str, int]
    counts_by_detector: dict[str, int]
    counts_by_action: dict[str, int]
    hold_reasons: dict[str, int]
    policy: str
    rules_versions: list[str]
    model_versions: list[str]
    duplicate_clusters: int

    @classmethod
    def from_proto(
        cls, r: redaction_pb2.ProjectRedactionReport
    ) -> ProjectRedactionReport:
        return cls(
            project_id=r.project_id,
            documents=r.documents,
            held=r.held,
            counts_by_type=dict(r.counts_by_type),
            counts_by_detector=dict(r.counts_by_detector),
            counts_by_action=dict(r.counts_by_action),
            hold_reasons=dict(r.hold_reasons),
            policy=r.policy,
            rules_versions=list(r.rules_versions),
            model_versions=list(r.model_versions),
            duplicate_clusters=r.duplicate_clusters,
        )


class ReidentificationIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class ReidentificationEntry(BaseModel):
    type: str
    surrogate: str
    original: str


class ReidentificationMapping(BaseModel):
    project_id: str
    entries: list[ReidentificationEntry]

    @classmethod
    def from_proto(
        cls, m: redaction_pb2.ReidentificationMapping
    ) -> ReidentificationMapping:
        return cls(
            project_id=m.project_id,
            entries=[
                ReidentificationEntry(
                    type=e.type, surrogate=e.surrogate, original=e.original
                )
                for e in m.entries
            ],
        )


class RedactionCorrectionIn(BaseModel):
    action: str = Field(pattern="^(add|remove)$")
    start: int = Field(ge=0, le=MAX_INDEX)
    end: int = Field(ge=0, le=MAX_INDEX)
    type: str = ""


class RedactionCorrectionsIn(BaseModel):
    corrections: list[RedactionCorrectionIn] = Field(min_length=1, max_length=500)

    def to_proto(self, document_id: str) -> redaction_pb2.CorrectRedactionRequest:
        return redaction_pb2.CorrectRedactionRequest(
            document_id=document_id,
            corrections=[
                redaction_pb2.Correction(
                    action=c.action,
                    span=common_pb2.Span(start=c.start, end=c.end),
                    type=c.type,
                )
                for c in self.corrections
            ],
        )


_TASK_STATES = {
    tasks_pb2.TASK_STATE_QUEUED: "queued",
    tasks_pb2.TASK_STATE_LEASED: "leased",
    tasks_pb2.TASK_STATE_IN_REVIEW: "in_review",
    tasks_pb2.TASK_STATE_COMPLETED: "completed",
}


class SpanLabel(BaseModel):
    start: int = Field(ge=0, le=MAX_INDEX)
    end: int = Field(ge=0, le=MAX_INDEX)
    label: str = Field(min_length=1, max_length=64)


class Suggestion(BaseModel):
    # "span": a span label on [start, end); "class": one of the project's
    # classes for the whole task, with no offsets.
    kind: Literal["span", "class"]
    start: int | None
    end: int | None
    label: str
    source: str
    score: float

    @classmethod
    def from_proto(cls, s: tasks_pb2.Suggestion) -> Suggestion:
        spanned = s.HasField("span")
        return cls(
            kind="span" if spanned else "class",
            start=s.span.start if spanned else None,
            end=s.span.end if spanned else None,
            label=s.label,
            source=s.source,
            score=s.score,
        )


class PageImage(BaseModel):
    page: int
    width: int
    height: int


class RelationIn(BaseModel):
    from_: int = Field(alias="from", ge=0, le=MAX_INDEX)
    to: int = Field(ge=0, le=MAX_INDEX)
    label: str = Field(min_length=1, max_length=64)

    model_config = ConfigDict(populate_by_name=True)


class BoxIn(BaseModel):
    page: int = Field(ge=1, le=MAX_INDEX)
    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    width: float = Field(gt=0, le=1)
    height: float = Field(gt=0, le=1)
    label: str = Field(min_length=1, max_length=64)


class AnnotationIn(BaseModel):
    spans: list[SpanLabel] = Field(default=[], max_length=10_000)
    classes: list[str] = Field(default=[], max_length=500)
    relations: list[RelationIn] = Field(default=[], max_length=10_000)
    boxes: list[BoxIn] = Field(default=[], max_length=10_000)
    fields: dict[str, str] = Field(default={}, max_length=100)
    # Time spent on the task, as the client measured it.
    seconds: float = Field(default=0.0, ge=0, le=86_400)
    suggestions_accepted: int = Field(default=0, ge=0, le=MAX_INDEX)
    suggestions_rejected: int = Field(default=0, ge=0, le=MAX_INDEX)

    def to_proto(self) -> common_pb2.AnnotationContent:
        return common_pb2.AnnotationContent(
            spans=[
                common_pb2.SpanLabel(
                    span=common_pb2.Span(start=s.start, end=s.end), label=s.label
                )
                for s in self.spans
            ],
            classes=self.classes,
            relations=[
                common_pb2.Relation(from_span=r.from_, to_span=r.to, label=r.label)
                for r in self.relations
            ],
            boxes=[common_pb2.Box(**b.model_dump()) for b in self.boxes],
            fields=self.fields,
            seconds=self.seconds,
            suggestions_accepted=self.suggestions_accepted,
            suggestions_rejected=self.suggestions_rejected,
        )


class Annotation(BaseModel):
    id: str
    task_id: str
    project_id: str
    document_id: str
    text_sha256: str
    annotator: str
    annotator_name: str | None = None
    kind: str
    version: int
    source_annotation_id: str
    spans: list[SpanLabel]
    classes: list[str]
    relations: list[RelationIn]
    boxes: list[BoxIn]
    fields: dict[str, str]
    seconds: float
    suggestions_accepted: int
    suggestions_rejected: int
    created_at: str | None

    @classmethod
    def from_proto(
        cls, a: common_pb2.Annotation, annotator_name: str | None = None
    ) -> Annotation:
        c = a.content
        return cls(
            id=a.id,
            task_id=a.task_id,
            project_id=a.project_id,
            document_id=a.document_id,
            text_sha256=a.text_sha256,
            annotator=a.annotator,
            annotator_name=annotator_name,
            kind=a.kind,
            version=a.version,
            source_annotation_id=a.source_annotation_id,
            spans=[
                SpanLabel(start=s.span.start, end=s.span.end, label=s.label)
                for s in c.spans
            ],
            classes=list(c.classes),
            relations=[
                RelationIn.model_validate(
                    {"from": r.from_span, "to": r.to_span, "label": r.label}
                )
                for r in c.relations
            ],
            boxes=[
                BoxIn(
                    page=b.page,
                    x=b.x,
                    y=b.y,
                    width=b.width,
                    height=b.height,
                    label=b.label,
                )
                for b in c.boxes
            ],
            fields=dict(c.fields),
            seconds=c.seconds,
            suggestions_accepted=c.suggestions_accepted,
            suggestions_rejected=c.suggestions_rejected,
            created_at=_time(a.created_at),
        )


class AnnotationList(BaseModel):
    annotations: list[Annotation]
    total: int


class Task(BaseModel):
    id: str
    project_id: str
    document_id: str
    state: str
    priority: int
    overlap: int
    submitted: int
    text_sha256: str
    text_length: int
    window_start: int
    window_end: int
    lease_holder: str
    lease_expires_at: str | None
    # The redacted text of the window, present only when the caller may read it.
    text: str | None
    suggestions: list[Suggestion]
    pages: list[PageImage]
    # The caller's own part in the task.
    my_state: str
    # Set when a reviewer returned the caller's answer.
    review_comment: str | None
    # The caller's own current answer, when the task came back to them.
    annotation: Annotation | None = None
    # How the caller reviews the task's suggestions, "edit" or "binary":
    # given with a leased task that has suggestions, else null.
    review_mode: str | None = None
    # [start, end] of each word or punctuation token, with the text.
    tokens: list[tuple[int, int]]
    created_at: str | None
    # How a synthetic example was made ("entity_swap", "template",
    # "tabular") and from which task; empty for real documents' tasks.
    synthetic: str = ""
    synthetic_source_task_id: str = ""

    @classmethod
    def from_proto(
        cls,
        t: tasks_pb2.Task,
        with_text: bool,
        annotation: common_pb2.Annotation | None = None,
        review_mode: str | None = None,
    ) -> Task:
        return cls(
            id=t.id,
            project_id=t.project_id,
            document_id=t.document_id,
            state=_TASK_STATES.get(t.state, "unknown"),
            priority=t.priority,
            overlap=t.overlap,
            submitted=t.submitted,
            text_sha256=t.text_sha256,
            text_length=t.text_length,
            window_start=t.window_start,
            window_end=t.window_end,
            lease_holder=t.lease_holder,
            lease_expires_at=_time(t.lease_expires_at),
            text=t.text if with_text else None,
            suggestions=[Suggestion.from_proto(s) for s in t.suggestions],
            pages=[
                PageImage(page=p.page, width=p.width, height=p.height) for p in t.pages
            ],
            my_state=t.my_state,
            synthetic=t.synthetic,
            synthetic_source_task_id=t.synthetic_source_task_id,
            review_comment=t.review_comment or None,
            annotation=Annotation.from_proto(annotation) if annotation else None,
            review_mode=review_mode,
            tokens=[(s.start, s.end) for s in t.tokens] if with_text else [],
            created_at=_time(t.created_at),
        )


class TaskList(BaseModel):
    tasks: list[Task]
    total: int


class SkipIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class TaskPatch(BaseModel):
    priority: int = Field(ge=-1_000_000, le=1_000_000)


class AssignIn(BaseModel):
    annotator: str = Field(default="", max_length=128)
    username: str = Field(default="", max_length=64)
    count: int = Field(ge=1, le=10_000)


class Assigned(BaseModel):
    assigned: int


class ReviewIn(BaseModel):
    decision: Literal["accept", "reject", "correct"]
    annotation_id: str = Field(default="", max_length=128)
    comment: str = Field(default="", max_length=2000)
    annotation: AnnotationIn | None = None


class Review(BaseModel):
    id: str
    task_id: str
    decision: str
    annotation_id: str
    gold_annotation_id: str
    comment: str
    reviewer: str
    created_at: str | None

    @classmethod
    def from_proto(cls, r: labeling_pb2.Review) -> Review:
        return cls(
            id=r.id,
            task_id=r.task_id,
            decision=r.decision,
            annotation_id=r.annotation_id,
            gold_annotation_id=r.gold_annotation_id,
            comment=r.comment,
            reviewer=r.reviewer,
            created_at=_time(r.created_at),
        )


class ReviewTask(BaseModel):
    task: Task
    annotations: list[Annotation]


class TaskCounts(BaseModel):
    total: int
    open: int
    in_progress: int
    in_review: int
    completed: int


class AnnotatorFigures(BaseModel):
    subject: str
    username: str
    submitted: int
    skipped: int
    leased: int
    seconds_per_task: float
    per_hour: float
    # Agreement with gold by measure, over gold_tasks tasks.
    gold: dict[str, float]
    gold_tasks: int
    # The main gold measure (class accuracy or span F1), when there is one.
    gold_agreement: float | None


class ReviewCounts(BaseModel):
    accepted: int
    rejected: int
    corrected: int
    gold_tasks: int


class ProjectStats(BaseModel):
    tasks: TaskCounts
    queue_depth: int
    annotators: list[AnnotatorFigures]
    agreement: dict[str, Any]
    reviews: ReviewCounts


class ExportFilterIn(BaseModel):
    reviewed_only: bool = False
    gold_only: bool = False
    labels: list[str] = Field(default_factory=list, max_length=500)
    since: datetime | None = None
    until: datetime | None = None
    exclude_synthetic: bool = False


class SplitRatiosIn(BaseModel):
    train: float = Field(default=0.8, ge=0)
    dev: float = Field(default=0.1, ge=0)
    test: float = Field(default=0.1, ge=0)


class ExportIn(BaseModel):
    name: str = Field(default="", max_length=200)
    format: str = "jsonl"
    # jsonl, label-studio, prodigy, spacy, conll, parquet, coco, csv
    formats: list[str] = Field(default_factory=list, max_length=16)
    filter: ExportFilterIn = Field(default_factory=ExportFilterIn)
    splits: SplitRatiosIn | None = None
    intended_use: str = Field(default="", max_length=4000)


class ExportFile(BaseModel):
    name: str
    sha256: str
    size_bytes: int


class ExportFilter(BaseModel):
    reviewed_only: bool
    gold_only: bool
    labels: list[str]
    since: str | None
    until: str | None
    exclude_synthetic: bool


_EXPORT_STATES = {
    export_pb2.EXPORT_STATE_BUILDING: "building",
    export_pb2.EXPORT_STATE_READY: "ready",
    export_pb2.EXPORT_STATE_FAILED: "failed",
}


class Export(BaseModel):
    id: str
    project_id: str
    name: str
    # "building", "ready" or "failed" (see error_code).
    state: str
    format: str
    formats: list[str]
    filter: ExportFilter
    splits: dict[str, float]
    progress_done: int
    progress_total: int
    error_code: str
    files: list[ExportFile]
    annotation_count: int
    split_counts: dict[str, int]
    manifest_sha256: str
    manifest_signature: str
    key_id: str
    created_at: str | None
    finished_at: str | None

    @classmethod
    def from_proto(cls, e: export_pb2.Export) -> Export:
        f = e.filter
        return cls(
            id=e.id,
            project_id=e.project_id,
            name=e.name,
            state=_EXPORT_STATES.get(e.state, "unknown"),
            format=e.format,
            formats=list(e.formats) or [e.format],
            filter=ExportFilter(
                reviewed_only=f.reviewed_only,
                gold_only=f.gold_only,
                labels=list(f.labels),
                since=_time(f.since) if f.HasField("since") else None,
                until=_time(f.until) if f.HasField("until") else None,
                exclude_synthetic=f.exclude_synthetic,
            ),
            splits={
                "train": e.splits.train,
                "dev": e.splits.dev,
                "test": e.splits.test,
            },
            progress_done=e.progress_done,
            progress_total=e.progress_total,
            error_code=e.error_code,
            files=[
                ExportFile(name=f.name, sha256=f.sha256, size_bytes=f.size_bytes)
                for f in e.files
            ],
            annotation_count=e.annotation_count,
            split_counts=dict(e.split_counts),
            manifest_sha256=e.manifest_sha256,
            manifest_signature=e.manifest_signature,
            key_id=e.key_id,
            created_at=_time(e.created_at),
            finished_at=_time(e.finished_at) if e.HasField("finished_at") else None,
        )


_IMPORT_STATES = {
    export_pb2.IMPORT_STATE_RUNNING: "running",
    export_pb2.IMPORT_STATE_DONE: "done",
    export_pb2.IMPORT_STATE_FAILED: "failed",
}


class ImportJob(BaseModel):
    id: str
    project_id: str
    format: str
    # "running", "done" or "failed" (see error_code).
    state: str
    items: int
    documents: int
    answers: int
    annotators: int
    # Predicted spans kept as suggestions.
    suggestions: int
    # What was not carried over, by reason.
    left_out: dict[str, int]
    progress_done: int
    progress_total: int
    error_code: str
    document_ids: list[str]
    created_at: str | None
    finished_at: str | None

    @classmethod
    def from_proto(cls, j: export_pb2.ImportJob) -> ImportJob:
        return cls(
            id=j.id,
            project_id=j.project_id,
            format=j.format,
            state=_IMPORT_STATES.get(j.state, "unknown"),
            items=j.items,
            documents=j.documents,
            answers=j.answers,
            annotators=j.annotators,
            suggestions=j.suggestions,
            left_out=dict(j.left_out),
            progress_done=j.progress_done,
            progress_total=j.progress_total,
            error_code=j.error_code,
            document_ids=list(j.document_ids),
            created_at=_time(j.created_at),
            finished_at=_time(j.finished_at) if j.HasField("finished_at") else None,
        )


class ExportList(BaseModel):
    exports: list[Export]
    total: int


_OUTCOMES = {
    common_pb2.OUTCOME_SUCCESS: "success",
    common_pb2.OUTCOME_DENIED: "denied",
    common_pb2.OUTCOME_ERROR: "error",
}


class Actor(BaseModel):
    subject: str
    username: str
    roles: list[str]
    client_address: str
    display_name: str = ""
    user_agent: str = ""


class Resource(BaseModel):
    type: str
    id: str
    project_id: str


class AuditEvent(BaseModel):
    id: str
    sequence: int
    time: str | None
    actor: Actor
    action: str
    resource: Resource
    outcome: str
    reason: str
    request_id: str
    service: str
    details: dict[str, str]
    prev_hash: str
    hash: str
    documents: list[str] = []

    @classmethod
    def from_proto(cls, e: common_pb2.AuditEvent) -> AuditEvent:
        return cls(
            id=e.id,
            sequence=e.sequence,
            time=_time(e.time),
            actor=Actor(
                subject=e.actor.subject,
                username=e.actor.username,
                roles=list(e.actor.roles),
                client_address=e.actor.client_address,
                display_name=e.actor.display_name,
                user_agent=e.actor.user_agent,
            ),
            action=e.action,
            resource=Resource(
                type=e.resource.type, id=e.resource.id, project_id=e.resource.project_id
            ),
            outcome=_OUTCOMES.get(e.outcome, "unknown"),
            reason=e.reason,
            request_id=e.request_id,
            service=e.service,
            details=dict(e.details),
            prev_hash=e.prev_hash,
            hash=e.hash,
            documents=list(e.documents),
        )


class AuditEventList(BaseModel):
    events: list[AuditEvent]
    total: int


class ChainVerification(BaseModel):
    is_intact: bool
    event_count: int
    damaged_position: int
    problem: str
    head_hash: str
    # changed, deleted, inserted, reordered or checkpoint; empty when intact.
    damage: str
    checkpoint_count: int

    @classmethod
    def from_proto(cls, v: audit_pb2.VerifyChainResponse) -> ChainVerification:
        return cls(
            is_intact=v.is_intact,
            event_count=v.event_count,
            damaged_position=v.damaged_position,
            problem=v.problem,
            head_hash=v.head_hash,
            damage=v.damage,
            checkpoint_count=v.checkpoint_count,
        )


class AuditStory(BaseModel):
    """A document's lineage or a person's activity, oldest event first."""

    events: list[AuditEvent]
    is_truncated: bool

    @classmethod
    def from_proto(cls, v: audit_pb2.LineageResponse) -> AuditStory:
        return cls(
            events=[AuditEvent.from_proto(e) for e in v.events],
            is_truncated=v.is_truncated,
        )


class Checkpoint(BaseModel):
    number: int
    tree_size: int
    root_hash: str
    chain_hash: str
    time: str | None
    key_id: str
    segment_sha256: str
    # Exactly the bytes that were signed, and the Ed25519 signature (base64).
    statement: str
    signature: str

    @classmethod
    def from_proto(cls, c: audit_pb2.SignedCheckpoint) -> Checkpoint:
        return cls(
            number=c.number,
            tree_size=c.tree_size,
            root_hash=c.root_hash,
            chain_hash=c.chain_hash,
            time=_time(c.time),
            key_id=c.key_id,
            segment_sha256=c.segment_sha256,
            statement=c.statement,
            signature=c.signature,
        )


class CheckpointList(BaseModel):
    checkpoints: list[Checkpoint]
    public_key_pem: str


class InclusionProof(BaseModel):
    event_id: str
    sequence: int
    entry_hash: str
    audit_path: list[str]
    checkpoint: Checkpoint


class ConsistencyProof(BaseModel):
    first: Checkpoint
    second: Checkpoint
    proof: list[str]


class Me(BaseModel):
    subject: str
    username: str
    roles: list[str]
    # Signed in through the web page: send this back in X-CSRF-Token with
    # every POST, PUT, PATCH and DELETE.
    csrf_token: str | None = None


class SynthesizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # "entity_swap", "template" or "tabular"; see docs/synthetic-examples.md.
    method: str = Field(max_length=32)
    count: int = Field(ge=1, le=1000)
    seed: int = Field(default=0, ge=0, le=MAX_INDEX)


class Synthesized(BaseModel):
    task_ids: list[str]
    # Real examples the synthetic ones were made from.
    sources: int


class ServiceAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Lowercase letters, digits and dashes; its username becomes svc-<name>.
    name: str = Field(min_length=1, max_length=48)
    roles: list[str] = Field(min_length=1, max_length=8)


class ServiceAccountOut(BaseModel):
    client_id: str
    username: str
    roles: list[str]
    created_at: str
    # Only in the answer that created it: keep it in a secret store.
    client_secret: str | None = None

    @classmethod
    def of(
        cls, account: ServiceAccount, secret: str | None = None
    ) -> ServiceAccountOut:
        return cls(
            client_id=account.client_id,
            username=account.user.username,
            roles=sorted(account.roles),
            created_at=account.created_at,
            client_secret=secret,
        )
