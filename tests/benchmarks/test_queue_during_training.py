"""A short run of the benchmark of the queue while a model trains.

`make bench` runs the long one (3,000 paragraphs, 300 training answers, four
annotators); this one runs a small project through both phases and checks
what the figures must hold whatever the machine: requests in each phase, no
server error, and a model that trained and was applied to the open tasks.
It asserts no timing.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.active_learning import drug_names
from benchmarks.queue_during_training import answer_for, drug_pattern, main


def test_an_answer_marks_every_drug_name_in_the_window() -> None:
    drug = drug_names(60, 11)[0]
    text = f"Stop {drug.upper()} today.\n\nDr Smith saw her; {drug} again."
    task = {"window_start": 100, "text": text}

    spans = answer_for(task, drug_pattern())["spans"]

    assert [text[s["start"] - 100 : s["end"] - 100] for s in spans] == [
        drug.upper(),
        drug,
    ]
    assert {s["label"] for s in spans} == {"DRUG"}


def test_short_run_measures_both_phases(tmp_path: Path) -> None:
    out = tmp_path / "queue_during_training.json"

    results = main(
        [
            "--paragraphs",
            "400",
            "--answers",
            "40",
            "--annotators",
            "2",
            "--think",
            "1",
            "--seconds",
            "4",
            "--timeout",
            "600",
            "--json",
            str(out),
        ]
    )

    assert json.loads(out.read_text()) == results
    for phase in ("idle", "during"):
        figures = results["phases"][phase]
        assert figures["requests"] > 0, phase
        assert figures["server_errors"] == 0, phase
        assert figures["next"]["p50"] > 0 and figures["submit"]["p50"] > 0, phase
    model = results["model"]
    assert model["version"] == 1 and model["predicted_tasks"] > 0
    assert model["train_answers"] + model["held_out"] >= 40
