"""Model assistance: models beat the trivial baseline, the held-out split is
fixed, and uncertainty and diversity order the queue."""

from __future__ import annotations

import base64
import json
import random

import pytest

from strongroom.services.common.errors import FailedPrecondition, InvalidArgument
from strongroom.services.labeling import assistance, assistant, training
from strongroom.services.labeling.assistance import (
    CLASSES,
    SPANS,
    AssistanceSettings,
    Example,
)
from strongroom.v1 import common_pb2, tasks_pb2

DRUGS = ["aspirin", "metformin", "warfarin", "ibuprofen", "lisinopril", "insulin"]
SENTENCES = [
    "The patient was started on {} this morning.",
    "Please stop {} before the operation.",
    "She reports nausea since taking {} daily.",
    "Continue {} at the same dose.",
    "No allergy to {} was recorded.",
]
CARDIO = ["chest pain on exertion", "palpitations at night", "an irregular pulse"]
SKIN = ["a rash on both arms", "itching of the scalp", "a dry patch on the hand"]


def drug_examples(count: int, seed: int = 1) -> list[Example]:
    chooser = random.Random(seed)
    made = []
    for index in range(count):
        drug = chooser.choice(DRUGS)
        sentence = chooser.choice(SENTENCES)
        text = sentence.format(drug)
        start = text.index(drug)
        made.append(
            Example(f"task-{index}", text, spans=((start, start + len(drug), "DRUG"),))
        )
    return made


def class_examples(count: int, seed: int = 2) -> list[Example]:
    chooser = random.Random(seed)
    made = []
    for index in range(count):
        label = "CARDIO" if index % 3 else "SKIN"
        finding = chooser.choice(CARDIO if label == "CARDIO" else SKIN)
        made.append(
            Example(f"task-{index}", f"Seen today with {finding}.", classes=(label,))
        )
    return made


def _train(kind: str, labels: tuple[str, ...], examples: list[Example]) -> object:
    train, held = assistance.split_examples(examples)
    spec = training.ModelSpec(kind, labels)
    return spec, training.train(
        training.TrainingRun(spec, tuple(train), tuple(held), epochs=15)
    )


def test_a_span_model_beats_predicting_no_spans() -> None:
    spec, trained = _train(SPANS, ("DRUG",), drug_examples(60))

    assert trained.baseline["f1"] == 0.0
    assert trained.scores["f1"] > 0.8, trained.scores
    found = training.predict(spec, trained.model, ["Stop warfarin now."])
    assert [(s, e, label) for s, e, label, _ in found[0].spans] == [(5, 13, "DRUG")]
    assert 0.0 <= found[0].spans[0][3] <= 1.0


def test_a_class_model_beats_the_majority_class() -> None:
    examples = class_examples(60)
    spec, trained = _train(CLASSES, ("CARDIO", "SKIN"), examples)

    assert trained.scores["accuracy"] > trained.baseline["accuracy"], (
        trained.scores,
        trained.baseline,
    )
    predicted = training.predict(spec, trained.model, ["Seen with a rash on the arm."])
    assert predicted[0].classes["SKIN"] > 0.5
    suggested = assistant.suggestions_of(spec, tasks_pb2.Task(), predicted[0])
    assert [(s.label, s.HasField("span")) for s in suggested] == [("SKIN", False)]


def test_a_class_is_suggested_above_the_threshold() -> None:
    probabilities = {"urgent": 0.7, "routine": 0.2, "follow-up": 0.55}

    assert assistance.suggested_classes(probabilities, multi_label=False) == [
        ("urgent", 0.7)
    ]
    assert assistance.suggested_classes(probabilities, multi_label=True) == [
        ("urgent", 0.7),
        ("follow-up", 0.55),
    ]
    assert assistance.suggested_classes({"urgent": 0.4}, multi_label=False) == []


def test_spans_are_suggested_in_document_offsets_most_confident_first() -> None:
    spec = training.ModelSpec(SPANS, ("DRUG",))
    prediction = training.Prediction(spans=((0, 4, "DRUG", 0.4), (9, 12, "DRUG", 0.9)))

    suggested = assistant.suggestions_of(
        spec, tasks_pb2.Task(window_start=100), prediction
    )

    assert [(s.span.start, s.span.end, s.score) for s in suggested] == [
        (109, 112, 0.9),
        (100, 104, 0.4),
    ]


def test_the_held_out_split_is_fixed_by_task_id() -> None:
    examples = drug_examples(200)
    train, held = assistance.split_examples(examples)
    again_train, again_held = assistance.split_examples(list(reversed(examples)))
    _, grown_held = assistance.split_examples(drug_examples(400))

    assert {e.task_id for e in held} == {e.task_id for e in again_held}
    assert 0.1 < len(held) / len(examples) < 0.3
    assert {e.task_id for e in held} <= {e.task_id for e in grown_held}
    assert not {e.task_id for e in train} & {e.task_id for e in grown_held}
    assert {e.task_id for e in again_train} == {e.task_id for e in train}


def test_two_examples_give_one_on_each_side() -> None:
    train, held = assistance.split_examples(drug_examples(2))

    assert len(train) == 1 and len(held) == 1


def test_uncertainty_changes_the_order() -> None:
    texts = {f"t{i}": f"note number {i} about topic {i}" for i in range(5)}
    by_arrival = sorted(texts)
    unsure = {"t0": 0.1, "t1": 0.9, "t2": 0.5, "t3": 0.7, "t4": 0.2}

    order = assistance.rank_tasks(unsure, texts, diversity=0.0)
    ranks = assistance.priorities(order)

    assert order == ["t1", "t3", "t2", "t4", "t0"]
    assert order != by_arrival
    assert ranks["t1"] > ranks["t3"] > ranks["t2"] > ranks["t4"] > ranks["t0"]
    assert max(ranks.values()) == assistance.PRIORITY_SCALE


def test_diversity_keeps_near_duplicates_apart() -> None:
    texts = {
        "a": "chest pain after climbing the stairs",
        "a-copy": "chest pain after climbing the stairs again",
        "b": "a rash on the left forearm",
    }
    unsure = {"a": 0.9, "a-copy": 0.89, "b": 0.6}

    assert assistance.rank_tasks(unsure, texts, diversity=0.0)[:2] == ["a", "a-copy"]
    assert assistance.rank_tasks(unsure, texts, diversity=0.5) == ["a", "b", "a-copy"]


def test_uncertainty_measures() -> None:
    assert assistance.class_uncertainty({"A": 0.5, "B": 0.5}, False) == 1.0
    assert assistance.class_uncertainty({"A": 1.0, "B": 0.0}, False) == 0.0
    assert assistance.class_uncertainty({"A": 0.5}, True) == 1.0
    assert assistance.span_uncertainty([0.99, 0.5]) == 1.0
    assert assistance.span_uncertainty([]) == 0.0


def test_training_is_due_after_enough_new_answers() -> None:
    settings = AssistanceSettings(enabled=True, min_answers=10, retrain_every=5)

    assert not assistance.is_training_due(settings, 9, None)
    assert assistance.is_training_due(settings, 10, None)
    assert not assistance.is_training_due(settings, 14, 10)
    assert assistance.is_training_due(settings, 15, 10)
    assert not assistance.is_training_due(AssistanceSettings(), 100, None)


def test_settings_are_checked() -> None:
    with pytest.raises(InvalidArgument):
        assistance.check_settings(AssistanceSettings(ordering="random"))
    with pytest.raises(InvalidArgument):
        assistance.check_settings(AssistanceSettings(min_answers=1))
    with pytest.raises(InvalidArgument) as refused:
        assistance.check_settings(AssistanceSettings(review_mode="swipe"))
    assert refused.value.code == "review_mode_invalid"
    binary = AssistanceSettings(review_mode=assistance.BINARY)
    assert assistance.check_settings(binary) == binary
    assert AssistanceSettings().review_mode == assistance.EDIT


def test_scores_and_baselines() -> None:
    gold = [{(0, 3, "X")}, {(4, 6, "X")}]
    assert assistance.span_scores(gold, [{(0, 3, "X")}, set()])["precision"] == 1.0
    assert assistance.span_scores(gold, [set(), set()])["f1"] == 0.0
    held = [Example("h", "x", classes=("A",)), Example("i", "y", classes=("B",))]
    train = [Example("t", "z", classes=("A",))]
    base = assistance.baseline_scores(CLASSES, train, held, ("A", "B"))
    assert base["accuracy"] == 0.5
    assert assistance.snapshot_digest([("b", 1), ("a", 2)]) == (
        assistance.snapshot_digest([("a", 2), ("b", 1)])
    )


def test_a_project_gets_a_span_model_before_a_class_model() -> None:
    def project(spans: list[str], classes: list[str]) -> tasks_pb2.Project:
        return tasks_pb2.Project(
            schema=tasks_pb2.LabelSchema(
                spans=[common_pb2.Label(name=n) for n in spans],
                classes=[common_pb2.Label(name=n) for n in classes],
            )
        )

    assert assistant.model_spec(project(["DRUG"], ["urgent"])).kind == SPANS
    spec = assistant.model_spec(project([], ["urgent", "routine"]))
    assert (spec.kind, spec.labels) == (CLASSES, ("routine", "urgent"))
    with pytest.raises(FailedPrecondition):
        assistant.model_spec(project([], []))


def test_a_token_is_kept_until_it_expires() -> None:
    def token(exp: float) -> str:
        claims = json.dumps({"exp": exp}).encode()
        return "e30." + base64.urlsafe_b64encode(claims).decode().rstrip("=") + ".x"

    assert assistant._expires_at(token(2_000_000_000)) == 2_000_000_000
    assert assistant._expires_at("not a token") == 0.0
