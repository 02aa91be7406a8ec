"""Versions of the parsing libraries, for each document's provenance."""

from __future__ import annotations

import functools
from importlib.metadata import version


@functools.cache
def package_version(name: str) -> str:
    """The installed version of a distribution, read once per process.

    Reading package metadata parses files on every call, which would cost
    more than parsing a CSV row.
    """
    return version(name)
