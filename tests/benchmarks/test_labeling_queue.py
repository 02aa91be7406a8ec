"""A short run of the task-queue benchmark, Strongroom side only.

`make bench` runs the long one against Label Studio; this one checks, on a
small project under concurrent annotators, that no task is handed to two
annotators at once or twice to one, and that no accepted annotation is lost.
It asserts no timing.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.labeling_queue import Invariants, Lease, check_leases, main


def test_lease_check_sees_a_double_assignment_and_a_repeat() -> None:
    invariants = Invariants()
    check_leases(
        [
            # Annotators 1 and 2 hold task a at once.
            Lease(1, "a", granted=1.0, released=3.0),
            Lease(2, "a", granted=2.0, released=4.0),
            # Annotator 3 gets task b again after annotating it.
            Lease(3, "b", granted=1.0, released=2.0),
            Lease(3, "b", granted=5.0, released=6.0),
            # One after the other, and the same lease handed back: both fine.
            Lease(4, "c", granted=1.0, released=2.0),
            Lease(5, "c", granted=2.0, released=3.0),
            Lease(6, "d", granted=1.0),
            Lease(6, "d", granted=1.5, released=2.0),
        ],
        overlap=1,
        invariants=invariants,
    )

    assert invariants.double_assignments == 1
    assert invariants.repeated_tasks == 1
    assert invariants.leases == 8


def test_small_run_keeps_the_queue_invariants(tmp_path: Path) -> None:
    out = tmp_path / "queue.json"

    main(
        [
            "--no-label-studio",
            "--tasks",
            "300",
            "--levels",
            "1,10",
            "--seconds",
            "3",
            "--json",
            str(out),
        ]
    )

    results = json.loads(out.read_text())
    (side,) = results["sides"]
    assert side["tool"] == "strongroom"
    assert side["import_tasks_per_second"] > 0
    # A fast machine may annotate all 300 before the time is up.
    assert all("ran empty" in note for note in side["notes"])
    assert [level["annotators"] for level in side["levels"]] == [1, 10]
    for level in side["levels"]:
        assert level["completed"] > 0
        assert level["next"]["errors"] == 0 and level["submit"]["errors"] == 0
    invariants = side["invariants"]
    completed = sum(level["completed"] for level in side["levels"])
    assert invariants["submitted"] == invariants["leases"] == completed
    assert invariants["double_assignments"] == 0
    assert invariants["repeated_tasks"] == 0
    assert invariants["lost_annotations"] == 0
    assert invariants["listed_annotations"] == completed
    if any(level["queue_empty"] for level in side["levels"]):
        assert completed == 300
    assert {"gateway", "tasks", "labeling"} <= set(side["rss_end_mib"])
