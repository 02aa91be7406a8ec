"""Annotation and review rules. Pure: no I/O."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from strongroom.services.common.errors import InvalidArgument

MAX_SPANS = 10_000
MAX_BOXES = 10_000
MAX_RELATIONS = 10_000
MAX_FIELD_CHARS = 20_000
ANSWER = "answer"
GOLD = "gold"
ACCEPT = "accept"
CORRECT = "correct"
REJECT = "reject"


@dataclass(frozen=True, order=True)
class SpanLabel:
    """A label on the half-open character range [start, end) of a document's
    text."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Relation:
    from_span: int
    to_span: int
    label: str


@dataclass(frozen=True)
class BoxLabel:
    """A box on page ``page`` as fractions of the page's width and height."""

    page: int
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Content:
    spans: tuple[SpanLabel, ...] = ()
    classes: tuple[str, ...] = ()
    relations: tuple[Relation, ...] = ()
    boxes: tuple[BoxLabel, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    suggestions_accepted: int = 0
    suggestions_rejected: int = 0


@dataclass(frozen=True)
class Schema:
    """What a project lets annotators say, as the labeling service checks it."""

    spans: Collection[str] = ()
    classes: Collection[str] = ()
    multi_label: bool = False
    relations: Collection[str] = ()
    boxes: Collection[str] = ()
    fields: Collection[str] = ()


@dataclass(frozen=True)
class Annotation:
    id: str
    task_id: str
    project_id: str
    document_id: str
    text_sha256: str
    annotator: str
    content: Content
    created_at: str
    version: int = 1
    kind: str = ANSWER
    source_annotation_id: str = ""

    @property
    def spans(self) -> tuple[SpanLabel, ...]:
        return self.content.spans


@dataclass(frozen=True)
class Review:
    id: str
    task_id: str
    project_id: str
    decision: str
    annotation_id: str
    gold_annotation_id: str
    comment: str
    reviewer: str
    created_at: str


def check_content(
    content: Content,
    schema: Schema,
    window: tuple[int, int],
    pages: Collection[int] = (),
) -> Content:
    """Validate an answer against the project's schema and the task's window;
    return it with spans sorted (relations renumbered to match).

    Raises:
        InvalidArgument: a span, class, relation, box or field is malformed,
            outside the task, uses a label the project does not define, or is
            given twice.
    """
    spans = check_spans(content.spans, window, schema.spans)
    order = sorted(range(len(content.spans)), key=lambda i: content.spans[i])
    renumber = {old: new for new, old in enumerate(order)}
    classes = _check_classes(content.classes, schema)
    relations = _check_relations(content.relations, len(spans), schema, renumber)
    boxes = _check_boxes(content.boxes, schema, pages)
    fields = _check_fields(content.fields, schema)
    if not math.isfinite(content.seconds) or not 0 <= content.seconds <= 86_400:
        raise InvalidArgument(
            "Seconds spent must lie between 0 and 86,400.", code="seconds_invalid"
        )
    if content.suggestions_accepted < 0 or content.suggestions_rejected < 0:
        raise InvalidArgument(
            "Accepted and rejected suggestions cannot be negative.",
            code="suggestions_invalid",
        )
    return Content(
        spans=spans,
        classes=classes,
        relations=relations,
        boxes=boxes,
        fields=fields,
        seconds=content.seconds,
        suggestions_accepted=content.suggestions_accepted,
        suggestions_rejected=content.suggestions_rejected,
    )


def check_spans(
    spans: Sequence[SpanLabel], window: tuple[int, int], labels: Collection[str]
) -> tuple[SpanLabel, ...]:
    """Validate spans against the window of text they label; return them sorted.

    Raises:
        InvalidArgument: a span is empty, reversed, outside the window,
            carries a label the project does not have, or is given twice.
    """
    if len(spans) > MAX_SPANS:
        raise InvalidArgument(
            f"An annotation holds at most {MAX_SPANS} spans.", code="too_many_spans"
        )
    start, end = window
    for index, span in enumerate(spans):
        if not start <= span.start < span.end <= end:
            raise InvalidArgument(
                f"Span {index + 1} must satisfy {start} <= start < end <= {end}; "
                f"got [{span.start}, {span.end}).",
                code="span_out_of_range",
            )
        if span.label not in labels:
            raise InvalidArgument(
                f"Span {index + 1} has label {span.label!r}, which the "
                "project does not define.",
                code="label_unknown",
            )
    ordered = tuple(sorted(spans))
    if len(set(ordered)) != len(ordered):
        raise InvalidArgument(
            "The same span and label are given twice.", code="span_duplicate"
        )
    return ordered


def _check_classes(classes: Sequence[str], schema: Schema) -> tuple[str, ...]:
    unknown = [c for c in classes if c not in schema.classes]
    if unknown:
        raise InvalidArgument(
            f"Class {unknown[0]!r} is not one of the project's classes.",
            code="class_unknown",
        )
    if len(set(classes)) != len(classes):
        raise InvalidArgument("A class is given twice.", code="class_duplicate")
    if len(classes) > 1 and not schema.multi_label:
        raise InvalidArgument(
            "This project takes one class per task.", code="single_class_only"
        )
    return tuple(sorted(classes))


def _check_relations(
    relations: Sequence[Relation],
    span_count: int,
    schema: Schema,
    renumber: Mapping[int, int],
) -> tuple[Relation, ...]:
    if len(relations) > MAX_RELATIONS:
        raise InvalidArgument(
            f"An annotation holds at most {MAX_RELATIONS} relations.",
            code="too_many_relations",
        )
    checked = []
    for index, relation in enumerate(relations):
        ends = (relation.from_span, relation.to_span)
        if not all(0 <= end < span_count for end in ends) or ends[0] == ends[1]:
            raise InvalidArgument(
                f"Relation {index + 1} must join two different spans of the "
                "annotation, by their positions in its span list.",
                code="relation_invalid",
            )
        if relation.label not in schema.relations:
            raise InvalidArgument(
                f"Relation {index + 1} has label {relation.label!r}, which the "
                "project does not define.",
                code="label_unknown",
            )
        checked.append(Relation(renumber[ends[0]], renumber[ends[1]], relation.label))
    if len(set(checked)) != len(checked):
        raise InvalidArgument(
            "The same relation is given twice.", code="relation_duplicate"
        )
    return tuple(checked)


def _check_boxes(
    boxes: Sequence[BoxLabel], schema: Schema, pages: Collection[int]
) -> tuple[BoxLabel, ...]:
    if len(boxes) > MAX_BOXES:
        raise InvalidArgument(
            f"An annotation holds at most {MAX_BOXES} boxes.", code="too_many_boxes"
        )
    for index, box in enumerate(boxes):
        numbers = (box.x, box.y, box.width, box.height)
        inside = all(math.isfinite(n) for n in numbers) and (
            box.x >= 0
            and box.y >= 0
            and box.width > 0
            and box.height > 0
            and box.x + box.width <= 1 + 1e-9
            and box.y + box.height <= 1 + 1e-9
        )
        if not inside:
            raise InvalidArgument(
                f"Box {index + 1} must lie on its page: x, y, width and height "
                "are fractions of the page, with a positive size.",
                code="box_out_of_range",
            )
        if box.page not in pages:
            raise InvalidArgument(
                f"Box {index + 1} is on page {box.page}, which the task does not show.",
                code="box_page_unknown",
            )
        if box.label not in schema.boxes:
            raise InvalidArgument(
                f"Box {index + 1} has label {box.label!r}, which the project does "
                "not define.",
                code="label_unknown",
            )
    return tuple(boxes)


def _check_fields(fields: Mapping[str, str], schema: Schema) -> dict[str, str]:
    for name, value in fields.items():
        if name not in schema.fields:
            raise InvalidArgument(
                f"Field {name!r} is not one of the project's fields.",
                code="field_unknown",
            )
        if len(value) > MAX_FIELD_CHARS:
            raise InvalidArgument(
                f"Field {name!r} holds at most {MAX_FIELD_CHARS} characters.",
                code="field_too_long",
            )
    return {name: value for name, value in sorted(fields.items()) if value}


def check_review(
    decision: str, annotation_id: str, comment: str, answers: Collection[str]
) -> None:
    """Raises: InvalidArgument: the decision does not fit the task's answers."""
    if decision not in (ACCEPT, CORRECT, REJECT):
        raise InvalidArgument(
            "A review decision is 'accept', 'correct' or 'reject'.",
            code="decision_invalid",
        )
    if decision in (ACCEPT, REJECT) and annotation_id not in answers:
        raise InvalidArgument(
            "Name one of the task's current answers to accept or reject.",
            code="annotation_unknown",
        )
    if decision == REJECT and not comment.strip():
        raise InvalidArgument(
            "Rejecting an answer needs a comment for its annotator.",
            code="comment_required",
        )
