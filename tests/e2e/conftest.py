from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Strongroom, isolated_env


@pytest.fixture(scope="module")
def strongroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strongroom]:
    """One running platform per test module, on its own data directory and ports."""
    root = tmp_path_factory.mktemp("strongroom")
    instance = Strongroom(data_dir=root / "data", env=isolated_env(root / "home"))
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def admin(strongroom: Strongroom) -> httpx.Client:
    """The first admin, signed in to the module's platform."""
    assert strongroom.admin_password
    return strongroom.client(strongroom.token("admin", strongroom.admin_password))


@pytest.fixture(scope="module")
def home(strongroom: Strongroom) -> Path:
    return Path(strongroom.env["HOME"])
