"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP).

Strongroom uses the profile every authenticator app reads from an
``otpauth://`` URI: SHA-1, 6 digits, a 30-second step. Other digests and
lengths are accepted here only so the RFC's test vectors can be checked.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
# A code from the step before or after the current one is accepted too, for
# clocks that drift and codes typed near a step's end.
DRIFT_STEPS = 1
_SECRET_BYTES = 20


def new_secret() -> str:
    """A random 160-bit secret, base32 without padding (RFC 4226 section 4)."""
    return base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode().rstrip("=")


def time_step(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // STEP_SECONDS)


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """The HOTP value of ``counter`` (RFC 4226 section 5.3)."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    (value,) = struct.unpack(">I", mac[offset : offset + 4])
    return str((value & 0x7FFFFFFF) % 10**digits).zfill(digits)


def totp(secret: str, at: float | None = None) -> str:
    """The code an authenticator app shows for ``secret`` at ``at`` (now)."""
    return hotp(decode_secret(secret), time_step(at))


def matching_step(
    secret: str, code: str, after_step: int, at: float | None = None
) -> int | None:
    """The time step whose code ``code`` is, if it is a step after ``after_step``
    within the drift window around ``at``; otherwise None.

    Refusing steps up to ``after_step`` refuses a code seen once already
    (RFC 6238 section 5.2).
    """
    code = code.strip()
    if len(code) != DIGITS or not code.isdigit():
        return None
    key = decode_secret(secret)
    now = time_step(at)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        # Every candidate is computed and compared, so timing says nothing
        # about which one matched.
        if hmac.compare_digest(hotp(key, step), code) and step > after_step:
            found = step
    return found


def decode_secret(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI authenticator apps read (Key Uri Format)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        }
    )
    return f"otpauth://totp/{label}?{query}"
