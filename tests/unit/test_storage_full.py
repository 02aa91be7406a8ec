"""A full disk is recognised wherever it shows, and refused by its own code."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from strongroom.services.common.adapters.local_object_store import LocalObjectStore
from strongroom.services.common.database import database_unavailable, is_disk_full
from strongroom.services.common.errors import DependencyUnavailable


def test_the_store_refuses_writes_and_readiness_below_its_reserve(
    tmp_path: Path,
) -> None:
    roomy = LocalObjectStore(tmp_path / "a", reserve_bytes=1 << 20)
    stored = roomy.put("originals", [b"hello"])
    roomy.check()

    # A reserve larger than any disk: the same files, now refused.
    full = LocalObjectStore(tmp_path / "a", reserve_bytes=1 << 62)
    with pytest.raises(DependencyUnavailable) as refused:
        full.put("originals", [b"more"])
    assert refused.value.code == "storage_full"
    with pytest.raises(DependencyUnavailable):
        full.check()
    assert full.read("originals", stored.sha256) == b"hello"  # reads go on
    assert not list((tmp_path / "a").rglob(".incoming-*"))


@pytest.mark.parametrize(
    ("error", "full"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (
            sa.exc.OperationalError(
                "INSERT", {}, sqlite3.OperationalError("database or disk is full")
            ),
            True,
        ),
        (
            sa.exc.OperationalError(
                "SELECT", {}, sqlite3.OperationalError("database is locked")
            ),
            False,
        ),
        (ValueError("No space left on device"), False),
    ],
)
def test_disk_full_is_told_apart(error: BaseException, full: bool) -> None:
    assert is_disk_full(error) is full
    expected = "storage_full" if full else "database_unavailable"
    assert database_unavailable(error).code == expected
