"""Loads every backend server module's fixtures (see tests/backends)."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = sorted(
    f"tests.backends.{path.stem}"
    for path in (Path(__file__).parent / "backends").glob("*.py")
    if path.stem not in {"__init__", "base"}
)
