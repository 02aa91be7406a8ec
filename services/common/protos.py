"""Small conversions between stored values and proto messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from strongroom.v1 import common_pb2

DEFAULT_PAGE_SIZE = 50


def page_bounds(page: common_pb2.PageRequest, maximum: int = 500) -> tuple[int, int]:
    """Return (limit, offset) for a page request, with defaults and a ceiling."""
    limit = page.limit if 0 < page.limit <= maximum else DEFAULT_PAGE_SIZE
    return limit, max(page.offset, 0)


def to_timestamp(iso: str) -> Timestamp:
    stamp = Timestamp()
    if iso:
        stamp.FromJsonString(iso.replace("+00:00", "Z"))
    return stamp
