"""Cleaning, detection, policy and corrections together, on offsets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.services.redaction import pipeline
from strongroom.services.redaction.policy import Policy
from strongroom.services.redaction.surrogates import SurrogateBook

KEY = bytes(range(32))
TEXT = "Patient  Maria Lopez, SSN 219-09-9999, code plum-seven, seen 03/14/2021."


def _run(policy: Policy, corrections: list[pipeline.Correction]) -> pipeline.Outcome:
    return pipeline.run(TEXT, policy, SurrogateBook(KEY), corrections=corrections)


def test_findings_are_reported_on_the_original_and_spans_on_the_output() -> None:
    outcome = _run(Policy(), [])

    assert [TEXT[f.start : f.end] for f in outcome.original_findings] == [
        "Maria Lopez",
        "219-09-9999",
        "03/14/2021",
    ]
    out = outcome.redaction.text
    assert [out[s:e] for _, s, e in outcome.redaction.output_spans] == [
        "[NAME]",
        "[US_SSN]",
        "[DATE]",
    ]


def test_reviewer_adds_a_missed_value_and_undoes_a_false_one() -> None:
    first = _run(Policy(), [])
    out = first.redaction.text
    start = out.index("plum-seven")
    added, _ = pipeline.redacted_to_original(first, start, start + 10)
    assert added is not None and TEXT[added[0] : added[1]] == "plum-seven"
    mask = out.index("[DATE]")
    _, index = pipeline.redacted_to_original(first, mask, mask + 6)
    assert index is not None
    date = first.original_findings[index]

    corrections = [
        pipeline.Correction(pipeline.ADD, *added, "ID_NUMBER"),
        pipeline.Correction(pipeline.REMOVE, date.start, date.end, date.type),
    ]
    second = _run(Policy(), corrections)

    assert "plum-seven" not in second.redaction.text
    assert "[ID_NUMBER]" in second.redaction.text
    assert "03/14/2021" in second.redaction.text
    assert any(f.detector == "reviewer" for f in second.findings)


def test_policy_actions_per_type() -> None:
    policy = Policy(
        default_action="surrogate",
        actions={"US_SSN": "hash", "DATE": "keep", "NAME": "review"},
    )
    outcome = _run(policy, [])

    out = outcome.redaction.text
    assert "[NAME]" in out and outcome.needs_review
    assert "[US_SSN:" in out and "219-09-9999" not in out
    assert "03/14/2021" in out
    assert outcome.actions == {"review": 1, "hash": 1, "keep": 1}


def test_original_spans_land_on_the_redacted_text() -> None:
    outcome = _run(Policy(), [])
    out = outcome.redaction.text

    def mapped(words: str) -> tuple[str, bool]:
        start = TEXT.index(words)
        span, widened = pipeline.original_to_redacted(
            outcome, start, start + len(words)
        )
        assert span is not None
        return out[span[0] : span[1]], widened

    # Text outside identifiers keeps its words, wherever replacements moved it.
    assert mapped("code plum-seven") == ("code plum-seven", False)
    assert mapped("seen") == ("seen", False)
    # A span that is an identifier becomes its replacement.
    assert mapped("Maria Lopez") == ("[NAME]", False)
    assert mapped("SSN 219-09-9999") == ("SSN [US_SSN]", False)
    # An edge inside an identifier moves out to the replacement's edge.
    assert mapped("Lopez, SSN") == ("[NAME], SSN", True)
    assert mapped("Patient  Maria") == ("Patient [NAME]", True)


WORDS = ("aspirin", "eased", "the", "migraine", "dose", "raised", "on", "review")
IDENTIFIERS = ("219-09-9999", "pat@example.org", "(415) 555-0134")


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(
        st.one_of(st.sampled_from(WORDS), st.sampled_from(IDENTIFIERS)),
        min_size=2,
        max_size=14,
    ),
    data=st.data(),
)
def test_mapped_spans_keep_their_words_and_their_order(
    parts: list[str], data: st.DataObject
) -> None:
    text = " ".join(parts) + "."
    outcome = pipeline.run(text, Policy(), SurrogateBook(KEY))
    out = outcome.redaction.text
    starts = [0]
    for part in parts[:-1]:
        starts.append(starts[-1] + len(part) + 1)
    words = [(s, s + len(p)) for s, p in zip(starts, parts, strict=True) if p in WORDS]
    if not words:
        return
    chosen = sorted(data.draw(st.sets(st.sampled_from(words), min_size=1)))
    placed = []
    for start, end in chosen:
        span, widened = pipeline.original_to_redacted(outcome, start, end)
        assert span is not None and not widened
        # A word outside every identifier is the same word in the redacted text.
        assert out[span[0] : span[1]] == text[start:end]
        placed.append(span)
    assert placed == sorted(placed), "mapping keeps the order of spans"
    # A span over an identifier lands on its replacement, whole.
    for start, part in zip(starts, parts, strict=True):
        if part in IDENTIFIERS:
            span, _ = pipeline.original_to_redacted(outcome, start, start + len(part))
            assert span is not None
            assert out[span[0] : span[1]].startswith("[")
            assert out[span[0] : span[1]].endswith("]")
