"""Building an export's files and manifest. Pure: no I/O.

The JSONL file holds one line per annotation, ordered by document and time,
so the same annotations always give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.services.common.errors import InvalidArgument

JSONL = "jsonl"
FORMATS = frozenset({JSONL})
DATA_FILE = "annotations.jsonl"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ExportedSpan:
    start: int
    end: int
    label: str


@dataclass(frozen=True)
class ExportedAnnotation:
    id: str
    task_id: str
    document_id: str
    text_sha256: str
    annotator: str
    spans: tuple[ExportedSpan, ...]
    created_at: str


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    size_bytes: int


def check_format(name: str) -> str:
    """Raises: InvalidArgument: the format is not one Strongroom writes."""
    chosen = name or JSONL
    if chosen not in FORMATS:
        raise InvalidArgument(
            f"Export format {chosen!r} is not supported; choose one of "
            f"{', '.join(sorted(FORMATS))}.",
            code="export_format_unknown",
        )
    return chosen


def render_jsonl(
    annotations: Sequence[ExportedAnnotation], texts: Mapping[str, str]
) -> bytes:
    """One JSON object per line: the redacted text and its labelled spans."""
    lines = []
    for a in sorted(annotations, key=lambda a: (a.document_id, a.created_at, a.id)):
        record = {
            "id": a.id,
            "document_id": a.document_id,
            "task_id": a.task_id,
            "text": texts[a.text_sha256],
            "text_sha256": a.text_sha256,
            "spans": [
                {"start": s.start, "end": s.end, "label": s.label} for s in a.spans
            ],
            "annotator": a.annotator,
            "created_at": a.created_at,
        }
        lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True))
    return "".join(line + "\n" for line in lines).encode("utf-8")


def file_entry(name: str, data: bytes) -> FileEntry:
    return FileEntry(
        name=name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)
    )


def render_manifest(
    *,
    export_id: str,
    name: str,
    created_at: str,
    export_format: str,
    project: Mapping[str, Any],
    files: Sequence[FileEntry],
    annotations: Sequence[ExportedAnnotation],
    pipeline: Mapping[str, Any],
) -> bytes:
    """Describe every file by hash and size, with counts and how it was made."""
    spans_by_label = Counter(s.label for a in annotations for s in a.spans)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "export_id": export_id,
        "name": name,
        "created_at": created_at,
        "format": export_format,
        "project": dict(project),
        "files": [
            {"name": f.name, "sha256": f.sha256, "size_bytes": f.size_bytes}
            for f in files
        ],
        "counts": {
            "annotations": len(annotations),
            "documents": len({a.document_id for a in annotations}),
            "spans": sum(spans_by_label.values()),
            "spans_by_label": dict(sorted(spans_by_label.items())),
        },
        "pipeline": dict(pipeline),
    }
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
