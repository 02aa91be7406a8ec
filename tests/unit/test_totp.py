"""TOTP against the test vectors of RFC 4226 (HOTP) and RFC 6238 (TOTP)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pytest

from strongroom.services.common import totp

RFC4226_KEY = b"12345678901234567890"
# RFC 4226 appendix D: HOTP values for counters 0 to 9.
RFC4226_VALUES = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]
# RFC 6238 appendix B: 8-digit TOTP values, 30-second steps from T0 = 0.
RFC6238_KEYS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890" * 6 + b"1234",
}
RFC6238_VALUES = [
    (59, {"sha1": "94287082", "sha256": "46119246", "sha512": "90693936"}),
    (1111111109, {"sha1": "07081804", "sha256": "68084774", "sha512": "25091201"}),
    (1111111111, {"sha1": "14050471", "sha256": "67062674", "sha512": "99943326"}),
    (1234567890, {"sha1": "89005924", "sha256": "91819424", "sha512": "93441116"}),
    (2000000000, {"sha1": "69279037", "sha256": "90698825", "sha512": "38618901"}),
    (20000000000, {"sha1": "65353130", "sha256": "77737706", "sha512": "47863826"}),
]
SECRET = base64.b32encode(RFC6238_KEYS["sha1"]).decode().rstrip("=")


@pytest.mark.parametrize(("counter", "value"), list(enumerate(RFC4226_VALUES)))
def test_hotp_matches_rfc4226(counter: int, value: str) -> None:
    assert totp.hotp(RFC4226_KEY, counter) == value


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize(("at", "values"), RFC6238_VALUES)
def test_totp_matches_rfc6238(at: int, values: dict[str, str], digest: str) -> None:
    step = totp.time_step(at)

    assert (
        totp.hotp(RFC6238_KEYS[digest], step, digits=8, digest=digest)
        == (values[digest])
    )


def test_six_digit_codes_are_the_last_six_of_the_rfc_values() -> None:
    for at, values in RFC6238_VALUES:
        assert totp.totp(SECRET, at) == values["sha1"][-6:]


def test_a_code_is_accepted_in_the_drift_window_only() -> None:
    at = 1111111111
    step = totp.time_step(at)

    for offset in (-1, 0, 1):
        code = totp.totp(SECRET, at + offset * totp.STEP_SECONDS)
        assert totp.matching_step(SECRET, code, 0, at) == step + offset
    for offset in (-2, 2):
        code = totp.totp(SECRET, at + offset * totp.STEP_SECONDS)
        assert totp.matching_step(SECRET, code, 0, at) is None


def test_a_code_already_used_is_refused() -> None:
    at = 1234567890
    code = totp.totp(SECRET, at)
    step = totp.matching_step(SECRET, code, 0, at)

    assert step == totp.time_step(at)
    assert totp.matching_step(SECRET, code, step, at) is None
    assert totp.matching_step(SECRET, code, step, at + 10) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 456"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert totp.matching_step(SECRET, code, 0, 59) is None


def test_new_secrets_are_random_160_bit_base32() -> None:
    first, second = totp.new_secret(), totp.new_secret()

    assert first != second
    assert len(totp.decode_secret(first)) == 20
    assert totp.totp(first).isdigit()


def test_provisioning_uri_names_the_profile() -> None:
    uri = urlparse(totp.provisioning_uri(SECRET, "mia lopez", "Strongroom"))
    query = parse_qs(uri.query)

    assert uri.scheme == "otpauth"
    assert uri.netloc == "totp"
    assert uri.path == "/Strongroom:mia%20lopez"
    assert query == {
        "secret": [SECRET],
        "issuer": ["Strongroom"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }
