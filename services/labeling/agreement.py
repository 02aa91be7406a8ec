"""Agreement between annotators, and between an annotator and the gold set.

Pure: no I/O. Every formula is written out in ``docs/agreement.md``; the
docstrings here say only when a value is undefined (``None``).

Spans are ``(start, end, label)`` with half-open document offsets; boxes are
``(page, x, y, width, height, label)`` in fractions of the page.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

from strongroom.services.common.errors import InvalidArgument

Span = tuple[int, int, str]
Box = tuple[int, float, float, float, float, str]
SpanMode = Literal["exact", "overlap"]

# The empty class: what a single-label task counts as when no class was chosen.
NO_CLASS = ""


@dataclass(frozen=True)
class Content:
    """One annotator's answer to one task."""

    spans: tuple[Span, ...] = ()
    classes: frozenset[str] = frozenset()
    boxes: tuple[Box, ...] = ()


# task_id -> annotator -> Content
Items = Mapping[str, Mapping[str, Content]]


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


class _JsonReady:
    def to_dict(self) -> dict[str, Any]:
        """Return the value as plain dicts, lists, numbers, strings and None."""
        result: dict[str, Any] = _jsonable(self)
        return result


@dataclass(frozen=True)
class PRF(_JsonReady):
    """Precision, recall and F1 of ``b`` against the reference ``a``.

    ``precision`` is None when ``b`` has nothing, ``recall`` when ``a`` has
    nothing, ``f1`` when neither has anything.
    """

    precision: float | None
    recall: float | None
    f1: float | None
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class BoxScore(_JsonReady):
    """Boxes of ``b`` matched one-to-one against the reference ``a``.

    ``mean_iou`` averages the IoU of the matched pairs (any IoU above zero) and
    is None when no pair matched; precision, recall and F1 count a matched
    pair as a hit only when its IoU reaches the threshold, and are None as in
    `PRF`.
    """

    mean_iou: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    tp: int = 0
    fp: int = 0
    fn: int = 0
    matched: int = 0
    iou_sum: float = 0.0


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def prf_from_counts(tp: int, fp: int, fn: int) -> PRF:
    """Build a `PRF` from hit, extra and missed counts."""
    return PRF(
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        tp=tp,
        fp=fp,
        fn=fn,
    )


def _box_score(tp: int, fp: int, fn: int, matched: int, iou_sum: float) -> BoxScore:
    return BoxScore(
        mean_iou=_ratio(iou_sum, matched),
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        tp=tp,
        fp=fp,
        fn=fn,
        matched=matched,
        iou_sum=iou_sum,
    )


# --- Classification statistics -------------------------------------------------


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Return Cohen's kappa of two raters who rated the same tasks in order.

    None when there are no ratings, or when expected agreement is 1 (both
    raters gave every task the same single category, so nothing varies).

    Raises:
        InvalidArgument: the two sequences differ in length.
    """
    if len(a) != len(b):
        raise InvalidArgument(
            f"Cohen's kappa needs two equally long rating lists, got {len(a)} "
            f"and {len(b)}.",
            code="agreement_length_mismatch",
        )
    n = len(a)
    if n == 0:
        return None

    observed = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    counts_a = Counter(a)
    counts_b = Counter(b)
    expected = sum(c * counts_b.get(k, 0) for k, c in counts_a.items()) / (n * n)
    return _kappa(observed, expected)


def _cohen_from_table(table: Mapping[tuple[str, str], int]) -> float | None:
    """Cohen's kappa from a contingency table keyed by (rating a, rating b)."""
    n = sum(table.values())
    if n == 0:
        return None
    rows: Counter[str] = Counter()
    columns: Counter[str] = Counter()
    agreeing = 0
    for (x, y), count in table.items():
        rows[x] += count
        columns[y] += count
        if x == y:
            agreeing += count
    expected = sum(c * columns.get(k, 0) for k, c in rows.items()) / (n * n)
    return _kappa(agreeing / n, expected)


def _kappa(observed: float, expected: float) -> float | None:
    # Expected agreement of 1 (up to rounding) means one category only.
    if expected >= 1.0 - 1e-12:
        return None
    return (observed - expected) / (1.0 - expected)


@dataclass
class _NominalTally:
    """Per-unit sums shared by Fleiss' kappa and Krippendorff's alpha.

    For each pairable unit u with m_u values, of which n_uc are category c:
    ``units`` counts units, ``values`` sums m_u, ``fleiss_sum`` sums
    Σ_c n_uc(n_uc-1) / (m_u(m_u-1)), ``diagonal`` sums Σ_c n_uc(n_uc-1) /
    (m_u-1) (the coincidence matrix diagonal), ``totals`` sums n_uc.
    """

    units: int = 0
    values: int = 0
    fleiss_sum: float = 0.0
    diagonal: float = 0.0
    totals: Counter[Hashable] = field(default_factory=Counter)

    def add(self, values: Iterable[Hashable]) -> None:
        counts = Counter(values)
        m = sum(counts.values())
        if m < 2:
            return
        same_pairs = sum(c * (c - 1) for c in counts.values())
        self.units += 1
        self.values += m
        self.fleiss_sum += same_pairs / (m * (m - 1))
        self.diagonal += same_pairs / (m - 1)
        self.totals.update(counts)

    def expected_same(self) -> float:
        return sum((c / self.values) ** 2 for c in self.totals.values())

    def fleiss(self) -> float | None:
        if self.units == 0:
            return None
        return _kappa(self.fleiss_sum / self.units, self.expected_same())

    def alpha(self) -> float | None:
        n = self.values
        if n < 2:
            return None
        square_sum = sum(c * c for c in self.totals.values())
        if n * n - square_sum <= 0:
            return None
        return 1.0 - (n - 1) * (n - self.diagonal) / (n * n - square_sum)


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """Return Fleiss' kappa; each entry lists the categories one task received.

    Tasks may have different numbers of raters: each task's agreement is the
    share of agreeing ordered rater pairs among its own m(m-1) pairs, and the
    category shares pool all ratings (with equal numbers of raters this is
    Fleiss' 1971 formula exactly). Tasks with fewer than two ratings are left
    out. None when no task has two ratings, or when only one category occurs.
    """
    tally = _NominalTally()
    for task_ratings in ratings:
        tally.add(task_ratings)
    return tally.fleiss()


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Return Krippendorff's alpha for nominal data; missing values are allowed.

    Each unit lists the values it received (missing ratings are simply
    absent); units with fewer than two values are not pairable and are left
    out. None when fewer than two pairable values exist, or when all pairable
    values are the same category (no expected disagreement).
    """
    tally = _NominalTally()
    for unit in units:
        tally.add(unit)
    return tally.alpha()


# --- Spans ----------------------------------------------------------------------


def _spans_by_label(spans: Iterable[Span]) -> dict[str, list[Span]]:
    grouped: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        grouped[span[2]].append(span)
    return grouped


def _exact_hits(a: Sequence[Span], b: Sequence[Span]) -> int:
    if not a or not b:
        return 0
    if len(a) == 1 and len(b) == 1:
        return int(a[0] == b[0])
    set_a, set_b = set(a), set(b)
    if len(set_a) == len(a) and len(set_b) == len(b):
        return len(set_a & set_b)
    counts_b = Counter(b)
    return sum(min(c, counts_b[s]) for s, c in Counter(a).items() if s in counts_b)


def _overlap_hits(a: Sequence[Span], b: Sequence[Span]) -> int:
    """Count one-to-one matches between same-label spans that intersect.

    Greedy: candidate pairs are taken largest overlap first, ties broken by
    the smaller sum of boundary distances, then by the two spans' positions
    (the earlier span of the pair first, whichever side it comes from, so
    swapping ``a`` and ``b`` matches the same pairs); a span already matched
    is not matched again.
    """
    if not a or not b:
        return 0
    if len(a) == 1 and len(b) == 1:
        return int(min(a[0][1], b[0][1]) > max(a[0][0], b[0][0]))

    ordered_b = sorted(b)
    starts = [s[0] for s in ordered_b]
    longest = max(s[1] - s[0] for s in ordered_b)
    candidates: list[tuple[int, int, Span, Span, int, int]] = []
    for i, (start, end, _) in enumerate(a):
        # Only spans of b starting before this one ends can intersect it, and
        # none starting more than `longest` before this one's start can reach it.
        j = bisect.bisect_left(starts, end) - 1
        while j >= 0 and starts[j] + longest > start:
            b_start, b_end, _ = ordered_b[j]
            overlap = min(end, b_end) - max(start, b_start)
            if overlap > 0:
                distance = abs(start - b_start) + abs(end - b_end)
                span_a, span_b = a[i], ordered_b[j]
                first, second = sorted((span_a, span_b))
                candidates.append((-overlap, distance, first, second, i, j))
            j -= 1

    candidates.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    for *_, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return len(used_a)


def _span_hits(a: Sequence[Span], b: Sequence[Span], mode: SpanMode) -> int:
    """Count matches between two span lists that share one label."""
    return _exact_hits(a, b) if mode == "exact" else _overlap_hits(a, b)


def span_prf(
    a: Sequence[Span],
    b: Sequence[Span],
    mode: SpanMode,
    label: str | None = None,
) -> PRF:
    """Score the spans ``b`` against the reference spans ``a``.

    ``exact``: a hit has the same start, end and label. ``overlap``: a hit has
    the same label and intersecting ranges, matched one-to-one (greedy,
    largest overlap first). With ``label``, only spans of that label count.
    F1 is symmetric in ``a`` and ``b``; precision and recall swap.

    Raises:
        InvalidArgument: ``mode`` is neither "exact" nor "overlap".
    """
    if mode not in ("exact", "overlap"):
        raise InvalidArgument(
            "Span matching mode must be 'exact' or 'overlap'.",
            code="agreement_span_mode",
        )
    if label is not None:
        a = [s for s in a if s[2] == label]
        b = [s for s in b if s[2] == label]

    grouped_a = _spans_by_label(a)
    grouped_b = _spans_by_label(b)
    tp = sum(
        _span_hits(spans, grouped_b[lbl], mode)
        for lbl, spans in grouped_a.items()
        if lbl in grouped_b
    )
    return prf_from_counts(tp, len(b) - tp, len(a) - tp)


# --- Boxes ----------------------------------------------------------------------


def box_iou(a: Box, b: Box) -> float:
    """Return the intersection over union of two boxes' areas.

    Geometry only: labels are ignored (matching looks at them), but boxes on
    different pages share no area and score 0. Two identical boxes score 1
    even with zero area; otherwise a zero union scores 0.
    """
    if a[0] != b[0]:
        return 0.0
    _, ax, ay, aw, ah, _ = a
    _, bx, by, bw, bh, _ = b
    width = min(ax + aw, bx + bw) - max(ax, bx)
    height = min(ay + ah, by + bh) - max(ay, by)
    intersection = width * height if width > 0 and height > 0 else 0.0
    union = aw * ah + bw * bh - intersection
    if union <= 0:
        return 1.0 if a[:5] == b[:5] else 0.0
    return intersection / union


def _match_boxes(a: Sequence[Box], b: Sequence[Box]) -> list[float]:
    """Match same-page same-label boxes one-to-one; return the matched IoUs.

    Greedy: pairs with IoU above zero are taken highest IoU first, ties by
    the two boxes' coordinates (the smaller box tuple of the pair first, so
    swapping ``a`` and ``b`` matches the same pairs); a box already matched is
    not matched again.
    """
    groups_b: dict[tuple[int, str], list[int]] = defaultdict(list)
    for j, box in enumerate(b):
        groups_b[(box[0], box[5])].append(j)
    candidates: list[tuple[float, Box, Box, int, int]] = []
    for i, box in enumerate(a):
        for j in groups_b.get((box[0], box[5]), ()):
            iou = box_iou(box, b[j])
            if iou > 0:
                first, second = sorted((box, b[j]))
                candidates.append((-iou, first, second, i, j))

    candidates.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched: list[float] = []
    for negative_iou, _, _, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            matched.append(-negative_iou)
    return matched


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise InvalidArgument(
            "The IoU threshold must be above 0 and at most 1.",
            code="agreement_iou_threshold",
        )


def box_match(a: Sequence[Box], b: Sequence[Box], threshold: float = 0.5) -> BoxScore:
    """Score the boxes ``b`` against the reference boxes ``a``.

    Boxes pair one-to-one within the same page and label, highest IoU first;
    a pair is a hit when its IoU is at least ``threshold``.

    Raises:
        InvalidArgument: ``threshold`` is not in (0, 1].
    """
    _check_threshold(threshold)
    matched = _match_boxes(a, b)
    tp = sum(1 for iou in matched if iou >= threshold)
    return _box_score(tp, len(b) - tp, len(a) - tp, len(matched), sum(matched))


# --- Project report --------------------------------------------------------------


@dataclass(frozen=True)
class PairKappa(_JsonReady):
    annotator_a: str
    annotator_b: str
    tasks: int
    kappa: float | None


@dataclass(frozen=True)
class ClassAgreement(_JsonReady):
    """Kappa per annotator pair, and Fleiss and alpha over all annotators."""

    tasks: int
    pairs: tuple[PairKappa, ...]
    mean_cohen_kappa: float | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None


@dataclass(frozen=True)
class ClassificationReport(_JsonReady):
    """``overall`` is None for multi-label projects."""

    multi_label: bool
    per_label: dict[str, ClassAgreement]
    overall: ClassAgreement | None


@dataclass(frozen=True)
class PairSpans(_JsonReady):
    """Spans of ``annotator_b`` against ``annotator_a``, summed over tasks."""

    annotator_a: str
    annotator_b: str
    tasks: int
    exact: PRF
    overlap: PRF


@dataclass(frozen=True)
class SpanAgreement(_JsonReady):
    pairs: tuple[PairSpans, ...]
    mean_exact_f1: float | None
    mean_overlap_f1: float | None


@dataclass(frozen=True)
class SpanReport(_JsonReady):
    per_label: dict[str, SpanAgreement]
    overall: SpanAgreement


@dataclass(frozen=True)
class PairBoxes(_JsonReady):
    annotator_a: str
    annotator_b: str
    tasks: int
    score: BoxScore


@dataclass(frozen=True)
class BoxAgreement(_JsonReady):
    pairs: tuple[PairBoxes, ...]
    mean_iou: float | None
    mean_f1: float | None


@dataclass(frozen=True)
class BoxReport(_JsonReady):
    threshold: float
    per_label: dict[str, BoxAgreement]
    overall: BoxAgreement


@dataclass(frozen=True)
class Counts(_JsonReady):
    """``tasks_used`` have two or more annotators; ``comparisons`` counts
    (task, annotator pair) combinations; ``annotator_pairs`` distinct pairs."""

    tasks: int
    tasks_used: int
    annotators: int
    annotator_pairs: int
    comparisons: int


@dataclass(frozen=True)
class Report(_JsonReady):
    """A section is None when no annotation in the project has that kind."""

    counts: Counts
    classification: ClassificationReport | None
    spans: SpanReport | None
    boxes: BoxReport | None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _ordered_labels(labels: Sequence[str], seen: Iterable[str]) -> list[str]:
    """Labels that occur, in schema order, then unknown ones alphabetically."""
    seen_set = set(seen)
    known = [lbl for lbl in dict.fromkeys(labels) if lbl in seen_set]
    return known + sorted(seen_set.difference(known))


@dataclass
class _BinaryPairTally:
    """2x2 table of one label's presence for one annotator pair."""

    both: int = 0
    only_a: int = 0
    only_b: int = 0

    def kappa(self, tasks: int) -> float | None:
        if tasks == 0:
            return None
        neither = tasks - self.both - self.only_a - self.only_b
        observed = (self.both + neither) / tasks
        a_yes = (self.both + self.only_a) / tasks
        b_yes = (self.both + self.only_b) / tasks
        expected = a_yes * b_yes + (1 - a_yes) * (1 - b_yes)
        return _kappa(observed, expected)


@dataclass
class _BinaryTally:
    """Fleiss and alpha sums of one label's presence, over pairable tasks.

    Filled only from tasks where the label occurs; tasks without it add to
    every label alike and are folded in by `_ClassTally.binary`.
    """

    fleiss_delta: float = 0.0
    diagonal_delta: float = 0.0
    present: int = 0


class _ClassTally:
    def __init__(self) -> None:
        self.pair_tasks: Counter[tuple[str, str]] = Counter()
        self.pair_labels: dict[tuple[str, str], dict[str, _BinaryPairTally]] = (
            defaultdict(lambda: defaultdict(_BinaryPairTally))
        )
        self.labels: dict[str, _BinaryTally] = defaultdict(_BinaryTally)
        self.units = 0
        self.values = 0
        self.is_multi_label = False
        self.single_pairs: dict[tuple[str, str], Counter[tuple[str, str]]] = (
            defaultdict(Counter)
        )
        self.single = _NominalTally()

    def add_task(self, answers: Sequence[tuple[str, Content]]) -> None:
        m = len(answers)
        self.units += 1
        self.values += m
        present: Counter[str] = Counter()
        for _, content in answers:
            present.update(content.classes)
            if len(content.classes) > 1:
                self.is_multi_label = True
        for label, k in present.items():
            same = k * (k - 1) + (m - k) * (m - k - 1)
            tally = self.labels[label]
            tally.fleiss_delta += same / (m * (m - 1)) - 1.0
            tally.diagonal_delta += same / (m - 1) - m
            tally.present += k

        singles = [_single_class(content) for _, content in answers]
        self.single.add(singles)
        for (i, (name_a, content_a)), (
            j,
            (name_b, content_b),
        ) in itertools.combinations(enumerate(answers), 2):
            pair = (name_a, name_b)
            self.pair_tasks[pair] += 1
            self.single_pairs[pair][(singles[i], singles[j])] += 1
            if content_a.classes or content_b.classes:
                per_label = self.pair_labels[pair]
                for label in content_a.classes & content_b.classes:
                    per_label[label].both += 1
                for label in content_a.classes - content_b.classes:
                    per_label[label].only_a += 1
                for label in content_b.classes - content_a.classes:
                    per_label[label].only_b += 1

    def binary(self, label: str) -> tuple[float | None, float | None]:
        """Fleiss' kappa and alpha of the label's presence over all tasks."""
        if self.units == 0:
            return None, None
        tally = self.labels[label]
        absent = self.values - tally.present
        nominal = _NominalTally(
            units=self.units,
            values=self.values,
            # A task without the label has all raters agreeing on "absent":
            # Fleiss share 1 and coincidence diagonal m.
            fleiss_sum=self.units + tally.fleiss_delta,
            diagonal=self.values + tally.diagonal_delta,
            totals=Counter({True: tally.present, False: absent}),
        )
        return nominal.fleiss(), nominal.alpha()

    def report(self, labels: Sequence[str]) -> ClassificationReport:
        per_label: dict[str, ClassAgreement] = {}
        for label in _ordered_labels(labels, self.labels):
            pairs = tuple(
                PairKappa(
                    pair[0],
                    pair[1],
                    tasks,
                    self.pair_labels[pair][label].kappa(tasks)
                    if label in self.pair_labels.get(pair, {})
                    else None,
                )
                for pair, tasks in sorted(self.pair_tasks.items())
            )
            fleiss, alpha = self.binary(label)
            per_label[label] = ClassAgreement(
                tasks=self.units,
                pairs=pairs,
                mean_cohen_kappa=_mean(p.kappa for p in pairs),
                fleiss_kappa=fleiss,
                krippendorff_alpha=alpha,
            )

        overall = None
        if not self.is_multi_label:
            pairs = tuple(
                PairKappa(pair[0], pair[1], sum(t.values()), _cohen_from_table(t))
                for pair, t in sorted(self.single_pairs.items())
            )
            overall = ClassAgreement(
                tasks=self.units,
                pairs=pairs,
                mean_cohen_kappa=_mean(p.kappa for p in pairs),
                fleiss_kappa=self.single.fleiss(),
                krippendorff_alpha=self.single.alpha(),
            )
        return ClassificationReport(
            multi_label=self.is_multi_label, per_label=per_label, overall=overall
        )


def _single_class(content: Content) -> str:
    return next(iter(content.classes)) if content.classes else NO_CLASS


def _column_sums(
    per_label: Mapping[str, Sequence[float]] | None, label: str | None, width: int
) -> list[float]:
    """Sum the per-label rows of one pair: all labels, or just ``label``."""
    rows: list[Sequence[float]] = []
    if per_label is not None:
        if label is None:
            rows = list(per_label.values())
        elif label in per_label:
            rows = [per_label[label]]
    return [sum(row[k] for row in rows) for k in range(width)]


class _SpanTally:
    def __init__(self) -> None:
        self.pair_tasks: Counter[tuple[str, str]] = Counter()
        # pair -> label -> [exact hits, overlap hits, spans of a, spans of b]
        self.sums: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(
            lambda: defaultdict(lambda: [0, 0, 0, 0])
        )
        self.seen: set[str] = set()

    def add_pair(self, pair: tuple[str, str], a: Content, b: Content) -> None:
        self.pair_tasks[pair] += 1
        if not a.spans and not b.spans:
            return
        grouped_a = _spans_by_label(a.spans)
        grouped_b = _spans_by_label(b.spans)
        per_label = self.sums[pair]
        for label in grouped_a.keys() | grouped_b.keys():
            spans_a = grouped_a.get(label, [])
            spans_b = grouped_b.get(label, [])
            sums = per_label[label]
            sums[0] += _exact_hits(spans_a, spans_b)
            sums[1] += _overlap_hits(spans_a, spans_b)
            sums[2] += len(spans_a)
            sums[3] += len(spans_b)
            self.seen.add(label)

    def _agreement(self, label: str | None) -> SpanAgreement:
        pairs = []
        for pair, tasks in sorted(self.pair_tasks.items()):
            totals = _column_sums(self.sums.get(pair), label, 4)
            exact, overlap, in_a, in_b = (int(t) for t in totals)
            pairs.append(
                PairSpans(
                    pair[0],
                    pair[1],
                    tasks,
                    exact=prf_from_counts(exact, in_b - exact, in_a - exact),
                    overlap=prf_from_counts(overlap, in_b - overlap, in_a - overlap),
                )
            )
        return SpanAgreement(
            pairs=tuple(pairs),
            mean_exact_f1=_mean(p.exact.f1 for p in pairs),
            mean_overlap_f1=_mean(p.overlap.f1 for p in pairs),
        )

    def report(self, labels: Sequence[str]) -> SpanReport | None:
        if not self.seen:
            return None
        ordered = _ordered_labels(labels, self.seen)
        return SpanReport(
            per_label={label: self._agreement(label) for label in ordered},
            overall=self._agreement(None),
        )


class _BoxTally:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.pair_tasks: Counter[tuple[str, str]] = Counter()
        # pair -> label -> [hits, boxes of a, boxes of b, matched, IoU sum]
        self.sums: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
            lambda: defaultdict(lambda: [0, 0, 0, 0, 0.0])
        )
        self.seen: set[str] = set()

    def add_pair(self, pair: tuple[str, str], a: Content, b: Content) -> None:
        self.pair_tasks[pair] += 1
        if not a.boxes and not b.boxes:
            return
        grouped_a: dict[str, list[Box]] = defaultdict(list)
        grouped_b: dict[str, list[Box]] = defaultdict(list)
        for box in a.boxes:
            grouped_a[box[5]].append(box)
        for box in b.boxes:
            grouped_b[box[5]].append(box)
        per_label = self.sums[pair]
        for label in grouped_a.keys() | grouped_b.keys():
            boxes_a = grouped_a.get(label, [])
            boxes_b = grouped_b.get(label, [])
            matched = _match_boxes(boxes_a, boxes_b)
            sums = per_label[label]
            sums[0] += sum(1 for iou in matched if iou >= self.threshold)
            sums[1] += len(boxes_a)
            sums[2] += len(boxes_b)
            sums[3] += len(matched)
            sums[4] += sum(matched)
            self.seen.add(label)

    def _agreement(self, label: str | None) -> BoxAgreement:
        pairs = []
        for pair, tasks in sorted(self.pair_tasks.items()):
            totals = _column_sums(self.sums.get(pair), label, 5)
            tp, in_a, in_b, matched = (int(t) for t in totals[:4])
            score = _box_score(tp, in_b - tp, in_a - tp, matched, totals[4])
            pairs.append(PairBoxes(pair[0], pair[1], tasks, score))
        return BoxAgreement(
            pairs=tuple(pairs),
            mean_iou=_mean(p.score.mean_iou for p in pairs),
            mean_f1=_mean(p.score.f1 for p in pairs),
        )

    def report(self, labels: Sequence[str]) -> BoxReport | None:
        if not self.seen:
            return None
        ordered = _ordered_labels(labels, self.seen)
        return BoxReport(
            threshold=self.threshold,
            per_label={label: self._agreement(label) for label in ordered},
            overall=self._agreement(None),
        )


def project_agreement(
    items: Items, labels: Sequence[str], *, iou_threshold: float = 0.5
) -> Report:
    """Compute every agreement figure of a project from its annotations.

    Only tasks with two or more annotators count. Annotator pairs are ordered
    by name; the first of a pair is the reference for span and box precision.
    Per-label sections list the labels that occur, in the order of ``labels``
    and then any others alphabetically. A project is single-label when no
    answer carries more than one class; only then is the overall
    classification section (one category per task, "" for none) filled.

    Raises:
        InvalidArgument: ``iou_threshold`` is not in (0, 1].
    """
    _check_threshold(iou_threshold)
    classes = _ClassTally()
    spans = _SpanTally()
    boxes = _BoxTally(iou_threshold)
    has_classes = False
    annotators: set[str] = set()
    comparisons = 0

    for answers_by_annotator in items.values():
        if len(answers_by_annotator) < 2:
            continue
        answers = sorted(answers_by_annotator.items())
        annotators.update(name for name, _ in answers)
        has_classes = has_classes or any(c.classes for _, c in answers)
        classes.add_task(answers)
        for (name_a, content_a), (name_b, content_b) in itertools.combinations(
            answers, 2
        ):
            comparisons += 1
            spans.add_pair((name_a, name_b), content_a, content_b)
            boxes.add_pair((name_a, name_b), content_a, content_b)

    counts = Counts(
        tasks=len(items),
        tasks_used=classes.units,
        annotators=len(annotators),
        annotator_pairs=len(classes.pair_tasks),
        comparisons=comparisons,
    )
    return Report(
        counts=counts,
        classification=classes.report(labels) if has_classes else None,
        spans=spans.report(labels),
        boxes=boxes.report(labels),
    )


# --- Gold ------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldScore(_JsonReady):
    """One annotator against the gold answers, over ``n`` shared tasks.

    ``class_accuracy`` is the share of tasks whose class set equals the
    gold one; None when no task was compared or neither side chose a class
    on any of them.
    """

    annotator: str
    n: int
    class_accuracy: float | None
    spans_exact: PRF
    spans_overlap: PRF
    boxes: BoxScore


def gold_agreement(
    items: Items,
    gold: Mapping[str, Content],
    annotator: str,
    *,
    iou_threshold: float = 0.5,
) -> GoldScore:
    """Compare one annotator's answers with the gold answers on shared tasks.

    Gold is the reference: precision is the share of the annotator's spans or
    boxes found in gold, recall the share of gold found by the annotator.
    Counts are summed over tasks before the ratios are taken.

    Raises:
        InvalidArgument: ``iou_threshold`` is not in (0, 1].
    """
    _check_threshold(iou_threshold)
    tasks = same_classes = 0
    has_classes = False
    exact = overlap = gold_spans = own_spans = 0
    box_hits = gold_boxes = own_boxes = matched = 0
    iou_sum = 0.0

    for task_id, reference in gold.items():
        answer = items.get(task_id, {}).get(annotator)
        if answer is None:
            continue
        tasks += 1
        has_classes = has_classes or bool(reference.classes or answer.classes)
        same_classes += reference.classes == answer.classes
        if reference.spans and answer.spans:
            grouped_answer = _spans_by_label(answer.spans)
            for label, spans in _spans_by_label(reference.spans).items():
                if label in grouped_answer:
                    exact += _exact_hits(spans, grouped_answer[label])
                    overlap += _overlap_hits(spans, grouped_answer[label])
        gold_spans += len(reference.spans)
        own_spans += len(answer.spans)
        ious = (
            _match_boxes(reference.boxes, answer.boxes)
            if reference.boxes and answer.boxes
            else []
        )
        box_hits += sum(1 for iou in ious if iou >= iou_threshold)
        gold_boxes += len(reference.boxes)
        own_boxes += len(answer.boxes)
        matched += len(ious)
        iou_sum += sum(ious)

    return GoldScore(
        annotator=annotator,
        n=tasks,
        class_accuracy=same_classes / tasks if has_classes else None,
        spans_exact=prf_from_counts(exact, own_spans - exact, gold_spans - exact),
        spans_overlap=prf_from_counts(
            overlap, own_spans - overlap, gold_spans - overlap
        ),
        boxes=_box_score(
            box_hits, own_boxes - box_hits, gold_boxes - box_hits, matched, iou_sum
        ),
    )
