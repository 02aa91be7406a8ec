"""The embedded object store: content-addressed files under the data directory.

Objects live at ``<root>/<bucket>/<aa>/<bb>/<name>``. A write goes to a
temporary file in the same directory, is flushed to disk, then renamed into
place, so a reader sees a whole object or none.

Without a key the name is the object's SHA-256 and the file holds its bytes.
With one (``ObjectCipher``) every new object is sealed and named by a keyed
hash of its SHA-256; objects written before the key was set stay readable
under their plain names. The key's id, kept in ``<root>/encryption.key-id``,
lets a store opened with another key, or with none, refuse at start rather
than find nothing.

The store keeps a reserve of free space on its disk: below it, writes are
refused (``storage_full``) and the readiness check fails, so the databases
and the audit trail on the same disk keep room to record what happens,
refusals included. A disk that fills up anyway refuses the same way, and the
half-written file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from strongroom.services.common.errors import (
    DependencyUnavailable,
    InternalError,
    InvalidArgument,
    NotFound,
    storage_full,
)
from strongroom.services.common.object_encryption import KEY_SETTING, ObjectCipher
from strongroom.services.common.ports import StoredObject

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_BUCKET_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
# Not a valid bucket name (the dot), so it can never collide with a bucket.
KEY_ID_FILE = "encryption.key-id"
# A long write looks at the free space again after this many bytes.
_ROOM_CHECK_BYTES = 8 << 20


class LocalObjectStore:
    def __init__(
        self,
        root: Path,
        cipher: ObjectCipher | None = None,
        reserve_bytes: int = 0,
    ) -> None:
        """Open the store under ``root``, sealing new objects if given a cipher.

        Raises:
            DependencyUnavailable: the store's objects were sealed with another
                key (``object_store_key_wrong``), or with a key and none is
                given (``object_store_key_missing``).
        """
        self.root = root
        self.cipher = cipher
        self.reserve_bytes = reserve_bytes
        root.mkdir(parents=True, exist_ok=True)
        _check_key_id(root / KEY_ID_FILE, cipher)
        # Per thread: how deep inside batch() it is; puts there skip fsync.
        self._batches = threading.local()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Let the puts inside skip their own fsyncs, then flush once.

        One sync of the file system costs about what one fsync does, so a
        document with thousands of records (each an original, a text and a
        structure) is made durable in one step instead of thousands.
        """
        depth = getattr(self._batches, "depth", 0)
        self._batches.depth = depth + 1
        try:
            yield
        finally:
            self._batches.depth = depth
        if depth == 0:
            os.sync()

    def _durable_each(self) -> bool:
        return getattr(self._batches, "depth", 0) == 0

    def put(self, bucket: str, chunks: Iterable[bytes]) -> StoredObject:
        directory = self._bucket_dir(bucket)
        self._check_room()
        try:
            return self._put(directory, bucket, chunks)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise storage_full() from exc
            raise

    def _put(
        self, directory: Path, bucket: str, chunks: Iterable[bytes]
    ) -> StoredObject:
        digest = hashlib.sha256()
        size = checked = 0

        def counted() -> Iterator[bytes]:
            nonlocal size, checked
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                if size - checked >= _ROOM_CHECK_BYTES:
                    self._check_room()
                    checked = size
                yield chunk

        stored = counted() if self.cipher is None else self.cipher.seal(counted())
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as temp:
                for piece in stored:
                    temp.write(piece)
                temp.flush()
                if self._durable_each():
                    os.fsync(temp.fileno())
            sha256 = digest.hexdigest()
            final = self._path(bucket, sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            if any(path.exists() for path, _ in self._candidates(bucket, sha256)):
                os.unlink(temp_name)
            else:
                os.replace(temp_name, final)
                if self._durable_each():
                    _fsync_directory(final.parent)
        except BaseException:
            if os.path.exists(temp_name):
                os.unlink(temp_name)
            raise
        return StoredObject(sha256=sha256, size=size)

    def read(self, bucket: str, sha256: str) -> bytes:
        return b"".join(self.stream(bucket, sha256, chunk_size=1 << 20))

    def stream(self, bucket: str, sha256: str, chunk_size: int) -> Iterator[bytes]:
        handle, is_sealed = self._open(bucket, sha256)
        digest = hashlib.sha256()
        with handle:
            for chunk in self._plaintext(handle, sha256, is_sealed, chunk_size):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != sha256:
            raise InternalError(
                f"Stored object {sha256} no longer matches its hash.",
                code="object_corrupt",
            )

    def exists(self, bucket: str, sha256: str) -> bool:
        return any(path.is_file() for path, _ in self._candidates(bucket, sha256))

    def _candidates(self, bucket: str, sha256: str) -> list[tuple[Path, bool]]:
        """Where an object may be, and whether it is sealed there: under its
        keyed name, or (written before the key was set) under its plain one."""
        if self.cipher is None:
            return [(self._plain_path(bucket, sha256), False)]
        return [
            (self._path(bucket, sha256), True),
            (self._plain_path(bucket, sha256), False),
        ]

    def _open(self, bucket: str, sha256: str) -> tuple[BinaryIO, bool]:
        """Open an object's file; say whether it is sealed."""
        for path, is_sealed in self._candidates(bucket, sha256):
            try:
                return path.open("rb"), is_sealed
            except FileNotFoundError:
                continue
        raise NotFound(f"No object has hash {sha256}.", code="object_not_found")

    def _plaintext(
        self, handle: BinaryIO, sha256: str, is_sealed: bool, chunk_size: int
    ) -> Iterator[bytes]:
        if not is_sealed:
            while chunk := handle.read(chunk_size):
                yield chunk
            return
        assert self.cipher is not None
        for segment in self.cipher.open(handle, sha256):
            for start in range(0, len(segment), chunk_size):
                yield segment[start : start + chunk_size]

    def check(self) -> None:
        """Raise DependencyUnavailable unless a file can be created under root
        and the disk has more than the reserve free."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as exc:
            raise DependencyUnavailable(
                "The object store cannot be written.", code="object_store_unavailable"
            ) from exc
        self._check_room()

    def _check_room(self) -> None:
        if self.reserve_bytes:
            stats = os.statvfs(self.root)
            if stats.f_bavail * stats.f_frsize < self.reserve_bytes:
                raise storage_full()

    def _bucket_dir(self, bucket: str) -> Path:
        if not _BUCKET_NAME.fullmatch(bucket):
            raise InvalidArgument(
                f"Bucket name {bucket!r} is not valid.", code="bucket_invalid"
            )
        directory = self.root / bucket
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _path(self, bucket: str, sha256: str) -> Path:
        """Where an object is written: under its keyed name when sealing."""
        if self.cipher is None:
            return self._plain_path(bucket, sha256)
        self._check_sha256(sha256)
        name = self.cipher.object_name(bucket, sha256)
        return self._bucket_dir(bucket) / name[:2] / name[2:4] / name

    def _plain_path(self, bucket: str, sha256: str) -> Path:
        self._check_sha256(sha256)
        return self._bucket_dir(bucket) / sha256[:2] / sha256[2:4] / sha256

    @staticmethod
    def _check_sha256(sha256: str) -> None:
        if not _SHA256_HEX.fullmatch(sha256):
            raise InvalidArgument(
                "An object key must be a SHA-256 hex digest.", code="key_invalid"
            )


def _check_key_id(path: Path, cipher: ObjectCipher | None) -> None:
    """Record the key's id on first use; refuse a store sealed with another."""
    try:
        recorded = path.read_text().strip()
    except FileNotFoundError:
        recorded = ""
    if cipher is None:
        if recorded:
            raise DependencyUnavailable(
                "The object store holds encrypted objects and no key is set "
                f"({KEY_SETTING}).",
                code="object_store_key_missing",
            )
        return
    if not recorded:
        recorded = _record_key_id(path, cipher.key_id.hex())
    if recorded != cipher.key_id.hex():
        raise DependencyUnavailable(
            f"The object store was encrypted with another key than {KEY_SETTING} "
            "names.",
            code="object_store_key_wrong",
        )


def _record_key_id(path: Path, key_id: str) -> str:
    """Write the key id once; return the id recorded, this one or a racer's."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "w") as temp:
            temp.write(key_id + "\n")
            temp.flush()
            os.fsync(temp.fileno())
        # A link, unlike a rename, fails if another process got there first.
        with contextlib.suppress(FileExistsError):
            os.link(temp_name, path)
            _fsync_directory(path.parent)
    finally:
        os.unlink(temp_name)
    return path.read_text().strip()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
