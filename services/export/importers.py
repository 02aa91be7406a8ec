"""Answers made in other labeling tools, read into Strongroom's terms.

``parse`` reads a Label Studio JSON export, Prodigy JSONL or doccano JSONL
and gives each text with the answers to it, in file order. Only what the
project's label schema names comes in: a span, class, relation or field with
any other name is left out and counted by a reason that names the label, as
is everything the format has and Strongroom cannot take (boxes without page
images, rejected answers). Nothing is dropped without a count, and no reason
ever holds document text.

A file whose structure is not the format's (a task that is no object, spans
that are no list, invalid JSON or UTF-8) is refused whole with
``import_unreadable``, naming the line or task; a single span, class or
relation that cannot be read is left out and counted, so one bad region does
not cost the rest of the file.

Pure: bytes in, values out; no I/O and no other service.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.export.records import ExportSchema

FORMATS = ("label-studio", "prodigy", "doccano")
TITLES = {"label-studio": "Label Studio", "prodigy": "Prodigy", "doccano": "doccano"}

MAX_ITEMS = 200_000
MAX_BYTES = 100 * 1024 * 1024

# How far from its stated offset a Label Studio span's text is looked for,
# in code points. Offsets drift when a tool counted UTF-16 units (each emoji
# before the span adds one) or normalised "\r\n" (each line break adds one).
NEAR = 100

# A label or result type is named in a reason only if it reads as a name;
# anything longer is more likely text pasted into the wrong field.
LONGEST_NAME = 64
# Label Studio's result types are lowercase words, such as "rectanglelabels".
RESULT_TYPE = re.compile(r"[a-z_]{1,40}")

BOXES_LEFT_OUT = "boxes (imported documents have no page images)"


@dataclass(frozen=True)
class ImportedSpan:
    """A label on the half-open range [start, end) of the item's text."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class ImportedAnswer:
    """One answer as the source tool recorded it.

    ``annotator`` is the source tool's identity of whoever answered (a Label
    Studio user id or e-mail, a Prodigy annotator or session id, a doccano
    user), not a Strongroom user; it is empty when the source has none.
    ``relations`` link spans by their index in ``spans``.
    """

    annotator: str
    spans: tuple[ImportedSpan, ...] = ()
    classes: tuple[str, ...] = ()
    relations: tuple[tuple[int, int, str], ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    created_at: str = ""
    source_id: str = ""


@dataclass(frozen=True)
class ImportedItem:
    """One text of the file, with every answer and model prediction on it.

    ``key`` is the source's task id, input hash or line number, made unique
    in the file by a ``#2``-style suffix when the source repeats it.
    """

    key: str
    text: str
    answers: tuple[ImportedAnswer, ...]
    predictions: tuple[ImportedAnswer, ...] = ()


@dataclass(frozen=True)
class LabelNames:
    """The names in the project's label schema; imported labels must match."""

    spans: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()
    relations: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()

    @classmethod
    def of(cls, schema: ExportSchema) -> LabelNames:
        """The names of an export schema's span, class and relation labels."""
        return cls(
            spans=frozenset(label.name for label in schema.spans),
            classes=frozenset(label.name for label in schema.classes),
            relations=frozenset(label.name for label in schema.relations),
            fields=frozenset(schema.fields),
        )


@dataclass
class ImportReport:
    """What came in, and what was left out or adjusted, by reason."""

    items: int = 0
    answers: int = 0
    predictions: int = 0
    left_out: Counter[str] = field(default_factory=Counter)
    # Kept, but not exactly as the file had it.
    adjusted: Counter[str] = field(default_factory=Counter)

    def leave_out(self, reason: str, name: str | None = None) -> None:
        self.left_out[reason if name is None else _named(reason, name)] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "answers": self.answers,
            "predictions": self.predictions,
            "left_out": dict(sorted(self.left_out.items())),
            "adjusted": dict(sorted(self.adjusted.items())),
        }


def parse(
    format: str, data: bytes, labels: LabelNames
) -> tuple[list[ImportedItem], ImportReport]:
    """Read a file exported by another labeling tool, in file order.

    Raises:
        InvalidArgument: ``import_format_unknown`` for a format not in
            ``FORMATS``; ``import_too_large`` for more than ``MAX_BYTES`` or
            ``MAX_ITEMS`` items; ``import_unreadable`` for text that is not
            UTF-8, invalid JSON, or values of the wrong type, naming the line
            or task.
    """
    reader = READERS.get(format)
    if reader is None:
        raise InvalidArgument(
            f"Import format {format!r} is not supported; choose one of "
            f"{', '.join(FORMATS)}.",
            code="import_format_unknown",
        )
    title = TITLES[format]
    if len(data) > MAX_BYTES:
        raise _too_large(title, f"more than {MAX_BYTES} bytes")

    text = _decode(title, data)
    report = ImportReport()
    collection = _Collection(title, labels, report)
    reader(text, collection)

    items = collection.finish()
    report.items = len(items)
    report.answers = sum(len(item.answers) for item in items)
    report.predictions = sum(len(item.predictions) for item in items)
    return items, report


class _WrongType(Exception):
    """A JSON value of the wrong type inside one task or line.

    Never leaves this module: the task or line it is found in turns it into
    ``import_unreadable`` with its place in the file.
    """


def _decode(title: str, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _unreadable(title, f"line {line}", "is not UTF-8 text") from exc
    return text.removeprefix("\ufeff")


def _unreadable(title: str, where: str, problem: str) -> InvalidArgument:
    return InvalidArgument(
        f"The {title} file cannot be imported: {where} {problem}.",
        code="import_unreadable",
    )


def _too_large(title: str, what: str) -> InvalidArgument:
    return InvalidArgument(
        f"The {title} file cannot be imported: it has {what}; split it into "
        "smaller files.",
        code="import_too_large",
    )


def _named(reason: str, name: str) -> str:
    if len(name) > LONGEST_NAME or not name.isprintable():
        return f"{reason} (a name that is not a label name)"
    return f"{reason}: {name}"


@dataclass
class _Entry:
    key: str
    text: str
    answers: list[ImportedAnswer] = field(default_factory=list)
    predictions: list[ImportedAnswer] = field(default_factory=list)


class _Collection:
    """The items read so far, by whatever makes two lines one item."""

    def __init__(self, title: str, labels: LabelNames, report: ImportReport) -> None:
        self.title = title
        self.labels = labels
        self.report = report
        self.entries: dict[Hashable, _Entry] = {}
        self.keys: set[str] = set()
        # The next suffix to try per repeated key, so a file that repeats one
        # id 200,000 times costs one try per item, not one per earlier item.
        self.suffixes: dict[str, int] = {}

    def entry(self, group: Hashable, key: str, text: str) -> _Entry:
        """The item of ``group``, started with ``key`` and ``text`` if new.

        Raises:
            InvalidArgument: ``import_too_large`` past ``MAX_ITEMS`` items.
        """
        found = self.entries.get(group)
        if found is not None:
            return found
        if len(self.entries) >= MAX_ITEMS:
            raise _too_large(self.title, f"more than {MAX_ITEMS} items")

        unique, n = key, self.suffixes.get(key, 1)
        while unique in self.keys:
            n += 1
            unique = f"{key}#{n}"
        self.suffixes[key] = n
        self.keys.add(unique)
        started = _Entry(unique, text)
        self.entries[group] = started
        return started

    def draft(self, text: str) -> _Draft:
        return _Draft(text, self.labels, self.report)

    def finish(self) -> list[ImportedItem]:
        return [
            ImportedItem(
                key=entry.key,
                text=entry.text,
                answers=tuple(entry.answers),
                predictions=tuple(entry.predictions),
            )
            for entry in self.entries.values()
        ]


class _Draft:
    """One answer as it is read: each label checked against text and schema."""

    def __init__(self, text: str, labels: LabelNames, report: ImportReport) -> None:
        self.text = text
        self.labels = labels
        self.report = report
        self.spans: list[ImportedSpan] = []
        self.classes: list[str] = []
        self.relations: list[tuple[int, int, str]] = []
        self.fields: dict[str, str] = {}

    def add_span(
        self, start: object, end: object, label: object, quoted: object = None
    ) -> int | None:
        """Add a span if it fits the text and the schema; return its index.

        ``quoted`` is the span's text as the source stored it; when given, it
        decides where the span is (see ``_place``).
        """
        report = self.report
        if not isinstance(label, str) or not label:
            report.leave_out("spans without a label")
            return None
        if label not in self.labels.spans:
            report.leave_out("spans with a label the project lacks", label)
            return None
        offsets = _offsets(start, end)
        if offsets is None:
            report.leave_out("spans whose offsets are not whole numbers")
            return None

        start, end = offsets
        if isinstance(quoted, str) and quoted:
            placed = _place(self.text, start, end, quoted)
            if placed is None:
                report.leave_out("spans whose text does not match")
                return None
            if placed != (start, end):
                report.adjusted["spans moved to where their text is"] += 1
            start, end = placed
        elif start >= end:
            report.leave_out("empty or reversed spans")
            return None
        elif start < 0 or end > len(self.text):
            report.leave_out("spans outside the text")
            return None

        self.spans.append(ImportedSpan(start, end, label))
        return len(self.spans) - 1

    def add_class(self, name: object) -> None:
        # Prodigy's choice ids may be numbers; the schema's names are text.
        name = _identity(name) or name
        if not isinstance(name, str) or not name:
            self.report.leave_out("classes without a name")
        elif name not in self.labels.classes:
            self.report.leave_out("classes the project lacks", name)
        elif name not in self.classes:
            self.classes.append(name)

    def add_relation(
        self, from_span: int | None, to_span: int | None, label: object
    ) -> None:
        if not isinstance(label, str) or not label:
            self.report.leave_out("relations without a label")
        elif label not in self.labels.relations:
            self.report.leave_out("relations with a label the project lacks", label)
        elif from_span is None or to_span is None:
            self.report.leave_out("relations whose span was left out")
        else:
            self.relations.append((from_span, to_span, label))

    def add_field(self, name: object, value: str) -> None:
        if not isinstance(name, str) or not name:
            self.report.leave_out("fields without a name")
        elif name not in self.labels.fields:
            self.report.leave_out("fields the project lacks", name)
        elif name in self.fields:
            self.fields[name] = f"{self.fields[name]}\n{value}"
        else:
            self.fields[name] = value

    def finish(
        self,
        annotator: str,
        *,
        created_at: str = "",
        source_id: str = "",
        kind: str = "answers",
    ) -> ImportedAnswer | None:
        """The answer, or None (counted) when nothing in it came in.

        An answer whose labels were all left out is not kept as an empty
        one: "no entities here" would be a claim the source never made.
        """
        if not (self.spans or self.classes or self.relations or self.fields):
            self.report.leave_out(f"{kind} without any label")
            return None
        return ImportedAnswer(
            annotator=annotator,
            spans=tuple(self.spans),
            classes=tuple(self.classes),
            relations=tuple(self.relations),
            fields=dict(self.fields),
            created_at=created_at,
            source_id=source_id,
        )


def _whole_number(value: object) -> int | None:
    # JSON's true and false arrive as bool, which Python counts as int.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _offsets(start: object, end: object) -> tuple[int, int] | None:
    first, last = _whole_number(start), _whole_number(end)
    if first is None or last is None:
        return None
    return first, last


def _place(text: str, start: int, end: int, quoted: str) -> tuple[int, int] | None:
    """Where the span whose text is ``quoted`` is, near ``start``; or None.

    The stated offsets win when they hold that text; otherwise the nearest
    occurrence within ``NEAR`` code points (the earlier one on a tie).
    """
    if 0 <= start < end <= len(text) and text[start:end] == quoted:
        return start, end

    anchor = min(max(start, 0), len(text))
    low = max(anchor - NEAR, 0)
    high = min(anchor + len(quoted) + NEAR, len(text))
    best: int | None = None
    at = text.find(quoted, low, high)
    while at != -1:
        if best is None or abs(at - start) < abs(best - start):
            best = at
        at = text.find(quoted, at + 1, high)
    return None if best is None else (best, best + len(quoted))


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _WrongType
    return value


def _list(value: object) -> list[Any]:
    """A JSON array, or none for a missing value."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _WrongType
    return value


def _identity(value: object) -> str:
    """A source's id (a number or a string) as text; empty for anything else."""
    if isinstance(value, str):
        return value
    number = _whole_number(value)
    return "" if number is None else str(number)


def _json_lines(title: str, text: str) -> Iterator[tuple[int, Any]]:
    """Each non-blank line's JSON value, with its line number from 1."""
    # Only "\n" ends a line: JSON strings may hold U+2028 and other
    # characters that str.splitlines() would also split on.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise _unreadable(title, f"line {number}", "is not valid JSON") from exc


def _each_line(
    title: str, text: str, read: Callable[[int, dict[str, Any]], None]
) -> None:
    for number, value in _json_lines(title, text):
        try:
            read(number, _object(value))
        except _WrongType as exc:
            raise _unreadable(
                title, f"line {number}", "has a value of the wrong type"
            ) from exc


# Label Studio


def _read_label_studio(text: str, collection: _Collection) -> None:
    title = collection.title
    for where, task in _label_studio_tasks(title, text):
        try:
            _read_label_studio_task(where, _object(task), collection)
        except _WrongType as exc:
            raise _unreadable(title, where, "has a value of the wrong type") from exc


def _label_studio_tasks(title: str, text: str) -> Iterator[tuple[str, Any]]:
    """Each task with its place: the export's array, one task, or JSON lines."""
    stripped = text.strip()
    if not stripped:
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if stripped.startswith("{") and exc.msg == "Extra data":
            for number, task in _json_lines(title, text):
                yield f"line {number}", task
            return
        raise _unreadable(title, f"line {exc.lineno}", "is not valid JSON") from exc
    except (ValueError, RecursionError) as exc:
        raise _unreadable(title, "the file", "is not valid JSON") from exc

    if isinstance(value, dict):
        yield "task 1", value
    elif isinstance(value, list):
        if len(value) > MAX_ITEMS:
            raise _too_large(title, f"more than {MAX_ITEMS} items")
        for number, task in enumerate(value, start=1):
            yield f"task {number}", task
    else:
        raise _unreadable(title, "the file", "is neither a task nor a list of them")


def _read_label_studio_task(
    where: str, task: dict[str, Any], collection: _Collection
) -> None:
    report = collection.report
    text = _label_studio_text(_object(task.get("data")))
    if not text:
        report.leave_out("items without text")
        return

    key = _identity(task.get("id")) or where.split()[-1]
    entry = collection.entry(where, key, text)
    # Exports made before Label Studio 1.0 call the answers "completions".
    annotations = task.get("annotations", task.get("completions"))
    for annotation in _list(annotations):
        annotation = _object(annotation)
        if annotation.get("was_cancelled") is True:
            report.leave_out("cancelled Label Studio answers")
            continue
        draft = collection.draft(text)
        _read_label_studio_results(annotation.get("result"), draft)
        answer = draft.finish(
            _label_studio_user(annotation.get("completed_by")),
            created_at=_text_or_empty(annotation.get("created_at")),
            source_id=_identity(annotation.get("id")),
        )
        if answer is not None:
            entry.answers.append(answer)

    for prediction in _list(task.get("predictions")):
        prediction = _object(prediction)
        draft = collection.draft(text)
        _read_label_studio_results(prediction.get("result"), draft)
        model = _identity(prediction.get("model_version")) or "unknown"
        answer = draft.finish(
            f"model:{model}",
            created_at=_text_or_empty(prediction.get("created_at")),
            source_id=_identity(prediction.get("id")),
            kind="predictions",
        )
        if answer is not None:
            entry.predictions.append(answer)


def _label_studio_text(data: dict[str, Any]) -> str:
    text = data.get("text")
    if isinstance(text, str):
        return text
    return next((value for value in data.values() if isinstance(value, str)), "")


def _label_studio_user(completed_by: object) -> str:
    """Who answered: Label Studio's user id, or the e-mail when that is all."""
    if isinstance(completed_by, dict):
        return _identity(completed_by.get("id")) or _identity(completed_by.get("email"))
    return _identity(completed_by)


def _text_or_empty(value: object) -> str:
    return value if isinstance(value, str) else ""


def _read_label_studio_results(results: object, draft: _Draft) -> None:
    """Add one answer's results to the draft; relations once every span is in."""
    report = draft.report
    regions: dict[str, int] = {}
    relations: list[dict[str, Any]] = []
    for result in _list(results):
        result = _object(result)
        kind = result.get("type")
        if kind == "relation":
            relations.append(result)
            continue
        if kind == "rectanglelabels":
            report.leave_out(BOXES_LEFT_OUT)
            continue
        if kind not in ("labels", "choices", "textarea"):
            _leave_out_result_type(report, kind)
            continue

        value = _object(result.get("value"))
        if kind != "labels" and ("start" in value or "x" in value):
            # A per-region choice or text belongs to one span, which
            # Strongroom's answers cannot say; taking it as the whole
            # answer's would be wrong.
            report.leave_out("per-region Label Studio results")
        elif kind == "labels":
            region = _identity(result.get("id"))
            for label in _labels_of(value.get("labels"), report):
                index = draft.add_span(
                    value.get("start"), value.get("end"), label, value.get("text")
                )
                if index is not None and region:
                    regions.setdefault(region, index)
        elif kind == "choices":
            for choice in _list(value.get("choices")):
                draft.add_class(choice)
        else:
            draft.add_field(result.get("from_name"), _textarea_text(value))

    for relation in relations:
        from_span = regions.get(_identity(relation.get("from_id")))
        to_span = regions.get(_identity(relation.get("to_id")))
        names = _list(relation.get("labels"))
        if not names:
            report.leave_out("relations without a label")
        for name in names:
            draft.add_relation(from_span, to_span, name)


def _labels_of(value: object, report: ImportReport) -> list[Any]:
    names = _list(value)
    if not names:
        report.leave_out("spans without a label")
    return names


def _textarea_text(value: dict[str, Any]) -> str:
    text = value.get("text")
    if isinstance(text, str):
        return text
    return "\n".join(str(line) for line in _list(text) if isinstance(line, str))


def _leave_out_result_type(report: ImportReport, kind: object) -> None:
    reason = "unsupported Label Studio result type"
    if isinstance(kind, str) and RESULT_TYPE.fullmatch(kind):
        report.leave_out(reason, kind)
    else:
        report.leave_out(f"{reason} (unnamed)")


# Prodigy

PRODIGY_ANSWERS_LEFT_OUT = {
    "reject": "rejected Prodigy answers",
    "ignore": "ignored Prodigy answers",
}


def _read_prodigy(text: str, collection: _Collection) -> None:
    _each_line(
        collection.title,
        text,
        lambda number, example: _read_prodigy_example(number, example, collection),
    )


def _read_prodigy_example(
    number: int, example: dict[str, Any], collection: _Collection
) -> None:
    report = collection.report
    text = _text_of(example)
    if not text:
        report.leave_out("items without text")
        return

    input_hash = _identity(example.get("_input_hash"))
    entry = collection.entry((input_hash, text), input_hash or str(number), text)
    answer = example.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise _WrongType
    if answer in PRODIGY_ANSWERS_LEFT_OUT:
        report.leave_out(PRODIGY_ANSWERS_LEFT_OUT[answer])
        return
    if answer != "accept":
        report.leave_out("Prodigy lines without an accept, reject or ignore answer")
        return

    draft = collection.draft(text)
    _read_prodigy_labels(example, draft)
    annotator = _identity(example.get("_annotator_id")) or _identity(
        example.get("_session_id")
    )
    found = draft.finish(
        annotator,
        created_at=_timestamp(example.get("_timestamp")),
        source_id=_identity(example.get("_task_hash")),
    )
    if found is not None:
        entry.answers.append(found)


def _text_of(example: dict[str, Any]) -> str:
    text = example.get("text")
    if text is not None and not isinstance(text, str):
        raise _WrongType
    return text or ""


def _read_prodigy_labels(example: dict[str, Any], draft: _Draft) -> None:
    spans: dict[tuple[object, ...], int] = {}
    for span in _list(example.get("spans")):
        span = _object(span)
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        index = draft.add_span(start, end, label)
        if index is not None:
            spans.setdefault((start, end, label), index)
            spans.setdefault((start, end), index)

    for choice in _list(example.get("accept")):
        draft.add_class(choice)
    label = example.get("label")
    if "options" not in example and label is not None:
        # The classification interface: one label, accepted or rejected.
        draft.add_class(label)

    for relation in _list(example.get("relations")):
        relation = _object(relation)
        draft.add_relation(
            _span_at(spans, relation.get("head_span")),
            _span_at(spans, relation.get("child_span")),
            relation.get("label"),
        )


def _span_at(spans: dict[tuple[object, ...], int], span: object) -> int | None:
    """The index of the kept span a Prodigy relation's end names, if any."""
    if not isinstance(span, dict):
        return None
    offsets = _offsets(span.get("start"), span.get("end"))
    if offsets is None:
        return None
    label = span.get("label")
    found = spans.get((*offsets, label)) if isinstance(label, str) else None
    return found if found is not None else spans.get(offsets)


def _timestamp(value: object) -> str:
    """Prodigy's ``_timestamp`` (seconds since 1970) in ISO 8601, UTC."""
    seconds = _whole_number(value)
    if seconds is None:
        return ""
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return ""


# doccano


def _read_doccano(text: str, collection: _Collection) -> None:
    _each_line(
        collection.title,
        text,
        lambda number, example: _read_doccano_example(number, example, collection),
    )


def _read_doccano_example(
    number: int, example: dict[str, Any], collection: _Collection
) -> None:
    report = collection.report
    text = _text_of(example)
    if not text:
        report.leave_out("items without text")
        return

    source_id = _identity(example.get("id"))
    group = (source_id, text) if source_id else number
    entry = collection.entry(group, source_id or str(number), text)
    draft = collection.draft(text)
    _read_doccano_labels(example, draft)
    annotator = next(
        (
            found
            for key in ("user", "annotator", "annotation_approver")
            if (found := _identity(example.get(key)))
        ),
        "",
    )
    answer = draft.finish(annotator, source_id=source_id)
    if answer is not None:
        entry.answers.append(answer)


def _read_doccano_labels(example: dict[str, Any], draft: _Draft) -> None:
    for label in _list(example.get("label")):
        if isinstance(label, list) and len(label) == 3:
            # Sequence labelling: [start, end, "LABEL"].
            draft.add_span(*label)
        elif isinstance(label, list):
            draft.report.leave_out("spans that are not [start, end, label]")
        else:
            draft.add_class(label)

    entities: dict[str, int] = {}
    for entity in _list(example.get("entities")):
        entity = _object(entity)
        index = draft.add_span(
            entity.get("start_offset"), entity.get("end_offset"), entity.get("label")
        )
        entity_id = _identity(entity.get("id"))
        if index is not None and entity_id:
            entities.setdefault(entity_id, index)
    for relation in _list(example.get("relations")):
        relation = _object(relation)
        draft.add_relation(
            entities.get(_identity(relation.get("from_id"))),
            entities.get(_identity(relation.get("to_id"))),
            relation.get("type"),
        )

    for category in _list(example.get("cats")):
        if isinstance(category, dict):
            category = category.get("label")
        draft.add_class(category)


READERS: dict[str, Callable[[str, _Collection], None]] = {
    "label-studio": _read_label_studio,
    "prodigy": _read_prodigy,
    "doccano": _read_doccano,
}
