"""Model assistance rules: when to train, the held-out split, scores against a
trivial baseline, and the queue order from uncertainty and diversity.

Pure: no I/O, no spaCy. The training itself lives in ``training``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from strongroom.services.common.errors import InvalidArgument

ARRIVAL = "arrival"
UNCERTAINTY = "uncertainty"
ORDERINGS = (ARRIVAL, UNCERTAINTY)
# How annotators go through a task's suggestions: edit them freely, or
# accept or reject one at a time.
EDIT = "edit"
BINARY = "binary"
REVIEW_MODES = (EDIT, BINARY)
SPANS = "spans"
CLASSES = "classes"
# Queue priorities from uncertainty lie in [0, PRIORITY_SCALE]; managers'
# own priorities can still go above or below.
PRIORITY_SCALE = 1000
# Classes a model gives a lower probability are not suggested.
MIN_CLASS_SCORE = 0.5
HELD_OUT_FRACTION = 0.2
# Dimensions of the hashed bag-of-words vectors used for diversity.
_DIMENSIONS = 512
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class AssistanceSettings:
    """A project's model assistance, as its managers set it."""

    enabled: bool = False
    ordering: str = ARRIVAL
    # Answers a project needs before its first model.
    min_answers: int = 10
    # New answers since the last model that start the next one.
    retrain_every: int = 10
    # How much a task close to one already ranked loses, from 0 to 1.
    diversity: float = 0.5
    review_mode: str = EDIT


def check_settings(settings: AssistanceSettings) -> AssistanceSettings:
    """Raises: InvalidArgument: an ordering, review mode or number out of
    range."""
    if settings.ordering not in ORDERINGS:
        raise InvalidArgument(
            "A queue ordering is 'arrival' or 'uncertainty'.", code="ordering_invalid"
        )
    if settings.review_mode not in REVIEW_MODES:
        raise InvalidArgument(
            "A review mode is 'edit' or 'binary'.", code="review_mode_invalid"
        )
    if not 2 <= settings.min_answers <= 100_000:
        raise InvalidArgument(
            "The answers before a first model lie between 2 and 100,000.",
            code="min_answers_invalid",
        )
    if not 1 <= settings.retrain_every <= 100_000:
        raise InvalidArgument(
            "The new answers between models lie between 1 and 100,000.",
            code="retrain_every_invalid",
        )
    if not 0.0 <= settings.diversity <= 1.0:
        raise InvalidArgument(
            "The diversity weight lies between 0 and 1.", code="diversity_invalid"
        )
    return settings


def is_training_due(
    settings: AssistanceSettings, answers: int, answers_at_last_model: int | None
) -> bool:
    """Whether a project with ``answers`` training answers needs a new model."""
    if not settings.enabled or answers < settings.min_answers:
        return False
    if answers_at_last_model is None:
        return True
    return answers - answers_at_last_model >= settings.retrain_every


@dataclass(frozen=True)
class Example:
    """One task's text with the labels of its training answer.

    Span offsets are into ``text`` (the task's window), not the document.
    """

    task_id: str
    text: str
    spans: tuple[tuple[int, int, str], ...] = ()
    classes: tuple[str, ...] = ()


def held_out_rank(task_id: str) -> float:
    """Where a task falls in [0, 1): the same for a task id on every run."""
    digest = hashlib.sha256(b"strongroom held-out\0" + task_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_examples(
    examples: Sequence[Example], fraction: float = HELD_OUT_FRACTION
) -> tuple[list[Example], list[Example]]:
    """Training and held-out examples, by a hash of each task id.

    A task stays on its side as the project grows, so a later model is never
    scored on what an earlier one trained on. With two or more examples, both
    sides hold at least one: the lowest-ranked task is then held out.
    """
    train = [e for e in examples if held_out_rank(e.task_id) >= fraction]
    held = [e for e in examples if held_out_rank(e.task_id) < fraction]
    if len(examples) >= 2 and not held:
        lowest = min(train, key=lambda e: held_out_rank(e.task_id))
        train.remove(lowest)
        held.append(lowest)
    if len(examples) >= 2 and not train:
        highest = max(held, key=lambda e: held_out_rank(e.task_id))
        held.remove(highest)
        train.append(highest)
    return train, held


def snapshot_digest(answers: Iterable[tuple[str, int]]) -> str:
    """A hash of the (answer id, version) pairs a model learned from."""
    digest = hashlib.sha256()
    for answer_id, version in sorted(answers):
        digest.update(f"{answer_id}:{version}\n".encode())
    return digest.hexdigest()


# --- scores -------------------------------------------------------------------


def span_scores(
    gold: Sequence[Collection[tuple[int, int, str]]],
    predicted: Sequence[Collection[tuple[int, int, str]]],
) -> dict[str, float]:
    """Exact-match span precision, recall and F1, summed over examples."""
    hits = sum(len(set(g) & set(p)) for g, p in zip(gold, predicted, strict=True))
    said = sum(len(set(p)) for p in predicted)
    wanted = sum(len(set(g)) for g in gold)
    precision = hits / said if said else 0.0
    recall = hits / wanted if wanted else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def class_scores(
    gold: Sequence[Collection[str]],
    predicted: Sequence[Collection[str]],
    labels: Collection[str],
) -> dict[str, float]:
    """Accuracy (the whole class set right) and macro-F1 over ``labels``."""
    pairs = list(zip(gold, predicted, strict=True))
    accuracy = sum(set(g) == set(p) for g, p in pairs) / len(pairs) if pairs else 0.0
    f1s = []
    for label in sorted(labels):
        hits = sum(label in g and label in p for g, p in pairs)
        said = sum(label in p for _, p in pairs)
        wanted = sum(label in g for g, _ in pairs)
        f1s.append(2 * hits / (said + wanted) if said + wanted else 0.0)
    macro = sum(f1s) / len(f1s) if f1s else 0.0
    return {"accuracy": accuracy, "macro_f1": macro}


def headline(kind: str, scores: Mapping[str, float]) -> float:
    """The one figure a learning curve plots: span F1, or class accuracy."""
    return scores["f1"] if kind == SPANS else scores["accuracy"]


def baseline_scores(
    kind: str,
    train: Sequence[Example],
    held: Sequence[Example],
    labels: Collection[str],
) -> dict[str, float]:
    """What a model with nothing learned scores on the held-out examples.

    For spans it predicts none; for classes it always answers the class set
    most frequent among the training answers.
    """
    if kind == SPANS:
        return span_scores([e.spans for e in held], [() for _ in held])
    majority = Counter(tuple(sorted(e.classes)) for e in train).most_common(1)
    guess = majority[0][0] if majority else ()
    return class_scores([e.classes for e in held], [guess for _ in held], labels)


def suggested_classes(
    probabilities: Mapping[str, float],
    multi_label: bool,
    threshold: float = MIN_CLASS_SCORE,
) -> list[tuple[str, float]]:
    """The classes a model suggests for one task, most probable first.

    Every class at or above ``threshold`` when a task may have several;
    otherwise the most probable one, if it reaches the threshold.
    """
    ranked = sorted(probabilities.items(), key=lambda item: (-item[1], item[0]))
    chosen = [(label, p) for label, p in ranked if p >= threshold]
    return chosen if multi_label else chosen[:1]


# --- uncertainty and diversity --------------------------------------------------


def class_uncertainty(probabilities: Mapping[str, float], multi_label: bool) -> float:
    """How unsure a class model is about one task, from 0 to 1.

    One class per task: one minus the top probability, rescaled so that an
    even split over the classes is 1. Several: the mean closeness of each
    label's probability to one half.
    """
    if not probabilities:
        return 1.0
    if multi_label:
        closeness = [1 - abs(2 * p - 1) for p in probabilities.values()]
        return sum(closeness) / len(closeness)
    top = max(probabilities.values())
    even = 1 / len(probabilities)
    if even >= 1:
        return 0.0
    return min(max((1 - top) / (1 - even), 0.0), 1.0)


def span_uncertainty(scores: Iterable[float]) -> float:
    """How unsure a span model is about one task, from its candidate spans'
    probabilities: the largest closeness to one half among them."""
    return max((1 - abs(2 * p - 1) for p in scores), default=0.0)


def bag_of_words(text: str) -> dict[int, float]:
    """A unit-length hashed bag-of-words vector of a text."""
    counts: Counter[int] = Counter()
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        counts[int.from_bytes(digest, "big") % _DIMENSIONS] += 1
    norm = math.sqrt(sum(v * v for v in counts.values()))
    return {k: v / norm for k, v in counts.items()} if norm else {}


def cosine(a: Mapping[int, float], b: Mapping[int, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def rank_tasks(
    uncertainty: Mapping[str, float],
    texts: Mapping[str, str],
    diversity: float = 0.5,
) -> list[str]:
    """Task ids in the order to ask them: most uncertain first, each one's
    score lowered by its closeness to those already picked.

    Greedy: at each step the task with the highest ``uncertainty * (1 -
    diversity * max cosine to the picked ones)`` goes next, so two near
    duplicates are not asked one after the other. Ties go by task id.
    """
    vectors = {task_id: bag_of_words(texts.get(task_id, "")) for task_id in uncertainty}
    closest = dict.fromkeys(uncertainty, 0.0)
    left = set(uncertainty)
    order: list[str] = []
    while left:
        best = max(
            left,
            key=lambda t: (uncertainty[t] * (1 - diversity * closest[t]), t),
        )
        order.append(best)
        left.remove(best)
        for task_id in left:
            similarity = cosine(vectors[best], vectors[task_id])
            if similarity > closest[task_id]:
                closest[task_id] = similarity
    return order


def priorities(order: Sequence[str]) -> dict[str, int]:
    """Queue priorities for tasks in ``order``: the first highest."""
    count = len(order)
    if count == 0:
        return {}
    return {
        task_id: round(PRIORITY_SCALE * (count - index) / count)
        for index, task_id in enumerate(order)
    }
