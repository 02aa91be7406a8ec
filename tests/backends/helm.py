"""Helm, built from the Go module proxy into the cache, for the chart's tests.

There is no cluster here: the tests lint and render the chart and validate
what it renders offline, so only the ``helm`` binary is needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends.base import go_build_cached, run

HELM_MODULE = "helm.sh/helm/v4/cmd/helm"
HELM_VERSION = "v4.3.2"


def prepare() -> Path:
    """Build the ``helm`` binary into the cache unless it is there; return it."""
    return go_build_cached("helm", f"helm-{HELM_VERSION}", _build)


def _build(partial: Path, env: dict[str, str]) -> None:
    gobin = partial.parent / "gobin"
    run(
        [env["GO"], "install", f"{HELM_MODULE}@{HELM_VERSION}"],
        env={**env, "GOBIN": str(gobin), "CGO_ENABLED": "0"},
    )
    (gobin / "helm").rename(partial)


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
