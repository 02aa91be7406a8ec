"""The embedded object store: content-addressed files under the data directory.

Objects live at ``<root>/<bucket>/<aa>/<bb>/<sha256>``. A write goes to a
temporary file in the same directory, is flushed to disk, then renamed into
place, so a reader sees a whole object or none.

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

from strongroom.services.common.errors import (
    DependencyUnavailable,
    InternalError,
    InvalidArgument,
    NotFound,
    storage_full,
)
from strongroom.services.common.ports import StoredObject

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_BUCKET_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
# A long write looks at the free space again after this many bytes.
_ROOM_CHECK_BYTES = 8 << 20


class LocalObjectStore:
    def __init__(self, root: Path, reserve_bytes: int = 0) -> None:
        self.root = root
        self.reserve_bytes = reserve_bytes
        root.mkdir(parents=True, exist_ok=True)
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
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as temp:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    if size - checked >= _ROOM_CHECK_BYTES:
                        self._check_room()
                        checked = size
                    temp.write(chunk)
                temp.flush()
                if self._durable_each():
                    os.fsync(temp.fileno())
            sha256 = digest.hexdigest()
            final = self._path(bucket, sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
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
        path = self._path(bucket, sha256)
        digest = hashlib.sha256()
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFound(
                f"No object has hash {sha256}.", code="object_not_found"
            ) from exc
        with handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != sha256:
            raise InternalError(
                f"Stored object {sha256} no longer matches its hash.",
                code="object_corrupt",
            )

    def exists(self, bucket: str, sha256: str) -> bool:
        return self._path(bucket, sha256).is_file()

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
        if not _SHA256_HEX.fullmatch(sha256):
            raise InvalidArgument(
                "An object key must be a SHA-256 hex digest.", code="key_invalid"
            )
        return self._bucket_dir(bucket) / sha256[:2] / sha256[2:4] / sha256


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
