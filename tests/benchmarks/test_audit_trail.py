"""A short run of the audit trail benchmark (`make bench` runs the long one)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.audit_trail import report, run


def test_short_run_measures_throughput_verify_and_search(tmp_path: Path) -> None:
    args = argparse.Namespace(
        events=2000,
        per_transaction=50,
        verify_events=3000,
        search_events=5000,
        opensearch=False,
    )

    results = run(args, tmp_path)

    assert results.chained_per_second > 0 and results.outbox_per_second > 0
    assert results.whole_path_per_second > 0
    assert results.verify_events == 3000 and results.verify_checkpoints == 1
    queries = results.search["embedded"]["queries"]
    assert set(queries) == {
        "person",
        "document",
        "action_in_month",
        "denied",
        "free_text",
    }
    # A small trail spans one month and few events per document, but every
    # person has events and some were denied.
    assert all(queries[kind]["mean_matches"] > 0 for kind in ("person", "denied"))
    assert queries["free_text"]["mean_matches"] == queries["person"]["mean_matches"]
    assert "audit service, bus to chained and indexed" in report(results)


def test_command_line_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.audit_trail",
            "--events",
            "500",
            "--verify-events",
            "1000",
            "--search-events",
            "1000",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert result.returncode == 0, result.stderr
    assert "verify: 1000 events" in result.stdout
    assert json.loads(out.read_text())["verify_events"] == 1000
