"""The end-to-end fixtures: one running platform per module that asks for it."""

from tests.e2e.conftest import admin, strongroom

__all__ = ["admin", "strongroom"]
