"""Reading other tools' exports: Label Studio, Prodigy and doccano."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.export import importers
from strongroom.services.export.formats import writer_for
from strongroom.services.export.importers import (
    FORMATS,
    ImportedAnswer,
    ImportedItem,
    ImportedSpan,
    LabelNames,
    parse,
)
from strongroom.services.export.records import (
    ExportSchema,
    LabelInfo,
    Record,
    Relation,
    Span,
)

LABELS = LabelNames(
    spans=frozenset({"PERSON", "ORG", "LOCATION"}),
    classes=frozenset({"Urgent", "Routine"}),
    relations=frozenset({"works_at"}),
    fields=frozenset({"summary"}),
)

# Code points, not bytes or UTF-16 units, are what offsets count: the emoji is
# one code point and two UTF-16 units.
TEXT = "Zoë Müller works at Café Lumière 🎉 in Zürich."
CALL = "Please call back today."
SECRET = "Zoë"


def _at(text: str, piece: str) -> tuple[int, int]:
    start = text.index(piece)
    return start, start + len(piece)


def _span(text: str, piece: str, label: str) -> ImportedSpan:
    return ImportedSpan(*_at(text, piece), label)


def _lines(*values: Any) -> bytes:
    return "".join(json.dumps(value) + "\n" for value in values).encode()


def _ls_span(region: str, piece: str, label: str, **value: Any) -> dict[str, Any]:
    start, end = _at(TEXT, piece)
    return {
        "id": region,
        "type": "labels",
        "from_name": "label",
        "to_name": "text",
        "value": {"start": start, "end": end, "text": piece, "labels": [label]} | value,
    }


def label_studio_export() -> list[dict[str, Any]]:
    """Three tasks as Label Studio 1.x exports them, with what it can hold."""
    zurich_start, zurich_end = _at(TEXT, "Zürich")
    return [
        {
            "id": 7,
            "data": {"text": TEXT, "source": "letters"},
            "annotations": [
                {
                    "id": 11,
                    "completed_by": 3,
                    "created_at": "2026-10-01T09:00:00.000Z",
                    "was_cancelled": False,
                    "result": [
                        # The relation comes before the spans it links.
                        {
                            "id": "rel1",
                            "type": "relation",
                            "from_id": "r1",
                            "to_id": "r2",
                            "direction": "right",
                            "labels": ["works_at"],
                        },
                        _ls_span("r1", "Zoë Müller", "PERSON"),
                        _ls_span("r2", "Café Lumière", "ORG"),
                        _ls_span("r3", "works", "FOO"),
                        {
                            "id": "c1",
                            "type": "choices",
                            "from_name": "class",
                            "to_name": "text",
                            "value": {"choices": ["Urgent"]},
                        },
                        {
                            "id": "f1",
                            "type": "textarea",
                            "from_name": "summary",
                            "to_name": "text",
                            "value": {"text": ["A visit.", "Second line."]},
                        },
                        {
                            "id": "b1",
                            "type": "rectanglelabels",
                            "from_name": "box",
                            "to_name": "image",
                            "value": {"x": 1, "y": 2, "width": 3, "height": 4},
                        },
                        {
                            "id": "s1",
                            "type": "rating",
                            "from_name": "stars",
                            "to_name": "text",
                            "value": {"rating": 4},
                        },
                    ],
                },
                {
                    "id": 12,
                    "completed_by": {"id": 5, "email": "bob@example.org"},
                    "was_cancelled": True,
                    "result": [_ls_span("x", "Zoë Müller", "PERSON")],
                },
                {
                    "id": 13,
                    "completed_by": "carol@example.org",
                    "result": [
                        # Offsets counted in UTF-16 units: one too far, as the
                        # emoji before the span is two units.
                        {
                            "id": "z1",
                            "type": "labels",
                            "value": {
                                "start": zurich_start + 1,
                                "end": zurich_end + 1,
                                "text": "Zürich",
                                "labels": ["LOCATION"],
                            },
                        },
                        _ls_span("z2", "works", "ORG", text="nowhere"),
                        {
                            "id": "z3",
                            "type": "labels",
                            "value": {"start": 40, "end": 400, "labels": ["ORG"]},
                        },
                    ],
                },
            ],
            "predictions": [
                {
                    "id": 21,
                    "model_version": "ner-v2",
                    "created_at": "2026-09-30T12:00:00Z",
                    "result": [_ls_span("p1", "Zoë Müller", "PERSON")],
                }
            ],
        },
        {
            "data": {"body": CALL},
            "annotations": [{"id": 14, "result": []}],
            "predictions": [
                {"result": [{"type": "choices", "value": {"choices": ["Routine"]}}]}
            ],
        },
        {"id": 9, "data": {"page_count": 3}, "annotations": []},
    ]


def test_label_studio_export_reads_into_items_answers_and_predictions() -> None:
    items, report = parse(
        "label-studio", json.dumps(label_studio_export()).encode(), LABELS
    )

    assert items == [
        ImportedItem(
            key="7",
            text=TEXT,
            answers=(
                ImportedAnswer(
                    annotator="3",
                    spans=(
                        _span(TEXT, "Zoë Müller", "PERSON"),
                        _span(TEXT, "Café Lumière", "ORG"),
                    ),
                    classes=("Urgent",),
                    relations=((0, 1, "works_at"),),
                    fields={"summary": "A visit.\nSecond line."},
                    created_at="2026-10-01T09:00:00.000Z",
                    source_id="11",
                ),
                ImportedAnswer(
                    annotator="carol@example.org",
                    spans=(_span(TEXT, "Zürich", "LOCATION"),),
                    source_id="13",
                ),
            ),
            predictions=(
                ImportedAnswer(
                    annotator="model:ner-v2",
                    spans=(_span(TEXT, "Zoë Müller", "PERSON"),),
                    created_at="2026-09-30T12:00:00Z",
                    source_id="21",
                ),
            ),
        ),
        ImportedItem(
            key="2",
            text=CALL,
            answers=(),
            predictions=(
                ImportedAnswer(annotator="model:unknown", classes=("Routine",)),
            ),
        ),
    ]
    assert report.as_dict() == {
        "items": 2,
        "answers": 2,
        "predictions": 2,
        "left_out": {
            "answers without any label": 1,
            "boxes (imported documents have no page images)": 1,
            "cancelled Label Studio answers": 1,
            "items without text": 1,
            "spans outside the text": 1,
            "spans whose text does not match": 1,
            "spans with a label the project lacks: FOO": 1,
            "unsupported Label Studio result type: rating": 1,
        },
        "adjusted": {"spans moved to where their text is": 1},
    }


def test_label_studio_takes_one_task_or_json_lines_as_well() -> None:
    tasks = label_studio_export()
    whole, _ = parse("label-studio", json.dumps(tasks).encode(), LABELS)

    one, _ = parse("label-studio", json.dumps(tasks[0], indent=2).encode(), LABELS)
    lines, _ = parse("label-studio", _lines(*tasks), LABELS)

    assert one == whole[:1]
    assert lines == whole


def test_label_studio_user_is_the_id_or_email_it_has() -> None:
    answers = [
        {"completed_by": by, "result": [_ls_span("r", "Zoë Müller", "PERSON")]}
        for by in ({"id": 5, "email": "b@x.org"}, {"email": "c@x.org"}, None, True)
    ]
    task = {"id": "a-1", "data": {"text": TEXT}, "annotations": answers}

    items, _ = parse("label-studio", json.dumps([task]).encode(), LABELS)

    assert items[0].key == "a-1"
    assert [a.annotator for a in items[0].answers] == ["5", "c@x.org", "", ""]


def test_label_studio_per_region_results_and_unknown_names_are_counted() -> None:
    result = [
        _ls_span("r1", "Zoë Müller", "PERSON"),
        # A choice drawn on one region, not on the whole text.
        {"id": "r1", "type": "choices", "value": {"start": 0, "end": 3, "choices": []}},
        {"type": "choices", "value": {"choices": ["Urgent", "Secret", "Urgent"]}},
        {"type": "textarea", "from_name": "notes", "value": {"text": "x"}},
        {"type": "relation", "from_id": "r1", "to_id": "gone", "labels": ["works_at"]},
        {"type": "relation", "from_id": "r1", "to_id": "r1", "labels": ["born_in"]},
        {"type": "relation", "from_id": "r1", "to_id": "r1"},
        {"type": "Not A Type!", "value": {}},
        _ls_span("r9", "works", "x" * 100),
    ]
    task = {"data": {"text": TEXT}, "annotations": [{"result": result}]}

    items, report = parse("label-studio", json.dumps(task).encode(), LABELS)

    answer = items[0].answers[0]
    assert answer.spans == (_span(TEXT, "Zoë Müller", "PERSON"),)
    assert answer.classes == ("Urgent",)
    assert answer.relations == ()
    assert dict(report.left_out) == {
        "per-region Label Studio results": 1,
        "classes the project lacks: Secret": 1,
        "fields the project lacks: notes": 1,
        "relations whose span was left out": 1,
        "relations with a label the project lacks: born_in": 1,
        "relations without a label": 1,
        "unsupported Label Studio result type (unnamed)": 1,
        "spans with a label the project lacks (a name that is not a label name)": 1,
    }


def prodigy_export() -> bytes:
    """Prodigy ``db-out`` lines: manual NER, binary and choice answers."""
    person, org = _at(TEXT, "Zoë Müller"), _at(TEXT, "Café Lumière")
    person_span = {"start": person[0], "end": person[1], "label": "PERSON"}
    org_span = {"start": org[0], "end": org[1], "label": "ORG"}
    return _lines(
        {
            "text": TEXT,
            "_input_hash": 101,
            "_task_hash": 9001,
            "_annotator_id": "news-alice",
            "_session_id": "news-alice",
            "_timestamp": 1767225600,
            "_view_id": "ner_manual",
            "spans": [person_span | {"token_start": 0, "token_end": 1}, org_span],
            "relations": [
                {
                    "head": 1,
                    "child": 5,
                    "head_span": person_span,
                    "child_span": org_span,
                    "label": "works_at",
                }
            ],
            "answer": "accept",
        },
        {
            "text": TEXT,
            "_input_hash": 101,
            "_task_hash": 9002,
            "_session_id": "news-bob",
            "spans": [org_span, {"start": 0, "end": 3, "label": "FOO"}],
            "answer": "accept",
        },
        {"text": TEXT, "_input_hash": 101, "spans": [org_span], "answer": "reject"},
        {"text": CALL, "label": "Urgent", "answer": "accept"},
        {"text": CALL, "label": "Urgent", "answer": "ignore"},
        {
            "text": "Routine check.",
            "_input_hash": -5,
            "options": [{"id": "Routine", "text": "Routine"}, {"id": 2, "text": "2"}],
            "accept": ["Routine", 2],
            "answer": "accept",
        },
        {"image": "scan.png", "answer": "accept"},
        {"text": CALL, "label": "Urgent"},
    )


def test_prodigy_lines_of_one_input_are_one_item_with_several_answers() -> None:
    items, report = parse("prodigy", prodigy_export() + b"\n  \n", LABELS)

    assert items == [
        ImportedItem(
            key="101",
            text=TEXT,
            answers=(
                ImportedAnswer(
                    annotator="news-alice",
                    spans=(
                        _span(TEXT, "Zoë Müller", "PERSON"),
                        _span(TEXT, "Café Lumière", "ORG"),
                    ),
                    relations=((0, 1, "works_at"),),
                    created_at="2026-01-01T00:00:00+00:00",
                    source_id="9001",
                ),
                ImportedAnswer(
                    annotator="news-bob",
                    spans=(_span(TEXT, "Café Lumière", "ORG"),),
                    source_id="9002",
                ),
            ),
        ),
        ImportedItem(
            key="4", text=CALL, answers=(ImportedAnswer("", classes=("Urgent",)),)
        ),
        ImportedItem(
            key="-5",
            text="Routine check.",
            answers=(ImportedAnswer("", classes=("Routine",)),),
        ),
    ]
    assert report.as_dict() == {
        "items": 3,
        "answers": 4,
        "predictions": 0,
        "left_out": {
            "Prodigy lines without an accept, reject or ignore answer": 1,
            "classes the project lacks: 2": 1,
            "ignored Prodigy answers": 1,
            "items without text": 1,
            "rejected Prodigy answers": 1,
            "spans with a label the project lacks: FOO": 1,
        },
        "adjusted": {},
    }


def doccano_export() -> bytes:
    """doccano JSONL: sequence labels, classes, and entities with relations."""
    person, org = _at(TEXT, "Zoë Müller"), _at(TEXT, "Café Lumière")
    return _lines(
        {
            "id": 1,
            "text": TEXT,
            "label": [[*person, "PERSON"], [0, 3, "FOO"]],
            "user": 2,
        },
        {"id": 2, "text": "Routine check.", "label": ["Routine"], "annotator": "dana"},
        {
            "id": 3,
            "text": TEXT,
            "entities": [
                {
                    "id": 10,
                    "start_offset": person[0],
                    "end_offset": person[1],
                    "label": "PERSON",
                },
                {
                    "id": 11,
                    "start_offset": org[0],
                    "end_offset": org[1],
                    "label": "ORG",
                },
            ],
            "relations": [{"id": 1, "from_id": 10, "to_id": 11, "type": "works_at"}],
            "cats": ["Urgent", {"label": "Routine"}],
            "annotation_approver": "erin",
            "Comments": [],
        },
        {"text": "Nothing labelled here.", "label": []},
        {"id": 1, "text": TEXT, "label": [[*org, "ORG"]], "user": 3},
    )


def test_doccano_sequence_labels_classes_and_relations_read_in() -> None:
    items, report = parse("doccano", doccano_export(), LABELS)

    person = _span(TEXT, "Zoë Müller", "PERSON")
    org = _span(TEXT, "Café Lumière", "ORG")
    assert items == [
        ImportedItem(
            key="1",
            text=TEXT,
            answers=(
                ImportedAnswer("2", spans=(person,), source_id="1"),
                ImportedAnswer("3", spans=(org,), source_id="1"),
            ),
        ),
        ImportedItem(
            key="2",
            text="Routine check.",
            answers=(ImportedAnswer("dana", classes=("Routine",), source_id="2"),),
        ),
        ImportedItem(
            key="3",
            text=TEXT,
            answers=(
                ImportedAnswer(
                    "erin",
                    spans=(person, org),
                    classes=("Urgent", "Routine"),
                    relations=((0, 1, "works_at"),),
                    source_id="3",
                ),
            ),
        ),
        ImportedItem(key="4", text="Nothing labelled here.", answers=()),
    ]
    assert report.as_dict()["left_out"] == {
        "answers without any label": 1,
        "spans with a label the project lacks: FOO": 1,
    }


def test_the_same_bytes_give_the_same_items() -> None:
    for format, data in (
        ("label-studio", json.dumps(label_studio_export()).encode()),
        ("prodigy", prodigy_export()),
        ("doccano", doccano_export()),
    ):
        assert parse(format, data, LABELS) == parse(format, data, LABELS)


def test_a_repeated_source_id_still_gives_unique_keys() -> None:
    tasks = [{"id": 1, "data": {"text": text}} for text in ("a", "b", "c")]
    tasks.append({"id": "1#2", "data": {"text": "d"}})

    items, _ = parse("label-studio", json.dumps(tasks).encode(), LABELS)

    assert [item.key for item in items] == ["1", "1#2", "1#3", "1#2#2"]


# Round trips through Strongroom's own writers

SCHEMA = ExportSchema(
    spans=(LabelInfo("PERSON"), LabelInfo("ORG")),
    classes=(LabelInfo("Urgent"), LabelInfo("Routine")),
    multi_label=True,
    relations=(LabelInfo("works_at"),),
    fields=("summary",),
)
VISIT = "Zoë Müller visited Café Lumière in Zürich 🎉 with Ana"
LATER = "Later, Ana closed the café."


def _record(id_: str, task: str, text: str, annotator: str, **labels: Any) -> Record:
    return Record(
        id=id_,
        task_id=task,
        document_id="d1",
        text=text,
        window_start=0,
        text_sha256="0" * 64,
        annotator=annotator,
        **labels,
    )


def _spans(text: str, *pieces: tuple[str, str]) -> tuple[Span, ...]:
    return tuple(Span(*_at(text, piece), label) for piece, label in pieces)


def round_trip_records() -> list[Record]:
    return [
        _record(
            "r1",
            "t1",
            VISIT,
            "alice",
            spans=_spans(VISIT, ("Zoë Müller", "PERSON"), ("Café Lumière", "ORG")),
            classes=("Urgent", "Routine"),
            relations=(Relation(0, 1, "works_at"),),
            fields={"summary": "A visit.\nTwo lines."},
        ),
        _record(
            "r2",
            "t1",
            VISIT,
            "bob",
            spans=_spans(VISIT, ("Ana", "PERSON")),
            classes=("Routine",),
        ),
        _record("r3", "t2", LATER, "alice", spans=_spans(LATER, ("Ana", "PERSON"))),
    ]


def _written(format: str, directory: Path) -> bytes:
    writer = writer_for(format, SCHEMA, directory)
    for record in round_trip_records():
        writer.add(record)
    (name,) = [name for name in writer.close() if name.endswith((".json", ".jsonl"))]
    return (directory / name).read_bytes()


def _labels_of(items: list[ImportedItem]) -> list[tuple[str, list[Any]]]:
    return [
        (
            item.text,
            [
                (answer.spans, answer.classes, answer.relations, dict(answer.fields))
                for answer in item.answers
            ],
        )
        for item in items
    ]


def _expected(with_fields: bool) -> list[tuple[str, list[Any]]]:
    records = round_trip_records()
    expected: dict[str, list[Any]] = {}
    for record in records:
        spans = tuple(ImportedSpan(s.start, s.end, s.label) for s in record.spans)
        relations = tuple((r.from_span, r.to_span, r.label) for r in record.relations)
        fields = dict(record.fields) if with_fields else {}
        expected.setdefault(record.text, []).append(
            (spans, record.classes, relations, fields)
        )
    return list(expected.items())


def test_label_studio_files_strongroom_writes_read_back_the_same(
    tmp_path: Path,
) -> None:
    data = _written("label-studio", tmp_path)

    items, report = parse("label-studio", data, LabelNames.of(SCHEMA))

    assert _labels_of(items) == _expected(with_fields=True)
    assert [item.key for item in items] == ["1", "2"]
    assert (report.items, report.answers, report.left_out) == (2, 3, {})


def test_prodigy_files_strongroom_writes_read_back_the_same(tmp_path: Path) -> None:
    data = _written("prodigy", tmp_path)

    items, report = parse("prodigy", data, LabelNames.of(SCHEMA))

    # Prodigy has no free-text fields; everything else comes back.
    assert _labels_of(items) == _expected(with_fields=False)
    assert [a.annotator for item in items for a in item.answers] == [
        "alice",
        "bob",
        "alice",
    ]
    assert (report.items, report.answers, report.left_out) == (2, 3, {})


# Hostile input


def _refused(format: str, data: bytes, labels: LabelNames = LABELS) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as raised:
        parse(format, data, labels)
    assert SECRET not in raised.value.message
    return raised.value


@pytest.mark.parametrize("format", FORMATS)
def test_truncated_json_is_unreadable_naming_the_line(format: str) -> None:
    good = {"text": TEXT, "data": {"text": TEXT}}
    data = _lines(good, good) + b'{"text": "Zo\xc3\xab M'

    error = _refused(format, data)

    assert error.code == "import_unreadable"
    assert "line 3" in error.message


def test_a_truncated_label_studio_array_is_unreadable() -> None:
    data = json.dumps(label_studio_export(), indent=1).encode()[:-40]

    assert _refused("label-studio", data).code == "import_unreadable"


@pytest.mark.parametrize("format", FORMATS)
def test_deep_nesting_is_unreadable_not_a_crash(format: str) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000

    assert _refused(format, deep).code == "import_unreadable"
    nested = b'{"text": "x", "spans": ' + deep + b"}\n"
    assert _refused(format, nested).code == "import_unreadable"


@pytest.mark.parametrize("format", FORMATS)
def test_invalid_utf8_is_unreadable_naming_the_line(format: str) -> None:
    data = _lines({"text": "fine"}) + b'{"text": "caf\xe9"}\n'

    error = _refused(format, data)

    assert (error.code, error.message) == (
        "import_unreadable",
        f"The {importers.TITLES[format]} file cannot be imported: "
        "line 2 is not UTF-8 text.",
    )


@pytest.mark.parametrize(
    ("format", "data", "where"),
    [
        ("prodigy", _lines({"text": TEXT, "answer": "accept"}, [1, 2]), "line 2"),
        (
            "prodigy",
            _lines({"text": TEXT, "spans": "0-3 PERSON", "answer": "accept"}),
            "line 1",
        ),
        ("prodigy", _lines({"text": 42, "answer": "accept"}), "line 1"),
        ("prodigy", _lines({"text": TEXT, "answer": 1}), "line 1"),
        (
            "doccano",
            _lines({"text": TEXT}, {"text": TEXT, "label": {"a": 1}}),
            "line 2",
        ),
        ("doccano", _lines({"text": TEXT, "entities": ["PERSON"]}), "line 1"),
        ("label-studio", b'[{"data": {"text": "x"}}, {"data": "x"}]', "task 2"),
        ("label-studio", b'[{"data": {"text": "x"}, "annotations": "all"}]', "task 1"),
        (
            "label-studio",
            b'[{"data": {"text": "x"}, "annotations": [{"result": [1]}]}]',
            "task 1",
        ),
        ("label-studio", b'"just a string"', "the file"),
        ("label-studio", b"[3]", "task 1"),
    ],
)
def test_wrong_types_are_unreadable_naming_the_place(
    format: str, data: bytes, where: str
) -> None:
    error = _refused(format, data)

    assert error.code == "import_unreadable"
    assert f": {where} " in error.message


def test_bad_offsets_are_left_out_and_counted() -> None:
    spans = [
        {"start": "0", "end": 3, "label": "PERSON"},
        {"start": 0.0, "end": 3, "label": "PERSON"},
        {"start": True, "end": 3, "label": "PERSON"},
        {"start": -4, "end": 3, "label": "PERSON"},
        {"start": 3, "end": 3, "label": "PERSON"},
        {"start": 9, "end": 2, "label": "PERSON"},
        {"start": 40, "end": 4000, "label": "PERSON"},
        {"start": 0, "end": 3},
        {"start": 0, "end": 3, "label": "PERSON"},
    ]
    example = {"text": TEXT, "spans": spans, "answer": "accept", "_timestamp": 10**20}

    items, report = parse("prodigy", _lines(example), LABELS)

    assert items[0].answers == (
        ImportedAnswer("", spans=(_span(TEXT, "Zoë", "PERSON"),)),
    )
    assert dict(report.left_out) == {
        "spans whose offsets are not whole numbers": 3,
        "spans outside the text": 2,
        "empty or reversed spans": 2,
        "spans without a label": 1,
    }


def test_doccano_labels_of_the_wrong_length_are_counted() -> None:
    example = {
        "text": TEXT,
        "label": [[0, 3], [0, 3, "PERSON", "extra"], [0, 3, "PERSON"]],
    }

    items, report = parse("doccano", _lines(example), LABELS)

    assert items[0].answers[0].spans == (_span(TEXT, "Zoë", "PERSON"),)
    assert dict(report.left_out) == {"spans that are not [start, end, label]": 2}


@pytest.mark.parametrize("format", FORMATS)
def test_too_many_items_or_bytes_are_refused(
    format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _lines(*({"data": {"text": str(n)}, "text": str(n)} for n in range(3)))
    monkeypatch.setattr(importers, "MAX_ITEMS", 2)

    assert _refused(format, data).code == "import_too_large"
    if format == "label-studio":
        array = json.dumps([{"data": {"text": "x"}}] * 3).encode()
        assert _refused(format, array).code == "import_too_large"

    monkeypatch.setattr(importers, "MAX_ITEMS", 200_000)
    monkeypatch.setattr(importers, "MAX_BYTES", len(data) - 1)
    assert _refused(format, data).code == "import_too_large"


def test_an_unknown_format_is_refused() -> None:
    error = _refused("brat", b"")

    assert error.code == "import_format_unknown"
    assert "label-studio, prodigy, doccano" in error.message


@pytest.mark.parametrize("format", FORMATS)
def test_an_empty_file_has_no_items(format: str) -> None:
    assert parse(format, b"\n \n", LABELS) == ([], importers.ImportReport())


JSON_KEYS = st.sampled_from(
    [
        "text", "data", "annotations", "predictions", "result", "value", "type",
        "start", "end", "labels", "choices", "id", "from_id", "to_id", "spans",
        "label", "answer", "accept", "options", "relations", "head_span",
        "entities", "start_offset", "end_offset", "cats", "completed_by",
        "_input_hash", "_timestamp", "from_name", "was_cancelled", "model_version",
        "child_span", "_annotator_id", "_task_hash", "user", "type",
    ]
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=60)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "labels",
            "choices",
            "relation",
            "textarea",
            "accept",
            "PERSON",
            "Urgent",
            TEXT,
        ]
    )
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(JSON_KEYS | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=30,
)

# Lines shaped like each format, with arbitrary values where the labels go, so
# the search reaches the readers' inner loops and not only their first check.
RESULTS = st.fixed_dictionaries(
    {"type": st.sampled_from(["labels", "choices", "relation", "textarea"])},
    optional={
        "id": JSON_VALUES,
        "value": st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=5),
        "from_id": JSON_VALUES,
        "to_id": JSON_VALUES,
        "labels": JSON_VALUES,
        "from_name": JSON_VALUES,
    },
)
SHAPED_LINES = st.one_of(
    st.fixed_dictionaries(
        {
            "data": st.just({"text": TEXT}),
            "annotations": st.lists(
                st.fixed_dictionaries({"result": st.lists(RESULTS, max_size=4)}),
                max_size=2,
            ),
        }
    ),
    st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=6).map(
        lambda line: line | {"text": TEXT, "answer": "accept"}
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(JSON_VALUES | SHAPED_LINES, max_size=4),
    format=st.sampled_from(FORMATS),
)
def test_arbitrary_json_lines_raise_nothing_but_invalid_argument(
    values: list[Any], format: str
) -> None:
    data = _lines(*values)

    try:
        parse(format, data, LABELS)
    except InvalidArgument as error:
        assert error.code == "import_unreadable"


def test_odd_but_readable_values_are_left_out_and_counted() -> None:
    result = [
        _ls_span("r1", "Zoë Müller", "PERSON", labels=[]),
        {"type": "choices", "value": {"choices": [None, "Routine"]}},
        {"type": "textarea", "value": {"text": ["no control name"]}},
        {"type": "textarea", "from_name": "summary", "value": {"text": "One."}},
        {"type": "textarea", "from_name": "summary", "value": {"text": ["Two."]}},
        {"type": "relation", "from_id": "r1", "to_id": "r1", "labels": [5]},
    ]
    task = {"data": {"text": TEXT}, "annotations": [{"result": result}]}
    example = {
        "text": TEXT,
        "spans": [{"start": 0, "end": 3, "label": "PERSON"}],
        "relations": [
            {"child_span": {"start": 0, "end": 3}, "label": "works_at"},
            {
                "head_span": {"start": [0], "end": {"x": 3}, "label": ["PERSON"]},
                "child_span": {"start": 0, "end": 3, "label": {"PERSON": 1}},
                "label": "works_at",
            },
        ],
        "answer": "accept",
    }

    ls_items, ls_report = parse("label-studio", json.dumps(task).encode(), LABELS)
    prodigy_items, prodigy_report = parse("prodigy", _lines(example), LABELS)
    doccano_items, doccano_report = parse(
        "doccano", _lines({"label": ["Urgent"]}), LABELS
    )

    assert ls_items[0].answers == (
        ImportedAnswer("", classes=("Routine",), fields={"summary": "One.\nTwo."}),
    )
    assert dict(ls_report.left_out) == {
        "spans without a label": 1,
        "classes without a name": 1,
        "fields without a name": 1,
        "relations without a label": 1,
    }
    assert prodigy_items[0].answers[0].relations == ()
    assert dict(prodigy_report.left_out) == {"relations whose span was left out": 2}
    assert (doccano_items, dict(doccano_report.left_out)) == (
        [],
        {"items without text": 1},
    )


def test_one_id_repeated_many_times_stays_quick() -> None:
    tasks = [{"id": 1, "data": {"text": "a"}}] * 20_000

    items, _ = parse("label-studio", json.dumps(tasks).encode(), LABELS)

    assert [item.key for item in items[:3]] == ["1", "1#2", "1#3"]
    assert items[-1].key == "1#20000"
