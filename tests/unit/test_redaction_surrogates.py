"""Surrogates: same shape, same stand-in for the same value, never shared."""

from __future__ import annotations

import random
import re
from datetime import date

from strongroom.services.redaction import checks
from strongroom.services.redaction.detectors import (
    ABA_ROUTING,
    CREDIT_CARD,
    DATE,
    IBAN,
    NAME,
    NHS_NUMBER,
    PHONE,
    US_SSN,
    ZIP,
    Finding,
)
from strongroom.services.redaction.surrogates import SurrogateBook, keyed_hash

KEY = bytes(range(32))


def _sur(book: SurrogateBook, type_: str, value: str, subject: str = "s") -> str:
    return book.surrogate(Finding(type_, 0, len(value), 1.0, "test"), value, subject)


def test_same_value_same_surrogate_across_books_of_one_project() -> None:
    first, second = SurrogateBook(KEY), SurrogateBook(KEY)
    assert _sur(first, NAME, "Maria Lopez") == _sur(second, NAME, "Maria Lopez")
    assert _sur(first, NAME, "Maria Lopez") != "Maria Lopez"
    other_project = SurrogateBook(bytes(32))
    assert _sur(other_project, PHONE, "(217) 555-0143") != _sur(
        first, PHONE, "(217) 555-0143"
    )


def test_thousands_of_values_never_share_a_surrogate() -> None:
    rng = random.Random(7)
    book = SurrogateBook(KEY)
    values = {f"{rng.randrange(10**8):08d}" for _ in range(5000)}
    names = {f"Person{n} Family{n % 97}" for n in range(3000)}
    seen: dict[str, str] = {}
    for value in values:
        surrogate = _sur(
            book, US_SSN if False else ZIP, value[:5] + "-" + value[5:8] + "0"
        )
        assert seen.setdefault(surrogate, value) == value
    for type_, pool in ((NAME, names), ("MRN", values)):
        out = {_sur(book, type_, v) for v in pool}
        assert len(out) == len(pool)
    # Reloading the stored entries keeps both promises.
    rows = [(t, d, s) for t, d, s, _ in book.new]
    again = SurrogateBook.load(KEY, rows)
    sample = sorted(values)[:50]
    assert [_sur(again, "MRN", v) for v in sample] == [
        _sur(book, "MRN", v) for v in sample
    ]
    assert not again.new


def test_surrogates_keep_format_and_checksums() -> None:
    book = SurrogateBook(KEY)
    card = _sur(book, CREDIT_CARD, "4111 1111 1111 1111")
    assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", card)
    assert checks.is_card_number(checks.digits_of(card))
    assert checks.is_iban(_sur(book, IBAN, "GB82 WEST 1234 5698 7654 32"))
    assert checks.is_aba_routing(_sur(book, ABA_ROUTING, "021000021"))
    nhs = _sur(book, NHS_NUMBER, "943 476 5919")
    assert checks.is_nhs_number(checks.digits_of(nhs)) and nhs.count(" ") == 2
    ssn = _sur(book, US_SSN, "123-45-6789")
    assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", ssn)
    assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", _sur(book, PHONE, "(217) 555-0143"))


def test_zip_keeps_three_digit_zone_unless_restricted() -> None:
    book = SurrogateBook(KEY)
    assert _sur(book, ZIP, "62704").startswith("627")
    assert _sur(book, ZIP, "03601").startswith("000")


def test_dates_of_one_subject_shift_together() -> None:
    book = SurrogateBook(KEY)
    first = _sur(book, DATE, "03/14/2021", "Maria Lopez")
    second = _sur(book, DATE, "2021-04-01", "Maria Lopez")
    moved_first = date(int(first[6:]), int(first[:2]), int(first[3:5]))
    moved_second = date.fromisoformat(second)
    assert (moved_second - moved_first).days == (
        date(2021, 4, 1) - date(2021, 3, 14)
    ).days
    assert first != "03/14/2021"
    assert re.fullmatch(r"\w+ \d{1,2}, \d{4}", _sur(book, DATE, "March 3, 2021", "x"))


def test_keyed_hash_is_stable_and_keyed() -> None:
    assert keyed_hash(KEY, NAME, "Maria  Lopez") == keyed_hash(KEY, NAME, "maria lopez")
    assert keyed_hash(KEY, NAME, "Maria Lopez") != keyed_hash(
        bytes(32), NAME, "Maria Lopez"
    )
