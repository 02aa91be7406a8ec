"""Cutting an imported answer into its document's task windows."""

from __future__ import annotations

from collections import Counter

from strongroom.services.export.importer import _by_window, _timestamp
from strongroom.services.export.importers import ImportedAnswer, ImportedSpan
from strongroom.v1 import tasks_pb2

WINDOWS = [
    tasks_pb2.Task(id="second", window_start=40, window_end=80),
    tasks_pb2.Task(id="first", window_start=0, window_end=40),
]


def answer(**changes: object) -> ImportedAnswer:
    base: dict[str, object] = {
        "annotator": "7",
        "spans": (
            ImportedSpan(2, 9, "DRUG"),
            ImportedSpan(45, 52, "DISEASE"),
            ImportedSpan(12, 20, "DISEASE"),
        ),
        "classes": ("routine",),
        "relations": ((0, 2, "TREATS"), (0, 1, "TREATS")),
        "fields": {"note": "checked"},
    }
    base.update(changes)
    return ImportedAnswer(**base)  # type: ignore[arg-type]


def test_each_span_goes_to_the_window_that_holds_it() -> None:
    left: Counter[str] = Counter()
    placed = [(2, 9, "DRUG"), (45, 52, "DISEASE"), (12, 20, "DISEASE")]
    cut = {
        task.id: content
        for task, content in _by_window(answer(), placed, WINDOWS, left)
    }

    first, second = cut["first"], cut["second"]
    assert [(s.span.start, s.label) for s in first.spans] == [
        (2, "DRUG"),
        (12, "DISEASE"),
    ]
    assert [(s.span.start, s.label) for s in second.spans] == [(45, "DISEASE")]
    # Classes and fields go with the first window; relations where both ends are.
    assert list(first.classes) == ["routine"] and dict(first.fields) == {
        "note": "checked"
    }
    assert not second.classes and not second.fields
    assert [(r.from_span, r.to_span) for r in first.relations] == [(0, 1)]
    assert left == {"relations whose spans were left out": 1}


def test_spans_lost_in_redaction_or_across_windows_are_counted() -> None:
    left: Counter[str] = Counter()
    placed = [None, (35, 45, "DISEASE"), (12, 20, "DISEASE")]
    cut = list(_by_window(answer(relations=()), placed, WINDOWS, left))

    assert [t.id for t, _ in cut] == ["first"]
    assert left == {
        "spans inside a redacted identifier": 1,
        "spans across two tasks' windows": 1,
    }


def test_an_answer_with_only_a_class_still_reaches_the_first_window() -> None:
    left: Counter[str] = Counter()
    only_class = answer(spans=(), relations=(), fields={})
    cut = list(_by_window(only_class, [], WINDOWS, left))
    assert [(t.id, list(c.classes)) for t, c in cut] == [("first", ["routine"])]


def test_source_times_are_kept_when_readable() -> None:
    stamp = _timestamp("2024-05-01T10:00:00Z")
    assert stamp is not None and stamp.ToJsonString() == "2024-05-01T10:00:00Z"
    assert _timestamp("yesterday") is None and _timestamp("") is None
