"""Identifier detection and masking on realistic text."""

from __future__ import annotations

import itertools
import random

import pytest

from strongroom.services.redaction.domain import (
    DATE,
    EMAIL,
    PHONE,
    US_SSN,
    Finding,
    find_identifiers,
    redact,
)


def _found(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start : f.end]) for f in find_identifiers(text)]


def _assert_well_formed(text: str, findings: list[Finding]) -> None:
    for finding in findings:
        assert 0 <= finding.start < finding.end <= len(text)
    starts = [f.start for f in findings]
    assert starts == sorted(starts)
    for before, after in itertools.pairwise(findings):
        assert before.end <= after.start


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Please write to jane.doe+claims@example.co.uk before Friday.",
            [(EMAIL, "jane.doe+claims@example.co.uk")],
        ),
        (
            "Contact: J_Smith@mail.example.com, cc ops-team@example.org.",
            [(EMAIL, "J_Smith@mail.example.com"), (EMAIL, "ops-team@example.org")],
        ),
        ("Call the desk at (555) 123-4567 after 9.", [(PHONE, "(555) 123-4567")]),
        ("His mobile is 555-123-4567, her pager none.", [(PHONE, "555-123-4567")]),
        ("Reach us on +1 555 123 4567 any day.", [(PHONE, "+1 555 123 4567")]),
        ("The London office: +44 20 7946 0958.", [(PHONE, "+44 20 7946 0958")]),
        ("Her SSN is 123-45-6789 per the form.", [(US_SSN, "123-45-6789")]),
        ("Admitted on 2021-03-14 for review.", [(DATE, "2021-03-14")]),
        ("Admitted on 03/14/2021 for review.", [(DATE, "03/14/2021")]),
        ("Admitted on March 3, 2021 for review.", [(DATE, "March 3, 2021")]),
        ("Admitted on the 3rd of March 2021 here.", [(DATE, "3rd of March 2021")]),
        ("Admitted on 14.03.2021 for review.", [(DATE, "14.03.2021")]),
    ],
)
def test_finds_identifier_at_its_offsets(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert _found(text) == expected


@pytest.mark.parametrize("value", ["03/14/2021", "14.03.2021", "03/14/21"])
def test_finds_numeric_date_at_end_of_sentence(value: str) -> None:
    text = f"The patient was admitted on {value}."

    assert _found(text) == [(DATE, value)]


@pytest.mark.parametrize(
    "value", ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"]
)
def test_ignores_ssn_that_was_never_issued(value: str) -> None:
    findings = find_identifiers(f"Reference number {value} on file")

    assert US_SSN not in {f.type for f in findings}


@pytest.mark.parametrize(
    "value", ["13/45/2021", "2021-02-30", "31/31/2021", "14.03.2021.7"]
)
def test_ignores_values_that_are_not_dates(value: str) -> None:
    findings = find_identifiers(f"Batch {value} was shipped")

    assert DATE not in {f.type for f in findings}


def test_finds_every_identifier_in_a_paragraph() -> None:
    text = (
        "On March 3, 2021 the claimant (SSN 123-45-6789) e-mailed "
        "claims@insurer.example from +44 20 7946 0958; a callback to "
        "(555) 123-4567 was booked for 2021-03-14 and confirmed by "
        "agent.smith@insurer.example."
    )

    assert _found(text) == [
        (DATE, "March 3, 2021"),
        (US_SSN, "123-45-6789"),
        (EMAIL, "claims@insurer.example"),
        (PHONE, "+44 20 7946 0958"),
        (PHONE, "(555) 123-4567"),
        (DATE, "2021-03-14"),
        (EMAIL, "agent.smith@insurer.example"),
    ]


def test_overlapping_candidates_give_one_finding() -> None:
    # "+1 555 123 4567" matches both the NANP and international patterns.
    text = "Dial +1 555 123 4567 now"

    findings = find_identifiers(text)

    assert [(f.type, text[f.start : f.end]) for f in findings] == [
        (PHONE, "+1 555 123 4567")
    ]


def test_redact_masks_every_value_with_its_type() -> None:
    values = {
        EMAIL: "jane.doe@example.com",
        PHONE: "(555) 123-4567",
        US_SSN: "123-45-6789",
        DATE: "2021-03-14",
    }
    text = (
        f"Jane ({values[EMAIL]}, {values[PHONE]}) gave SSN {values[US_SSN]} "
        f"on {values[DATE]} at the desk"
    )

    redaction = redact(text)

    for value in values.values():
        assert value not in redaction.text
    assert redaction.text == (
        "Jane ([EMAIL], [PHONE]) gave SSN [US_SSN] on [DATE] at the desk"
    )
    assert redaction.counts_by_type() == {EMAIL: 1, PHONE: 1, US_SSN: 1, DATE: 1}
    assert [text[f.start : f.end] for f in redaction.findings] == list(values.values())


def test_redact_leaves_text_without_identifiers_unchanged() -> None:
    text = "The committee met twice and approved 3 of 4 proposals in room 12."

    redaction = redact(text)

    assert redaction.text == text
    assert redaction.findings == ()


def test_findings_on_random_text_are_sorted_disjoint_and_in_bounds() -> None:
    rng = random.Random(0)
    pieces = [
        "0123456789",
        " ",
        "-",
        "/",
        ".",
        "+",
        "(",
        ")",
        "@",
        "a",
        "Z",
        "_",
        "\n",
        "March ",
        "3rd of ",
        "example.com",
        "555",
        "2021",
        ", ",
        "é",
    ]

    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        findings = find_identifiers(text)
        _assert_well_formed(text, findings)
        redaction = redact(text)
        assert redaction.findings == tuple(findings)
        assert len(redaction.text) == len(text) + sum(
            len(f.type) + 2 - (f.end - f.start) for f in findings
        )
