"""Encryption at rest for the embedded object store.

One 32-byte key, kept in a file outside the data directory, gives three
subkeys (HKDF-SHA256): one names objects on disk, one encrypts their content
and one identifies the key without revealing it.

An encrypted object is a header, then its content in segments of 64 KiB,
each sealed with AES-256-GCM (the STREAM construction of Hoang, Reyhanitabar,
Rogaway and Vizár). The header holds a magic string, a format version, the
key's id and a random 16-byte salt; the salt and the content subkey give the
object's own segment key, so no nonce repeats under any key however many
objects there are. Each segment's nonce and additional data carry its index
and whether it is the last one, and the additional data also carries the
header: a segment changed, moved, dropped or appended, or a file cut short
at a segment boundary, fails to open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.services.common.errors import DependencyUnavailable, InternalError

KEY_SIZE = 32
SEGMENT_SIZE = 64 * 1024
MAGIC = b"SRSEALED"
VERSION = 1
_KEY_ID_SIZE = 8
_SALT_SIZE = 16
HEADER_SIZE = len(MAGIC) + 1 + _KEY_ID_SIZE + _SALT_SIZE
_TAG_SIZE = 16
# The setting that names the key file, for messages that tell how to fix.
KEY_SETTING = "STRONGROOM_OBJECT_STORE_KEY_FILE"


class ObjectCipher:
    """Names, seals and opens objects under one object store key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("The object store key must be 32 bytes.")
        self._name_key = _subkey(key, b"strongroom object store: names")
        self._content_key = _subkey(key, b"strongroom object store: content")
        self.key_id = _subkey(key, b"strongroom object store: key id")[:_KEY_ID_SIZE]

    def object_name(self, bucket: str, sha256: str) -> str:
        """The file name of an object: keyed, so known content cannot be
        confirmed from a directory listing, and per bucket, so the same
        content in two buckets does not show either."""
        message = f"{bucket}/{sha256}".encode()
        return hmac.new(self._name_key, message, hashlib.sha256).hexdigest()

    def seal(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Yield the header, then each sealed segment of the bytes in ``chunks``."""
        salt = secrets.token_bytes(_SALT_SIZE)
        header = MAGIC + bytes([VERSION]) + self.key_id + salt
        aead = self._segment_aead(salt)
        yield header
        pending = bytearray()
        index = 0
        for chunk in chunks:
            pending += chunk
            # A segment is sealed only once more bytes follow it, so the one
            # left at the end, full, short or empty, is the last.
            while len(pending) > SEGMENT_SIZE:
                segment = bytes(pending[:SEGMENT_SIZE])
                del pending[:SEGMENT_SIZE]
                yield _seal_segment(aead, header, index, segment, is_last=False)
                index += 1
        yield _seal_segment(aead, header, index, bytes(pending), is_last=True)

    def open(self, handle: BinaryIO, sha256: str) -> Iterator[bytes]:
        """Yield the plaintext segments of the sealed object read from ``handle``.

        Raises:
            InternalError: the header or a segment does not open
                (``object_corrupt``), or another key sealed it
                (``object_store_key_wrong``).
        """
        header = handle.read(HEADER_SIZE)
        if len(header) != HEADER_SIZE or not header.startswith(MAGIC):
            raise _corrupt(sha256)
        if header[len(MAGIC)] != VERSION:
            raise _corrupt(sha256)
        key_id = header[len(MAGIC) + 1 : len(MAGIC) + 1 + _KEY_ID_SIZE]
        if key_id != self.key_id:
            raise InternalError(
                f"Stored object {sha256} was sealed with another object store key.",
                code="object_store_key_wrong",
            )
        aead = self._segment_aead(header[-_SALT_SIZE:])
        sealed_size = SEGMENT_SIZE + _TAG_SIZE
        current = handle.read(sealed_size)
        index = 0
        while True:
            following = handle.read(sealed_size) if current else b""
            is_last = not following
            try:
                yield aead.decrypt(
                    _nonce(index, is_last), current, _aad(header, index, is_last)
                )
            except InvalidTag as exc:
                raise _corrupt(sha256) from exc
            if is_last:
                return
            current = following
            index += 1

    def _segment_aead(self, salt: bytes) -> AESGCM:
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_SIZE,
            salt=salt,
            info=b"strongroom object store: segments",
        ).derive(self._content_key)
        return AESGCM(derived)


def load_key(path: Path, data_dir: Path) -> bytes:
    """Read the object store key, refusing a file that does not keep it apart.

    The key is read once, when the store opens; a change to the file takes
    effect at the next start.

    Raises:
        DependencyUnavailable: the file lies inside the data directory, is
            open to other users (its mode must be 0600 or 0400), is not
            32 bytes or cannot be read (``object_store_key_invalid``).
    """
    resolved = path.expanduser().resolve()
    if resolved.is_relative_to(data_dir.resolve()):
        raise _invalid_key(
            "The object store key file must be kept outside the data directory."
        )
    try:
        with resolved.open("rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            key = handle.read(KEY_SIZE + 1)
    except OSError as exc:
        raise _invalid_key("The object store key file cannot be read.") from exc
    if mode not in (0o600, 0o400):
        raise _invalid_key(
            f"The object store key file has mode {mode:04o}; it must be 0600 or 0400."
        )
    if len(key) != KEY_SIZE:
        raise _invalid_key("The object store key file must hold exactly 32 bytes.")
    return key


def create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` (mode 0600); never replace one.

    Raises:
        FileExistsError: a file is already there.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(KEY_SIZE))
        handle.flush()
        os.fsync(handle.fileno())


def _subkey(key: bytes, info: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info
    ).derive(key)


def _seal_segment(
    aead: AESGCM, header: bytes, index: int, segment: bytes, is_last: bool
) -> bytes:
    return aead.encrypt(_nonce(index, is_last), segment, _aad(header, index, is_last))


def _nonce(index: int, is_last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if is_last else b"\x00")


def _aad(header: bytes, index: int, is_last: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if is_last else b"\x00")


def _corrupt(sha256: str) -> InternalError:
    return InternalError(
        f"Stored object {sha256} no longer matches its hash.", code="object_corrupt"
    )


def _invalid_key(message: str) -> DependencyUnavailable:
    return DependencyUnavailable(message, code="object_store_key_invalid")
