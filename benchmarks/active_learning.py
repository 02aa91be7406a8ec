"""How many annotations a span model needs with uncertainty ordering versus
random ordering, how long each training round takes, and how fast a
suggestion is made.

Builds a labelled corpus of SENTENCES clinical-style sentences with DRUG
spans (70 % name no drug; the rest one or two drug names of Zipf-like
frequency, some in capitals, and doctors with drug-like names) from a
fixed seed, keeps a test set aside, and simulates annotation: a first
batch of STEP random answers, then retraining after every STEP answers, the
next STEP chosen at random or by the model's uncertainty with the diversity
term (``assistance.rank_tasks``), exactly as the labeling service orders
its queue. Each round trains from a blank
pipeline as the service does. It records the answers needed to reach the
target F1 on the test set, training seconds per round and the latency of
one suggestion (one text predicted alone) at p50 and p99.

    python -m benchmarks.active_learning [--sentences N] [--target F1]
        [--step K] [--budget N] [--seeds N] [--json FILE]

Each ordering runs once per seed (its own first batch and training seed);
the comparison is between the medians.
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
# Most sentences name no drug, as in real notes: random answers are mostly
# spent on them, while an unsure model asks about the others.
NEGATIVE_SHARE = 0.7
# Drug-like names that are people: only the context tells them apart.
DOCTOR = [
    "Dr {} reviewed the notes this afternoon.",
    "Seen by Dr {} in the morning clinic.",
]
# Sentences with no drug, built from parts so they rarely repeat.
SUBJECTS = ["The patient", "Her daughter", "The nurse", "The registrar", "He", "She"]
VERBS = ["walked to", "phoned", "left", "was seen in", "asked about", "returned to"]
OBJECTS = [
    "the clinic",
    "the ward",
    "the pharmacy",
    "the dose clinic",
    "the tablet computer",
    "a second opinion",
    "the results",
    "the practice nurse",
]
TIMES = ["today", "this morning", "last week", "after lunch", "on Monday", ""]


@dataclass
class Curve:
    strategy: str
    seed: int
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
    """Sentences with their DRUG spans: most with none, the rest with drugs
    of Zipf-like frequency (some in capitals), and doctors whose names look
    like drugs."""
    chooser = random.Random(seed)
    drugs = drug_names(60, seed)
    weights = [1 / (rank + 1) for rank in range(len(drugs))]
    made = []
    for index in range(count):
        roll = chooser.random()
        if roll < NEGATIVE_SHARE:
            text, spans = _no_drug(chooser), ()
        elif roll < NEGATIVE_SHARE + 0.05:
            name = chooser.choice(drugs).capitalize()
            text, spans = chooser.choice(DOCTOR).format(name), ()
        else:
            template = chooser.choice(TWO if roll > 0.95 else ONE)
            picked = chooser.choices(drugs, weights, k=template.count("{}"))
            if roll > 0.9:
                picked = [drug.upper() for drug in picked]
            text, spans = _fill(template, picked)
        made.append(Example(f"s{index:05d}", text, spans=spans))
    return made


def _no_drug(chooser: random.Random) -> str:
    parts = [chooser.choice(p) for p in (SUBJECTS, VERBS, OBJECTS, TIMES)]
    return " ".join(part for part in parts if part) + "."


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
    curve = Curve(strategy, args.seed)
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
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=600)
    parser.add_argument("--diversity", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=3)
    # Runs per ordering, each with its own first batch and training seed.
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    examples = corpus(args.sentences)
    test, pool = examples[: args.test], examples[args.test :]
    curves, last_model = [], b""
    for seed in range(args.seed, args.seed + args.seeds):
        for strategy in ("random", "uncertainty"):
            run_args = argparse.Namespace(**{**vars(args), "seed": seed})
            curve, last_model = simulate(strategy, pool, test, run_args)
            curves.append(curve)
    rounds = [s for c in curves for s in c.train_seconds]
    suggestion = latency(last_model, [e.text for e in test])
    needed = {
        strategy: [c.answers_to_target for c in curves if c.strategy == strategy]
        for strategy in ("random", "uncertainty")
    }
    # A run that never reached the target counts as one step past the budget.
    missed = args.budget + args.step
    medians = {
        strategy: statistics.median(n if n is not None else missed for n in runs)
        for strategy, runs in needed.items()
    }
    results: dict[str, Any] = {
        "sentences": args.sentences,
        "test_sentences": args.test,
        "target_f1": args.target,
        "step": args.step,
        "budget": args.budget,
        "epochs": args.epochs,
        "candidates": args.candidates,
        "diversity": args.diversity,
        "seeds": list(range(args.seed, args.seed + args.seeds)),
        "curves": [asdict(c) for c in curves],
        "answers_to_target": needed,
        "median_answers_to_target": medians,
        "train_seconds_per_round": {
            "mean": round(statistics.mean(rounds), 3),
            "max": round(max(rounds), 3),
        },
        "suggestion_latency": suggestion,
    }
    reached = any(n is not None for n in needed["uncertainty"])
    results["targets"] = {
        "uncertainty reaches the target with fewer answers than random": {
            "met": medians["uncertainty"] < medians["random"] if reached else None
        },
        "a suggestion in under 50 ms per task": {"met": suggestion["p99_ms"] < 50},
    }
    print(json.dumps(needed), json.dumps(medians), suggestion)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
