"""Span and answer validation for annotations."""

from __future__ import annotations

import pytest

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.labeling.domain import (
    MAX_SPANS,
    Content,
    Schema,
    SpanLabel,
    check_content,
    check_spans,
)

LABELS = frozenset({"PERSON", "ORG"})
TEXT_LENGTH = 100


@pytest.mark.parametrize(
    "span",
    [
        SpanLabel(10, 5, "PERSON"),
        SpanLabel(7, 7, "PERSON"),
        SpanLabel(-1, 4, "PERSON"),
        SpanLabel(90, TEXT_LENGTH + 1, "PERSON"),
        SpanLabel(TEXT_LENGTH, TEXT_LENGTH + 1, "PERSON"),
    ],
    ids=["reversed", "empty", "negative", "past-end", "starts-at-end"],
)
def test_refuses_span_outside_text(span: SpanLabel) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_spans([SpanLabel(0, 3, "ORG"), span], (0, TEXT_LENGTH), LABELS)

    assert caught.value.code == "span_out_of_range"
    assert "Span 2" in caught.value.message


def test_refuses_unknown_label() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_spans([SpanLabel(0, 3, "LOCATION")], (0, TEXT_LENGTH), LABELS)

    assert caught.value.code == "label_unknown"


def test_refuses_duplicate_span() -> None:
    spans = [SpanLabel(0, 3, "ORG"), SpanLabel(5, 9, "PERSON"), SpanLabel(0, 3, "ORG")]

    with pytest.raises(InvalidArgument) as caught:
        check_spans(spans, (0, TEXT_LENGTH), LABELS)

    assert caught.value.code == "span_duplicate"


def test_refuses_more_than_max_spans() -> None:
    spans = [SpanLabel(0, 1, "ORG")] * (MAX_SPANS + 1)

    with pytest.raises(InvalidArgument) as caught:
        check_spans(spans, (0, TEXT_LENGTH), LABELS)

    assert caught.value.code == "too_many_spans"


def test_accepts_max_spans() -> None:
    spans = [SpanLabel(i, i + 1, "ORG") for i in range(MAX_SPANS)]

    assert len(check_spans(spans, (0, MAX_SPANS), LABELS)) == MAX_SPANS


def test_returns_valid_spans_sorted() -> None:
    spans = [
        SpanLabel(40, 50, "PERSON"),
        SpanLabel(0, TEXT_LENGTH, "ORG"),
        SpanLabel(0, 5, "PERSON"),
        SpanLabel(0, 5, "ORG"),
    ]

    checked = check_spans(spans, (0, TEXT_LENGTH), LABELS)

    assert checked == (
        SpanLabel(0, 5, "ORG"),
        SpanLabel(0, 5, "PERSON"),
        SpanLabel(0, TEXT_LENGTH, "ORG"),
        SpanLabel(40, 50, "PERSON"),
    )


def test_accepts_no_spans() -> None:
    assert check_spans([], (0, TEXT_LENGTH), LABELS) == ()


def test_an_answer_keeps_its_accepted_and_rejected_suggestion_counts() -> None:
    given = Content(
        spans=(SpanLabel(0, 3, "ORG"),), suggestions_accepted=1, suggestions_rejected=2
    )

    checked = check_content(given, Schema(spans=LABELS), (0, TEXT_LENGTH))

    assert (checked.suggestions_accepted, checked.suggestions_rejected) == (1, 2)


@pytest.mark.parametrize(
    "counts",
    [{"suggestions_accepted": -1}, {"suggestions_rejected": -1}],
    ids=["accepted", "rejected"],
)
def test_refuses_negative_suggestion_counts(counts: dict[str, int]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_content(Content(**counts), Schema(spans=LABELS), (0, TEXT_LENGTH))

    assert caught.value.code == "suggestions_invalid"
