"""Synthetic examples from a project's own reviewed examples. Pure.

Three ways, each deterministic for a seed:

- ``entity_swap``: one example with some of its spans replaced by other
  values of the same label found elsewhere in the project; the rest of the
  text, the classes and the other spans stay, and every offset is
  recomputed.
- ``template``: an example's text as a template, every span a slot, each
  slot filled with a value of its label; for a project of classes only,
  sentences of different examples of one class put together.
- ``tabular``: for records of ``column: value`` lines (CSV and JSON lines
  projects), each column of a new record drawn from the values that column
  has among the records of the same class, so no real record is copied
  whole and the columns' association with the class survives (their
  association with each other does not).

Nothing here invents a value the project does not already hold, so nothing
in a synthetic example is more identifying than its sources; every example
made is new (never equal to a source or to another synthetic one).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from strongroom.services.common.errors import InvalidArgument

METHODS = ("entity_swap", "template", "tabular")
MAX_COUNT = 1000
MAX_TEXT = 100_000
# Attempts per example asked for before giving up on making more new ones.
_ATTEMPTS = 20
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_FIELD = re.compile(r"([^:\n]{1,200}): ?(.*)")


@dataclass(frozen=True)
class Example:
    """A real, answered example: its text and labels in the text's offsets."""

    task_id: str
    text: str
    spans: tuple[tuple[int, int, str], ...]
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Synthetic:
    source_task_id: str
    method: str
    text: str
    spans: tuple[tuple[int, int, str], ...]
    classes: tuple[str, ...]


class SynthesisUnsupported(InvalidArgument):
    def __init__(self, method: str, why: str) -> None:
        super().__init__(
            f"The project's examples cannot make {method} examples: {why}.",
            code="synthesis_unsupported",
        )


def check_request(method: str, count: int) -> None:
    if method not in METHODS:
        raise InvalidArgument(
            f"The method must be one of {', '.join(METHODS)}.",
            code="synthesis_method_unknown",
        )
    if not 1 <= count <= MAX_COUNT:
        raise InvalidArgument(
            f"Between 1 and {MAX_COUNT} examples can be made at once.",
            code="synthesis_count_invalid",
        )


def synthesize(
    method: str, examples: Sequence[Example], count: int, seed: int
) -> list[Synthetic]:
    """Make up to ``count`` new examples; fewer if the sources run out.

    Raises:
        SynthesisUnsupported: the examples lack what the method needs.
    """
    check_request(method, count)
    rng = random.Random(seed)
    make: Callable[[random.Random], Synthetic | None] = {
        "entity_swap": _entity_swapper,
        "template": _templater,
        "tabular": _tabulator,
    }[method](method, [_clean(e) for e in examples])
    seen = {e.text for e in examples}
    made: list[Synthetic] = []
    for _ in range(count * _ATTEMPTS):
        if len(made) == count:
            break
        example = make(rng)
        if example is None or example.text in seen or len(example.text) > MAX_TEXT:
            continue
        seen.add(example.text)
        made.append(example)
    return made


def _clean(example: Example) -> Example:
    """The example with overlapping spans dropped (the earlier one stays)."""
    kept: list[tuple[int, int, str]] = []
    for start, end, label in sorted(example.spans):
        if 0 <= start < end <= len(example.text) and (not kept or start >= kept[-1][1]):
            kept.append((start, end, label))
    return Example(example.task_id, example.text, tuple(kept), example.classes)


def _values_by_label(examples: Sequence[Example]) -> dict[str, list[str]]:
    values: dict[str, set[str]] = defaultdict(set)
    for example in examples:
        for start, end, label in example.spans:
            values[label].add(example.text[start:end])
    return {label: sorted(found) for label, found in values.items()}


def _fill(
    example: Example,
    choose: Callable[[int, str, str], str | None],
    method: str,
) -> Synthetic:
    """Rebuild the example's text, each span's value as ``choose`` says
    (None keeps it), with the offsets of the new text."""
    parts: list[str] = []
    spans: list[tuple[int, int, str]] = []
    cursor = length = 0
    for index, (start, end, label) in enumerate(example.spans):
        between = example.text[cursor:start]
        parts.append(between)
        length += len(between)
        value = choose(index, label, example.text[start:end])
        value = example.text[start:end] if value is None else value
        parts.append(value)
        spans.append((length, length + len(value), label))
        length += len(value)
        cursor = end
    parts.append(example.text[cursor:])
    return Synthetic(
        example.task_id, method, "".join(parts), tuple(spans), example.classes
    )


def _entity_swapper(
    method: str, examples: list[Example]
) -> Callable[[random.Random], Synthetic | None]:
    values = _values_by_label(examples)
    sources = [
        e
        for e in examples
        if any(len(values.get(label, ())) > 1 for _, _, label in e.spans)
    ]
    if not sources:
        raise SynthesisUnsupported(
            method, "no label has two different values to swap between"
        )

    def make(rng: random.Random) -> Synthetic:
        example = rng.choice(sources)
        swappable = [
            i for i, (_, _, label) in enumerate(example.spans) if len(values[label]) > 1
        ]
        # At least one span changes; each other swappable one half the time.
        chosen = {rng.choice(swappable)} | {i for i in swappable if rng.random() < 0.5}

        def choose(index: int, label: str, current: str) -> str | None:
            if index not in chosen:
                return None
            return rng.choice([v for v in values[label] if v != current])

        return _fill(example, choose, method)

    return make


def _templater(
    method: str, examples: list[Example]
) -> Callable[[random.Random], Synthetic | None]:
    values = _values_by_label(examples)
    templates = [e for e in examples if e.spans]
    if templates:

        def fill(rng: random.Random) -> Synthetic:
            example = rng.choice(templates)
            return _fill(
                example, lambda _i, label, _v: rng.choice(values[label]), method
            )

        return fill
    by_class: dict[tuple[str, ...], list[list[str]]] = defaultdict(list)
    for example in examples:
        sentences = [s.strip() for s in _SENTENCE.findall(example.text) if s.strip()]
        if example.classes and sentences:
            by_class[example.classes].append(sentences)
    mixable = {c: texts for c, texts in by_class.items() if len(texts) > 1}
    if not mixable:
        raise SynthesisUnsupported(
            method, "it needs spans, or two examples of one class to mix"
        )
    classes = sorted(mixable)
    sources = {c: [e for e in examples if e.classes == c] for c in classes}

    def mix(rng: random.Random) -> Synthetic:
        chosen = rng.choice(classes)
        texts = mixable[chosen]
        length = max(1, min(len(t) for t in rng.sample(texts, 2)))
        sentences = [rng.choice(rng.choice(texts)) for _ in range(length)]
        source = rng.choice(sources[chosen])
        return Synthetic(source.task_id, method, " ".join(sentences), (), chosen)

    return mix


def parse_record(text: str) -> dict[str, str] | None:
    """A record's ``column: value`` lines, or None if the text is not one."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _FIELD.fullmatch(line)
        if match is None or match[1] in fields:
            return None
        fields[match[1]] = match[2]
    return fields or None


def _tabulator(
    method: str, examples: list[Example]
) -> Callable[[random.Random], Synthetic | None]:
    records = [(e, parse_record(e.text)) for e in examples]
    parsed = [(e, r) for e, r in records if r is not None]
    if len(parsed) < 2 or len(parsed) < len(records):
        raise SynthesisUnsupported(method, "they are not all column: value records")
    columns = list(parsed[0][1])
    if any(list(r) != columns for _, r in parsed):
        raise SynthesisUnsupported(method, "the records do not share their columns")
    separator = "\n\n" if "\n\n" in parsed[0][0].text else "\n"
    by_class: dict[tuple[str, ...], list[tuple[Example, dict[str, str]]]] = defaultdict(
        list
    )
    for example, record in parsed:
        by_class[example.classes].append((example, record))
    groups = sorted(by_class)

    def draw(rng: random.Random) -> Synthetic:
        group = by_class[rng.choice(groups)]
        fields = {c: rng.choice(group)[1][c] for c in columns}
        source = rng.choice(group)[0]
        text = separator.join(f"{c}: {v}" for c, v in fields.items())
        return Synthetic(source.task_id, method, text, (), source.classes)

    return draw
