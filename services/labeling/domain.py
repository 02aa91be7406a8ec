"""Annotation rules. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from strongroom.services.common.errors import InvalidArgument

MAX_SPANS = 10_000


@dataclass(frozen=True, order=True)
class SpanLabel:
    """A label on the half-open character range [start, end) of a task's text."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Annotation:
    id: str
    task_id: str
    project_id: str
    document_id: str
    text_sha256: str
    annotator: str
    spans: tuple[SpanLabel, ...]
    created_at: str


def check_spans(
    spans: Sequence[SpanLabel], text_length: int, labels: Collection[str]
) -> tuple[SpanLabel, ...]:
    """Validate spans against the text they label; return them sorted.

    Raises:
        InvalidArgument: a span is empty, reversed, outside the text, carries
            a label the project does not have, or is given twice.
    """
    if len(spans) > MAX_SPANS:
        raise InvalidArgument(
            f"An annotation holds at most {MAX_SPANS} spans.", code="too_many_spans"
        )
    for index, span in enumerate(spans):
        if not 0 <= span.start < span.end <= text_length:
            raise InvalidArgument(
                f"Span {index + 1} must satisfy 0 <= start < end <= {text_length}; "
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
