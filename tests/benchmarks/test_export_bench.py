"""A short run of the export benchmark, Strongroom side only.

`make bench` runs the long one (100,000 annotated tasks, every format)
against Label Studio; this one seeds 300 tasks, builds two formats and both
at once, and checks that every version became ready with one record per
seeded task and that the figures were written. It asserts no timing.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.export import main, note


def test_each_note_carries_its_spans() -> None:
    made = note(12)

    assert [label for _, _, label in made.spans] == ["DISEASE", "DRUG", "DOSE"]
    assert all(made.text[start:end].strip() for start, end, _ in made.spans)
    assert "[NAME]" in made.text and made.choice in ("routine", "urgent")


def test_short_run_builds_every_version_with_every_task(tmp_path: Path) -> None:
    out = tmp_path / "export.json"

    main(
        [
            "--no-label-studio",
            "--tasks",
            "300",
            "--formats",
            "jsonl,label-studio",
            "--json",
            str(out),
        ]
    )

    results = json.loads(out.read_text())
    assert results["tasks"] == 300 and results["small_tasks"] == 30
    (side,) = results["sides"]
    assert side["tool"] == "strongroom"
    assert side["tasks"] == side["annotations"] == 300
    runs = side["exports"]
    assert [(run["project"], run["formats"]) for run in runs] == [
        ("small", ["jsonl"]),
        ("large", ["jsonl"]),
        ("large", ["label-studio"]),
        ("large", ["jsonl", "label-studio"]),
    ]
    for run in runs:
        assert run["state"] == "ready", run
        assert run["error_code"] == ""
        assert run["records"] == run["tasks"]
        assert run["seconds"] > 0 and run["bytes"] > 0
        memory = run["memory"]["export"]
        assert memory["peak_mib"] >= memory["baseline_mib"] > 0
        assert memory["high_water_mib"] > 0
        assert {"tasks", "labeling", "gateway"} <= set(run["memory"])
    assert "memory growth: strongroom jsonl N / N/10" in results["ratios"]
    assert set(results["targets"]) == {
        "100,000 annotated tasks to any format in under 10 s",
        "memory flat in the size of the export",
    }
    # Judged only at the size.
    target = results["targets"]["100,000 annotated tasks to any format in under 10 s"]
    assert target["met"] is None
