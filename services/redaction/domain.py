"""Finding identifiers in text and masking them. Pure: no I/O.

Each detector is a validated pattern: a regular expression narrows the
candidates and a check (ranges, calendars, number rules) drops the ones that
cannot be real, so recall stays high without masking every number.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

POLICY = "mask-v1"

EMAIL = "EMAIL"
PHONE = "PHONE"
US_SSN = "US_SSN"
DATE = "DATE"


@dataclass(frozen=True)
class Finding:
    type: str
    start: int
    end: int
    confidence: float
    detector: str


@dataclass(frozen=True)
class Redaction:
    text: str
    findings: tuple[Finding, ...]

    def counts_by_type(self) -> dict[str, int]:
        return dict(Counter(f.type for f in self.findings))


# local@domain.tld, with the dot-atom characters RFC 5322 allows in practice.
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b"
)
# North American numbers: optional +1, area code with or without brackets.
_PHONE_NANP = re.compile(
    r"(?<![\w+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?!\d)"
)
# International numbers written with a leading + and grouped digits.
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?!\d)")
# Area-group-serial, separated by hyphens or spaces.
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_MONTHS = {
    name: index
    for index, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month_name>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ORDINAL = r"(?:st|nd|rd|th)?"
_NUMERIC_DATE = re.compile(
    r"(?<![\d/.-])(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)"
    # A full stop may end the sentence, but not continue a longer number.
    r"(?P<year>\d{4}|\d{2})(?![\d/-]|\.\d)"
)
_ISO_DATE = re.compile(r"(?<![\d-])(?P<year>\d{4})-(?P<a>\d{2})-(?P<b>\d{2})(?![\d-])")
_MONTH_FIRST = re.compile(
    rf"\b{_MONTH}\s+(?P<day>\d{{1,2}}){_ORDINAL},?\s+(?P<year>\d{{4}})\b", re.IGNORECASE
)
_DAY_FIRST = re.compile(
    rf"\b(?P<day>\d{{1,2}}){_ORDINAL}\s+(?:of\s+)?{_MONTH},?\s+(?P<year>\d{{4}})\b",
    re.IGNORECASE,
)


def _is_valid_ssn(area: str, group: str, serial: str) -> bool:
    # SSA never issues area 000, 666 or 900-999, group 00 or serial 0000.
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


def _is_calendar_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _full_year(year: str) -> int:
    value = int(year)
    return value if len(year) == 4 else 2000 + value


def _find_emails(text: str) -> Iterator[Finding]:
    for match in _EMAIL.finditer(text):
        yield Finding(EMAIL, match.start(), match.end(), 0.95, "email-pattern")


def _find_phones(text: str) -> Iterator[Finding]:
    for match in _PHONE_NANP.finditer(text):
        yield Finding(PHONE, match.start(), match.end(), 0.85, "phone-nanp-pattern")
    for match in _PHONE_INTL.finditer(text):
        digits = sum(ch.isdigit() for ch in match.group())
        if 8 <= digits <= 15:  # E.164 allows at most 15 digits.
            yield Finding(PHONE, match.start(), match.end(), 0.8, "phone-intl-pattern")


def _find_ssns(text: str) -> Iterator[Finding]:
    for match in _SSN.finditer(text):
        if _is_valid_ssn(match.group(1), match.group(3), match.group(4)):
            yield Finding(US_SSN, match.start(), match.end(), 0.9, "ssn-pattern")


def _find_dates(text: str) -> Iterator[Finding]:
    for match in _NUMERIC_DATE.finditer(text):
        year, a, b = _full_year(match["year"]), int(match["a"]), int(match["b"])
        # Month-first (US) or day-first (most of Europe): either reading will do.
        if _is_calendar_date(year, a, b) or _is_calendar_date(year, b, a):
            yield Finding(
                DATE, match.start(), match.end(), 0.85, "date-numeric-pattern"
            )
    for match in _ISO_DATE.finditer(text):
        if _is_calendar_date(int(match["year"]), int(match["a"]), int(match["b"])):
            yield Finding(DATE, match.start(), match.end(), 0.9, "date-iso-pattern")
    for pattern in (_MONTH_FIRST, _DAY_FIRST):
        for match in pattern.finditer(text):
            month = _MONTHS[match["month_name"].lower()]
            if _is_calendar_date(int(match["year"]), month, int(match["day"])):
                yield Finding(
                    DATE, match.start(), match.end(), 0.9, "date-text-pattern"
                )


DETECTORS: tuple[Callable[[str], Iterator[Finding]], ...] = (
    _find_emails,
    _find_ssns,
    _find_phones,
    _find_dates,
)


def find_identifiers(text: str) -> list[Finding]:
    """Return non-overlapping findings in text order.

    Where two findings overlap, the longer one wins, then the more confident.
    """
    candidates = [f for detector in DETECTORS for f in detector(text)]
    candidates.sort(key=lambda f: (-(f.end - f.start), -f.confidence, f.start))
    chosen: list[Finding] = []
    for finding in candidates:
        if all(finding.end <= c.start or finding.start >= c.end for c in chosen):
            chosen.append(finding)
    return sorted(chosen, key=lambda f: f.start)


def redact(text: str) -> Redaction:
    """Mask every finding with its type in brackets, e.g. ``[EMAIL]``."""
    findings = find_identifiers(text)
    parts: list[str] = []
    cursor = 0
    for finding in findings:
        parts.append(text[cursor : finding.start])
        parts.append(f"[{finding.type}]")
        cursor = finding.end
    parts.append(text[cursor:])
    return Redaction(text="".join(parts), findings=tuple(findings))
