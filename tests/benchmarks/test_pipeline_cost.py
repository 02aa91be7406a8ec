"""A short run of the sizing benchmark (`make bench` runs the long one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.pipeline_cost import PROCESSES, measure, report


def test_short_run_measures_every_process(tmp_path: Path) -> None:
    cost = measure(5, tmp_path)

    assert cost.documents == 5
    assert cost.documents_per_second > 0
    assert [p.process for p in cost.processes] == list(PROCESSES)
    by_name = {p.process: p for p in cost.processes}
    # Each of these did work for every document, so it spent CPU on it.
    for name in ("gateway", "ingestion", "redaction", "tasks", "audit"):
        assert by_name[name].cpu_ms_per_document > 0, name
    assert all(p.peak_rss_mib > 10 for p in cost.processes)
    assert report(cost).splitlines()[2].startswith("gateway")


def test_command_line_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "cost.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.pipeline_cost",
            "--documents",
            "3",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert result.returncode == 0, result.stderr
    assert "3 documents through ingest" in result.stdout
    assert '"documents": 3' in out.read_text()
