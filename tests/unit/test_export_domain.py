"""Export files: deterministic JSONL, file entries and the manifest."""

from __future__ import annotations

import hashlib
import json

import pytest

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.export.domain import (
    DATA_FILE,
    JSONL,
    MANIFEST_VERSION,
    ExportedAnnotation,
    ExportedSpan,
    check_format,
    file_entry,
    render_jsonl,
    render_manifest,
)

TEXT_A = "[EMAIL] wrote to Acme Ltd about Zoë."
TEXT_B = "Second document, née Müller."
SHA_A = hashlib.sha256(TEXT_A.encode()).hexdigest()
SHA_B = hashlib.sha256(TEXT_B.encode()).hexdigest()
TEXTS = {SHA_A: TEXT_A, SHA_B: TEXT_B}

ANNOTATIONS = [
    ExportedAnnotation(
        id="a2",
        task_id="t1",
        document_id="doc-a",
        text_sha256=SHA_A,
        annotator="u2",
        spans=(ExportedSpan(17, 25, "ORG"), ExportedSpan(32, 35, "PERSON")),
        created_at="2024-05-01T10:00:00.000000+00:00",
    ),
    ExportedAnnotation(
        id="a1",
        task_id="t1",
        document_id="doc-a",
        text_sha256=SHA_A,
        annotator="u1",
        spans=(ExportedSpan(32, 35, "PERSON"),),
        created_at="2024-05-01T09:00:00.000000+00:00",
    ),
    ExportedAnnotation(
        id="a3",
        task_id="t2",
        document_id="doc-b",
        text_sha256=SHA_B,
        annotator="u1",
        spans=(ExportedSpan(22, 28, "PERSON"),),
        created_at="2024-04-01T09:00:00.000000+00:00",
    ),
]


def test_render_jsonl_is_deterministic_regardless_of_input_order() -> None:
    first = render_jsonl(ANNOTATIONS, TEXTS)

    for shuffled in (ANNOTATIONS[::-1], [ANNOTATIONS[2], *ANNOTATIONS[:2]]):
        assert render_jsonl(shuffled, TEXTS) == first


def test_render_jsonl_writes_one_record_per_annotation() -> None:
    data = render_jsonl(ANNOTATIONS, TEXTS)

    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert [r["id"] for r in records] == ["a1", "a2", "a3"]
    by_id = {a.id: a for a in ANNOTATIONS}
    for record in records:
        annotation = by_id[record["id"]]
        assert record["text"] == TEXTS[annotation.text_sha256]
        assert record["document_id"] == annotation.document_id
        assert record["annotator"] == annotation.annotator
        assert record["spans"] == [
            {"start": s.start, "end": s.end, "label": s.label} for s in annotation.spans
        ]
    assert records[1]["text"][17:25] == "Acme Ltd"
    assert "Müller".encode() in data


def test_render_jsonl_of_nothing_is_empty() -> None:
    assert render_jsonl([], TEXTS) == b""


def test_file_entry_hashes_and_sizes_the_bytes() -> None:
    data = render_jsonl(ANNOTATIONS, TEXTS)

    entry = file_entry(DATA_FILE, data)

    assert entry.name == DATA_FILE
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert entry.size_bytes == len(data)


def test_render_manifest_lists_files_and_counts() -> None:
    data = render_jsonl(ANNOTATIONS, TEXTS)
    files = [file_entry(DATA_FILE, data)]

    manifest = json.loads(
        render_manifest(
            export_id="e1",
            name="May export",
            created_at="2024-05-02T00:00:00.000000+00:00",
            export_format=JSONL,
            project={"id": "p1", "name": "Claims"},
            files=files,
            annotations=ANNOTATIONS,
            pipeline={"redaction_policy": "mask-v1"},
        )
    )

    assert manifest["manifest_version"] == MANIFEST_VERSION
    assert manifest["export_id"] == "e1"
    assert manifest["format"] == JSONL
    assert manifest["project"] == {"id": "p1", "name": "Claims"}
    assert manifest["files"] == [
        {
            "name": DATA_FILE,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data),
        }
    ]
    assert manifest["counts"] == {
        "annotations": 3,
        "documents": 2,
        "spans": 4,
        "spans_by_label": {"ORG": 1, "PERSON": 3},
    }
    assert manifest["pipeline"] == {"redaction_policy": "mask-v1"}


@pytest.mark.parametrize("name", ["csv", "JSONL", "conll"])
def test_check_format_refuses_unknown_format(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_format(name)

    assert caught.value.code == "export_format_unknown"


@pytest.mark.parametrize(("name", "expected"), [("", JSONL), ("jsonl", JSONL)])
def test_check_format_accepts_jsonl_and_defaults_to_it(
    name: str, expected: str
) -> None:
    assert check_format(name) == expected
