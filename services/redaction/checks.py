"""Checksums and number rules that tell a real identifier from a look-alike.

Pure arithmetic: no I/O, no patterns. Each function takes the characters of
a candidate (separators allowed where the format allows them) and answers
whether the number could have been issued.
"""

from __future__ import annotations

from datetime import date

# ISO 3166-1 alpha-2 codes of the countries that issue IBANs, with the length.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16,
    "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31,
    "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip

# Countries a SWIFT/BIC code may name (ISO 3166-1 alpha-2, common ones).
BIC_COUNTRIES = frozenset(IBAN_LENGTHS) | frozenset(
    "US CA MX AU NZ JP CN HK SG IN KR TW TH MY ID PH VN ZA NG KE MA AR CL CO PE "
    "VE UY RU BY".split()
)

# First two digits an ABA routing number may start with (Federal Reserve
# districts, thrifts, electronic and traveller's cheques).
_ABA_PREFIXES = set(range(0, 13)) | set(range(21, 33)) | set(range(61, 73)) | {80}

# VIN letters and their values; I, O and Q are never used.
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def digits_of(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def luhn_ok(number: str) -> bool:
    """The Luhn (mod 10) check used by cards, IMEIs and NPIs."""
    if not number.isdigit() or len(number) < 2:
        return False
    total = 0
    for index, ch in enumerate(reversed(number)):
        value = int(ch)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """A payment card: 13-19 digits, a known issuer prefix and the Luhn check."""
    if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
        return False
    two, four = int(digits[:2]), int(digits[:4])
    return (
        digits[0] == "4"
        or 51 <= two <= 55
        or 2221 <= four <= 2720
        or two in (34, 37)
        or four == 6011
        or two == 65
        or 644 <= int(digits[:3]) <= 649
        or 3528 <= four <= 3589
        or two in (36, 38, 39)
        or 300 <= int(digits[:3]) <= 305
        or two == 62
    )


def is_iban(value: str) -> bool:
    """ISO 13616: known country and length, then mod 97 of the rearranged digits."""
    compact = "".join(value.split()).upper()
    country = compact[:2]
    if IBAN_LENGTHS.get(country) != len(compact) or not compact[2:4].isdigit():
        return False
    if not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


def is_aba_routing(digits: str) -> bool:
    """Nine digits, a valid prefix and the 3-7-1 weighted checksum."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    if int(digits[:2]) not in _ABA_PREFIXES:
        return False
    weights = (3, 7, 1) * 3
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 10 == 0


def is_bic(value: str) -> bool:
    """SWIFT/BIC: 4 letters (bank), a known country, 2 and optionally 3 more."""
    return (
        len(value) in (8, 11)
        and value[:4].isalpha()
        and value[4:6] in BIC_COUNTRIES
        and value[6:].isalnum()
        and value.isupper()
    )


def is_nhs_number(digits: str) -> bool:
    """UK NHS number: ten digits, the last a mod 11 check of the first nine."""
    if len(digits) != 10 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def is_nino(value: str) -> bool:
    """UK National Insurance number: two letters, six digits, A-D suffix."""
    compact = "".join(value.split()).upper()
    if len(compact) != 9 or compact[:2] in _NINO_BAD_PREFIXES:
        return False
    first, second = compact[0], compact[1]
    return (
        first not in "DFIQUV"
        and second not in "DFIOQUV"
        and compact[2:8].isdigit()
        and compact[8] in "ABCD"
    )


def is_ssn(area: str, group: str, serial: str) -> bool:
    # SSA never issues area 000, 666 or 900-999, group 00 or serial 0000.
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


def is_vin(value: str) -> bool:
    """A 17-character VIN whose ninth character is its check digit.

    Vehicles built for North America carry the check; others are accepted
    only with a context word, which the caller decides.
    """
    return vin_shape_ok(value) and vin_check_ok(value)


def vin_shape_ok(value: str) -> bool:
    return (
        len(value) == 17
        and all(ch in _VIN_VALUES for ch in value)
        and any(ch.isdigit() for ch in value)
        and any(ch.isalpha() for ch in value)
    )


def vin_check_ok(value: str) -> bool:
    total = sum(_VIN_VALUES[ch] * w for ch, w in zip(value, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return value[8] == ("X" if remainder == 10 else str(remainder))


def is_dea_number(value: str) -> bool:
    """US DEA registration: two letters, seven digits, the last a check digit."""
    if len(value) != 9 or not value[:2].isalpha() or not value[2:].isdigit():
        return False
    d = [int(ch) for ch in value[2:]]
    total = d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])
    return total % 10 == d[6]


def is_npi(digits: str) -> bool:
    """US National Provider Identifier: Luhn over the 80840 prefix."""
    return len(digits) == 10 and digits[0] in "12" and luhn_ok("80840" + digits)


def is_imei(digits: str) -> bool:
    return len(digits) == 15 and luhn_ok(digits)


def is_calendar_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def is_ipv4(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 4 and all(
        p.isdigit() and len(p) <= 3 and int(p) <= 255 and (p == "0" or p[0] != "0")
        for p in parts
    )
