"""Whether training a model holds up the queue: next-task and submit latency
while the labeling service trains, predicts and reorders, against the same
load with no model at work.

Starts Strongroom (embedded defaults), makes a span project with paragraph
windows from the active learning benchmark's generated sentences, and has
one annotator answer ANSWERS tasks correctly, which will be the training
set. Then ANNOTATORS annotators, each a different user, run a closed loop of
"next task, then an answer, then THINK seconds" against the gateway, twice:

- idle: assistance off, for SECONDS;
- during: a manager switches assistance on (uncertainty ordering) and asks
  for a model; the loop runs from that request until the version is ready
  and its suggestions and priorities are set on the open tasks.

Requests are classed by the phase in which they started; the figures are
latency percentiles per phase and kind, their ratio (during / idle), the
training seconds and held-out score of the version, and the server errors
(which must be none).

    python -m benchmarks.queue_during_training [--paragraphs 3000]
        [--answers 300] [--annotators 4] [--think 0.5] [--seconds 30]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.active_learning import corpus, drug_names
from tests.e2e.harness import (
    Strongroom,
    add_annotators,
    isolated_env,
    upload_file,
    wait_for,
)

IDLE = "idle"
DURING = "during"
KINDS = ("next", "submit")


@dataclass
class Sample:
    phase: str
    kind: str
    seconds: float
    status: int


@dataclass
class Recorder:
    """Samples from every annotator thread, each tagged with the phase that
    was current when its request started."""

    phase: str = IDLE
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, phase: str, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.samples.append(Sample(phase, kind, seconds, status))


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and p99 in milliseconds (nearest rank)."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99)}


def drug_pattern() -> re.Pattern[str]:
    """Every drug name the generated sentences use, any case."""
    names = sorted(drug_names(60, 11), key=len, reverse=True)
    return re.compile("|".join(names), re.IGNORECASE)


def answer_for(task: dict[str, Any], drugs: re.Pattern[str]) -> dict[str, Any]:
    """The right answer for a task: a DRUG span on every drug name."""
    base = task["window_start"]
    spans = [
        {"start": base + m.start(), "end": base + m.end(), "label": "DRUG"}
        for m in drugs.finditer(task["text"])
    ]
    return {"spans": spans, "seconds": 1}


def cycle(
    client: httpx.Client,
    project_id: str,
    drugs: re.Pattern[str],
    recorder: Recorder,
) -> bool:
    """One "next, then answer"; False when the queue is empty."""
    phase = recorder.phase
    started = time.perf_counter()
    leased = client.post(f"/api/v1/projects/{project_id}/tasks/next")
    recorder.add(phase, "next", time.perf_counter() - started, leased.status_code)
    if leased.status_code != 200:
        return leased.status_code >= 500 or leased.json().get("code") != "queue_empty"
    task = leased.json()
    phase = recorder.phase
    started = time.perf_counter()
    submitted = client.post(
        f"/api/v1/tasks/{task['id']}/annotations", json=answer_for(task, drugs)
    )
    recorder.add(phase, "submit", time.perf_counter() - started, submitted.status_code)
    return True


def run_annotators(
    strongroom: Strongroom,
    tokens: list[str],
    project_id: str,
    recorder: Recorder,
    stop: threading.Event,
    think: float,
) -> list[threading.Thread]:
    drugs = drug_pattern()

    def loop(token: str) -> None:
        with strongroom.client(token) as client:
            while not stop.is_set() and cycle(client, project_id, drugs, recorder):
                stop.wait(think)

    threads = [threading.Thread(target=loop, args=(t,), daemon=True) for t in tokens]
    for thread in threads:
        thread.start()
    return threads


def note(paragraphs: int) -> bytes:
    return "\n\n".join(e.text for e in corpus(paragraphs)).encode()


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    strongroom = Strongroom(data_dir=work / "data", env=isolated_env(work / "home"))
    strongroom.start(timeout=300)
    try:
        return _measure(strongroom, args)
    finally:
        strongroom.stop()


def _measure(strongroom: Strongroom, args: argparse.Namespace) -> dict[str, Any]:
    assert strongroom.admin_password is not None
    admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
    made = admin.post(
        "/api/v1/projects",
        json={
            "name": "Queue during training",
            "labels": ["DRUG"],
            "window": {"kind": "paragraph"},
        },
    )
    made.raise_for_status()
    project_id = made.json()["id"]
    tokens = add_annotators(strongroom, admin, project_id, args.annotators + 1)
    upload_file(
        admin, project_id, "notes.txt", note(args.paragraphs)
    ).raise_for_status()
    wait_for(
        lambda: (
            admin.get(f"/api/v1/projects/{project_id}/tasks").json()["total"]
            >= args.paragraphs
        ),
        timeout=1800,
        interval=2,
    )

    say(f"{args.paragraphs} tasks queued")

    # The training set: one annotator's correct answers.
    drugs, seeding = drug_pattern(), Recorder(phase="seed")
    with strongroom.client(tokens[0]) as first:
        for _ in range(args.answers):
            cycle(first, project_id, drugs, seeding)

    say(f"{args.answers} training answers in; idle phase")
    recorder, stop = Recorder(), threading.Event()
    threads = run_annotators(
        strongroom, tokens[1:], project_id, recorder, stop, args.think
    )
    time.sleep(args.seconds)

    recorder.phase = DURING
    say("model requested; phase during training")
    began = time.monotonic()
    admin.patch(
        f"/api/v1/projects/{project_id}/assistance",
        json={
            "enabled": True,
            "ordering": "uncertainty",
            "min_answers": 2,
            "retrain_every": 100_000,
        },
    ).raise_for_status()
    requested = admin.post(f"/api/v1/projects/{project_id}/models")
    requested.raise_for_status()

    def settled() -> dict[str, Any] | None:
        if not any(thread.is_alive() for thread in threads):
            raise RuntimeError("the queue ran out first: give more --paragraphs")
        models = admin.get(f"/api/v1/projects/{project_id}/models").json()["models"]
        version = models[0] if models else None
        if version and version["state"] == "failed":
            raise RuntimeError(f"training failed: {version.get('error')}")
        done = version and version["state"] == "ready" and version["predicted_tasks"]
        return version if done else None

    version = wait_for(settled, timeout=args.timeout, interval=0.5)
    during_seconds = time.monotonic() - began
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return report(recorder, version, during_seconds, args)


def report(
    recorder: Recorder,
    version: dict[str, Any],
    during_seconds: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    for phase in (IDLE, DURING):
        mine = [s for s in recorder.samples if s.phase == phase]
        phases[phase] = {
            "requests": len(mine),
            "server_errors": sum(1 for s in mine if s.status >= 500),
            **{
                kind: percentiles([s.seconds for s in mine if s.kind == kind])
                for kind in KINDS
            },
        }
    phases[IDLE]["seconds"] = args.seconds
    phases[DURING]["seconds"] = round(during_seconds, 1)
    for phase in phases.values():
        phase["requests_per_second"] = round(phase["requests"] / phase["seconds"], 1)
    ratios = {
        kind: {
            q: round(phases[DURING][kind][q] / phases[IDLE][kind][q], 2)
            for q in ("p50", "p99")
            if phases[IDLE][kind].get(q) and phases[DURING][kind].get(q)
        }
        for kind in KINDS
    }
    return {
        "paragraphs": args.paragraphs,
        "training_answers": args.answers,
        "annotators": args.annotators,
        "think_seconds": args.think,
        "phases": phases,
        "ratio_during_to_idle": ratios,
        "model": {
            "version": version["version"],
            "train_answers": version["train_answers"],
            "held_out": version["held_out"],
            "score": version["score"],
            "baseline_score": version["baseline_score"],
            "training_seconds": version["seconds"],
            "predicted_tasks": version["predicted_tasks"],
        },
        "load_average": [round(x, 1) for x in _load_average()],
    }


def say(line: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def _load_average() -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=3000)
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument("--think", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="queue-training-") as scratch:
        results = measure(args, Path(scratch))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    for phase in (IDLE, DURING):
        figures = results["phases"][phase]
        print(
            f"{phase}: {figures['requests']} requests "
            f"({figures['requests_per_second']}/s), next p50/p99 "
            f"{figures['next'].get('p50')}/{figures['next'].get('p99')} ms, submit "
            f"p50/p99 {figures['submit'].get('p50')}/{figures['submit'].get('p99')} ms",
            file=sys.stderr,
        )
    return results


if __name__ == "__main__":
    main()
