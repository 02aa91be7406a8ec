"""A short run of the agreement benchmark (`make bench` runs 100,000 tasks)."""

from __future__ import annotations

from benchmarks.agreement import measure


def test_short_run_measures_the_report_and_its_figures() -> None:
    measured = measure(tasks=500, annotators=3)

    assert measured.tasks == 500 and measured.annotators == 3
    assert measured.spans > 0 and measured.boxes > 0
    assert measured.report_cpu_seconds > 0 and measured.gold_cpu_seconds >= 0
    # The generated answers agree often but not always: chance-corrected
    # agreement lands between the two ends.
    assert measured.overall_kappa is not None and 0 < measured.overall_kappa < 1
    assert measured.mean_overlap_f1 is not None and 0.5 < measured.mean_overlap_f1 < 1
    assert measured.mean_box_iou is not None and 0.5 < measured.mean_box_iou <= 1
