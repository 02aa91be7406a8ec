"""One document through cleaning, detection, corrections and the policy. Pure.

Findings are found on the cleaned text and reported on the original (via the
cleaning's offset map), which is also what page images and reviewers'
corrections refer to. The redacted text is the cleaned text with each
finding rewritten as its project's policy says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from strongroom.services.redaction import cleaning
from strongroom.services.redaction.detectors import NAME, Finding
from strongroom.services.redaction.domain import Redaction, replace, word_lists
from strongroom.services.redaction.domain import find_identifiers as detect
from strongroom.services.redaction.policy import (
    HASH,
    KEEP,
    MASK,
    REVIEW,
    SURROGATE,
    Policy,
)
from strongroom.services.redaction.surrogates import SurrogateBook, keyed_hash

ADD = "add"
REMOVE = "remove"
REVIEWER = "reviewer"


@dataclass(frozen=True)
class Correction:
    """A reviewer's change, on the original text's offsets."""

    action: str
    start: int
    end: int
    type: str = ""


@dataclass(frozen=True)
class Outcome:
    cleaned: cleaning.Cleaned
    # On the cleaned text, and the same findings on the original text.
    findings: tuple[Finding, ...]
    original_findings: tuple[Finding, ...]
    redaction: Redaction
    actions: dict[str, int]
    needs_review: bool
    quality: cleaning.Quality


def run(
    text: str,
    policy: Policy,
    book: SurrogateBook,
    *,
    entities: Callable[[str], Sequence[Finding]] | None = None,
    corrections: Sequence[Correction] = (),
    ocr_confidences: Sequence[float] = (),
    subject: str = "",
) -> Outcome:
    """``entities`` runs the named-entity model on the cleaned text."""
    cleaned = cleaning.clean(text)
    lists = word_lists(policy.allow, policy.deny)
    model_findings = entities(cleaned.text) if entities is not None else ()
    found = detect(cleaned.text, entities=model_findings, lists=lists)
    found = _apply_corrections(found, corrections, cleaned.offsets)
    # Dates of one subject move together: the subject is the first person named.
    subject = subject or next(
        (cleaned.text[f.start : f.end] for f in found if f.type == NAME), ""
    )
    counts: Counter[str] = Counter()
    needs_review = False

    def rewrite(finding: Finding, value: str) -> str | None:
        nonlocal needs_review
        action = policy.action_for(finding.type)
        counts[action] += 1
        if action == KEEP:
            return None
        if action == SURROGATE:
            return book.surrogate(finding, value, subject)
        if action == HASH:
            return keyed_hash(book.key, finding.type, value)
        if action == REVIEW:
            needs_review = True
        return f"[{finding.type}]"

    redaction = replace(cleaned.text, found, rewrite)
    original = tuple(
        Finding(f.type, *cleaned.offsets.span_to_original(f.start, f.end),
                f.confidence, f.detector)
        for f in found
    )  # fmt: skip
    return Outcome(
        cleaned=cleaned,
        findings=tuple(found),
        original_findings=original,
        redaction=redaction,
        actions=dict(counts),
        needs_review=needs_review,
        quality=cleaning.quality(cleaned.text, ocr_confidences),
    )


def _apply_corrections(
    found: list[Finding],
    corrections: Sequence[Correction],
    offsets: cleaning.OffsetMap,
) -> list[Finding]:
    if not corrections:
        return found
    kept = list(found)
    added: list[Finding] = []
    for correction in corrections:
        if correction.action == REMOVE:
            kept = [
                f
                for f in kept
                if not _overlaps(offsets.span_to_original(f.start, f.end), correction)
            ]
            added = [
                f
                for f in added
                if not _overlaps(offsets.span_to_original(f.start, f.end), correction)
            ]
        else:
            start, end = _to_cleaned(offsets, correction.start, correction.end)
            if end > start:
                added.append(Finding(correction.type, start, end, 1.0, REVIEWER))
    for new in added:
        kept = [f for f in kept if f.end <= new.start or f.start >= new.end]
        kept.append(new)
    return sorted(kept, key=lambda f: f.start)


def _overlaps(span: tuple[int, int], correction: Correction) -> bool:
    return span[0] < correction.end and correction.start < span[1]


def _to_cleaned(offsets: cleaning.OffsetMap, start: int, end: int) -> tuple[int, int]:
    """The cleaned span whose characters came from ``[start, end)`` of the original."""
    first = last = -1
    for out_start, src_start, length in offsets.runs:
        lo, hi = max(start, src_start), min(end, src_start + length)
        if lo < hi:
            if first < 0:
                first = out_start + lo - src_start
            last = out_start + hi - src_start
    return (first, last) if first >= 0 else (0, 0)


def redacted_to_original(
    outcome: Outcome, start: int, end: int
) -> tuple[tuple[int, int] | None, int | None]:
    """Map a span of the redacted text back.

    Returns the original span for text outside replacements, or the index of
    the finding whose replacement the span touches (for an undo).
    """
    delta = 0
    spans = outcome.redaction.output_spans
    for index, (finding, (_, out_start, out_end)) in enumerate(
        zip(outcome.findings, spans, strict=True)
    ):
        if start < out_end and out_start < end:
            return None, index
        if out_end <= start:
            delta += (out_end - out_start) - (finding.end - finding.start)
    span = outcome.cleaned.offsets.span_to_original(start - delta, end - delta)
    return span, None


def original_to_redacted(
    outcome: Outcome, start: int, end: int
) -> tuple[tuple[int, int] | None, bool]:
    """Map a span of the original text onto the redacted text.

    Returns the span (None when nothing of it survived cleaning) and whether
    it was widened: an edge inside a redacted identifier moves out to the
    edge of that identifier's replacement, since the characters it pointed at
    are gone.
    """
    clean_start, clean_end = _to_cleaned(outcome.cleaned.offsets, start, end)
    if clean_start >= clean_end:
        return None, False
    spans = outcome.redaction.output_spans
    widened = False

    def place(position: int, is_end: bool) -> int:
        nonlocal widened
        delta = 0
        for index, (finding, (_, out_start, out_end)) in enumerate(
            zip(outcome.findings, spans, strict=True)
        ):
            if index in outcome.redaction.kept:
                continue  # left as it was: its characters are all still there
            if finding.start < position < finding.end:
                widened = True
                return out_end if is_end else out_start
            if finding.end <= position:
                delta += (out_end - out_start) - (finding.end - finding.start)
        return position + delta

    mapped = (place(clean_start, False), place(clean_end, True))
    return (mapped if mapped[0] < mapped[1] else None), widened


__all__ = ["ADD", "HASH", "MASK", "REMOVE", "REVIEW", "SURROGATE", "Correction", "run"]
