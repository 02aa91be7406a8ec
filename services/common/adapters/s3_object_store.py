"""The S3 object store: content-addressed objects on any S3-compatible server.

Objects live at ``<aa>/<bb>/<sha256>`` in one bucket per purpose, named
``bucket_prefix + bucket``. A bucket is created on first write with
versioning on, and with object lock (WORM) for the buckets that hold
evidence: every version written there is retained in governance mode for
``retention_days`` by the bucket's default rule, so nobody without the
bypass permission can delete or overwrite it. A server that lacks versioning
or object lock still gets the bucket, and a warning says what is missing.

A write is spooled to a temporary file while it is hashed, so the object is
uploaded once, complete, under its final key: S3 makes a PUT (or a completed
multipart upload) visible all at once. Reads check the bytes against the key
and never trust the server's copy.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, GOVERNANCE
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import DictType
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig
from urllib3.response import BaseHTTPResponse

from strongroom.services.common.errors import (
    DependencyUnavailable,
    InternalError,
    InvalidArgument,
    NotFound,
    StrongroomError,
)
from strongroom.services.common.ports import StoredObject

logger = logging.getLogger(__name__)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# The port's bucket names, as the embedded store accepts them.
_BUCKET_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
# S3's rule for the full bucket name: 3 to 63 characters, no trailing hyphen.
_S3_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")

# Buckets whose objects are evidence: originals as uploaded, archived audit.
LOCKED_BUCKETS = frozenset({"originals", "audit-archive"})
# HIPAA keeps required documentation for six years (45 CFR 164.316(b)(2)).
DEFAULT_RETENTION_DAYS = 6 * 365

# Up to this size an object goes up in one PUT that carries its SHA-256 as an
# S3 checksum, so the server refuses bytes that changed on the way. Larger
# objects go up in parts, which the minio SDK cannot checksum one by one;
# they are still checked on every read.
_SINGLE_PUT_LIMIT = 16 * 1024 * 1024
_PART_SIZE = 16 * 1024 * 1024
_MAX_PARTS = 10_000
_READ_CHUNK = 1024 * 1024

_MISSING_CODES = frozenset(
    {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "ResourceNotFound"}
)
_EXISTING_BUCKET_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
# What servers answer to a feature they do not implement.
_UNSUPPORTED_CODES = frozenset(
    {"NotImplemented", "InvalidRequest", "InvalidArgument", "MethodNotAllowed"}
)
_CHECKSUM_MISMATCH_CODES = frozenset(
    {"BadDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"}
)
_CLIENT_ERRORS = (
    S3Error,
    ServerError,
    InvalidResponseError,
    urllib3.exceptions.HTTPError,
)


class S3ObjectStore:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        secure: bool = False,
        bucket_prefix: str = "strongroom-",
        region: str | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        ca_file: str = "",
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1.")
        # The SDK's default waits five minutes to connect; fail fast instead,
        # and retry only what is safe to repeat (every request here is).
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=120),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_file or None,
            retries=urllib3.Retry(
                total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        self.bucket_prefix = bucket_prefix
        self.retention_days = retention_days
        self._ready_buckets: set[str] = set()
        self._buckets_lock = threading.Lock()
        self._is_checksum_accepted = True

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to gather: the server makes each object durable on PUT."""
        return contextlib.nullcontext()

    def put(self, bucket: str, chunks: Iterable[bytes]) -> StoredObject:
        name = self._bucket_name(bucket)

        with tempfile.TemporaryFile(prefix="strongroom-object-") as spool:
            digest, size = _spool(chunks, spool)
            sha256 = digest.hex()
            key = _object_key(sha256)
            try:
                self._ensure_bucket(name, is_locked=bucket in LOCKED_BUCKETS)
                if not self._is_stored(name, key):
                    spool.seek(0)
                    self._upload(name, key, spool, size, digest)
            except _CLIENT_ERRORS as exc:
                raise _translate(exc, sha256) from exc

        logger.debug(
            "object_stored", extra={"bucket": bucket, "sha256": sha256, "size": size}
        )
        return StoredObject(sha256=sha256, size=size)

    def read(self, bucket: str, sha256: str) -> bytes:
        return b"".join(self.stream(bucket, sha256, chunk_size=_READ_CHUNK))

    def stream(self, bucket: str, sha256: str, chunk_size: int) -> Iterator[bytes]:
        name = self._bucket_name(bucket)
        key = _object_key(sha256)
        digest = hashlib.sha256()

        try:
            response = self.client.get_object(name, key)
        except _CLIENT_ERRORS as exc:
            raise _translate(exc, sha256) from exc

        try:
            while chunk := _read_chunk(response, chunk_size, sha256):
                digest.update(chunk)
                yield chunk
        finally:
            response.close()
            response.release_conn()

        if digest.hexdigest() != sha256:
            raise InternalError(
                f"Stored object {sha256} no longer matches its hash.",
                code="object_corrupt",
            )

    def exists(self, bucket: str, sha256: str) -> bool:
        name = self._bucket_name(bucket)
        key = _object_key(sha256)

        try:
            return self._is_stored(name, key)
        except _CLIENT_ERRORS as exc:
            raise _translate(exc, sha256) from exc

    def check(self) -> None:
        """Raise DependencyUnavailable unless the server answers about a bucket.

        Refused credentials count as unavailable too: either way no object
        can be read or written.
        """
        try:
            self.client.bucket_exists(self._bucket_name("originals"))
        except _CLIENT_ERRORS as exc:
            raise DependencyUnavailable(
                "The object store cannot be reached with its credentials.",
                code="object_store_unavailable",
            ) from exc

    def _bucket_name(self, bucket: str) -> str:
        name = self.bucket_prefix + bucket
        if not (_BUCKET_NAME.fullmatch(bucket) and _S3_BUCKET_NAME.fullmatch(name)):
            raise InvalidArgument(
                f"Bucket name {bucket!r} is not valid.", code="bucket_invalid"
            )
        return name

    def _is_stored(self, name: str, key: str) -> bool:
        try:
            self.client.stat_object(name, key)
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                return False
            raise
        return True

    def _ensure_bucket(self, name: str, *, is_locked: bool) -> None:
        with self._buckets_lock:
            if name in self._ready_buckets:
                return
            if not self.client.bucket_exists(name):
                self._create_bucket(name, is_locked=is_locked)
            self._ready_buckets.add(name)

    def _create_bucket(self, name: str, *, is_locked: bool) -> None:
        # Object lock can only be switched on when the bucket is created, and
        # it turns versioning on with it.
        if is_locked:
            try:
                self.client.make_bucket(name, object_lock=True)
            except S3Error as exc:
                if exc.code in _EXISTING_BUCKET_CODES:
                    return
                if exc.code not in _UNSUPPORTED_CODES:
                    raise
                logger.warning(
                    "object_lock_unsupported", extra={"bucket": name, "code": exc.code}
                )
            else:
                self.client.set_object_lock_config(
                    name, ObjectLockConfig(GOVERNANCE, self.retention_days, DAYS)
                )
                return

        try:
            self.client.make_bucket(name)
        except S3Error as exc:
            if exc.code not in _EXISTING_BUCKET_CODES:
                raise
        self._enable_versioning(name)

    def _enable_versioning(self, name: str) -> None:
        try:
            self.client.set_bucket_versioning(name, VersioningConfig(ENABLED))
        except S3Error as exc:
            if exc.code not in _UNSUPPORTED_CODES:
                raise
            logger.warning(
                "versioning_unsupported", extra={"bucket": name, "code": exc.code}
            )

    def _upload(
        self, name: str, key: str, spool: BinaryIO, size: int, sha256: bytes
    ) -> None:
        if size > _SINGLE_PUT_LIMIT:
            part_size = max(_PART_SIZE, -(-size // _MAX_PARTS))
            self.client.put_object(name, key, spool, size, part_size=part_size)
            return

        if not self._is_checksum_accepted:
            self._put_single(name, key, spool, size, {})
            return

        checksum: DictType = {
            "x-amz-checksum-sha256": base64.b64encode(sha256).decode()
        }
        try:
            self._put_single(name, key, spool, size, checksum)
            return
        except S3Error as exc:
            if exc.code not in _UNSUPPORTED_CODES:
                raise
            refusal = exc.code

        # Only a PUT that succeeds without the checksum proves the checksum was
        # the problem; then it is left off for the life of the store.
        spool.seek(0)
        self._put_single(name, key, spool, size, {})
        self._is_checksum_accepted = False
        logger.warning("checksum_unsupported", extra={"code": refusal})

    def _put_single(
        self, name: str, key: str, spool: BinaryIO, size: int, headers: DictType
    ) -> None:
        self.client.put_object(
            name, key, spool, size, metadata=headers, part_size=_SINGLE_PUT_LIMIT
        )


def _spool(chunks: Iterable[bytes], spool: BinaryIO) -> tuple[bytes, int]:
    """Write the chunks to ``spool``; return their SHA-256 digest and size."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        spool.write(chunk)
    spool.flush()
    return digest.digest(), size


def _object_key(sha256: str) -> str:
    if not _SHA256_HEX.fullmatch(sha256):
        raise InvalidArgument(
            "An object key must be a SHA-256 hex digest.", code="key_invalid"
        )
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def _read_chunk(response: BaseHTTPResponse, chunk_size: int, sha256: str) -> bytes:
    try:
        return response.read(chunk_size)
    except urllib3.exceptions.HTTPError as exc:
        raise _translate(exc, sha256) from exc


def _translate(exc: Exception, sha256: str) -> StrongroomError:
    """Pick the Strongroom error for a failure of the S3 client."""
    if isinstance(exc, S3Error):
        status = exc.response.status if exc.response is not None else 0
        if exc.code in _MISSING_CODES:
            return NotFound(f"No object has hash {sha256}.", code="object_not_found")
        if exc.code in _CHECKSUM_MISMATCH_CODES:
            return InternalError(
                f"The object store received other bytes than object {sha256}.",
                code="object_checksum_mismatch",
            )
        if status < 500:
            return InternalError(
                f"The object store refused the request for object {sha256}.",
                code="object_store_refused",
            )
    return DependencyUnavailable(
        f"The object store did not complete the request for object {sha256}.",
        code="object_store_unavailable",
    )
