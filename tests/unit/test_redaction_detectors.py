"""Each detector: values it must find, and near misses it must leave alone."""

from __future__ import annotations

import pytest

from strongroom.services.redaction import checks
from strongroom.services.redaction.detectors import (
    ABA_ROUTING,
    ACCOUNT,
    ADDRESS,
    AGE,
    BIOMETRIC,
    CREDIT_CARD,
    DATE,
    DEVICE,
    EMAIL,
    FAX,
    HEALTH_PLAN,
    IBAN,
    ID_NUMBER,
    IP_ADDRESS,
    LICENSE,
    LOCATION,
    MRN,
    NAME,
    NHS_NUMBER,
    PHONE,
    SWIFT_BIC,
    UK_NINO,
    URL,
    US_SSN,
    VEHICLE,
    ZIP,
)
from strongroom.services.redaction.domain import find_identifiers, word_lists


def _found(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start : f.end]) for f in find_identifiers(text)]


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        ("Seen by Dr. Alan Brooks today.", NAME, "Alan Brooks"),
        ("Patient: Maria Lopez was calm.", NAME, "Maria Lopez"),
        ("Mrs Baker attended.", NAME, "Baker"),
        ("She lives at 1420 Oak Ridge Drive now.", ADDRESS, "1420 Oak Ridge Drive"),
        ("Send to PO Box 4411 please.", ADDRESS, "PO Box 4411"),
        ("Springfield, IL 62704 is home.", ZIP, "62704"),
        ("Moved to London SW1A 1AA last year.", ZIP, "SW1A 1AA"),
        ("She moved to Leeds in spring.", LOCATION, "Leeds"),
        ("Seen on March 2021 for review.", DATE, "March 2021"),
        ("Admitted 14-Mar-2021 overnight.", DATE, "14-Mar-2021"),
        ("Follow-up on 3 June, as agreed.", DATE, "3 June"),
        ("A 93-year-old woman.", AGE, "93"),
        ("Aged 101, she still walks.", AGE, "101"),
        ("Fax: (217) 555-0199 for records.", FAX, "(217) 555-0199"),
        ("Call 020 7946 0958 today.", PHONE, "020 7946 0958"),
        ("Call 555-0134 about the dose.", PHONE, "555-0134"),
        ("Phone: 555 0134 after six.", PHONE, "555 0134"),
        ("Write to a.b@example.org today.", EMAIL, "a.b@example.org"),
        (
            "Portal https://portal.example.org/p/88 here.",
            URL,
            "https://portal.example.org/p/88",
        ),
        ("From host 192.168.10.24.", IP_ADDRESS, "192.168.10.24"),
        (
            "From host 2001:db8::8a2e:370:7334 today.",
            IP_ADDRESS,
            "2001:db8::8a2e:370:7334",
        ),
        ("SSN: 219099999 on file.", US_SSN, "219099999"),
        ("MRN: 00482913 at intake.", MRN, "00482913"),
        ("Member ID: XJH4471902 is active.", HEALTH_PLAN, "XJH4471902"),
        ("Medicare 1EG4-TE5-MK73 on file.", HEALTH_PLAN, "1EG4-TE5-MK73"),
        ("Account no. 000123456789 debited.", ACCOUNT, "000123456789"),
        ("DEA number AB1234563 on the script.", LICENSE, "AB1234563"),
        ("Licence number D1234-56789 issued.", LICENSE, "D1234-56789"),
        ("VIN 1HGCM82633A004352 registered.", VEHICLE, "1HGCM82633A004352"),
        ("Pacemaker serial SN-88213-A fitted.", DEVICE, "SN-88213-A"),
        ("IMEI 490154203237518 reported.", DEVICE, "490154203237518"),
        ("Fingerprint template FP-99812 enrolled.", BIOMETRIC, "FP-99812"),
        ("Passport number 502135326 seen.", ID_NUMBER, "502135326"),
        ("Card 4111 1111 1111 1111 was used.", CREDIT_CARD, "4111 1111 1111 1111"),
        ("Card 4111 1111\n1111 1111 split.", CREDIT_CARD, "4111 1111\n1111 1111"),
        ("IBAN GB82 WEST 1234 5698 7654 32 ok.", IBAN, "GB82 WEST 1234 5698 7654 32"),
        ("IBAN DE89370400440532013000 ok.", IBAN, "DE89370400440532013000"),
        ("Routing number 021000021 ok.", ABA_ROUTING, "021000021"),
        ("SWIFT: BARCGB22 ok.", SWIFT_BIC, "BARCGB22"),
        ("BIC DEUTDEFF500 ok.", SWIFT_BIC, "DEUTDEFF500"),
        ("NHS number 943 476 5919 ok.", NHS_NUMBER, "943 476 5919"),
        ("NI number AB 12 34 56 C ok.", UK_NINO, "AB 12 34 56 C"),
        # OCR noise in the label, names that are common words.
        ("Payroll acc0unt 851895398564 paid.", ACCOUNT, "851895398564"),
        ("Fingcrprint templatc FP-088299 on file.", BIOMETRIC, "FP-088299"),
        ("Statement for Will Young today.", NAME, "Will Young"),
        ("Dcar Rose, thank you.", NAME, "Rose"),
        ("Re: the claim of Grace Price.", NAME, "Grace Price"),
        ("Grace period ends in March.", DATE, "March"),
        ("Results were faxed to 602-555-0172.", FAX, "602-555-0172"),
    ],
)
def test_finds_each_type(text: str, type_: str, value: str) -> None:
    assert (type_, value) in _found(text)


@pytest.mark.parametrize(
    ("text", "type_"),
    [
        ("Card 4111 1111 1111 1112 was used.", CREDIT_CARD),  # Luhn fails
        ("IBAN GB83 WEST 1234 5698 7654 32 ok.", IBAN),  # mod 97 fails
        ("Routing number 021000022 ok.", ABA_ROUTING),  # checksum fails
        ("NHS number 943 476 5918 ok.", NHS_NUMBER),  # mod 11 fails
        ("NI number QQ 12 34 56 C ok.", UK_NINO),  # prefix never issued
        ("NI number AB 12 34 56 E ok.", UK_NINO),  # suffix past D
        ("Part 1HGCM82633A004353 here.", VEHICLE),  # check digit fails
        ("Invoice total 123-456-7890 paid.", PHONE),  # area code 1xx
        ("Order 555-123-45678 shipped.", PHONE),  # too many digits
        ("Version 1.555.123.4567 released.", PHONE),  # a dotted version
        ("Lot 555-0134 was recalled.", PHONE),  # seven digits without a phone word
        ("Host 256.1.1.1 unreachable.", IP_ADDRESS),  # octet over 255
        ("A 45-year-old man.", AGE),  # ages up to 89 stay
        ("Room 62704 on the left.", ZIP),  # five digits without context
        ("The HOSPITAL wing reopened.", SWIFT_BIC),  # a word, not a BIC
        ("You may go now.", DATE),  # "may" the verb
        ("You may go in may, or not.", DATE),  # lower case is not a month
        ("SSN 900-12-3456 is invalid.", US_SSN),  # never issued
    ],
)
def test_ignores_near_misses(text: str, type_: str) -> None:
    assert type_ not in {t for t, _ in _found(text)}


def test_allow_list_keeps_a_term_and_deny_list_adds_one() -> None:
    text = "Dr. Alan Brooks of Project Bluebird."
    lists = word_lists(allow=["Alan Brooks"], deny={"bluebird": ID_NUMBER})

    found = [
        (f.type, text[f.start : f.end]) for f in find_identifiers(text, lists=lists)
    ]

    assert (NAME, "Alan Brooks") not in found
    assert (ID_NUMBER, "Bluebird") in found


def test_checks_on_known_values() -> None:
    assert checks.is_iban("GB82WEST12345698765432")
    assert checks.is_aba_routing("011000015")
    assert checks.is_nhs_number("9434765919")
    assert checks.is_vin("1HGCM82633A004352")
    assert checks.is_dea_number("AB1234563")
    assert checks.is_npi("1234567893")
    assert not checks.is_npi("1234567890")
    assert checks.is_card_number("378282246310005")  # Amex test number
    assert not checks.is_card_number("1234567812345670")  # Luhn ok, no issuer


def test_findings_carry_type_offsets_confidence_and_detector() -> None:
    text = "Card 4111 1111 1111 1111."
    (finding,) = find_identifiers(text)
    assert finding.type == CREDIT_CARD
    assert text[finding.start : finding.end] == "4111 1111 1111 1111"
    assert 0 < finding.confidence <= 1
    assert finding.detector == "card-luhn"
