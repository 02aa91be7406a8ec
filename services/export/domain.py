"""Dataset versions: what goes in, which split each example lands in, and
the signed manifest that describes the result. Pure: no I/O.

A version is fixed by its settings and the project's data when it was
built; the same data and settings give the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.export.records import (
    DEV,
    GOLD,
    SPLITS,
    TEST,
    TRAIN,
    Record,
)

JSONL = "jsonl"
FORMATS = (
    JSONL,
    "label-studio",
    "prodigy",
    "spacy",
    "conll",
    "parquet",
    "coco",
    "csv",
)
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
CARD_MARKDOWN = "dataset-card.md"
CARD_JSON = "dataset-card.json"
MANIFEST_VERSION = 2
_NAME_LIMIT = 200
_INTENDED_USE_LIMIT = 4000

BUILDING, READY, FAILED = "building", "ready", "failed"


@dataclass(frozen=True)
class Filter:
    reviewed_only: bool = False
    gold_only: bool = False
    labels: frozenset[str] = frozenset()
    # ISO 8601 instants, "" for unbounded; answers given in [since, until).
    since: str = ""
    until: str = ""
    exclude_synthetic: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "reviewed_only": self.reviewed_only,
            "gold_only": self.gold_only,
            "labels": sorted(self.labels),
            "since": self.since,
            "until": self.until,
            "exclude_synthetic": self.exclude_synthetic,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Filter:
        return cls(**{**data, "labels": frozenset(data.get("labels", ()))})


@dataclass(frozen=True)
class Ratios:
    train: float = 0.8
    dev: float = 0.1
    test: float = 0.1

    def as_dict(self) -> dict[str, float]:
        return {TRAIN: self.train, DEV: self.dev, TEST: self.test}


@dataclass(frozen=True)
class ExportSettings:
    name: str
    formats: tuple[str, ...] = (JSONL,)
    filter: Filter = field(default_factory=Filter)
    ratios: Ratios = field(default_factory=Ratios)
    intended_use: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "formats": list(self.formats),
            "filter": self.filter.as_dict(),
            "splits": self.ratios.as_dict(),
            "intended_use": self.intended_use,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportSettings:
        splits = data["splits"]
        return cls(
            name=data["name"],
            formats=tuple(data["formats"]),
            filter=Filter.from_dict(data["filter"]),
            ratios=Ratios(splits[TRAIN], splits[DEV], splits[TEST]),
            intended_use=data.get("intended_use", ""),
        )


def check_settings(
    name: str,
    formats: Sequence[str],
    export_filter: Filter,
    ratios: Ratios | None,
    intended_use: str,
) -> ExportSettings:
    """Raises: InvalidArgument: a format, ratio, name or time is not usable."""
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise InvalidArgument(
            f"Export format {unknown[0]!r} is not supported; choose from "
            f"{', '.join(FORMATS)}.",
            code="export_format_unknown",
        )
    if len(name) > _NAME_LIMIT or any(c in name for c in "/\\\0"):
        raise InvalidArgument(
            f"A version name has at most {_NAME_LIMIT} characters and no slashes.",
            code="export_name_invalid",
        )
    if len(intended_use) > _INTENDED_USE_LIMIT:
        raise InvalidArgument(
            f"The intended use has at most {_INTENDED_USE_LIMIT} characters.",
            code="export_intended_use_too_long",
        )
    since, until = export_filter.since, export_filter.until
    if since and until and since >= until:
        raise InvalidArgument(
            "The time range ends before it starts.", code="export_range_invalid"
        )
    return ExportSettings(
        name=name.strip(),
        formats=chosen or (JSONL,),
        filter=export_filter,
        ratios=check_ratios(ratios or Ratios()),
        intended_use=intended_use.strip(),
    )


def check_ratios(ratios: Ratios) -> Ratios:
    """Scale the ratios to sum to one.

    Raises: InvalidArgument: one is negative or not a number, or train is 0.
    """
    values = (ratios.train, ratios.dev, ratios.test)
    if any(not math.isfinite(v) or v < 0 for v in values) or ratios.train <= 0:
        raise InvalidArgument(
            "Split ratios are non-negative numbers and train is above zero.",
            code="export_splits_invalid",
        )
    total = sum(values)
    return Ratios(*(round(v / total, 6) for v in values))


# --- what goes in -------------------------------------------------------------


def keeps(
    export_filter: Filter, kind: str, created_at: str, reviewed: bool, synthetic: bool
) -> bool:
    """Whether an answer of this kind, time and task belongs in the version."""
    if export_filter.gold_only and kind != GOLD:
        return False
    if export_filter.reviewed_only and not reviewed:
        return False
    if export_filter.exclude_synthetic and synthetic:
        return False
    if export_filter.since and created_at < export_filter.since:
        return False
    return not (export_filter.until and created_at >= export_filter.until)


def only_labels(record: Record, labels: frozenset[str]) -> Record:
    """The record with every label not in ``labels`` taken out (all kept when
    empty). Relations whose ends are gone go too."""
    if not labels:
        return record
    kept = [i for i, s in enumerate(record.spans) if s.label in labels]
    index = {old: new for new, old in enumerate(kept)}
    return replace(
        record,
        spans=tuple(record.spans[i] for i in kept),
        classes=tuple(c for c in record.classes if c in labels),
        relations=tuple(
            replace(r, from_span=index[r.from_span], to_span=index[r.to_span])
            for r in record.relations
            if r.label in labels and r.from_span in index and r.to_span in index
        ),
        boxes=tuple(b for b in record.boxes if b.label in labels),
    )


def is_empty(record: Record) -> bool:
    return not (
        record.spans or record.classes or record.boxes or record.fields
    ) and not (record.relations)


# --- splits -------------------------------------------------------------------


def group_of(document_id: str, duplicate_of: Mapping[str, str]) -> str:
    """The document a duplicate chain starts from: every near or exact copy of
    a document shares its group, so they land in one split."""
    seen = {document_id}
    current = document_id
    while (parent := duplicate_of.get(current)) and parent not in seen:
        seen.add(parent)
        current = parent
    return current


def split_of(project_id: str, group: str, ratios: Ratios, synthetic: bool) -> str:
    """The split a group's examples go to: by a hash of the group, so the same
    document stays in the same split in every version; synthetic examples
    train only, never measure."""
    if synthetic:
        return TRAIN
    digest = hashlib.sha256(f"{project_id}\0{group}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < ratios.train:
        return TRAIN
    if position < ratios.train + ratios.dev:
        return DEV
    return TEST


def pseudonym(key: bytes, project_id: str, subject: str) -> str:
    """A project-wide name for an annotator that never reveals who they are:
    the same person is the same pseudonym in every version of the project."""
    digest = hmac.new(key, f"{project_id}\0{subject}".encode(), hashlib.sha256)
    return f"annotator-{digest.hexdigest()[:10]}"


# --- counts -------------------------------------------------------------------


@dataclass
class Tally:
    """What the version holds, counted as records are written.

    Records arrive task by task and a document's tasks together, so tasks
    and documents are counted as they change: nothing grows with the size
    of the version but the label and annotator counters. ``on_document``
    hears each document once, for the lineage events.
    """

    records: int = 0
    synthetic: int = 0
    documents: int = 0
    tasks: int = 0
    reviewed_tasks: int = 0
    splits: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    spans: Counter[str] = field(default_factory=Counter)
    classes: Counter[str] = field(default_factory=Counter)
    relations: Counter[str] = field(default_factory=Counter)
    boxes: Counter[str] = field(default_factory=Counter)
    annotators: Counter[str] = field(default_factory=Counter)
    on_document: Callable[[str], None] | None = None
    _task: str = ""
    _document: str = ""

    def add(self, record: Record) -> None:
        self.records += 1
        self.synthetic += record.synthetic
        if record.document_id != self._document:
            self._document = record.document_id
            self.documents += 1
            if self.on_document is not None:
                self.on_document(record.document_id)
        if record.task_id != self._task:
            self._task = record.task_id
            self.tasks += 1
            self.reviewed_tasks += record.reviewed
        self.splits[record.split] += 1
        self.kinds[record.kind] += 1
        self.spans.update(s.label for s in record.spans)
        self.classes.update(record.classes)
        self.relations.update(r.label for r in record.relations)
        self.boxes.update(b.label for b in record.boxes)
        self.annotators[record.annotator] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "synthetic": self.synthetic,
            "documents": self.documents,
            "tasks": self.tasks,
            "reviewed_tasks": self.reviewed_tasks,
            "splits": {name: self.splits.get(name, 0) for name in SPLITS},
            "kinds": dict(sorted(self.kinds.items())),
            "spans_by_label": dict(sorted(self.spans.items())),
            "classes_by_label": dict(sorted(self.classes.items())),
            "relations_by_label": dict(sorted(self.relations.items())),
            "boxes_by_label": dict(sorted(self.boxes.items())),
            "annotators": len(self.annotators),
        }


# --- the manifest -------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    size_bytes: int


def render_manifest(
    *,
    export_id: str,
    created_at: str,
    settings: ExportSettings,
    project: Mapping[str, Any],
    files: Iterable[FileEntry],
    counts: Mapping[str, Any],
    pipeline: Mapping[str, Any],
    key_id: str,
) -> bytes:
    """Every file by name, hash and size; what the version holds; how each
    step that made it was configured; and the key that signs it."""
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "export_id": export_id,
        "name": settings.name,
        "created_at": created_at,
        "formats": list(settings.formats),
        "filter": settings.filter.as_dict(),
        "splits": settings.ratios.as_dict(),
        "project": dict(project),
        "files": [
            {"name": f.name, "sha256": f.sha256, "size_bytes": f.size_bytes}
            for f in sorted(files, key=lambda f: f.name)
        ],
        "counts": dict(counts),
        "pipeline": dict(pipeline),
        "signature": {"algorithm": "Ed25519", "key_id": key_id},
    }
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def render_signature(signature: bytes, key_id: str) -> bytes:
    return (
        json.dumps(
            {"algorithm": "Ed25519", "key_id": key_id, "signature": signature.hex()},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    ).encode("utf-8")


def schema_digest(schema: Mapping[str, Any]) -> str:
    """The label schema's version: a hash of its canonical JSON."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
