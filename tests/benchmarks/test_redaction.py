"""A short run of the redaction benchmark's Strongroom side (`make bench`
runs the long one, side by side with Presidio and datasketch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.redaction import (
    HELD_OUT_TEMPLATES,
    _dedup_texts,
    _near_dup_f1,
    _offline_prefix,
    generate,
    score,
)


def test_short_run_scores_recall_speed_and_near_duplicates(tmp_path: Path) -> None:
    docs = generate(24) + generate(8, seed=9, templates=HELD_OUT_TEMPLATES)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": d.text}) for d in docs))
    out = tmp_path / "strongroom.json"

    subprocess.run(
        [*_offline_prefix(), sys.executable, "-m", "benchmarks.redaction",
         "--worker", str(corpus), str(out)],
        check=True,
        timeout=600,
    )  # fmt: skip

    measured = json.loads(out.read_text())
    scores = score(docs, [[tuple(p) for p in doc] for doc in measured["predictions"]])
    assert measured["cpu_seconds"] > 0 and measured["signature_cpu_seconds"] > 0
    assert scores["overall"]["support"] == sum(len(d.gold) for d in docs)
    # Small, but every fixed-format identifier must still be found.
    assert scores["pattern_recall"] == 1.0
    assert scores["overall"]["f2"] > 0.9
    groups = _dedup_texts()["groups"]
    pairs = {(int(a), int(b)) for a, b in measured["pairs"]}
    assert _near_dup_f1(pairs, groups)["f1"] > 0.5
