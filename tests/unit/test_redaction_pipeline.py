"""Cleaning, detection, policy and corrections together, on offsets."""

from __future__ import annotations

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
