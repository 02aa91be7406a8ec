"""Synthetic examples: new, labeled right, offsets that fit, and repeatable."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.labeling.synthesis import (
    Example,
    SynthesisUnsupported,
    Synthetic,
    parse_record,
    synthesize,
)

DRUGS = ["aspirin", "ibuprofen", "metformin", "warfarin"]


def _drug_example(n: int, drug: str, dose: str = "75 mg") -> Example:
    text = f"Patient {n} takes {drug} {dose} daily."
    start = text.index(drug)
    dose_start = text.index(dose)
    return Example(
        f"task-{n}",
        text,
        (
            (start, start + len(drug), "DRUG"),
            (dose_start, dose_start + len(dose), "DOSE"),
        ),
    )


EXAMPLES = [
    _drug_example(1, "aspirin"),
    _drug_example(2, "ibuprofen", "200 mg"),
    _drug_example(3, "metformin", "500 mg"),
    _drug_example(4, "warfarin", "5 mg"),
]


def _labels_fit(made: Synthetic) -> None:
    for start, end, _label in made.spans:
        assert 0 <= start < end <= len(made.text)


def test_entity_swap_replaces_values_with_others_of_the_same_label() -> None:
    made = synthesize("entity_swap", EXAMPLES, 6, seed=1)
    assert len(made) == 6
    originals = {e.text for e in EXAMPLES}
    by_label = {"DRUG": set(DRUGS), "DOSE": {"75 mg", "200 mg", "500 mg", "5 mg"}}
    for example in made:
        assert example.text not in originals and example.method == "entity_swap"
        _labels_fit(example)
        for start, end, label in example.spans:
            assert example.text[start:end] in by_label[label]
        source = next(e for e in EXAMPLES if e.task_id == example.source_task_id)
        # The text around the spans is the source's own.
        assert example.text.startswith(source.text[: source.spans[0][0]])
    assert len({m.text for m in made}) == len(made)


def test_the_same_seed_makes_the_same_examples() -> None:
    first = synthesize("entity_swap", EXAMPLES, 5, seed=7)
    assert first == synthesize("entity_swap", EXAMPLES, 5, seed=7)
    assert first != synthesize("entity_swap", EXAMPLES, 5, seed=8)


def test_templates_fill_every_slot() -> None:
    made = synthesize("template", EXAMPLES, 8, seed=3)
    assert made
    for example in made:
        _labels_fit(example)
        assert [label for _, _, label in example.spans] == ["DRUG", "DOSE"]


def test_templates_of_a_class_project_mix_sentences_of_one_class() -> None:
    examples = [
        Example("a", "Chest pain on exertion. Short of breath.", (), ("cardiac",)),
        Example("b", "Palpitations at night. Chest tightness.", (), ("cardiac",)),
        Example("c", "Rash on both arms. Itching for days.", (), ("skin",)),
        Example("d", "Dry patches on the elbows. Scaling skin.", (), ("skin",)),
    ]
    made = synthesize("template", examples, 6, seed=2)
    assert made
    sentences = {
        cls: {s for e in examples if e.classes == (cls,) for s in e.text.split(". ")}
        for cls in ("cardiac", "skin")
    }
    for example in made:
        (cls,) = example.classes
        words = set(example.text.replace(".", " ").split())
        own_words = set(" ".join(sentences[cls]).replace(".", " ").split())
        assert words <= own_words, example


def test_tabular_records_draw_each_column_from_their_class() -> None:
    records = [
        Example(f"r{i}", f"age: {age}\nsmoker: {smoker}\nward: {ward}", (), (cls,))
        for i, (age, smoker, ward, cls) in enumerate(
            [
                ("61", "yes", "cardiology", "high"),
                ("70", "yes", "cardiology", "high"),
                ("58", "no", "cardiology", "high"),
                ("23", "no", "dermatology", "low"),
                ("31", "no", "orthopaedics", "low"),
                ("27", "yes", "dermatology", "low"),
            ]
        )
    ]
    made = synthesize("tabular", records, 5, seed=4)
    assert made
    real = {r.text for r in records}
    for example in made:
        assert example.text not in real
        fields = parse_record(example.text)
        assert fields is not None and list(fields) == ["age", "smoker", "ward"]
        (cls,) = example.classes
        pool = [parse_record(r.text) for r in records if r.classes == (cls,)]
        for column, value in fields.items():
            assert value in {p[column] for p in pool if p}


@pytest.mark.parametrize(
    ("method", "examples"),
    [
        ("entity_swap", [_drug_example(1, "aspirin")]),
        ("template", [Example("a", "No labels here.", ())]),
        ("tabular", [Example("a", "Not a record at all.", ())] * 2),
    ],
)
def test_examples_a_method_cannot_use_are_refused(
    method: str, examples: list[Example]
) -> None:
    with pytest.raises(SynthesisUnsupported) as refused:
        synthesize(method, examples, 3, seed=0)
    assert refused.value.code == "synthesis_unsupported"


@pytest.mark.parametrize(
    ("method", "count"), [("gan", 3), ("template", 0), ("template", 1001)]
)
def test_bad_requests_are_refused(method: str, count: int) -> None:
    with pytest.raises(InvalidArgument):
        synthesize(method, EXAMPLES, count, seed=0)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(
        st.text(alphabet="abcdefghij ", min_size=1, max_size=12).filter(str.strip),
        min_size=2,
        max_size=6,
        unique=True,
    ),
    prefix=st.text(max_size=20),
    middle=st.text(min_size=1, max_size=20),
    seed=st.integers(0, 2**31 - 1),
)
def test_swapped_offsets_always_point_at_the_new_values(
    values: list[str], prefix: str, middle: str, seed: int
) -> None:
    examples = []
    for n, value in enumerate(values):
        text = f"{prefix}{value}{middle}{values[-1 - n]}."
        first = (len(prefix), len(prefix) + len(value), "A")
        second_start = len(prefix) + len(value) + len(middle)
        second = (second_start, second_start + len(values[-1 - n]), "A")
        examples.append(Example(str(n), text, (first, second)))
    for made in synthesize("entity_swap", examples, 4, seed=seed):
        for start, end, label in made.spans:
            assert label == "A"
            assert made.text[start:end] in values
        assert made.text.endswith(".")
