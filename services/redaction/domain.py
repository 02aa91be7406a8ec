"""Finding identifiers in text and replacing them. Pure: no I/O.

The layers: validated patterns (``detectors.py``), the named-entity model's
findings (computed outside, passed in as ``entities``), the gazetteers, and a
project's allow and deny lists. Where findings overlap, one wins: the more
trusted kind of detector first, then the longer span, then the more confident.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from strongroom.services.redaction import detectors, gazetteers
from strongroom.services.redaction.detectors import (
    ADDRESS,
    AGE,
    DATE,
    DENIED,
    EMAIL,
    LOCATION,
    NAME,
    ORGANIZATION,
    PHONE,
    RULES_VERSION,
    TIER_GUESS,
    TIER_VALIDATED,
    TYPES,
    US_SSN,
    ZIP,
    Candidate,
    Finding,
)

__all__ = [
    "ADDRESS",
    "AGE",
    "DATE",
    "EMAIL",
    "LOCATION",
    "NAME",
    "PHONE",
    "POLICY",
    "RULES_VERSION",
    "TYPES",
    "US_SSN",
    "ZIP",
    "Finding",
    "Redaction",
    "WordLists",
    "find_identifiers",
    "redact",
    "replace",
]

POLICY = "mask-v1"


@dataclass(frozen=True)
class WordLists:
    """A project's own terms: never redact ``allow``; always redact ``deny``.

    ``deny`` maps a term to the type its findings get (``DENIED`` if none).
    Matching ignores case and needs word boundaries.
    """

    allow: frozenset[str] = frozenset()
    deny: dict[str, str] = field(default_factory=dict)

    def allows(self, value: str) -> bool:
        return " ".join(value.split()).casefold() in self.allow


@dataclass(frozen=True)
class Redaction:
    text: str
    findings: tuple[Finding, ...]
    # Where each finding's replacement sits in ``text``: (type, start, end),
    # one per finding; ``kept`` holds the indices of findings left as they were.
    output_spans: tuple[tuple[str, int, int], ...] = ()
    kept: frozenset[int] = frozenset()

    def replaced_spans(self) -> list[tuple[str, int, int]]:
        return [s for i, s in enumerate(self.output_spans) if i not in self.kept]

    def counts_by_type(self) -> dict[str, int]:
        return dict(Counter(f.type for f in self.findings))


def word_lists(
    allow: Iterable[str] = (), deny: dict[str, str] | None = None
) -> WordLists:
    return WordLists(
        allow=frozenset(" ".join(a.split()).casefold() for a in allow if a.strip()),
        deny={t: (v or DENIED) for t, v in (deny or {}).items() if t.strip()},
    )


def _deny_candidates(text: str, lists: WordLists) -> Iterable[Candidate]:
    for term, type_ in lists.deny.items():
        pattern = re.compile(
            r"(?<!\w)" + r"\s+".join(map(re.escape, term.split())) + r"(?!\w)",
            re.IGNORECASE,
        )
        for m in pattern.finditer(text):
            finding = Finding(type_, m.start(), m.end(), 1.0, "deny-list")
            yield Candidate(finding, TIER_VALIDATED)


_TITLE_PREFIX = re.compile(r"^(?:(?i:" + "|".join(gazetteers.TITLES) + r")\.?\s+)+")
_POSSESSIVE = re.compile(r"(?:['\u2019]s|['\u2019])$")


def entity_candidates(text: str, entities: Sequence[Finding]) -> list[Candidate]:
    """Tidy the model's spans: no titles or possessives, no states or countries."""
    out: list[Candidate] = []
    for entity in _split_lines(text, entities):
        start, end = entity.start, entity.end
        value = text[start:end]
        if entity.type == NAME:
            prefix = _TITLE_PREFIX.match(value)
            if prefix:
                start += prefix.end()
            suffix = _POSSESSIVE.search(text[start:end])
            if suffix:
                end = start + suffix.start()
        start, end = _strip(text, start, end)
        value = text[start:end]
        if end - start < 3 or not any(ch.isalpha() for ch in value):
            continue
        if _is_label_word(value) or any(ch.isdigit() for ch in value):
            continue  # names and places have no digits: "Cr 1.2" is a lab value
        if entity.type in (LOCATION, ORGANIZATION) and (
            " ".join(value.split()).casefold().removeprefix("the ")
            in gazetteers.NOT_IDENTIFYING_PLACES
            or value in gazetteers.STATE_CODES
        ):
            continue
        if (
            entity.type == NAME
            and value.casefold() in gazetteers.NOT_IDENTIFYING_PLACES
        ):
            continue
        finding = Finding(entity.type, start, end, entity.confidence, entity.detector)
        out.append(Candidate(finding, TIER_GUESS))
    return out


def _split_lines(text: str, entities: Sequence[Finding]) -> Iterable[Finding]:
    """A model's span across a line break is two spans (or a mistake)."""
    for entity in entities:
        start = entity.start
        value = text[entity.start : entity.end]
        for piece in value.split("\n"):
            if piece.strip():
                yield Finding(
                    entity.type, start, start + len(piece), entity.confidence,
                    entity.detector,
                )  # fmt: skip
            start += len(piece) + 1


def find_identifiers(
    text: str,
    *,
    entities: Sequence[Finding] = (),
    lists: WordLists | None = None,
) -> list[Finding]:
    """Return non-overlapping findings in text order."""
    lists = lists or WordLists()
    candidates = [c for detector in detectors.DETECTORS for c in detector(text)]
    candidates.extend(entity_candidates(text, entities))
    candidates.extend(_deny_candidates(text, lists))
    if lists.allow:
        candidates = [
            c
            for c in candidates
            if c.finding.detector == "deny-list"
            or not lists.allows(text[c.finding.start : c.finding.end])
        ]
    return resolve(text, candidates)


def resolve(text: str, candidates: Iterable[Candidate]) -> list[Finding]:
    """Pick one finding where several overlap.

    A lower-tier finding that overlaps chosen ones keeps its longest part
    outside them, so a model's name span reaching into a labelled number
    still covers the name.
    """
    ordered = sorted(
        candidates,
        key=lambda c: (
            c.tier,
            # Among guesses, the rules' names before the model's bodies.
            c.finding.detector.startswith("ner-"),
            -(c.finding.end - c.finding.start),
            -c.finding.confidence,
            c.finding.start,
        ),
    )
    chosen: list[Finding] = []
    for candidate in ordered:
        finding = candidate.finding
        clashes = [c for c in chosen if finding.start < c.end and c.start < finding.end]
        if not clashes:
            chosen.append(finding)
            continue
        if candidate.tier < TIER_GUESS:
            continue
        rest = _outside(text, finding, clashes)
        if rest is not None:
            chosen.append(rest)
    return sorted(chosen, key=lambda f: f.start)


def _outside(text: str, finding: Finding, clashes: list[Finding]) -> Finding | None:
    pieces = [(finding.start, finding.end)]
    for clash in clashes:
        next_pieces = []
        for start, end in pieces:
            if clash.start > start:
                next_pieces.append((start, min(end, clash.start)))
            if clash.end < end:
                next_pieces.append((max(start, clash.end), end))
        pieces = next_pieces
    tidy = [_strip(text, s, e) for s, e in pieces]
    kept = [(s, e) for s, e in tidy if e - s >= 3 and not _is_label_word(text[s:e])]
    if not kept:
        return None
    start, end = max(kept, key=lambda p: p[1] - p[0])
    return Finding(finding.type, start, end, finding.confidence, finding.detector)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while end > start and not text[end - 1].isalnum():
        end -= 1
    while start < end and not text[start].isalnum():
        start += 1
    return (start, end)


# Words of forms and letters that the model mistakes for names or bodies.
_LABEL_WORDS = frozenset(
    """
    email e-mail phone tel fax mobile dob mrn ssn nhs ni nino iban bic swift aba
    vin sn id ip url dear patient name account routing card ref re subject date
    address zip postcode policy member insurance serial device plate licence
    license passport employee diagnosis plan signed sincerely regards driver
    doctor nurse client customer manager payroll statement discharge summary
    assessment results questions vehicle yours kind best
    """.split()
)


def _is_label_word(value: str) -> bool:
    words = value.casefold().replace(":", " ").split()
    return bool(words) and all(w in _LABEL_WORDS for w in words)


def mask(finding: Finding, value: str) -> str | None:
    return f"[{finding.type}]"


def replace(
    text: str,
    findings: Sequence[Finding],
    replacement: Callable[[Finding, str], str | None],
) -> Redaction:
    """Rewrite each finding with ``replacement(finding, value)``.

    ``None`` keeps the value as it is (the "keep" policy); such findings stay
    in ``findings`` and are listed in ``kept``.
    """
    parts: list[str] = []
    spans: list[tuple[str, int, int]] = []
    kept: set[int] = set()
    cursor = 0
    length = 0
    for index, finding in enumerate(findings):
        before = text[cursor : finding.start]
        parts.append(before)
        length += len(before)
        value = text[finding.start : finding.end]
        new = replacement(finding, value)
        if new is None:
            new = value
            kept.add(index)
        spans.append((finding.type, length, length + len(new)))
        parts.append(new)
        length += len(new)
        cursor = finding.end
    parts.append(text[cursor:])
    return Redaction("".join(parts), tuple(findings), tuple(spans), frozenset(kept))


def redact(
    text: str,
    *,
    entities: Sequence[Finding] = (),
    lists: WordLists | None = None,
) -> Redaction:
    """Mask every finding with its type in brackets, e.g. ``[EMAIL]``."""
    return replace(text, find_identifiers(text, entities=entities, lists=lists), mask)
