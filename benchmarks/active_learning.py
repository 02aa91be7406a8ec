"""How many annotations a span model needs with uncertainty ordering versus
random ordering, how long each training round takes, and how fast a
suggestion is made.

Builds a labelled corpus of SENTENCES clinical-style sentences with DRUG
spans (drug names of Zipf-like frequency, templates with none, one or two
drugs, and distractor words) from a fixed seed, keeps a test set aside, and
simulates annotation: a first batch of STEP random answers, then retraining
after every STEP answers, the next STEP chosen at random or by the model's
uncertainty with the diversity term (``assistance.rank_tasks``), exactly as
the labeling service orders its queue. Each round trains from a blank
pipeline as the service does. It records the answers needed to reach the
target F1 on the test set, training seconds per round and the latency of
one suggestion (one text predicted alone) at p50 and p99.

    python -m benchmarks.active_learning [--sentences N] [--target F1]
        [--step K] [--budget N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from strongroom.services.labeling import assistance, training
from strongroom.services.labeling.assistance import SPANS, Example

PREFIXES = ["ami", "ben", "cef", "dol", "eno", "flu", "gab", "hyd", "ibu", "lev"]
SUFFIXES = ["pril", "olol", "statin", "mycin", "azole", "dipine", "formin", "cillin"]
ONE = [
    "The patient was started on {} this morning.",
    "Please stop {} before the operation.",
    "She reports nausea since taking {} daily.",
    "Continue {} at the same dose.",
    "No allergy to {} was recorded.",
    "The dose of {} was raised last week.",
    "He was switched to {} after the review.",
    "Pharmacy could not supply {} today.",
    "Bloods are due before more {} is given.",
    "{} was held because of low blood pressure.",
]
TWO = [
    "{} was replaced by {} on the ward.",
    "Take {} with food and {} at night.",
    "Both {} and {} were stopped at discharge.",
]
# Drug-like names that are people: only the context tells them apart.
DOCTOR = [
    "Dr {} reviewed the notes this afternoon.",
    "Seen by Dr {} in the morning clinic.",
]
NONE = [
    "The patient walked to the clinic without help.",
    "Review in two weeks with the results.",
    "Dose of reality: the family asked for a second opinion.",
    "The tablet computer on the ward was replaced.",
    "Follow up with the practice nurse next month.",
    "No new medication was started today.",
]


@dataclass
class Curve:
    strategy: str
    answers: list[int] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    select_seconds: list[float] = field(default_factory=list)
    answers_to_target: int | None = None


def drug_names(count: int, seed: int) -> list[str]:
    chooser = random.Random(seed)
    names: set[str] = set()
    while len(names) < count:
        names.add(chooser.choice(PREFIXES) + chooser.choice(SUFFIXES))
    return sorted(names)


def corpus(count: int, seed: int = 11) -> list[Example]:
    """Sentences with their DRUG spans; drugs drawn with Zipf-like weights,
    some in capitals, and doctors whose names look like drugs."""
    chooser = random.Random(seed)
    drugs = drug_names(60, seed)
    weights = [1 / (rank + 1) for rank in range(len(drugs))]
    made = []
    for index in range(count):
        roll = chooser.random()
        if roll < 0.15:
            text, spans = chooser.choice(NONE), ()
        elif roll < 0.2:
            name = chooser.choice(drugs).capitalize()
            text, spans = chooser.choice(DOCTOR).format(name), ()
        else:
            template = chooser.choice(TWO if roll > 0.88 else ONE)
            picked = chooser.choices(drugs, weights, k=template.count("{}"))
            if roll > 0.8:
                picked = [drug.upper() for drug in picked]
            text, spans = _fill(template, picked)
        made.append(Example(f"s{index:05d}", text, spans=spans))
    return made


def _fill(template: str, drugs: list[str]) -> tuple[str, tuple[Any, ...]]:
    parts = template.split("{}")
    text, spans = parts[0], []
    for drug, rest in zip(drugs, parts[1:], strict=True):
        start = len(text)
        text += drug
        spans.append((start, start + len(drug), "DRUG"))
        text += rest
    return text, tuple(spans)


def simulate(
    strategy: str,
    pool: list[Example],
    test: list[Example],
    args: argparse.Namespace,
) -> tuple[Curve, bytes]:
    spec = training.ModelSpec(SPANS, ("DRUG",))
    chooser = random.Random(args.seed)
    remaining = list(pool)
    chooser.shuffle(remaining)
    labelled = remaining[: args.step]
    remaining = remaining[args.step :]
    curve = Curve(strategy)
    model = b""
    while True:
        run = training.TrainingRun(
            spec, tuple(labelled), tuple(test), epochs=args.epochs, seed=args.seed
        )
        trained = training.train(run)
        model = trained.model
        curve.answers.append(len(labelled))
        curve.f1.append(round(trained.scores["f1"], 4))
        curve.train_seconds.append(round(trained.seconds, 3))
        print(
            f"  {strategy:11} {len(labelled):5d} answers  F1 {trained.scores['f1']:.3f}"
            f"  {trained.seconds:5.1f} s",
            file=sys.stderr,
        )
        if trained.scores["f1"] >= args.target and curve.answers_to_target is None:
            curve.answers_to_target = len(labelled)
            break
        if len(labelled) >= args.budget or not remaining:
            break
        started = time.monotonic()
        picked = _pick(strategy, spec, model, remaining, args, chooser)
        curve.select_seconds.append(round(time.monotonic() - started, 3))
        chosen = set(picked)
        labelled += [e for e in remaining if e.task_id in chosen]
        remaining = [e for e in remaining if e.task_id not in chosen]
    return curve, model


def _pick(
    strategy: str,
    spec: training.ModelSpec,
    model: bytes,
    remaining: list[Example],
    args: argparse.Namespace,
    chooser: random.Random,
) -> list[str]:
    if strategy == "random":
        return [e.task_id for e in chooser.sample(remaining, args.step)]
    # The service predicts every open task; a sample of the pool keeps
    # each round short without changing what is measured.
    candidates = chooser.sample(remaining, min(args.candidates, len(remaining)))
    found = training.predict(spec, model, [e.text for e in candidates])
    unsure = {e.task_id: p.uncertainty for e, p in zip(candidates, found, strict=True)}
    texts = {e.task_id: e.text for e in candidates}
    return assistance.rank_tasks(unsure, texts, args.diversity)[: args.step]


def latency(model: bytes, texts: list[str]) -> dict[str, float]:
    """Milliseconds to suggest spans for one text, the model already loaded."""
    spec = training.ModelSpec(SPANS, ("DRUG",))
    nlp = training.load(spec, model)
    times = []
    for text in texts:
        started = time.perf_counter()
        training.predict_with(nlp, spec, [text])
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "tasks": len(times),
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--step", type=int, default=20)
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=600)
    parser.add_argument("--diversity", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    examples = corpus(args.sentences)
    test, pool = examples[: args.test], examples[args.test :]
    curves, last_model = [], b""
    for strategy in ("random", "uncertainty"):
        curve, last_model = simulate(strategy, pool, test, args)
        curves.append(curve)
    by_name = {c.strategy: c for c in curves}
    rounds = [s for c in curves for s in c.train_seconds]
    suggestion = latency(last_model, [e.text for e in test])
    results: dict[str, Any] = {
        "sentences": args.sentences,
        "test_sentences": args.test,
        "target_f1": args.target,
        "step": args.step,
        "budget": args.budget,
        "epochs": args.epochs,
        "diversity": args.diversity,
        "curves": [asdict(c) for c in curves],
        "answers_to_target": {c.strategy: c.answers_to_target for c in curves},
        "train_seconds_per_round": {
            "mean": round(statistics.mean(rounds), 3),
            "max": round(max(rounds), 3),
        },
        "suggestion_latency": suggestion,
    }
    random_needed = by_name["random"].answers_to_target
    unsure_needed = by_name["uncertainty"].answers_to_target
    results["targets"] = {
        "uncertainty reaches the target with fewer answers than random": {
            "met": (
                None
                if unsure_needed is None
                else random_needed is None or unsure_needed < random_needed
            )
        },
        "a suggestion in under 50 ms per task": {"met": suggestion["p99_ms"] < 50},
    }
    print(json.dumps(results["answers_to_target"]), suggestion)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
