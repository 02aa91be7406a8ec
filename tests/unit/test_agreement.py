"""Agreement statistics: hand-worked cases, edge cases and properties."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.labeling.agreement import (
    Box,
    Content,
    Span,
    box_iou,
    box_match,
    cohen_kappa,
    fleiss_kappa,
    gold_agreement,
    krippendorff_alpha_nominal,
    project_agreement,
    span_prf,
)

# --- Cohen's kappa ---------------------------------------------------------------


def test_cohen_kappa_two_by_two_table() -> None:
    # 50 tasks rated yes/no by two annotators:
    #             B yes  B no
    #   A yes       20     5    (A yes 25 = 0.5)
    #   A no        10    15
    #   (B yes 30 = 0.6)
    # p_o = (20 + 15) / 50 = 0.7
    # p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_three_categories() -> None:
    # a = x x y y z, b = x y y y z: p_o = 4/5.
    # Marginals a: x 2, y 2, z 1; b: x 1, y 3, z 1.
    # p_e = (2*1 + 2*3 + 1*1) / 25 = 9/25; kappa = (20/25 - 9/25) / (16/25) = 11/16.
    assert cohen_kappa("xxyyz", "xyyyz") == pytest.approx(11 / 16)


def test_cohen_kappa_perfect_chance_and_opposite() -> None:
    assert cohen_kappa("abab", "abab") == pytest.approx(1.0)
    # p_o = 1/2 and p_e = 1/2: agreement no better than chance.
    assert cohen_kappa("aabb", "abab") == pytest.approx(0.0)
    # p_o = 0, p_e = 1/2: kappa = -1.
    assert cohen_kappa("ab", "ba") == pytest.approx(-1.0)


def test_cohen_kappa_undefined() -> None:
    assert cohen_kappa([], []) is None
    # Both annotators gave every task the same single category.
    assert cohen_kappa("aaaa", "aaaa") is None


def test_cohen_kappa_refuses_unequal_lengths() -> None:
    with pytest.raises(InvalidArgument) as caught:
        cohen_kappa("ab", "abc")
    assert caught.value.code == "agreement_length_mismatch"


# --- Fleiss' kappa ---------------------------------------------------------------


def test_fleiss_kappa_three_raters() -> None:
    # Per-task agreement P_i = sum_c n_ic(n_ic - 1) / (m(m - 1)), m = 3:
    #   a a a -> 6/6 = 1;  a a b -> 2/6;  a b b -> 2/6;  b b b -> 1
    # P_bar = (1 + 1/3 + 1/3 + 1) / 4 = 2/3
    # p_a = 6/12 = 0.5, P_e = 0.5^2 + 0.5^2 = 0.5
    # kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3
    ratings = [["a", "a", "a"], ["a", "a", "b"], ["a", "b", "b"], ["b", "b", "b"]]
    assert fleiss_kappa(ratings) == pytest.approx(1 / 3)


def test_fleiss_kappa_unequal_raters() -> None:
    # [a, a] -> P = 1; [a, a, b] -> P = 2/6; [b] has one rating and is left out.
    # P_bar = (1 + 1/3) / 2 = 2/3; pooled shares: a 4/5, b 1/5
    # P_e = 16/25 + 1/25 = 17/25; kappa = (2/3 - 17/25) / (8/25) = -1/24
    assert fleiss_kappa([["a", "a"], ["a", "a", "b"], ["b"]]) == pytest.approx(-1 / 24)


def test_fleiss_kappa_undefined() -> None:
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([["a"], ["b"]]) is None
    assert fleiss_kappa([["a", "a"], ["a", "a", "a"]]) is None


def test_fleiss_kappa_perfect() -> None:
    assert fleiss_kappa([["a", "a"], ["b", "b", "b"]]) == pytest.approx(1.0)


def _textbook_fleiss(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss (1971) for tasks that all have the same number of raters."""
    n = len(ratings[0])
    tasks = len(ratings)
    counts = [Counter(r) for r in ratings]
    categories = set().union(*counts)
    p = {c: sum(cnt[c] for cnt in counts) / (tasks * n) for c in categories}
    per_task = [
        (sum(v * v for v in cnt.values()) - n) / (n * (n - 1)) for cnt in counts
    ]
    p_bar = sum(per_task) / tasks
    p_e = sum(v * v for v in p.values())
    return None if p_e == 1 else (p_bar - p_e) / (1 - p_e)


# --- Krippendorff's alpha ----------------------------------------------------------


def test_krippendorff_alpha_with_missing_values() -> None:
    # Units: [a, a], [a, b], [b, b, b], [a] (one value: not pairable).
    # Coincidences o_ck = sum_u (ordered c-k pairs in u) / (m_u - 1):
    #   [a, a]    -> o_aa += 2/1
    #   [a, b]    -> o_ab += 1, o_ba += 1
    #   [b, b, b] -> o_bb += 6/2
    # o_aa = 2, o_ab = o_ba = 1, o_bb = 3; n_a = 3, n_b = 4, n = 7
    # alpha = 1 - (n - 1) * (o_ab + o_ba) / (n_a n_b + n_b n_a)
    #       = 1 - 6 * 2 / 24 = 0.5
    units = [["a", "a"], ["a", "b"], ["b", "b", "b"], ["a"]]
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.5)


def test_krippendorff_alpha_undefined() -> None:
    assert krippendorff_alpha_nominal([]) is None
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "a", "a"]]) is None


def test_krippendorff_alpha_perfect_and_systematic_disagreement() -> None:
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    # o_ab = o_ba = 2, n = 4, n_a = n_b = 2: alpha = 1 - 3 * 4 / 8 = -0.5
    assert krippendorff_alpha_nominal([["a", "b"], ["b", "a"]]) == pytest.approx(-0.5)


def _reference_alpha(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Alpha straight from the coincidence matrix definition, pair by pair."""
    coincidence: defaultdict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for unit in units:
        m = len(unit)
        if m < 2:
            continue
        for i, j in itertools.permutations(range(m), 2):
            coincidence[(unit[i], unit[j])] += 1 / (m - 1)
    marginals: defaultdict[Hashable, float] = defaultdict(float)
    for (c, _), weight in coincidence.items():
        marginals[c] += weight
    n = sum(marginals.values())
    if n < 2 - 1e-9:
        return None
    observed = sum(w for (c, k), w in coincidence.items() if c != k) / n
    expected = sum(
        marginals[c] * marginals[k] for c in marginals for k in marginals if c != k
    ) / (n * (n - 1))
    if expected <= 1e-12:
        return None
    return 1 - observed / expected


# --- Properties ------------------------------------------------------------------

CATEGORY = st.sampled_from(["a", "b", "c", "d"])
UNITS = st.lists(st.lists(CATEGORY, max_size=5), max_size=30)
# Tasks that all have the same number (2 to 5) of raters.
EQUAL_RATERS = st.integers(2, 5).flatmap(
    lambda m: st.lists(
        st.lists(CATEGORY, min_size=m, max_size=m), min_size=1, max_size=20
    )
)


def _close(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is y
    return abs(x - y) < 1e-9


@given(st.lists(st.tuples(CATEGORY, CATEGORY), max_size=40))
def test_cohen_kappa_symmetric(pairs: list[tuple[str, str]]) -> None:
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    assert _close(cohen_kappa(a, b), cohen_kappa(b, a))


@given(st.lists(CATEGORY, min_size=1, max_size=40))
def test_cohen_kappa_one_on_identical_ratings(a: list[str]) -> None:
    kappa = cohen_kappa(a, list(a))
    assert kappa is None if len(set(a)) == 1 else _close(kappa, 1.0)


@given(UNITS, st.randoms())
def test_fleiss_and_alpha_ignore_rater_and_task_order(
    units: list[list[str]], rnd: random.Random
) -> None:
    shuffled = [rnd.sample(u, len(u)) for u in units]
    rnd.shuffle(shuffled)
    assert _close(fleiss_kappa(units), fleiss_kappa(shuffled))
    assert _close(
        krippendorff_alpha_nominal(units), krippendorff_alpha_nominal(shuffled)
    )


@given(st.lists(st.tuples(CATEGORY, st.integers(2, 5)), min_size=1, max_size=20))
def test_fleiss_and_alpha_one_on_identical_ratings(
    tasks: list[tuple[str, int]],
) -> None:
    units = [[category] * m for category, m in tasks]
    expected = None if len({c for c, _ in tasks}) == 1 else 1.0
    assert _close(fleiss_kappa(units), expected)
    assert _close(krippendorff_alpha_nominal(units), expected)


@given(UNITS)
def test_alpha_matches_coincidence_matrix_reference(units: list[list[str]]) -> None:
    fast = krippendorff_alpha_nominal(units)
    slow = _reference_alpha(units)
    if slow is None:
        assert fast is None
    else:
        assert fast == pytest.approx(slow, abs=1e-9)


@given(EQUAL_RATERS)
def test_fleiss_matches_textbook_formula_for_equal_raters(
    ratings: list[list[str]],
) -> None:
    assert _close(fleiss_kappa(ratings), _textbook_fleiss(ratings))


@given(st.lists(st.tuples(CATEGORY, CATEGORY), min_size=1, max_size=40))
def test_two_rater_alpha_matches_reference(pairs: list[tuple[str, str]]) -> None:
    units = [list(p) for p in pairs]
    assert _close(krippendorff_alpha_nominal(units), _reference_alpha(units))


# --- Spans -----------------------------------------------------------------------

REFERENCE: list[Span] = [(0, 5, "PER"), (10, 20, "ORG"), (30, 35, "PER")]
ANSWER: list[Span] = [(0, 5, "PER"), (12, 20, "ORG"), (30, 35, "ORG"), (40, 45, "PER")]


def test_span_exact() -> None:
    # Only (0, 5, PER) is in both: tp 1, fp 3, fn 2.
    # P = 1/4, R = 1/3, F1 = 2 tp / (2 tp + fp + fn) = 2/7
    score = span_prf(REFERENCE, ANSWER, "exact")
    assert (score.tp, score.fp, score.fn) == (1, 3, 2)
    assert score.precision == pytest.approx(1 / 4)
    assert score.recall == pytest.approx(1 / 3)
    assert score.f1 == pytest.approx(2 / 7)


def test_span_overlap() -> None:
    # (0, 5, PER) and (10, 20, ORG) ~ (12, 20, ORG) match; (30, 35) carries
    # different labels and (40, 45) overlaps nothing: tp 2, fp 2, fn 1.
    # P = 1/2, R = 2/3, F1 = 4/7
    score = span_prf(REFERENCE, ANSWER, "overlap")
    assert (score.tp, score.fp, score.fn) == (2, 2, 1)
    assert score.f1 == pytest.approx(4 / 7)


def test_span_one_label() -> None:
    exact = span_prf(REFERENCE, ANSWER, "exact", label="ORG")
    overlap = span_prf(REFERENCE, ANSWER, "overlap", label="ORG")
    assert (exact.tp, exact.fp, exact.fn) == (0, 2, 1)
    assert exact.f1 == 0.0
    assert (overlap.tp, overlap.fp, overlap.fn) == (1, 1, 0)
    assert overlap.f1 == pytest.approx(2 / 3)


def test_span_overlap_is_one_to_one_largest_first() -> None:
    # One long span against two pieces: only one piece may match it.
    score = span_prf([(0, 10, "X")], [(0, 4, "X"), (5, 10, "X")], "overlap")
    assert (score.tp, score.fp, score.fn) == (1, 1, 0)
    # (0, 6) overlaps a1 = (0, 10) by 6 and a2 = (4, 8) by 2; (6, 10) overlaps
    # a1 by 4 and a2 by 2. Largest first: (0, 6)-a1, then (6, 10)-a2.
    score = span_prf(
        [(0, 10, "X"), (4, 8, "X")], [(0, 6, "X"), (6, 10, "X")], "overlap"
    )
    assert score.tp == 2


def test_span_touching_ranges_do_not_overlap() -> None:
    assert span_prf([(0, 5, "X")], [(5, 10, "X")], "overlap").tp == 0


def test_span_duplicates_count_once_each() -> None:
    score = span_prf([(0, 5, "X")], [(0, 5, "X"), (0, 5, "X")], "exact")
    assert (score.tp, score.fp, score.fn) == (1, 1, 0)


def test_span_empty_sides() -> None:
    both_empty = span_prf([], [], "exact")
    assert (both_empty.precision, both_empty.recall, both_empty.f1) == (None,) * 3
    only_reference = span_prf([(0, 5, "X")], [], "overlap")
    assert only_reference.precision is None
    assert only_reference.recall == 0.0
    assert only_reference.f1 == 0.0


def test_span_unknown_mode() -> None:
    with pytest.raises(InvalidArgument):
        span_prf([], [], "fuzzy")  # type: ignore[arg-type]


SPANS = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 8), st.sampled_from(["X", "Y"])).map(
        lambda t: (t[0], t[0] + t[1], t[2])
    ),
    max_size=12,
)


@settings(max_examples=300)
@given(SPANS, SPANS)
def test_span_f1_symmetric(a: list[Span], b: list[Span]) -> None:
    for mode in ("exact", "overlap"):
        forward = span_prf(a, b, mode)
        backward = span_prf(b, a, mode)
        assert forward.tp == backward.tp
        assert _close(forward.f1, backward.f1)
        assert _close(forward.precision, backward.recall)


@given(SPANS)
def test_span_f1_one_on_identical(a: list[Span]) -> None:
    for mode in ("exact", "overlap"):
        score = span_prf(a, list(a), mode)
        assert score.f1 is None if not a else score.f1 == 1.0


@given(SPANS, SPANS)
def test_overlap_finds_at_least_exact(a: list[Span], b: list[Span]) -> None:
    assert span_prf(a, b, "overlap").tp >= span_prf(a, b, "exact").tp


# --- Boxes -----------------------------------------------------------------------


def test_box_iou() -> None:
    square: Box = (0, 0.0, 0.0, 0.5, 0.5, "sig")
    # Shifted by a quarter each way: intersection 0.25 * 0.25 = 0.0625,
    # union 0.25 + 0.25 - 0.0625 = 0.4375, IoU = 1/7.
    assert box_iou(square, (0, 0.25, 0.25, 0.5, 0.5, "sig")) == pytest.approx(1 / 7)
    # The top half: intersection 0.125, union 0.25.
    assert box_iou(square, (0, 0.0, 0.0, 0.5, 0.25, "x")) == pytest.approx(0.5)
    assert box_iou(square, square) == 1.0
    assert box_iou(square, (1, 0.0, 0.0, 0.5, 0.5, "sig")) == 0.0
    assert box_iou(square, (0, 0.5, 0.0, 0.5, 0.5, "sig")) == 0.0


def test_box_match_needs_same_page_and_label() -> None:
    reference: list[Box] = [
        (0, 0.0, 0.0, 0.5, 0.5, "sig"),
        (0, 0.5, 0.5, 0.2, 0.2, "sig"),
    ]
    answer: list[Box] = [
        (0, 0.0, 0.0, 0.5, 0.25, "sig"),  # IoU 0.5 with the first: a hit
        (1, 0.5, 0.5, 0.2, 0.2, "sig"),  # another page
        (0, 0.5, 0.5, 0.2, 0.2, "stamp"),  # another label
    ]
    # tp 1, fp 2, fn 1: P 1/3, R 1/2, F1 2/5; mean IoU over the one pair 0.5.
    score = box_match(reference, answer)
    assert (score.tp, score.fp, score.fn) == (1, 2, 1)
    assert score.precision == pytest.approx(1 / 3)
    assert score.recall == pytest.approx(1 / 2)
    assert score.f1 == pytest.approx(2 / 5)
    assert score.mean_iou == pytest.approx(0.5)


def test_box_match_threshold() -> None:
    a: list[Box] = [(0, 0.0, 0.0, 0.5, 0.5, "sig")]
    b: list[Box] = [(0, 0.25, 0.25, 0.5, 0.5, "sig")]  # IoU 1/7
    assert box_match(a, b).tp == 0
    assert box_match(a, b).mean_iou == pytest.approx(1 / 7)
    assert box_match(a, b, threshold=0.1).tp == 1
    with pytest.raises(InvalidArgument):
        box_match(a, b, threshold=0.0)


def test_box_match_empty() -> None:
    score = box_match([], [])
    assert (score.mean_iou, score.f1) == (None, None)


BOXES = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.floats(0, 0.8),
        st.floats(0, 0.8),
        st.floats(0.05, 0.2),
        st.floats(0.05, 0.2),
        st.sampled_from(["X", "Y"]),
    ),
    max_size=8,
)


@given(BOXES, BOXES)
def test_box_scores_symmetric(a: list[Box], b: list[Box]) -> None:
    forward = box_match(a, b)
    backward = box_match(b, a)
    assert forward.tp == backward.tp
    assert _close(forward.f1, backward.f1)
    assert forward.mean_iou == pytest.approx(backward.mean_iou)


@given(BOXES)
def test_box_iou_in_unit_range_and_one_on_self(boxes: list[Box]) -> None:
    for x, y in itertools.product(boxes, repeat=2):
        assert 0.0 <= box_iou(x, y) <= 1.0 + 1e-12
        assert box_iou(x, y) == pytest.approx(box_iou(y, x))
    for box in boxes:
        assert box_iou(box, box) == pytest.approx(1.0)


# --- Project report --------------------------------------------------------------


def _classes(*names: str) -> Content:
    return Content(classes=frozenset(names))


SINGLE_LABEL = {
    "t1": {"ann1": _classes("A"), "ann2": _classes("A")},
    "t2": {"ann1": _classes("A"), "ann2": _classes("B")},
    "t3": {"ann1": _classes("B"), "ann2": _classes("B")},
    "t4": {"ann1": _classes("B"), "ann2": _classes("B"), "ann3": _classes("B")},
    "t5": {"ann1": _classes("A")},
}


def test_project_single_label_classification() -> None:
    # t5 has one annotator and is left out.
    # ann1-ann2 over t1..t4: A A B B against A B B B -> kappa 1/2 (p_o 3/4,
    # p_e 1/2). ann1-ann3 and ann2-ann3 share only t4 (B, B): undefined.
    # Fleiss over [A A] [A B] [B B] [B B B]: P_i 1, 0, 1, 1 -> P_bar 3/4;
    # shares A 3/9, B 6/9 -> P_e 5/9; kappa = (3/4 - 5/9) / (4/9) = 7/16.
    # Alpha: o_AA 2, o_AB = o_BA = 1, o_BB 2 + 3; n_A 3, n_B 6, n 9;
    # alpha = 1 - 8 * 2 / (2 * 3 * 6) = 5/9.
    report = project_agreement(SINGLE_LABEL, ["A", "B"])
    assert report.counts.tasks == 5
    assert report.counts.tasks_used == 4
    assert report.counts.annotators == 3
    assert report.counts.annotator_pairs == 3
    assert report.counts.comparisons == 6

    classification = report.classification
    assert classification is not None
    assert classification.multi_label is False
    overall = classification.overall
    assert overall is not None
    kappas = {(p.annotator_a, p.annotator_b): p.kappa for p in overall.pairs}
    assert kappas[("ann1", "ann2")] == pytest.approx(0.5)
    assert kappas[("ann1", "ann3")] is None
    assert kappas[("ann2", "ann3")] is None
    assert overall.mean_cohen_kappa == pytest.approx(0.5)
    assert overall.fleiss_kappa == pytest.approx(7 / 16)
    assert overall.krippendorff_alpha == pytest.approx(5 / 9)

    # With two classes, "A present" is the same rating as "the class is A".
    for label in ("A", "B"):
        per_label = classification.per_label[label]
        assert per_label.pairs[0].kappa == pytest.approx(0.5)
        assert per_label.fleiss_kappa == pytest.approx(7 / 16)
        assert per_label.krippendorff_alpha == pytest.approx(5 / 9)
    assert report.spans is None
    assert report.boxes is None


def test_project_empty_class_is_its_own_category() -> None:
    items = {
        "t1": {"x": _classes("A"), "y": _classes()},
        "t2": {"x": _classes(), "y": _classes()},
    }
    # x: A "", y: "" "": p_o 1/2, p_e = (1/2)(0) + (1/2)(1) = 1/2 -> kappa 0.
    overall = project_agreement(items, ["A"]).classification
    assert overall is not None and overall.overall is not None
    assert overall.overall.pairs[0].kappa == pytest.approx(0.0)


def test_project_multi_label_has_no_overall() -> None:
    items = {
        "t1": {"x": _classes("A", "B"), "y": _classes("A")},
        "t2": {"x": _classes("B"), "y": _classes("B")},
    }
    classification = project_agreement(items, ["A", "B"]).classification
    assert classification is not None
    assert classification.multi_label is True
    assert classification.overall is None
    # A: x yes no, y yes no -> kappa 1. B: x yes yes, y no yes -> p_e = 1 * 1/2
    # + 0 = 1/2, p_o 1/2 -> kappa 0.
    assert classification.per_label["A"].pairs[0].kappa == pytest.approx(1.0)
    assert classification.per_label["B"].pairs[0].kappa == pytest.approx(0.0)


def test_project_spans_and_boxes() -> None:
    sig: Box = (0, 0.0, 0.0, 0.5, 0.5, "sig")
    items = {
        "t1": {
            "ann1": Content(spans=((0, 5, "PER"),)),
            "ann2": Content(spans=((0, 5, "PER"), (6, 9, "ORG"))),
        },
        "t2": {
            "ann1": Content(spans=((10, 20, "ORG"),)),
            "ann2": Content(spans=((11, 20, "ORG"),)),
        },
        "t3": {
            "ann1": Content(boxes=(sig,)),
            "ann2": Content(boxes=((0, 0.0, 0.0, 0.5, 0.25, "sig"),)),
            "ann3": Content(),
        },
    }
    report = project_agreement(items, ["PER", "ORG", "sig"])
    spans = report.spans
    assert spans is not None
    assert list(spans.per_label) == ["PER", "ORG"]
    # ann1-ann2: exact tp 1, fp 2, fn 1 -> F1 2/5; overlap tp 2, fp 1 -> F1 4/5.
    pair = spans.overall.pairs[0]
    assert (pair.annotator_a, pair.annotator_b, pair.tasks) == ("ann1", "ann2", 3)
    assert (pair.exact.tp, pair.exact.fp, pair.exact.fn) == (1, 2, 1)
    assert pair.exact.f1 == pytest.approx(2 / 5)
    assert pair.overlap.f1 == pytest.approx(4 / 5)
    # Pairs with ann3 saw no spans: F1 undefined and left out of the mean.
    assert [p.exact.f1 for p in spans.overall.pairs[1:]] == [None, None]
    assert spans.overall.mean_exact_f1 == pytest.approx(2 / 5)
    assert spans.per_label["PER"].pairs[0].exact.f1 == 1.0
    org = spans.per_label["ORG"].pairs[0]
    assert org.exact.f1 == 0.0
    assert org.overlap.f1 == pytest.approx(2 / 3)

    boxes = report.boxes
    assert boxes is not None
    first = boxes.per_label["sig"].pairs[0].score
    assert first.mean_iou == pytest.approx(0.5)
    assert first.f1 == 1.0
    # ann1-ann3 and ann2-ann3: one box against none.
    assert [p.score.f1 for p in boxes.overall.pairs[1:]] == [0.0, 0.0]
    assert boxes.overall.mean_f1 == pytest.approx(1 / 3)
    assert boxes.overall.mean_iou == pytest.approx(0.5)
    assert report.classification is None

    json.dumps(report.to_dict())


ANNOTATORS = st.sampled_from(["ann1", "ann2", "ann3"])
CLASS_SETS = st.frozensets(st.sampled_from(["A", "B", "C"]), max_size=3)
PROJECTS = st.dictionaries(
    st.text("abc", min_size=1, max_size=4),
    st.dictionaries(ANNOTATORS, CLASS_SETS.map(lambda c: Content(classes=c))),
    max_size=25,
)


@settings(max_examples=200)
@given(PROJECTS)
def test_project_per_label_matches_direct_computation(
    items: dict[str, dict[str, Content]],
) -> None:
    report = project_agreement(items, ["A", "B", "C"])
    used = {t: a for t, a in items.items() if len(a) >= 2}
    if report.classification is None:
        assert all(not c.classes for a in used.values() for c in a.values())
        return
    for label, agreement in report.classification.per_label.items():
        units = [[label in c.classes for c in a.values()] for a in used.values()]
        assert _close(agreement.fleiss_kappa, fleiss_kappa(units))
        assert _close(agreement.krippendorff_alpha, krippendorff_alpha_nominal(units))
        for pair in agreement.pairs:
            shared = [
                a
                for a in used.values()
                if pair.annotator_a in a and pair.annotator_b in a
            ]
            x = [label in a[pair.annotator_a].classes for a in shared]
            y = [label in a[pair.annotator_b].classes for a in shared]
            assert pair.tasks == len(shared)
            assert _close(pair.kappa, cohen_kappa(x, y))


# --- Gold ------------------------------------------------------------------------


def test_gold_agreement() -> None:
    gold = {
        "t1": Content(spans=((0, 5, "PER"),), classes=frozenset({"A"})),
        "t2": Content(spans=((10, 20, "ORG"),), classes=frozenset({"B"})),
        "t3": Content(classes=frozenset({"A"})),
    }
    items = {
        "t1": {"ann1": Content(spans=((0, 5, "PER"),), classes=frozenset({"A"}))},
        "t2": {"ann1": Content(spans=((12, 20, "ORG"),), classes=frozenset({"A"}))},
        "t3": {"ann2": Content(classes=frozenset({"A"}))},
    }
    # ann1 answered t1 and t2: classes right on t1 only -> accuracy 1/2.
    # Spans: exact tp 1 of 2; overlap tp 2 of 2.
    score = gold_agreement(items, gold, "ann1")
    assert score.n == 2
    assert score.class_accuracy == pytest.approx(0.5)
    assert score.spans_exact.f1 == pytest.approx(0.5)
    assert score.spans_overlap.f1 == 1.0
    assert score.boxes.f1 is None
    assert gold_agreement(items, gold, "nobody").n == 0
    assert gold_agreement(items, gold, "nobody").class_accuracy is None
    json.dumps(score.to_dict())
