"""A short run of the PDF ingestion benchmark (`make bench` runs the long one).

It checks that every extractor ran on the same files and that the figures
are there and plausible; it asserts no timing, since the machine is shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.ingestion_pdf import TEXT_TOOLS, agreement, measure, report


def test_short_run_measures_every_extractor(tmp_path: Path) -> None:
    results = measure(pages=4, large_pages=8, ocr_pages=1, work=tmp_path)

    assert [r.tool for r in results.text] == list(TEXT_TOOLS)
    assert [r.tool for r in results.large] == list(TEXT_TOOLS)
    assert all(r.pages_per_second > 0 and r.peak_rss_mib > 10 for r in results.text)
    # The drawn words come back from every text layer.
    assert all(r.agreement > 0.95 for r in results.text + results.large)
    assert [r.tool for r in results.ocr] == ["strongroom", "tesseract"]
    assert all(r.agreement > 0.8 for r in results.ocr)
    assert "Strongroom is" in report(results)


def test_agreement_scores_words_not_layout() -> None:
    reference = ["alpha", "beta", "gamma", "delta"]

    assert agreement("alpha beta\ngamma   delta", reference) == 1.0
    assert agreement("alpha beta", reference) == 2 * (1 * 0.5) / 1.5
    assert agreement("", reference) == 0.0


def test_command_line_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "ingestion.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.ingestion_pdf",
            "--pages",
            "2",
            "--large-pages",
            "3",
            "--ocr-pages",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert result.returncode == 0, result.stderr
    written = json.loads(out.read_text())
    assert set(written["ratios"]) == {"pdfminer.six", "pdfplumber"}
    assert "ocr_overhead" in written
