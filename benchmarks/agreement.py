"""How long the agreement report takes for a large project.

Builds TASKS synthetic tasks, each answered by ANNOTATORS annotators, with a
few spans (some shifted by a character, some dropped), a class from a
single-label set (changed on one task in five) and an occasional box
(jittered), all from a fixed seed; then times ``project_agreement`` and
``gold_agreement`` and prints the figures as a table and, with ``--json``,
as JSON.

    python -m benchmarks.agreement [--tasks N] [--annotators K] [--json FILE]

CPU seconds are the process's user and system time, which hold while other
work shares the machine; wall seconds are given too.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from strongroom.services.labeling.agreement import (
    Box,
    Content,
    Items,
    Span,
    gold_agreement,
    project_agreement,
)

SPAN_LABELS = ("PER", "ORG", "LOC", "DATE", "ID")
CLASSES = ("invoice", "letter", "contract", "form")
BOX_LABELS = ("signature", "stamp")


@dataclass(frozen=True)
class Measurement:
    tasks: int
    annotators: int
    spans: int
    boxes: int
    report_wall_seconds: float
    report_cpu_seconds: float
    gold_wall_seconds: float
    gold_cpu_seconds: float
    peak_rss_mib: float
    overall_kappa: float | None
    mean_overlap_f1: float | None
    mean_box_iou: float | None


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build_project(tasks: int, annotators: int, seed: int = 7) -> Items:
    """Make a project whose annotators mostly agree, with realistic noise."""
    rnd = random.Random(seed)
    names = [f"annotator-{k}" for k in range(annotators)]
    items: dict[str, dict[str, Content]] = {}
    for t in range(tasks):
        spans: list[Span] = []
        offset = 0
        for _ in range(rnd.randint(0, 6)):
            offset += rnd.randint(1, 40)
            length = rnd.randint(2, 20)
            spans.append((offset, offset + length, rnd.choice(SPAN_LABELS)))
            offset += length
        boxes: list[Box] = []
        if rnd.random() < 0.3:
            boxes.append(
                (
                    0,
                    rnd.random() * 0.7,
                    rnd.random() * 0.8,
                    0.2,
                    0.1,
                    rnd.choice(BOX_LABELS),
                )
            )
        true_class = rnd.choice(CLASSES)

        answers: dict[str, Content] = {}
        for name in names:
            own_spans = tuple(
                (start + rnd.choice((0, 0, 0, 1)), end, label)
                for start, end, label in spans
                if rnd.random() < 0.9
            )
            own_boxes = tuple(
                (page, x + rnd.uniform(-0.02, 0.02), y, w, h, label)
                for page, x, y, w, h, label in boxes
            )
            chosen = true_class if rnd.random() < 0.8 else rnd.choice(CLASSES)
            answers[name] = Content(
                spans=own_spans, classes=frozenset({chosen}), boxes=own_boxes
            )
        items[f"task-{t}"] = answers
    return items


def measure(tasks: int, annotators: int) -> Measurement:
    items = build_project(tasks, annotators)
    labels = [*SPAN_LABELS, *CLASSES, *BOX_LABELS]
    gold = {task_id: answers["annotator-0"] for task_id, answers in items.items()}

    wall, cpu = time.perf_counter(), _cpu()
    report = project_agreement(items, labels)
    report_wall, report_cpu = time.perf_counter() - wall, _cpu() - cpu

    wall, cpu = time.perf_counter(), _cpu()
    gold_agreement(items, gold, "annotator-1")
    gold_wall, gold_cpu = time.perf_counter() - wall, _cpu() - cpu

    classification = report.classification
    overall = classification.overall if classification else None
    return Measurement(
        tasks=tasks,
        annotators=annotators,
        spans=sum(len(c.spans) for a in items.values() for c in a.values()),
        boxes=sum(len(c.boxes) for a in items.values() for c in a.values()),
        report_wall_seconds=round(report_wall, 3),
        report_cpu_seconds=round(report_cpu, 3),
        gold_wall_seconds=round(gold_wall, 3),
        gold_cpu_seconds=round(gold_cpu, 3),
        # ru_maxrss is in KiB on Linux.
        peak_rss_mib=round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        overall_kappa=overall.mean_cohen_kappa if overall else None,
        mean_overlap_f1=report.spans.overall.mean_overlap_f1 if report.spans else None,
        mean_box_iou=report.boxes.overall.mean_iou if report.boxes else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.annotators < 2:
        parser.error("--annotators must be at least 2")

    result = measure(args.tasks, args.annotators)
    for key, value in asdict(result).items():
        print(f"{key:>22}  {value}")
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
