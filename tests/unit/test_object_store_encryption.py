"""Encryption at rest in the embedded object store: what is sealed opens
again, what is changed on disk is refused, and the disk shows nothing."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.cli import main
from strongroom.services.common import object_encryption
from strongroom.services.common.adapters.local_object_store import LocalObjectStore
from strongroom.services.common.config import Settings
from strongroom.services.common.errors import DependencyUnavailable, InternalError
from strongroom.services.common.object_encryption import (
    HEADER_SIZE,
    SEGMENT_SIZE,
    ObjectCipher,
    create_key_file,
    load_key,
)
from strongroom.services.common.runtime import open_object_store

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
BUCKET = "originals"
SEALED_SEGMENT = SEGMENT_SIZE + 16
NOTE = b"Patient Wilhelmina Okonkwo-Barrett, SSN 219-09-9999."


def _store(root: Path, key: bytes | None = KEY) -> LocalObjectStore:
    return LocalObjectStore(root, ObjectCipher(key) if key else None)


def _files(root: Path, bucket: str = BUCKET) -> list[Path]:
    return sorted(p for p in (root / bucket).rglob("*") if p.is_file())


def _only_file(root: Path) -> Path:
    (path,) = _files(root)
    return path


def _read_code(store: LocalObjectStore, sha256: str) -> str:
    with pytest.raises(InternalError) as caught:
        store.read(BUCKET, sha256)
    return caught.value.code


@pytest.mark.parametrize(
    "size",
    [0, 1, 100, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE + 5],
)
def test_objects_of_every_size_round_trip(tmp_path: Path, size: int) -> None:
    store = _store(tmp_path)
    data = os.urandom(size)

    stored = store.put(BUCKET, [data[:10], data[10:]])

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == size
    assert store.read(BUCKET, stored.sha256) == data
    segments = max(1, -(-size // SEGMENT_SIZE))
    assert _only_file(tmp_path).stat().st_size == HEADER_SIZE + size + 16 * segments


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, SEGMENT_SIZE + 3])
def test_streams_in_chunks_no_larger_than_asked(
    tmp_path: Path, chunk_size: int
) -> None:
    store = _store(tmp_path)
    data = os.urandom(2 * SEGMENT_SIZE + 11)
    stored = store.put(BUCKET, [data])

    chunks = list(store.stream(BUCKET, stored.sha256, chunk_size=chunk_size))

    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= chunk_size


def test_names_and_contents_on_disk_reveal_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)

    stored = store.put(BUCKET, [NOTE])
    store.put("derived", [NOTE])

    names = [p.name for bucket in (BUCKET, "derived") for p in _files(tmp_path, bucket)]
    assert stored.sha256 not in names
    assert len(set(names)) == 2, "the same bytes in two buckets look unrelated"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"Okonkwo" not in path.read_bytes()
            assert b"219-09-9999" not in path.read_bytes()


def test_the_same_bytes_are_stored_once(tmp_path: Path) -> None:
    store = _store(tmp_path)

    first = store.put(BUCKET, [NOTE])
    second = store.put(BUCKET, [NOTE[:5], NOTE[5:]])

    assert first == second
    assert len(_files(tmp_path)) == 1
    assert store.exists(BUCKET, first.sha256)


def _multi_segment(tmp_path: Path) -> tuple[LocalObjectStore, str, Path]:
    store = _store(tmp_path)
    stored = store.put(BUCKET, [os.urandom(3 * SEGMENT_SIZE + 100)])
    return store, stored.sha256, _only_file(tmp_path)


@pytest.mark.parametrize(
    "offset", [0, 8, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + SEALED_SEGMENT, -1]
)
def test_a_changed_byte_is_refused(tmp_path: Path, offset: int) -> None:
    store, sha256, path = _multi_segment(tmp_path)
    body = bytearray(path.read_bytes())

    body[offset] ^= 0x01
    path.write_bytes(bytes(body))

    assert _read_code(store, sha256) == "object_corrupt"


@pytest.mark.parametrize(
    "keep",
    [
        HEADER_SIZE,  # every segment gone
        HEADER_SIZE + SEALED_SEGMENT,  # cut at a segment boundary
        HEADER_SIZE + 2 * SEALED_SEGMENT + 10,  # cut inside a segment
        HEADER_SIZE - 3,  # cut inside the header
    ],
)
def test_a_truncated_object_is_refused(tmp_path: Path, keep: int) -> None:
    store, sha256, path = _multi_segment(tmp_path)

    path.write_bytes(path.read_bytes()[:keep])

    assert _read_code(store, sha256) == "object_corrupt"


def test_swapped_segments_are_refused(tmp_path: Path) -> None:
    store, sha256, path = _multi_segment(tmp_path)
    body = path.read_bytes()
    first = body[HEADER_SIZE : HEADER_SIZE + SEALED_SEGMENT]
    second = body[HEADER_SIZE + SEALED_SEGMENT : HEADER_SIZE + 2 * SEALED_SEGMENT]

    swapped = body.replace(first + second, second + first)
    path.write_bytes(swapped)

    assert swapped != body
    assert _read_code(store, sha256) == "object_corrupt"


def test_an_appended_segment_is_refused(tmp_path: Path) -> None:
    store, sha256, path = _multi_segment(tmp_path)
    body = path.read_bytes()

    path.write_bytes(body + body[HEADER_SIZE : HEADER_SIZE + SEALED_SEGMENT])

    assert _read_code(store, sha256) == "object_corrupt"


def test_another_objects_file_under_this_name_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    wanted = store.put(BUCKET, [b"the object asked for"])
    other = store.put(BUCKET, [b"another object"])
    paths = {p.name: p for p in _files(tmp_path)}
    cipher = store.cipher
    assert cipher is not None
    wanted_path = paths[cipher.object_name(BUCKET, wanted.sha256)]
    other_path = paths[cipher.object_name(BUCKET, other.sha256)]

    wanted_path.write_bytes(other_path.read_bytes())

    assert _read_code(store, wanted.sha256) == "object_corrupt"


def test_a_store_sealed_with_another_key_is_refused_at_start(tmp_path: Path) -> None:
    _store(tmp_path).put(BUCKET, [NOTE])

    with pytest.raises(DependencyUnavailable) as caught:
        _store(tmp_path, OTHER_KEY)

    assert caught.value.code == "object_store_key_wrong"


def test_an_object_sealed_with_another_key_is_refused(tmp_path: Path) -> None:
    stored = _store(tmp_path / "one").put(BUCKET, [NOTE])
    other = _store(tmp_path / "two", OTHER_KEY)
    sealed = _only_file(tmp_path / "one").read_bytes()
    assert other.cipher is not None
    name = other.cipher.object_name(BUCKET, stored.sha256)
    target = tmp_path / "two" / BUCKET / name[:2] / name[2:4] / name
    target.parent.mkdir(parents=True)
    target.write_bytes(sealed)

    assert _read_code(other, stored.sha256) == "object_store_key_wrong"


def test_a_store_without_the_key_refuses_sealed_objects(tmp_path: Path) -> None:
    _store(tmp_path).put(BUCKET, [NOTE])

    with pytest.raises(DependencyUnavailable) as caught:
        _store(tmp_path, key=None)

    assert caught.value.code == "object_store_key_missing"
    assert "STRONGROOM_OBJECT_STORE_KEY_FILE" in caught.value.message


def test_plain_objects_stay_readable_once_encryption_is_on(tmp_path: Path) -> None:
    before = _store(tmp_path, key=None).put(BUCKET, [NOTE])
    plain_file = _only_file(tmp_path)
    store = _store(tmp_path)

    after = store.put(BUCKET, [b"written with the key"])
    again = store.put(BUCKET, [NOTE])

    assert store.read(BUCKET, before.sha256) == NOTE
    assert store.exists(BUCKET, before.sha256)
    assert again == before
    assert store.read(BUCKET, after.sha256) == b"written with the key"
    assert len(_files(tmp_path)) == 2, "the plain object is not stored twice"
    assert plain_file.name == before.sha256


def test_a_changed_plain_object_is_still_refused(tmp_path: Path) -> None:
    before = _store(tmp_path, key=None).put(BUCKET, [NOTE])
    plain_file = _only_file(tmp_path)
    plain_file.write_bytes(b"X" + plain_file.read_bytes()[1:])

    assert _read_code(_store(tmp_path), before.sha256) == "object_corrupt"


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=200),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
    chunk_size=st.integers(min_value=1, max_value=64),
)
def test_any_bytes_in_any_chunks_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    cuts: list[int],
    chunk_size: int,
) -> None:
    # Segments of 16 bytes, so small examples cross many segment boundaries.
    with mock.patch.object(object_encryption, "SEGMENT_SIZE", 16):
        store = _store(tmp_path_factory.mktemp("objects"))
        points = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
        chunks = [data[a:b] for a, b in itertools.pairwise(points)]

        stored = store.put(BUCKET, chunks)
        streamed = list(store.stream(BUCKET, stored.sha256, chunk_size=chunk_size))

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(streamed) == data
    assert all(len(chunk) <= chunk_size for chunk in streamed)


def _key_file(directory: Path, mode: int = 0o600, size: int = 32) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "object-store.key"
    path.write_bytes(os.urandom(size))
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_key_file_outside_the_data_is_read(tmp_path: Path, mode: int) -> None:
    path = _key_file(tmp_path / "keys", mode)

    assert load_key(path, tmp_path / "data") == path.read_bytes()


@pytest.mark.parametrize(
    ("where", "mode", "size", "says"),
    [
        ("data/keys", 0o600, 32, "outside the data directory"),
        ("keys", 0o644, 32, "mode 0644"),
        ("keys", 0o640, 32, "mode 0640"),
        ("keys", 0o600, 31, "exactly 32 bytes"),
        ("keys", 0o600, 64, "exactly 32 bytes"),
    ],
)
def test_a_key_file_that_is_not_kept_apart_is_refused(
    tmp_path: Path, where: str, mode: int, size: int, says: str
) -> None:
    path = _key_file(tmp_path / where, mode, size)

    with pytest.raises(DependencyUnavailable) as caught:
        load_key(path, tmp_path / "data")

    assert caught.value.code == "object_store_key_invalid"
    assert says in caught.value.message


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DependencyUnavailable) as caught:
        load_key(tmp_path / "keys" / "absent.key", tmp_path / "data")

    assert caught.value.code == "object_store_key_invalid"


def test_a_key_reached_through_a_link_into_the_data_is_refused(tmp_path: Path) -> None:
    inside = _key_file(tmp_path / "data" / "keys")
    link = tmp_path / "object-store.key"
    link.symlink_to(inside)

    with pytest.raises(DependencyUnavailable):
        load_key(link, tmp_path / "data")


def test_settings_with_a_key_open_the_store_encrypted(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "keys")
    configured = Settings(data_dir=tmp_path / "data", object_store_key_file=str(path))

    store = open_object_store(configured)
    stored = store.put(BUCKET, [NOTE])

    assert isinstance(store, LocalObjectStore) and store.cipher is not None
    assert store.read(BUCKET, stored.sha256) == NOTE
    assert not (tmp_path / "data" / "objects" / BUCKET / stored.sha256[:2]).exists()


def test_a_created_key_is_private_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "object-store.key"

    create_key_file(path)
    key = path.read_bytes()

    assert len(key) == 32
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_key(path, tmp_path / "data") == key
    with pytest.raises(FileExistsError):
        create_key_file(path)
    assert path.read_bytes() == key


def test_the_cli_creates_a_key_and_refuses_one_in_the_data(tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "data"
    path = tmp_path / "keys" / "object-store.key"

    made = runner.invoke(
        main, ["keys", "object-store", "--data-dir", str(data), str(path)]
    )
    again = runner.invoke(
        main, ["keys", "object-store", "--data-dir", str(data), str(path)]
    )
    inside = runner.invoke(
        main, ["keys", "object-store", "--data-dir", str(data), str(data / "k.key")]
    )

    assert made.exit_code == 0, made.output
    assert "STRONGROOM_OBJECT_STORE_KEY_FILE=" in made.output
    assert len(path.read_bytes()) == 32
    assert again.exit_code == 1 and "not replaced" in again.output
    assert inside.exit_code == 1 and "inside the data directory" in inside.output
    assert not (data / "k.key").exists()
