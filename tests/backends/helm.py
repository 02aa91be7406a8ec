"""Helm, built from the Go module proxy into the cache, for the chart's tests.

There is no cluster here: the tests lint and render the chart and validate
what it renders offline, so only the ``helm`` binary is needed.
"""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

import pytest

from tests.backends.base import cache_dir, run

HELM_MODULE = "helm.sh/helm/v4/cmd/helm"
HELM_VERSION = "v4.3.2"


def prepare() -> Path:
    """Build the ``helm`` binary into the cache unless it is there; return it."""
    root = cache_dir("helm")
    binary = root / "bin" / f"helm-{HELM_VERSION}"
    if binary.exists():
        return binary
    with (root / ".build-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            _build(root, binary)
    return binary


def _build(root: Path, binary: Path) -> None:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    gobin = root / "gobin"
    run(
        [go, "install", f"{HELM_MODULE}@{HELM_VERSION}"],
        env={
            "GOBIN": str(gobin),
            "GOPATH": str(root / "gopath"),
            "GOMODCACHE": str(root / "gomodcache"),
            "GOCACHE": str(root / "gocache"),
            "GOFLAGS": "-modcacherw",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
        },
    )
    binary.parent.mkdir(parents=True, exist_ok=True)
    (gobin / "helm").rename(binary)


_build_failures: list[Exception] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    # Built before the first test, so a cold build does not count against a
    # test's timeout.
    if any("helm" in getattr(item, "fixturenames", ()) for item in session.items):
        try:
            prepare()
        except Exception as exc:
            _build_failures.append(exc)


@pytest.fixture(scope="session")
def helm() -> Path:
    if _build_failures:
        raise RuntimeError("Helm could not be built.") from _build_failures[0]
    return prepare()
