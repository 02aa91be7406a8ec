"""What an export is made of: one record per exported answer, with its text.

Every format writer reads these and nothing else, so a format never needs
another service. Offsets in a record are into ``text``, the redacted text of
the task's window; ``window_start`` says where that window begins in the
whole document, so document offsets are ``window_start + start``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

TRAIN, DEV, TEST = "train", "dev", "test"
SPLITS = (TRAIN, DEV, TEST)

ANSWER, GOLD = "answer", "gold"


@dataclass(frozen=True)
class Span:
    """A label on the half-open range [start, end) of the record's text."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Relation:
    """A labelled link between two of the record's spans, by index."""

    from_span: int
    to_span: int
    label: str


@dataclass(frozen=True)
class Box:
    """A box on page ``page`` (1-based) as fractions of the page's size."""

    page: int
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Page:
    """A redacted page image of the record's document."""

    number: int
    width: int
    height: int
    sha256: str
    media_type: str = "image/png"

    @property
    def file_name(self) -> str:
        return f"images/{self.sha256}.png"


@dataclass(frozen=True)
class Record:
    id: str
    task_id: str
    document_id: str
    text: str
    window_start: int
    text_sha256: str
    annotator: str
    kind: str = ANSWER
    reviewed: bool = False
    version: int = 1
    created_at: str = ""
    split: str = TRAIN
    synthetic: bool = False
    # Word and punctuation tokens, as [start, end) offsets into ``text``.
    tokens: tuple[tuple[int, int], ...] = ()
    spans: tuple[Span, ...] = ()
    classes: tuple[str, ...] = ()
    relations: tuple[Relation, ...] = ()
    boxes: tuple[Box, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    pages: tuple[Page, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class LabelInfo:
    name: str
    color: str = ""
    description: str = ""


@dataclass(frozen=True)
class ExportSchema:
    """The project's label schema, as the formats need it."""

    spans: tuple[LabelInfo, ...] = ()
    classes: tuple[LabelInfo, ...] = ()
    multi_label: bool = False
    relations: tuple[LabelInfo, ...] = ()
    boxes: tuple[LabelInfo, ...] = ()
    fields: tuple[str, ...] = ()
