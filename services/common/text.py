"""Text arithmetic every service agrees on: how a text splits into tokens."""

from __future__ import annotations

import re

# A word (with inner apostrophes or hyphens) or one punctuation mark.
_TOKEN = re.compile(r"\w+(?:['\u2019-]\w+)*|[^\w\s]")


def tokens(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """The word and punctuation tokens of ``text``, shifted by ``offset``."""
    return [(m.start() + offset, m.end() + offset) for m in _TOKEN.finditer(text)]
