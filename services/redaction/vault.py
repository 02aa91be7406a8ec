"""Encryption of what must stay secret at rest: re-identification originals
and the projects' keys.

AES-256-GCM with a random nonce per value; the additional data binds a
ciphertext to its project and purpose, so one cannot be moved to another.
The master key lives in a file outside the data directory (settings).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.services.common.errors import DependencyUnavailable

_NONCE = 12


class Vault:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("The vault key must be 32 bytes.")
        self._aead = AESGCM(key)

    @classmethod
    def from_file(cls, path: Path) -> Vault:
        """Read the master key, creating it (mode 0600) on first start.

        Raises:
            DependencyUnavailable: the file exists but does not hold a key.
        """
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
        try:
            key = bytes.fromhex(path.read_text().strip())
        except ValueError as exc:
            raise DependencyUnavailable(
                "The redaction key file does not hold a hex key.",
                code="redaction_key_invalid",
            ) from exc
        if len(key) != 32:
            raise DependencyUnavailable(
                "The redaction key file must hold 32 bytes.",
                code="redaction_key_invalid",
            )
        return cls(key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], context.encode())
