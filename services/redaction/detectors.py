"""Validated patterns: a regular expression narrows the candidates, a check drops
the ones that cannot be real. Pure: no I/O.

Three kinds of detector live here. Format detectors know a number's shape
and its checksum (cards, IBANs, NHS numbers, VINs, ...) and need no context.
Labelled detectors find a value after the words that introduce it ("MRN:",
"policy no.", "serial number"), for identifiers without a fixed format. Name
and place detectors combine titles, labels and the gazetteers; the
named-entity model adds its own findings beside them (``domain.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from strongroom.services.redaction import checks, gazetteers

RULES_VERSION = "rules-2"

# The eighteen Safe Harbor identifier types, as Strongroom names them.
NAME = "NAME"
ADDRESS = "ADDRESS"
LOCATION = "LOCATION"
ZIP = "ZIP"
DATE = "DATE"
AGE = "AGE"
PHONE = "PHONE"
FAX = "FAX"
EMAIL = "EMAIL"
US_SSN = "US_SSN"
MRN = "MRN"
HEALTH_PLAN = "HEALTH_PLAN"
ACCOUNT = "ACCOUNT"
LICENSE = "LICENSE"
VEHICLE = "VEHICLE"
DEVICE = "DEVICE"
URL = "URL"
IP_ADDRESS = "IP_ADDRESS"
BIOMETRIC = "BIOMETRIC"
ID_NUMBER = "ID_NUMBER"
# Financial and national identifiers.
CREDIT_CARD = "CREDIT_CARD"
IBAN = "IBAN"
ABA_ROUTING = "ABA_ROUTING"
SWIFT_BIC = "SWIFT_BIC"
NHS_NUMBER = "NHS_NUMBER"
UK_NINO = "UK_NINO"
# Found by the named-entity model; not a Safe Harbor type, masked by default.
ORGANIZATION = "ORGANIZATION"
# A term on a project's deny list.
DENIED = "DENIED"

TYPES = (
    NAME, ADDRESS, LOCATION, ZIP, DATE, AGE, PHONE, FAX, EMAIL, US_SSN, MRN,
    HEALTH_PLAN, ACCOUNT, LICENSE, VEHICLE, DEVICE, URL, IP_ADDRESS, BIOMETRIC,
    ID_NUMBER, CREDIT_CARD, IBAN, ABA_ROUTING, SWIFT_BIC, NHS_NUMBER, UK_NINO,
    ORGANIZATION, DENIED,
)  # fmt: skip

# How much a detector's kind is trusted when two findings overlap: a value
# whose checksum holds beats a labelled one, which beats a model's guess.
TIER_VALIDATED = 0
TIER_LABELLED = 1
TIER_GUESS = 2


@dataclass(frozen=True)
class Finding:
    type: str
    start: int
    end: int
    confidence: float
    detector: str


@dataclass(frozen=True)
class Candidate:
    finding: Finding
    tier: int


Detector = Callable[[str], Iterator[Candidate]]


def _c(type_: str, start: int, end: int, conf: float, det: str, tier: int) -> Candidate:
    return Candidate(Finding(type_, start, end, conf, det), tier)


def _before(text: str, start: int, pattern: re.Pattern[str], window: int = 40) -> bool:
    return pattern.search(text, max(0, start - window), start) is not None


# --- contact: e-mail, URL, IP, phone and fax ---------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b"
)
_URL = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]", re.IGNORECASE
)
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\d|\.\d)")
_IPV6 = re.compile(
    r"(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})"
    r"(?:[0-9A-Fa-f:]*[0-9A-Fa-f])?(?![:\w])"
)
# North American numbers: optional +1, area code (2-9) with or without brackets.
_PHONE_NANP = re.compile(
    r"(?<![\w+\-/.])(?:\+?1[\s.-]?)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[\s.-])"
    r"\d{3}[\s.-]\d{4}(?![\w/]|[.-]\d)"
)
# A local number without its area code: a phone only where a word says so.
_PHONE_LOCAL = re.compile(r"(?<![\w+\-/.()])[2-9]\d{2}[\s.-]\d{4}(?![\w/]|[.-]\d)")
# International numbers written with a leading + and grouped digits.
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?!\d)")
# UK national numbers: a leading 0 and 10 or 11 digits in groups.
_PHONE_UK = re.compile(
    r"(?<![\w+\-/.])0\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}(?![\w/]|[.-]\d)"
)
_FAX_CONTEXT = re.compile(r"\b(?:fax(?:ed)?|facsimile|telefax)\b|\bf\s*:\s*$", re.I)
_VERSION_CONTEXT = re.compile(r"\b(?:version|release|build|v)\.?\s*$", re.I)
# Words that introduce a record or account number rather than a phone.
NUMBER_LABEL = re.compile(
    r"\b(?:account|acct|a/c|policy|member|mrn|record|licen[cs]e|serial|passport"
    r"|reference|ref|invoice|routing|sort code|payroll|employee|case|claim)\b"
    r"[^\n\d]{0,14}$",
    re.I,
)
_PHONE_CONTEXT = re.compile(r"\b(?:tel|phone|mobile|cell|call|telephone|ph)\b", re.I)


def find_emails(text: str) -> Iterator[Candidate]:
    for m in _EMAIL.finditer(text):
        yield _c(EMAIL, m.start(), m.end(), 0.95, "email-pattern", TIER_VALIDATED)


def find_urls(text: str) -> Iterator[Candidate]:
    for m in _URL.finditer(text):
        yield _c(URL, m.start(), m.end(), 0.9, "url-pattern", TIER_VALIDATED)


def find_ips(text: str) -> Iterator[Candidate]:
    for m in _IPV4.finditer(text):
        if checks.is_ipv4(m.group()):
            yield _c(IP_ADDRESS, m.start(), m.end(), 0.9, "ipv4-pattern", 0)
    for m in _IPV6.finditer(text):
        value = m.group()
        if value.count(":") >= 2 and _is_ipv6(value):
            yield _c(IP_ADDRESS, m.start(), m.end(), 0.9, "ipv6-pattern", 0)


def _is_ipv6(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def find_phones(text: str) -> Iterator[Candidate]:
    spans: list[tuple[int, int, float, str]] = []
    for m in _PHONE_NANP.finditer(text):
        spans.append((m.start(), m.end(), 0.85, "phone-nanp-pattern"))
    for m in _PHONE_INTL.finditer(text):
        digits = sum(ch.isdigit() for ch in m.group())
        if 8 <= digits <= 15:  # E.164 allows at most 15 digits.
            spans.append((m.start(), m.end(), 0.8, "phone-intl-pattern"))
    for m in _PHONE_UK.finditer(text):
        if len(checks.digits_of(m.group())) in (10, 11):
            spans.append((m.start(), m.end(), 0.75, "phone-uk-pattern"))
    for m in _PHONE_LOCAL.finditer(text):
        inside = any(a <= m.start() and m.end() <= b for a, b, _, _ in spans)
        if not inside and _before(text, m.start(), _PHONE_CONTEXT, 20):
            spans.append((m.start(), m.end(), 0.7, "phone-local-pattern"))
    for start, end, confidence, detector in spans:
        if _before(text, start, _VERSION_CONTEXT, 12):
            continue
        if _before(text, start, NUMBER_LABEL, 30) and not _before(
            text, start, _PHONE_CONTEXT, 20
        ):
            continue  # "account 0862264258" is an account, not a phone
        if _before(text, start, _FAX_CONTEXT, 20):
            yield _c(FAX, start, end, 0.9, detector.replace("phone", "fax"), 0)
        else:
            boost = 0.1 if _before(text, start, _PHONE_CONTEXT, 20) else 0.0
            yield _c(PHONE, start, end, min(confidence + boost, 0.95), detector, 0)


# --- government, health and finance numbers with checks ---------------------

_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_NINE_DIGITS = re.compile(r"(?<![\d-])\d{9}(?![\d-])")
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social security|soc\.? sec\.?)\b", re.I)
_CARD = re.compile(r"(?<![\d-])\d(?:[ \t-]?\n?\d){12,18}(?![\d-])")
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?=[ ]?[A-Z0-9])")
_ABA_CONTEXT = re.compile(r"\b(?:routing|aba|rtn|transit|sort code)\b", re.I)
_BIC = re.compile(r"(?<![A-Za-z0-9])[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?\b")
_BIC_CONTEXT = re.compile(r"\b(?:swift|bic)\b", re.I)
_NHS = re.compile(r"(?<![\d-])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\d-])")
_NHS_CONTEXT = re.compile(r"\bnhs\b", re.I)
_NINO = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d](?![A-Za-z0-9])"
)
_VIN = re.compile(r"(?<![A-Za-z0-9])[A-HJ-NPR-Z0-9]{17}(?![A-Za-z0-9])")
_VIN_CONTEXT = re.compile(r"\b(?:vin|vehicle identification|chassis)\b", re.I)
_DEA = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{7}(?![A-Za-z0-9])")
_DEA_CONTEXT = re.compile(r"\bdea\b", re.I)
_IMEI_CONTEXT = re.compile(r"\b(?:imei|device|handset|phone serial)\b", re.I)
_TEN_DIGITS = re.compile(r"(?<![\d-])\d{10}(?![\d-])")
_NPI_CONTEXT = re.compile(r"\bnpi\b", re.I)
_FIFTEEN_DIGITS = re.compile(r"(?<![\d-])\d{15}(?![\d-])")
_MAC = re.compile(
    r"(?<![\w:-])[0-9A-Fa-f]{2}(?:([:-])[0-9A-Fa-f]{2})(?:\1[0-9A-Fa-f]{2}){4}(?![\w:-])"
)
# Medicare Beneficiary Identifier: 11 characters in a fixed letter/digit order.
_MBI = re.compile(
    r"(?<![A-Za-z0-9])[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y]"
    r"[AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y]{2}\d{2}(?![A-Za-z0-9])"
)


def find_ssns(text: str) -> Iterator[Candidate]:
    for m in _SSN.finditer(text):
        if checks.is_ssn(m.group(1), m.group(3), m.group(4)):
            yield _c(US_SSN, m.start(), m.end(), 0.9, "ssn-pattern", 0)
    for m in _NINE_DIGITS.finditer(text):
        v = m.group()
        if _before(text, m.start(), _SSN_CONTEXT, 30) and checks.is_ssn(
            v[:3], v[3:5], v[5:]
        ):
            yield _c(US_SSN, m.start(), m.end(), 0.85, "ssn-context-pattern", 0)


def find_cards(text: str) -> Iterator[Candidate]:
    for m in _CARD.finditer(text):
        if checks.is_card_number(checks.digits_of(m.group())):
            yield _c(CREDIT_CARD, m.start(), m.end(), 0.95, "card-luhn", 0)


def find_ibans(text: str) -> Iterator[Candidate]:
    for m in _IBAN_START.finditer(text):
        length = checks.IBAN_LENGTHS.get(m.group()[:2])
        if length is None:
            continue
        end, count = m.start(), 0
        while end < len(text) and count < length:
            ch = text[end]
            if ch.isalnum() and ch.isascii():
                count += 1
            elif ch not in " \n":
                break
            end += 1
        ends_clean = end >= len(text) or not text[end].isalnum()
        if count == length and ends_clean and checks.is_iban(text[m.start() : end]):
            yield _c(IBAN, m.start(), end, 0.97, "iban-mod97", 0)


def find_aba(text: str) -> Iterator[Candidate]:
    for m in _NINE_DIGITS.finditer(text):
        if checks.is_aba_routing(m.group()) and _before(text, m.start(), _ABA_CONTEXT):
            yield _c(ABA_ROUTING, m.start(), m.end(), 0.9, "aba-checksum", 0)


def find_bics(text: str) -> Iterator[Candidate]:
    for m in _BIC.finditer(text):
        value = m.group()
        if not checks.is_bic(value):
            continue
        if _before(text, m.start(), _BIC_CONTEXT, 25):
            yield _c(SWIFT_BIC, m.start(), m.end(), 0.9, "bic-pattern", 0)
        elif len(value) == 11 and any(ch.isdigit() for ch in value):
            yield _c(SWIFT_BIC, m.start(), m.end(), 0.6, "bic-pattern", 0)


def find_nhs(text: str) -> Iterator[Candidate]:
    for m in _NHS.finditer(text):
        if checks.is_nhs_number(checks.digits_of(m.group())):
            context = _before(text, m.start(), _NHS_CONTEXT)
            if not context and _before(text, m.start(), NUMBER_LABEL, 30):
                continue
            confidence = 0.95 if context else 0.6
            yield _c(NHS_NUMBER, m.start(), m.end(), confidence, "nhs-mod11", 0)


def find_ninos(text: str) -> Iterator[Candidate]:
    for m in _NINO.finditer(text):
        if m.group()[:2].isupper() and checks.is_nino(m.group()):
            yield _c(UK_NINO, m.start(), m.end(), 0.9, "nino-pattern", 0)


def find_vehicle_and_device_numbers(text: str) -> Iterator[Candidate]:
    for m in _VIN.finditer(text):
        value = m.group()
        if not checks.vin_shape_ok(value):
            continue
        if checks.vin_check_ok(value):
            yield _c(VEHICLE, m.start(), m.end(), 0.9, "vin-check-digit", 0)
        elif _before(text, m.start(), _VIN_CONTEXT, 25):
            yield _c(VEHICLE, m.start(), m.end(), 0.8, "vin-context", 0)
    for m in _FIFTEEN_DIGITS.finditer(text):
        if checks.is_imei(m.group()):
            # A 15-digit Luhn number is a card too; the label decides.
            labelled = _before(text, m.start(), _IMEI_CONTEXT, 20)
            yield _c(
                DEVICE, m.start(), m.end(), 0.97 if labelled else 0.8, "imei-luhn", 0
            )
    for m in _MAC.finditer(text):
        yield _c(DEVICE, m.start(), m.end(), 0.85, "mac-address-pattern", 0)


def find_licences(text: str) -> Iterator[Candidate]:
    for m in _DEA.finditer(text):
        if checks.is_dea_number(m.group()):
            conf = 0.95 if _before(text, m.start(), _DEA_CONTEXT) else 0.7
            yield _c(LICENSE, m.start(), m.end(), conf, "dea-checksum", 0)
    for m in _TEN_DIGITS.finditer(text):
        if checks.is_npi(m.group()) and _before(text, m.start(), _NPI_CONTEXT):
            yield _c(LICENSE, m.start(), m.end(), 0.9, "npi-luhn", 0)
    for m in _MBI.finditer(text):
        yield _c(HEALTH_PLAN, m.start(), m.end(), 0.85, "medicare-mbi-pattern", 0)


# --- identifiers introduced by their label -----------------------------------

_LABELS: tuple[tuple[str, str], ...] = (
    (
        MRN,
        r"mrn|medical record|med\.? rec\.?|patient id|patient number|hospital number"
        r"|hospital no|chart|unit number|case number|encounter",
    ),
    (
        HEALTH_PLAN,
        r"health plan|member id|member|subscriber(?: id)?|policy|insurance(?: id)?"
        r"|group number|group no|beneficiary|medicaid|medicare|plan id|insurer id",
    ),
    (
        ACCOUNT,
        r"account|acct|a/c|iban account|customer number|customer no|card ending"
        r"|loan|mortgage|billing|invoice account",
    ),
    (
        LICENSE,
        r"licen[cs]e|driver'?s licen[cs]e|certificate|cert|permit|registration no"
        r"|dea|npi|bar number|gmc|nmc",
    ),
    (VEHICLE, r"licen[cs]e plate|plate|number plate|vin|vehicle reg(?:istration)?"),
    (
        DEVICE,
        r"serial|s/n|sn|device id|device|imei|udi|implant id|pacemaker"
        r"|asset tag|model/serial",
    ),
    (
        BIOMETRIC,
        r"fingerprint|finger print|retina(?:l scan)?|iris(?: scan)?|voice ?print"
        r"|face ?print|biometric(?: id| template)?|palm ?print|dna profile|gait",
    ),
    (
        ID_NUMBER,
        r"passport|employee id|employee number|staff id|staff number|student id"
        r"|national id|id card|identity card|reference|ref|claim|file|case|ticket"
        r"|badge|payroll|personnel|tax id|ein|tin|itin|customer id|client id|user id"
        r"|record id|id",
    ),
)
_VALUE = (
    r"(?P<value>(?=[A-Za-z/.-]*\d)[A-Za-z0-9]"
    r"(?:[A-Za-z0-9]|[-/.](?=[A-Za-z0-9])){3,24})"
)
_GLUE = (
    r"(?:\s*(?:number|num|no\.?|nr\.?|id|#|code|template|scan|record|ref\.?|hash)\b)?"
    r"\s*(?:(?:is|was|of|=)\s+)?[:#=.\-]?\s*(?:#\s*)?"
)
_OCR_CONFUSIONS = {
    "o": "[o0]",
    "l": "[l1i]",
    "i": "[il1]",
    "e": "[ec]",
    "m": "(?:m|rn)",
}


def ocr_tolerant(pattern: str) -> str:
    """Let a label's letters be read as OCR confuses them (o/0, l/1, e/c, m/rn).

    Letters after a backslash, inside character classes and in group
    syntax stay as they are.
    """
    out: list[str] = []
    in_class = escaped = False
    for index, ch in enumerate(pattern):
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif in_class:
            out.append(ch)
            in_class = ch != "]"
        elif ch == "[":
            out.append(ch)
            in_class = True
        elif ch in _OCR_CONFUSIONS and pattern[max(0, index - 2) : index] != "(?":
            out.append(_OCR_CONFUSIONS[ch])
        else:
            out.append(ch)
    return "".join(out)


_OCR_GLUE = ocr_tolerant(_GLUE)
_LABELLED = tuple(
    (t, re.compile(rf"\b(?:{ocr_tolerant(labels)})\b{_OCR_GLUE}{_VALUE}", re.I))
    for t, labels in _LABELS
)
_NOT_VALUES = frozenset({"number", "none", "unknown", "pending", "not", "with"})


def find_labelled(text: str) -> Iterator[Candidate]:
    for type_, pattern in _LABELLED:
        for m in pattern.finditer(text):
            value = m.group("value")
            digits = sum(ch.isdigit() for ch in value)
            if digits < 2 or value.lower() in _NOT_VALUES:
                continue
            if type_ == ID_NUMBER and digits < 3:
                continue
            confidence = 0.85 if digits >= 4 else 0.7
            start, end = m.span("value")
            yield _c(type_, start, end, confidence, f"{type_.lower()}-label", 1)


# --- dates and ages ----------------------------------------------------------

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
_ISO_DATE = re.compile(
    r"(?<![\d-])(?P<year>\d{4})(?P<sep>[-/.])(?P<a>\d{1,2})(?P=sep)(?P<b>\d{1,2})(?![\d-])"
)
_MONTH_FIRST = re.compile(
    rf"\b{_MONTH}\s+(?P<day>\d{{1,2}}){_ORDINAL},?\s+(?P<year>\d{{4}})\b", re.IGNORECASE
)
_DAY_FIRST = re.compile(
    rf"\b(?P<day>\d{{1,2}}){_ORDINAL}\s+(?:of\s+)?{_MONTH},?\s+(?P<year>\d{{4}})\b",
    re.IGNORECASE,
)
_DAY_MON_YEAR = re.compile(
    rf"\b(?P<day>\d{{1,2}})[-/ ]{_MONTH}[-/ ](?P<year>\d{{4}}|\d{{2}})\b", re.IGNORECASE
)
# Partial dates: month and year, or day and month; both are date elements.
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\s+(?:of\s+)?(?P<year>(?:19|20)\d{{2}})\b", re.I)
_MONTH_DAY = re.compile(
    rf"\b{_MONTH}\s+(?P<day>\d{{1,2}}){_ORDINAL}\b(?![,]?\s*\d{{4}})(?!:)", re.I
)
_DAY_MONTH = re.compile(
    rf"\b(?P<day>\d{{1,2}}){_ORDINAL}\s+(?:of\s+)?{_MONTH}(?![\w])(?!,?\s*\d{{4}})",
    re.I,
)
# A month named alone after a preposition ("seen in March") is a date element.
_MONTH_ALONE = re.compile(
    rf"\b(?:in|on|since|until|from|during|by|early|late|mid)[ -]{_MONTH}(?![\w-])",
    re.I,
)
_DATE_CONTEXT_SHORT = re.compile(
    r"\b(?:on|dob|born|dated?|since|from|until|admitted|discharged|seen|visit)\b",
    re.I,
)
_SHORT_NUMERIC = re.compile(r"(?<![\d/.-])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?![\d/])")
_AGE_AFTER = re.compile(
    r"\b(?P<age>\d{2,3})(?:\s*|-)"
    + ocr_tolerant(r"(?:years?|yrs?|y/?o|yo)(?:[\s-]*old)?\b"),
    re.I,
)
_AGE_BEFORE = re.compile(
    ocr_tolerant(r"\b(?:aged?|age:)") + r"\s*(?P<age>\d{2,3})\b", re.I
)


def _full_year(year: str) -> int:
    value = int(year)
    return value if len(year) == 4 else 2000 + value


def find_dates(text: str) -> Iterator[Candidate]:
    for m in _NUMERIC_DATE.finditer(text):
        year, a, b = _full_year(m["year"]), int(m["a"]), int(m["b"])
        # Month-first (US) or day-first (most of Europe): either reading will do.
        if checks.is_calendar_date(year, a, b) or checks.is_calendar_date(year, b, a):
            yield _c(DATE, m.start(), m.end(), 0.85, "date-numeric-pattern", 0)
    for m in _ISO_DATE.finditer(text):
        if checks.is_calendar_date(int(m["year"]), int(m["a"]), int(m["b"])):
            yield _c(DATE, m.start(), m.end(), 0.9, "date-iso-pattern", 0)
    # The written forms are searched only around a month's name.
    for lo, hi in _month_windows(text):
        for pattern in (_MONTH_FIRST, _DAY_FIRST, _DAY_MON_YEAR):
            for m in pattern.finditer(text, lo, hi):
                month = _MONTHS[m["month_name"].lower()]
                year = _full_year(m["year"])
                if checks.is_calendar_date(year, month, int(m["day"])):
                    yield _c(DATE, m.start(), m.end(), 0.9, "date-text-pattern", 0)
        for m in _MONTH_YEAR.finditer(text, lo, hi):
            if _month_word_ok(text, m):
                yield _c(DATE, m.start(), m.end(), 0.8, "date-month-year-pattern", 0)
        for m in _MONTH_ALONE.finditer(text, lo, hi):
            if m["month_name"][0].isupper():
                yield _c(
                    DATE,
                    m.start("month_name"),
                    m.end("month_name"),
                    0.6,
                    "date-month-pattern",
                    0,
                )
        for pattern in (_MONTH_DAY, _DAY_MONTH):
            for m in pattern.finditer(text, lo, hi):
                day = int(m["day"])
                if 1 <= day <= 31 and _month_word_ok(text, m):
                    yield _c(
                        DATE, m.start(), m.end(), 0.75, "date-day-month-pattern", 0
                    )
    for m in _SHORT_NUMERIC.finditer(text):
        a, b = int(m["a"]), int(m["b"])
        valid = (1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31)
        if valid and _before(text, m.start(), _DATE_CONTEXT_SHORT, 15):
            yield _c(DATE, m.start(), m.end(), 0.7, "date-short-pattern", 0)


_ANY_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)", re.I)


def _month_windows(text: str) -> list[tuple[int, int]]:
    windows: list[tuple[int, int]] = []
    for m in _ANY_MONTH.finditer(text):
        lo, hi = max(0, m.start() - 12), min(len(text), m.start() + 32)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


def _month_word_ok(text: str, m: re.Match[str]) -> bool:
    # "may" and "mar" are words too; as a month they are capitalised.
    word = m["month_name"]
    return word.lower() not in ("may", "mar") or word[0].isupper()


def find_ages(text: str) -> Iterator[Candidate]:
    for pattern in (_AGE_AFTER, _AGE_BEFORE):
        for m in pattern.finditer(text):
            if 90 <= int(m["age"]) <= 125:
                yield _c(AGE, m.start("age"), m.end("age"), 0.9, "age-over-89", 0)


# --- addresses and places ----------------------------------------------------

_SUFFIX = "|".join(gazetteers.STREET_SUFFIXES)
_STREET = re.compile(
    rf"\b\d{{1,6}}[A-Za-z]?(?:-\d{{1,4}})?,?\s+(?:[A-Z][A-Za-z'.-]*\s+){{1,4}}"
    rf"(?i:{_SUFFIX})\b\.?"
    r"(?:,?\s*(?i:apt|apartment|suite|ste|unit|flat|floor|fl|#)\.?\s*#?[A-Za-z0-9-]+)?"
)
_PO_BOX = re.compile(r"\b(?:P\.?\s?O\.?\s*Box|Post Office Box)\s+\d{1,6}\b", re.I)
_FLAT = re.compile(r"\b(?:Flat|Apt|Apartment|Unit|Suite)\s+\d{1,5}[A-Za-z]?\b")
_ZIP = re.compile(r"(?<![\d-])\d{5}(?:-\d{4})?(?![\d-])")
_ZIP_CONTEXT = re.compile(
    r"(?:\b(?:" + "|".join(sorted(gazetteers.STATE_CODES)) + r")\b\.?,?\s*$)"
    r"|\b(?:zip|postal code|zip code|postcode)\b",
    re.I,
)
_STATE_NAME_BEFORE = re.compile(
    r"\b(?:" + "|".join(gazetteers.US_STATES) + r")\b,?\s*$", re.I
)
_UK_POSTCODE = re.compile(
    r"\b(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?)\s?\d[ABD-HJLNP-UW-Z]{2}\b"
)
_CITY = re.compile(
    r"\b(?:"
    + "|".join(
        re.escape(c.title()).replace(r"\ ", r"\s+")
        for c in sorted(gazetteers.CITIES, key=len, reverse=True)
    )
    + r")\b"
)
_CITY_CONTEXT_BEFORE = re.compile(r"\b(?:in|at|from|near|of|to|lives in)\s+$|,\s*$")
_CITY_CONTEXT_AFTER = re.compile(
    r"\s*,\s*(?:[A-Z]{2}\b|" + "|".join(s.title() for s in gazetteers.US_STATES) + ")"
)


def find_addresses(text: str) -> Iterator[Candidate]:
    for m in _STREET.finditer(text):
        yield _c(ADDRESS, m.start(), m.end(), 0.85, "street-address-pattern", 1)
    for m in _PO_BOX.finditer(text):
        yield _c(ADDRESS, m.start(), m.end(), 0.9, "po-box-pattern", 1)
    for m in _FLAT.finditer(text):
        yield _c(ADDRESS, m.start(), m.end(), 0.6, "flat-pattern", 2)
    for m in _ZIP.finditer(text):
        before = text[max(0, m.start() - 25) : m.start()]
        if _ZIP_CONTEXT.search(before) or _STATE_NAME_BEFORE.search(before):
            yield _c(ZIP, m.start(), m.end(), 0.9, "zip-pattern", 0)
    for m in _UK_POSTCODE.finditer(text):
        value = m.group()
        if any(ch.isdigit() for ch in value[-3:]) and len(value.replace(" ", "")) >= 5:
            yield _c(ZIP, m.start(), m.end(), 0.85, "uk-postcode-pattern", 0)
    for m in _CITY.finditer(text):
        after = text[m.end() : m.end() + 30]
        before = text[max(0, m.start() - 12) : m.start()]
        if _CITY_CONTEXT_AFTER.match(after) or _CITY_CONTEXT_BEFORE.search(before):
            yield _c(LOCATION, m.start(), m.end(), 0.75, "city-gazetteer", 1)


# --- names -------------------------------------------------------------------

_WORD = (
    r"(?:[A-Z][a-z]+(?:['\u2019-][A-Z]?[a-z]+)?|[A-Z]\.|[A-Z]['\u2019][A-Z][a-z]+"
    r"|Mc[A-Z][a-z]+)"
)
_CAPS_WORD = r"(?:[A-Z]{2,}(?:['\u2019-][A-Z]+)?)"
_TITLE = re.compile(
    r"\b(?i:" + "|".join(gazetteers.TITLES) + r")\.?\s+"
    rf"(?P<name>{_WORD}(?:[ \t]+{_WORD}){{0,2}})"
)
_NAME_LABEL = re.compile(
    ocr_tolerant(
        r"\b(?i:patient(?: name)?|name|full name|employee|client|customer|claimant"
        r"|account holder|account name|cardholder|beneficiary|defendant|plaintiff"
        r"|applicant|witness|tenant|signed|signature|attn|attention|c/o|dear"
        r"|physician|doctor|surgeon|referred by|prepared by|next of kin"
        r"|emergency contact|guardian|mother|father|spouse"
        # Words that introduce a name only as a field label, with a colon.
        r"|(?:from|to|cc|contact|member)(?=\s*:))"
    )
    + r"\s*[:,-]?[ \t]*"
    rf"(?P<name>(?:{_WORD}|{_CAPS_WORD})(?:[ \t]+(?:{_WORD}|{_CAPS_WORD})){{0,3}})"
)
# A name on its own line under a letter's closing words.
_SIGN_OFF = re.compile(
    ocr_tolerant(
        r"\b(?i:regards|sincerely|faithfully|best wishes|with thanks|yours truly)"
    )
    + r",?[ \t]*\n[ \t]*"
    rf"(?P<name>{_WORD}(?:[ \t]+{_WORD}){{0,3}})[ \t]*(?=\n|$)"
)
_GIVEN_NAME = re.compile(
    r"\b(?P<name>(?P<first>[A-Z][a-z]+|[A-Z]{2,})"
    rf"(?:[ \t]+(?:{_WORD}|{_CAPS_WORD}|[A-Z]\.?(?![A-Za-z]))){{0,2}})"
)
_SURNAME_FIRST = re.compile(
    r"\b(?P<last>[A-Z][a-zA-Z'-]+),[ \t]+(?P<first>[A-Z][a-z]+)\b"
)
# Label words that look like capitalised names but are not.
_STOP_WORDS = frozenset(
    """
    the a an and or of for to in on at by with from date dob mrn phone fax email
    address patient name account number no re subject dear sir madam team
    department hospital clinic bank street road report summary note letter
    statement page total balance ref reference yours sincerely regards kind
    best thank thanks please mr mrs ms dr is was has had not this that
    """.split()
)


def find_names(text: str) -> Iterator[Candidate]:
    for m in _TITLE.finditer(text):
        start, end = _trim_name(text, *m.span("name"))
        if end > start:
            yield _c(NAME, start, end, 0.9, "name-title-pattern", 1)
    for m in _SIGN_OFF.finditer(text):
        start, end = _trim_name(text, *m.span("name"))
        if end > start:
            yield _c(NAME, start, end, 0.8, "name-signature-pattern", 1)
    for m in _NAME_LABEL.finditer(text):
        start, end = _trim_name(text, *m.span("name"))
        salutation = m.group().lower().startswith(("dear", "dcar", "attn", "c/o"))
        if end > start and (salutation or _looks_like_name(text[start:end])):
            known = _known_words(text[start:end])
            tier = 1 if known else 2
            yield _c(NAME, start, end, 0.8, "name-label-pattern", tier)
    for m in _GIVEN_NAME.finditer(text):
        first = m["first"].lower()
        if first not in gazetteers.GIVEN_NAMES:
            if first in gazetteers.AMBIGUOUS_NAMES:
                yield from _ambiguous_pair(text, m)
            continue
        start, end = _trim_name(text, *m.span("name"))
        words = text[start:end].split()
        if len(words) >= 2:
            yield _c(NAME, start, end, 0.8, "name-gazetteer", 1)
        elif first not in gazetteers.AMBIGUOUS_NAMES and not _sentence_start(
            text, start
        ):
            yield _c(NAME, start, end, 0.6, "name-gazetteer", 2)
    for m in _SURNAME_FIRST.finditer(text):
        if m["first"].lower() in gazetteers.GIVEN_NAMES:
            yield _c(NAME, m.start(), m.end(), 0.75, "name-surname-first", 2)


def _ambiguous_pair(text: str, m: re.Match[str]) -> Iterator[Candidate]:
    """ "Grace Price", "Hope Long": a word-like given name needs a surname."""
    start, end = _trim_name(text, *m.span("name"))
    words = text[start:end].split()
    if len(words) < 2:
        return
    second = words[1].lower().strip(".,")
    known = second in gazetteers.SURNAMES or second in gazetteers.AMBIGUOUS_NAMES
    if known or not _sentence_start(text, start):
        yield _c(NAME, start, end, 0.65 if known else 0.55, "name-gazetteer", 2)


def _known_words(value: str) -> int:
    return sum(
        w.lower().strip(".,") in gazetteers.GIVEN_NAMES
        or w.lower().strip(".,") in gazetteers.SURNAMES
        for w in value.split()
    )


def _trim_name(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop label words caught at either end of a capitalised run."""
    words = [
        (w.start() + start, w.end() + start)
        for w in re.finditer(r"\S+", text[start:end])
    ]
    while words and text[words[-1][0] : words[-1][1]].lower().strip(".") in _STOP_WORDS:
        words.pop()
    while words and text[words[0][0] : words[0][1]].lower().strip(".") in _STOP_WORDS:
        words.pop(0)
    if not words:
        return (start, start)
    return (words[0][0], words[-1][1])


def _looks_like_name(value: str) -> bool:
    words = value.split()
    known = _known_words(value) + sum(
        w.lower().strip(".,") in gazetteers.AMBIGUOUS_NAMES for w in words
    )
    return known >= 1 or len(words) >= 2


def _sentence_start(text: str, start: int) -> bool:
    before = text[max(0, start - 3) : start].rstrip(" \t")
    return not before or before[-1] in ".!?\n\f"


FORMAT_DETECTORS: tuple[Detector, ...] = (
    find_emails,
    find_urls,
    find_ips,
    find_ssns,
    find_cards,
    find_ibans,
    find_aba,
    find_bics,
    find_nhs,
    find_ninos,
    find_vehicle_and_device_numbers,
    find_licences,
    find_phones,
    find_dates,
    find_ages,
)
CONTEXT_DETECTORS: tuple[Detector, ...] = (find_labelled, find_addresses, find_names)
DETECTORS = FORMAT_DETECTORS + CONTEXT_DETECTORS
