"""The ObjectStore port contract, run against every adapter in STORE_KINDS.

"local-encrypted" is the embedded store with an object store key, so every
object it holds is sealed. "s3" runs against SeaweedFS (tests/backends/s3.py).
The tests after the shared contract cover what only the S3 adapter has:
versioning, object lock, S3 checksums and the server being out of reach.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio.commonconfig import GOVERNANCE
from minio.error import S3Error
from minio.objectlockconfig import DAYS

from strongroom.services.common.adapters.local_object_store import LocalObjectStore
from strongroom.services.common.adapters.s3_object_store import (
    DEFAULT_RETENTION_DAYS,
    S3ObjectStore,
)
from strongroom.services.common.errors import (
    DependencyUnavailable,
    InternalError,
    InvalidArgument,
    NotFound,
)
from strongroom.services.common.object_encryption import ObjectCipher
from strongroom.services.common.ports import ObjectStore
from tests.backends.base import free_port
from tests.backends.s3 import S3Server

STORE_KINDS = ["local", "local-encrypted", "s3"]
# Tells the harness which test server to build before the first test runs.
SERVER_MARKS = {"s3": [pytest.mark.s3]}
BUCKET = "documents"
DATA = b"Strongroom test object \x00\xff" * 100


@pytest.fixture(
    params=[
        pytest.param(kind, marks=SERVER_MARKS.get(kind, [])) for kind in STORE_KINDS
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    if request.param == "local-encrypted":
        return LocalObjectStore(tmp_path / "objects", ObjectCipher(os.urandom(32)))
    if request.param == "s3":
        return _s3_store(request.getfixturevalue("s3_server"))
    raise NotImplementedError(request.param)


@pytest.fixture
def s3_store(s3_server: S3Server) -> S3ObjectStore:
    return _s3_store(s3_server)


def _s3_store(server: S3Server, **options: int) -> S3ObjectStore:
    # One set of buckets per test, so no test sees another's objects.
    prefix = f"t{uuid.uuid4().hex[:12]}-"
    return S3ObjectStore(
        server.endpoint,
        server.access_key,
        server.secret_key,
        bucket_prefix=prefix,
        **options,
    )


def _stored_names(store: ObjectStore, bucket: str) -> list[str]:
    """Every file or object version the store holds in ``bucket``."""
    if isinstance(store, LocalObjectStore):
        return [str(p) for p in (store.root / bucket).rglob("*") if p.is_file()]
    assert isinstance(store, S3ObjectStore)
    name = store.bucket_prefix + bucket
    if not store.client.bucket_exists(name):
        return []
    listing = store.client.list_objects(name, recursive=True, include_version=True)
    return [str(item.object_name) for item in listing]


def _s3_key(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def test_put_returns_hash_and_size(store: ObjectStore) -> None:
    stored = store.put(BUCKET, [DATA[:7], b"", DATA[7:]])

    assert stored.sha256 == hashlib.sha256(DATA).hexdigest()
    assert stored.size == len(DATA)


def test_read_and_stream_return_the_bytes(store: ObjectStore) -> None:
    stored = store.put(BUCKET, [DATA])

    assert store.read(BUCKET, stored.sha256) == DATA
    chunks = list(store.stream(BUCKET, stored.sha256, chunk_size=100))
    assert b"".join(chunks) == DATA
    assert max(len(c) for c in chunks) <= 100


def test_put_of_same_bytes_is_idempotent(store: ObjectStore) -> None:
    first = store.put(BUCKET, [DATA])
    second = store.put(BUCKET, [DATA[:10], DATA[10:]])

    assert first == second
    assert store.read(BUCKET, first.sha256) == DATA


def test_empty_object_round_trips(store: ObjectStore) -> None:
    stored = store.put(BUCKET, [])

    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert store.read(BUCKET, stored.sha256) == b""


def test_puts_in_a_batch_are_complete_and_readable_after_it(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[int] = []
    real_sync = os.sync
    monkeypatch.setattr(os, "sync", lambda: (flushes.append(1), real_sync())[1])

    with store.batch():
        first = store.put("derived", [b"record one"])
        with store.batch():
            second = store.put("derived", [b"record two"])
        assert flushes == [], "the inner block leaves the flush to the outer"
    third = store.put("derived", [b"record three"])

    assert store.read("derived", first.sha256) == b"record one"
    assert store.read("derived", second.sha256) == b"record two"
    assert store.read("derived", third.sha256) == b"record three"
    assert len(flushes) == (1 if isinstance(store, LocalObjectStore) else 0)


def test_exists(store: ObjectStore) -> None:
    stored = store.put(BUCKET, [DATA])

    assert store.exists(BUCKET, stored.sha256)
    assert not store.exists(BUCKET, hashlib.sha256(b"other").hexdigest())
    assert not store.exists("other-bucket", stored.sha256)


def test_unknown_hash_is_not_found(store: ObjectStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()

    with pytest.raises(NotFound) as caught:
        store.read(BUCKET, missing)

    assert caught.value.code == "object_not_found"


@pytest.mark.parametrize(
    "key", ["not-hex", "../../etc/passwd", "A" * 64, "a" * 63, "a" * 65]
)
def test_malformed_key_is_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        store.read(BUCKET, key)

    assert caught.value.code == "key_invalid"


@pytest.mark.parametrize("bucket", ["../x", "", "Upper", "a/b", "-dash", "a" * 64])
def test_malformed_bucket_is_refused(store: ObjectStore, bucket: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        store.put(bucket, [DATA])

    assert caught.value.code == "bucket_invalid"


def test_corrupted_object_is_reported(store: ObjectStore) -> None:
    stored = store.put(BUCKET, [DATA])
    _corrupt(store, stored.sha256)

    with pytest.raises(InternalError) as caught:
        store.read(BUCKET, stored.sha256)

    assert caught.value.code == "object_corrupt"


def test_failed_upload_leaves_nothing_behind(store: ObjectStore) -> None:
    def failing_chunks() -> Iterator[bytes]:
        yield DATA
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put(BUCKET, failing_chunks())

    assert not store.exists(BUCKET, hashlib.sha256(DATA).hexdigest())
    assert _stored_names(store, BUCKET) == []


def test_large_object_round_trips(store: ObjectStore) -> None:
    chunks = [os.urandom(1 << 20) for _ in range(5)]
    expected = b"".join(chunks)

    stored = store.put(BUCKET, iter(chunks))

    assert stored.size == 5 * (1 << 20)
    assert stored.sha256 == hashlib.sha256(expected).hexdigest()
    assert store.read(BUCKET, stored.sha256) == expected
    streamed = hashlib.sha256()
    for chunk in store.stream(BUCKET, stored.sha256, chunk_size=64 * 1024):
        streamed.update(chunk)
    assert streamed.hexdigest() == stored.sha256


def test_corrupted_object_fails_the_stream(store: ObjectStore) -> None:
    stored = store.put(BUCKET, [DATA])
    _corrupt(store, stored.sha256)
    chunks = store.stream(BUCKET, stored.sha256, chunk_size=1000)

    if isinstance(store, LocalObjectStore) and store.cipher is not None:
        # A sealed segment is checked before any of its bytes are handed out.
        with pytest.raises(InternalError) as caught:
            next(chunks)
    else:
        first = next(chunks)
        with pytest.raises(InternalError) as caught:
            list(chunks)
        assert first.startswith(b"X")

    assert caught.value.code == "object_corrupt"


def test_object_larger_than_one_part_round_trips(store: ObjectStore) -> None:
    # Above the S3 adapter's single-PUT limit (16 MiB): a multipart upload.
    chunks = [os.urandom(1 << 20) for _ in range(17)] + [b"tail"]
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()

    stored = store.put(BUCKET, chunks)

    assert stored.sha256 == expected
    assert hashlib.sha256(store.read(BUCKET, expected)).hexdigest() == expected


def _corrupt(store: ObjectStore, sha256: str) -> None:
    """Change the stored bytes behind the store's back, as a faulty disk would."""
    if isinstance(store, S3ObjectStore):
        # Through the server: with versioning on this adds a newer version.
        name = store.bucket_prefix + BUCKET
        response = store.client.get_object(name, _s3_key(sha256))
        try:
            corrupted = b"X" + response.read()[1:]
        finally:
            response.close()
            response.release_conn()
        store.client.put_object(
            name, _s3_key(sha256), io.BytesIO(corrupted), len(corrupted)
        )
        return
    assert isinstance(store, LocalObjectStore)
    (path,) = [Path(p) for p in _stored_names(store, BUCKET)]
    path.write_bytes(b"X" + path.read_bytes()[1:])


# What only the S3 adapter has. SeaweedFS supports all of it: bucket
# versioning, object lock with retention, and SHA-256 checksums on PUT, so
# nothing here is skipped. (S3Proxy 3.1.0 answers NotImplemented to all three;
# the adapter then logs a warning and stores without them.)


def test_buckets_are_versioned(s3_store: S3ObjectStore) -> None:
    for bucket in (BUCKET, "originals", "audit-archive"):
        s3_store.put(bucket, [DATA])

        versioning = s3_store.client.get_bucket_versioning(
            s3_store.bucket_prefix + bucket
        )

        assert versioning.status == "Enabled", bucket


def test_evidence_buckets_have_object_lock(s3_store: S3ObjectStore) -> None:
    for bucket in ("originals", "audit-archive"):
        s3_store.put(bucket, [DATA])
        s3_store.client.get_object_lock_config(s3_store.bucket_prefix + bucket)
    s3_store.put(BUCKET, [DATA])

    with pytest.raises(S3Error) as caught:
        s3_store.client.get_object_lock_config(s3_store.bucket_prefix + BUCKET)

    assert caught.value.code == "ObjectLockConfigurationNotFoundError"


def test_evidence_buckets_retain_by_default(s3_store: S3ObjectStore) -> None:
    s3_store.put("originals", [DATA])

    config = s3_store.client.get_object_lock_config(
        s3_store.bucket_prefix + "originals"
    )

    assert (config.mode, config.duration, config.duration_unit) == (
        GOVERNANCE,
        DEFAULT_RETENTION_DAYS,
        DAYS,
    )


@pytest.mark.parametrize("bucket", ["originals", "audit-archive"])
def test_retained_version_cannot_be_deleted(s3_server: S3Server, bucket: str) -> None:
    store = _s3_store(s3_server, retention_days=1)
    stored = store.put(bucket, [DATA])
    name = store.bucket_prefix + bucket
    key = _s3_key(stored.sha256)
    stat = store.client.stat_object(name, key)
    retention = store.client.get_object_retention(name, key, stat.version_id)

    with pytest.raises(S3Error) as caught:
        store.client.remove_object(name, key, version_id=stat.version_id)

    assert caught.value.code == "AccessDenied"
    assert retention is not None and retention.mode == GOVERNANCE
    assert retention.retain_until_date > datetime.datetime.now(datetime.UTC)
    assert store.read(bucket, stored.sha256) == DATA


def test_overwrite_keeps_the_original_version(s3_store: S3ObjectStore) -> None:
    stored = s3_store.put(BUCKET, [DATA])
    _corrupt(s3_store, stored.sha256)
    name = s3_store.bucket_prefix + BUCKET
    key = _s3_key(stored.sha256)

    versions = list(s3_store.client.list_objects(name, key, include_version=True))
    (older,) = [v for v in versions if v.is_latest != "true"]
    response = s3_store.client.get_object(name, key, version_id=older.version_id)
    try:
        original = response.read()
    finally:
        response.close()
        response.release_conn()

    assert len(versions) == 2
    assert original == DATA


def test_put_stores_the_sha256_checksum(s3_store: S3ObjectStore) -> None:
    stored = s3_store.put(BUCKET, [DATA])

    stat = s3_store.client.stat_object(
        s3_store.bucket_prefix + BUCKET,
        _s3_key(stored.sha256),
        extra_headers={"x-amz-checksum-mode": "ENABLED"},
    )

    expected = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
    assert stat.metadata is not None
    assert stat.metadata.get("x-amz-checksum-sha256") == expected


def test_server_refuses_bytes_that_miss_their_checksum(
    s3_store: S3ObjectStore,
) -> None:
    s3_store.put(BUCKET, [DATA])
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()

    with pytest.raises(S3Error) as caught:
        s3_store.client.put_object(
            s3_store.bucket_prefix + BUCKET,
            "checksum-probe",
            io.BytesIO(DATA),
            len(DATA),
            metadata={"x-amz-checksum-sha256": wrong},
        )

    probes = s3_store.client.list_objects(
        s3_store.bucket_prefix + BUCKET, "checksum-probe", include_version=True
    )
    assert caught.value.code == "BadDigest"
    assert list(probes) == []


def test_unreachable_server_is_dependency_unavailable() -> None:
    store = S3ObjectStore(f"127.0.0.1:{free_port()}", "nobody", "nothing")
    sha256 = hashlib.sha256(DATA).hexdigest()

    with pytest.raises(DependencyUnavailable):
        store.check()
    with pytest.raises(DependencyUnavailable) as put_error:
        store.put(BUCKET, [DATA])
    with pytest.raises(DependencyUnavailable) as read_error:
        store.read(BUCKET, sha256)
    with pytest.raises(DependencyUnavailable):
        store.exists(BUCKET, sha256)

    assert put_error.value.code == read_error.value.code == "object_store_unavailable"


def test_check_passes_while_the_store_answers(store: ObjectStore) -> None:
    store.check()


def test_unwritable_local_store_fails_its_check(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    # A file where the store's folder was: the data disk is not there.
    (tmp_path / "objects").rmdir()
    (tmp_path / "objects").write_bytes(b"")

    with pytest.raises(DependencyUnavailable):
        store.check()


def test_wrong_credentials_are_refused(s3_server: S3Server) -> None:
    store = S3ObjectStore(s3_server.endpoint, s3_server.access_key, "wrong secret")

    with pytest.raises(DependencyUnavailable):
        store.check()

    with pytest.raises(InternalError) as caught:
        store.put(BUCKET, [DATA])

    assert caught.value.code == "object_store_refused"
