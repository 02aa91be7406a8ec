"""The ObjectStore port contract, run against every adapter in STORE_KINDS."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.services.common.adapters.local_object_store import LocalObjectStore
from strongroom.services.common.errors import InternalError, InvalidArgument, NotFound
from strongroom.services.common.ports import ObjectStore

# Cluster adapters (MinIO) join this list once they have a test server.
STORE_KINDS = ["local"]
BUCKET = "documents"
DATA = b"Strongroom test object \x00\xff" * 100


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    raise NotImplementedError(request.param)


def _local_files(store: ObjectStore, bucket: str) -> list[Path]:
    if not isinstance(store, LocalObjectStore):
        pytest.skip("inspecting stored files is written for the local store only")
    return [p for p in (store.root / bucket).rglob("*") if p.is_file()]


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
    assert _local_files(store, BUCKET) == []


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


def _corrupt(store: ObjectStore, sha256: str) -> None:
    (path,) = [p for p in _local_files(store, BUCKET) if p.name == sha256]
    path.write_bytes(b"X" + path.read_bytes()[1:])
