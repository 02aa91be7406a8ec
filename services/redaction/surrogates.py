"""Realistic stand-ins for identifiers, consistent across a project. Pure.

A surrogate keeps the original's shape (separators, letter case, length,
check digits), is drawn from a generator seeded by a keyed hash of the
original, so the same value gets the same stand-in in every document of a
project, and is checked against the surrogates already handed out, so no two
originals ever share one. Dates move by one offset per subject, so the
intervals between a subject's dates survive.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from strongroom.services.redaction import checks, detectors, gazetteers
from strongroom.services.redaction.detectors import Finding

SURROGATE_VERSION = "surrogate-1"

# Safe Harbor: three-digit ZIP zones of 20,000 people or fewer become 000.
RESTRICTED_ZIP3 = frozenset(
    "036 059 063 102 203 556 692 790 821 823 830 831 878 879 884 890 893".split()
)
_GIVEN = sorted(gazetteers.GIVEN_NAMES - gazetteers.AMBIGUOUS_NAMES)
_SURNAMES = sorted(gazetteers.SURNAMES - gazetteers.AMBIGUOUS_NAMES)
_PLACE_HEADS = (
    "ash alder bar bell black bram brook burn clay cold crow dale deer elm fair "
    "fern fox glen green hay hazel holly kings lark lin maple mill moor oak "
    "pine red rose rye sand stone thorn west white wil wood"
).split()
_PLACE_TAILS = (
    "bury by combe den field ford gate ham haven hurst ley mere mont mouth ridge "
    "stead stow ton vale ville wick wood worth"
).split()
_ORG_WORDS = frozenset(
    "hospital clinic bank trust group inc ltd llc llp plc partners surgery "
    "centre center university college school council associates corp".split()
)
_MONTH_NAMES = (
    "January February March April May June July August September October "
    "November December"
).split()


def keyed_digest(key: bytes, type_: str, value: str) -> bytes:
    """HMAC-SHA256 of a normalised value under the project's key."""
    normal = " ".join(value.split()).casefold()
    return hmac.new(key, f"{type_}\x00{normal}".encode(), hashlib.sha256).digest()


def keyed_hash(key: bytes, type_: str, value: str) -> str:
    return f"[{type_}:{keyed_digest(key, type_, value).hex()[:16]}]"


@dataclass
class SurrogateBook:
    """The project's surrogates so far: digest -> surrogate, and those in use.

    ``new`` collects the entries made since loading, for the store to save.
    """

    key: bytes
    by_digest: dict[str, str] = field(default_factory=dict)
    used: set[tuple[str, str]] = field(default_factory=set)
    new: list[tuple[str, str, str, str]] = field(default_factory=list)

    @classmethod
    def load(cls, key: bytes, entries: Iterable[tuple[str, str, str]]) -> SurrogateBook:
        """``entries``: (type, digest hex, surrogate) rows already stored."""
        book = cls(key)
        for type_, digest, surrogate in entries:
            book.by_digest[digest] = surrogate
            book.used.add((type_, surrogate.casefold()))
        return book

    def surrogate(self, finding: Finding, value: str, subject: str) -> str:
        if finding.type == detectors.DATE:
            return shift_date(value, self.date_offset(subject))
        if finding.type == detectors.AGE:
            return "90+"
        digest = keyed_digest(self.key, finding.type, value).hex()
        known = self.by_digest.get(digest)
        if known is not None:
            return known
        seed = int(digest, 16)
        for attempt in range(1000):
            rng = random.Random(seed + attempt)
            candidate = make(finding.type, value, rng)
            if (finding.type, candidate.casefold()) not in self.used and (
                candidate.casefold() != value.casefold()
            ):
                break
        else:  # pragma: no cover - needs an exhausted space
            candidate = keyed_hash(self.key, finding.type, value)
        self.by_digest[digest] = candidate
        self.used.add((finding.type, candidate.casefold()))
        self.new.append((finding.type, digest, candidate, value))
        return candidate

    def date_offset(self, subject: str) -> int:
        digest = keyed_digest(self.key, "date-shift", subject)
        days = int.from_bytes(digest[:4], "big") % 730 - 365
        return days if days != 0 else 17


# --- generators, one per shape ----------------------------------------------


def make(type_: str, value: str, rng: random.Random) -> str:
    maker = _MAKERS.get(type_, _shape)
    return maker(value, rng)


def _shape(value: str, rng: random.Random) -> str:
    """Digits for digits, letters for letters (same case), separators kept."""
    out = []
    for ch in value:
        if ch.isdigit():
            out.append(str(rng.randrange(10)))
        elif ch.isalpha() and ch.isascii():
            letter = chr(ord("A") + rng.randrange(26))
            out.append(letter if ch.isupper() else letter.lower())
        else:
            out.append(ch)
    return "".join(out)


def _case_like(template: str, value: str) -> str:
    if template.isupper() and len(template) > 1:
        return value.upper()
    if template.islower():
        return value.lower()
    return value


def _name(value: str, rng: random.Random) -> str:
    words = value.split()
    out = []
    for index, word in enumerate(words):
        bare = word.rstrip(",.")
        tail = word[len(bare) :]
        if len(bare) <= 2 and bare.rstrip(".").isalpha():  # an initial
            new = chr(ord("A") + rng.randrange(26)) + ("." if "." in word else "")
            out.append(new + tail.replace(".", "", 1 if "." in word else 0))
            continue
        last = index == len(words) - 1 and len(words) > 1
        pool = _SURNAMES if last or bare.lower() in gazetteers.SURNAMES else _GIVEN
        if len(words) == 1 and bare.lower() not in gazetteers.GIVEN_NAMES:
            pool = _SURNAMES
        out.append(_case_like(bare, rng.choice(pool).title()) + tail)
    return " ".join(out)


def _place(rng: random.Random) -> str:
    return (rng.choice(_PLACE_HEADS) + rng.choice(_PLACE_TAILS)).title()


def _location(value: str, rng: random.Random) -> str:
    return _case_like(value, _place(rng))


def _organization(value: str, rng: random.Random) -> str:
    words = value.split()
    generic = [w for w in words if w.lower().strip(".,") in _ORG_WORDS]
    head = _place(rng)
    return _case_like(value, " ".join([head, *generic]) if generic else f"{head} Group")


def _address(value: str, rng: random.Random) -> str:
    m = re.match(r"(\d+[A-Za-z]?)(.*?)(\s+\S+)$", value, re.S)
    if not m:
        return _shape(value, rng)
    number = _shape(m.group(1), rng).lstrip("0") or "1"
    return f"{number} {_place(rng)}{m.group(3)}"


def _email(value: str, rng: random.Random) -> str:
    local = f"{rng.choice(_GIVEN)}.{rng.choice(_SURNAMES)}{rng.randrange(100)}"
    return f"{local}@example.org"


def _url(value: str, rng: random.Random) -> str:
    scheme = "https://" if value.lower().startswith("https") else "http://"
    return f"{scheme}www.{_place(rng).lower()}.example/{rng.randrange(10**6):06d}"


def _ip(value: str, rng: random.Random) -> str:
    if ":" in value:
        return "2001:db8:" + ":".join(f"{rng.randrange(65536):x}" for _ in range(6))
    return "10." + ".".join(str(rng.randrange(1, 255)) for _ in range(3))


def _phone(value: str, rng: random.Random) -> str:
    """Keep a country code or trunk prefix; the number after it starts 2-9."""
    m = re.match(r"(\+\d{1,3}[\s.-]?|1[\s.-]|0)?(.*)$", value, re.S)
    assert m is not None
    prefix, rest = m.group(1) or "", _shape(m.group(2), rng)
    first = next((i for i, ch in enumerate(rest) if ch.isdigit()), None)
    if first is not None and prefix != "0":
        rest = rest[:first] + str(rng.randrange(2, 10)) + rest[first + 1 :]
    return prefix + rest


def _ssn(value: str, rng: random.Random) -> str:
    while True:
        new = _shape(value, rng)
        d = checks.digits_of(new)
        if checks.is_ssn(d[:3], d[3:5], d[5:]):
            return new


def _zip(value: str, rng: random.Random) -> str:
    if not value[:5].isdigit():  # a UK postcode
        return _shape(value, rng)
    zone = "000" if value[:3] in RESTRICTED_ZIP3 else value[:3]
    return zone + _shape(value[3:], rng)


def _fill_digits(value: str, digits: str) -> str:
    it = iter(digits)
    return "".join(next(it) if ch.isdigit() else ch for ch in value)


def _card(value: str, rng: random.Random) -> str:
    count = len(checks.digits_of(value))
    first = checks.digits_of(value)[0]
    for _ in range(100):
        body = first + "".join(str(rng.randrange(10)) for _ in range(count - 2))
        for check in "0123456789":
            if checks.is_card_number(body + check):
                return _fill_digits(value, body + check)
    return _shape(value, rng)


def _iban(value: str, rng: random.Random) -> str:
    compact = "".join(value.split()).upper()
    country = compact[:2]
    bban = _shape(compact[4:], rng)
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = f"{98 - int(numeric) % 97:02d}"
    new = country + check + bban
    it = iter(new)
    return "".join(next(it) if not ch.isspace() else ch for ch in value)


def _aba(value: str, rng: random.Random) -> str:
    while True:
        body = f"{rng.choice([1, 2, 3, 6, 7]):01d}" + "".join(
            str(rng.randrange(10)) for _ in range(7)
        )
        body = "0" + body if len(body) == 8 else body
        for check in "0123456789":
            if checks.is_aba_routing(body[:8] + check):
                return body[:8] + check


def _nhs(value: str, rng: random.Random) -> str:
    while True:
        body = "".join(str(rng.randrange(10)) for _ in range(9))
        for check in "0123456789":
            if checks.is_nhs_number(body + check):
                return _fill_digits(value, body + check)


def _nino(value: str, rng: random.Random) -> str:
    letters = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        prefix = rng.choice(letters) + rng.choice(letters)
        body = "".join(str(rng.randrange(10)) for _ in range(6))
        new = prefix + body + rng.choice("ABCD")
        if checks.is_nino(new):
            it = iter(new)
            return "".join(next(it) if not ch.isspace() else ch for ch in value)


def _vin(value: str, rng: random.Random) -> str:
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    while True:
        chars = [rng.choice(alphabet) for _ in range(17)]
        chars[8] = "0"
        for check in "0123456789X":
            chars[8] = check
            if checks.is_vin("".join(chars)):
                return "".join(chars)


def _bic(value: str, rng: random.Random) -> str:
    bank = "".join(chr(ord("A") + rng.randrange(26)) for _ in range(4))
    return bank + value[4:6] + _shape(value[6:], rng).upper()


_MAKERS = {
    detectors.NAME: _name,
    detectors.LOCATION: _location,
    detectors.ORGANIZATION: _organization,
    detectors.ADDRESS: _address,
    detectors.EMAIL: _email,
    detectors.URL: _url,
    detectors.IP_ADDRESS: _ip,
    detectors.PHONE: _phone,
    detectors.FAX: _phone,
    detectors.US_SSN: _ssn,
    detectors.ZIP: _zip,
    detectors.CREDIT_CARD: _card,
    detectors.IBAN: _iban,
    detectors.ABA_ROUTING: _aba,
    detectors.NHS_NUMBER: _nhs,
    detectors.UK_NINO: _nino,
    detectors.VEHICLE: lambda v, rng: _vin(v, rng) if len(v) == 17 else _shape(v, rng),
    detectors.SWIFT_BIC: _bic,
}


# --- dates ---------------------------------------------------------------------

_MONTH_INDEX = {
    name.lower()[: len(key)]: i
    for i, name in enumerate(_MONTH_NAMES, start=1)
    for key in (name[:3], name)
}
_MONTH_INDEX.update({"sept": 9})
_NUMERIC = re.compile(r"^(\d{1,4})([/.-])(\d{1,2})\2(\d{1,4})$")
_WORDY = re.compile(r"[A-Za-z]+\.?")


def shift_date(value: str, days: int) -> str:
    """Move a date by ``days`` and write it in the original's format.

    Unparseable values (they passed the detector's checks, so rare) become
    ``[DATE]``: shifting must never leave the true date behind.
    """
    m = _NUMERIC.match(value)
    if m:
        return _shift_numeric(m, days) or "[DATE]"
    return _shift_wordy(value, days) or "[DATE]"


def _shift_numeric(m: re.Match[str], days: int) -> str | None:
    a, sep, b, c = m.group(1), m.group(2), m.group(3), m.group(4)
    if len(a) == 4:  # year first
        fields = [("y", a), ("m", b), ("d", c)]
    else:
        year = int(c) if len(c) == 4 else 2000 + int(c)
        us = 1 <= int(a) <= 12 and checks.is_calendar_date(year, int(a), int(b))
        fields = (
            [("m", a), ("d", b), ("y", c)] if us else [("d", a), ("m", b), ("y", c)]
        )
    got = {k: v for k, v in fields}
    year_text = got["y"]
    year = int(year_text) if len(year_text) == 4 else 2000 + int(year_text)
    try:
        moved = date(year, int(got["m"]), int(got["d"])) + timedelta(days=days)
    except ValueError:
        return None
    values = {
        "y": f"{moved.year:04d}" if len(year_text) == 4 else f"{moved.year % 100:02d}",
        "m": f"{moved.month:0{len(got['m'])}d}",
        "d": f"{moved.day:0{len(got['d'])}d}",
    }
    return sep.join(values[k] for k, _ in fields)


def _shift_wordy(value: str, days: int) -> str | None:
    words = _WORDY.findall(value)
    month = None
    month_word = ""
    for word in words:
        key = word.rstrip(".").lower()
        if key in _MONTH_INDEX or key[:3] in _MONTH_INDEX:
            month = _MONTH_INDEX.get(key, _MONTH_INDEX.get(key[:3]))
            month_word = word
            break
    if month is None:
        return None
    numbers = [(n.start(), n.group()) for n in re.finditer(r"\d+", value)]
    year_text = next((t for _, t in numbers if len(t) == 4), "")
    day_text = next((t for _, t in numbers if len(t) <= 2), "")
    year = int(year_text) if year_text else 2000
    day = int(day_text) if day_text else 15
    try:
        moved = date(year, month, day) + timedelta(days=days)
    except ValueError:
        return None
    name = _MONTH_NAMES[moved.month - 1]
    new_month = name[:3] if len(month_word.rstrip(".")) <= 4 else name
    if month_word.rstrip(".").lower() == "sept":
        new_month = name[:4] if moved.month == 9 else name[:3]
    new_month = _case_like(month_word, new_month) + (
        "." if month_word.endswith(".") else ""
    )
    out = value.replace(month_word, new_month, 1)
    if year_text:
        out = out.replace(year_text, f"{moved.year:04d}", 1)
    if day_text:
        out = re.sub(
            rf"(?<!\d){day_text}(?:st|nd|rd|th)?(?!\d)",
            lambda m: _day_like(m.group(), moved.day, len(day_text)),
            out,
            count=1,
        )
    return out


def _day_like(template: str, day: int, width: int) -> str:
    text = f"{day:0{width}d}"
    if template[-2:].isalpha():
        suffix = (
            "th"
            if 10 <= day % 100 <= 20
            else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
        )
        text += suffix
    return text
