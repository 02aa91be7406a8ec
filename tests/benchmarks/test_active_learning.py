"""A short run of the active learning benchmark.

`make bench` runs the long one (thousands of sentences, rounds of 20 answers
up to a budget of 400); this one builds a small corpus, runs two rounds of
each ordering and checks that the figures were written. It asserts no
timing and no winner.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.active_learning import corpus, main


def test_each_sentence_carries_its_drug_spans() -> None:
    made = corpus(200)

    assert any(e.spans for e in made) and any(not e.spans for e in made)
    for example in made:
        for start, end, label in example.spans:
            assert label == "DRUG" and example.text[start:end].strip()
    assert any(len(e.spans) == 2 for e in made)


def test_short_run_writes_both_curves(tmp_path: Path) -> None:
    out = tmp_path / "active_learning.json"

    main(
        [
            "--sentences",
            "160",
            "--test",
            "40",
            "--step",
            "10",
            "--budget",
            "20",
            "--epochs",
            "3",
            "--candidates",
            "40",
            "--target",
            "1.01",
            "--seeds",
            "1",
            "--json",
            str(out),
        ]
    )

    results = json.loads(out.read_text())
    curves = {c["strategy"]: c for c in results["curves"]}
    assert set(curves) == {"random", "uncertainty"}
    for curve in curves.values():
        assert curve["answers"] == [10, 20]
        assert all(0.0 <= f1 <= 1.0 for f1 in curve["f1"])
        assert all(s > 0 for s in curve["train_seconds"])
        assert curve["answers_to_target"] is None
    latency = results["suggestion_latency"]
    assert latency["tasks"] == 40 and latency["p99_ms"] >= latency["p50_ms"] > 0
    assert set(results["targets"]) == {
        "uncertainty reaches the target with fewer answers than random",
        "a suggestion in under 50 ms per task",
    }
