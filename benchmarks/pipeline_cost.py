"""What one document costs each Strongroom process, for sizing a deployment.

Starts a real ``strongroom up`` (embedded backends) in a scratch folder,
uploads DOCUMENTS plain-text notes with identifiers in them, waits until each
has been ingested, redacted and queued as a task, and reads from /proc how
much CPU time every process spent and its peak resident memory. Reports
CPU milliseconds per document per process and documents per second through
the whole path, as a table and as JSON.

    python -m benchmarks.pipeline_cost [--documents N] [--json FILE]

Linux only (it reads /proc). The figures are for this machine and the
embedded adapters; in cluster mode the services' own work is the same, while
the backends' share moves to Kafka, S3 and PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from strongroom.services.common.config import SERVICE_NAMES
from tests.e2e.harness import Strongroom, isolated_env, wait_for

PROCESSES = ("gateway", *SERVICE_NAMES)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NOTE = (
    "Patient {n} was seen on 03/14/2021 and called back from (555) 201-{n:04d}.\n"
    "Contact: patient{n}@example.org, SSN 219-09-{n:04d}. Assessment: stable;\n"
    "follow-up in two weeks with labs. " * 8
)


@dataclass(frozen=True)
class ProcessCost:
    process: str
    cpu_ms_per_document: float
    peak_rss_mib: float


@dataclass(frozen=True)
class PipelineCost:
    documents: int
    seconds: float
    documents_per_second: float
    processes: list[ProcessCost]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); the split above
    # starts at field 3.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pids(strongroom: Strongroom) -> dict[str, int]:
    run_dir = strongroom.data_dir / "run"
    return {name: int((run_dir / f"{name}.pid").read_text()) for name in PROCESSES}


def measure(documents: int, workdir: Path) -> PipelineCost:
    strongroom = Strongroom(
        data_dir=workdir / "data", env=isolated_env(workdir / "home")
    )
    strongroom.start()
    try:
        assert strongroom.admin_password is not None
        admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
        project = admin.post(
            "/api/v1/projects", json={"name": "Sizing", "labels": ["PERSON"]}
        ).json()
        files = []
        for n in range(documents):
            path = workdir / f"note-{n:05d}.txt"
            path.write_text(NOTE.format(n=n))
            files.append(path)
        running = pids(strongroom)
        before = {name: cpu_seconds(pid) for name, pid in running.items()}

        started = time.monotonic()
        token = strongroom.token("admin", strongroom.admin_password)
        strongroom.cli(
            "ingest", "--project", project["id"], "--token", token, *map(str, files)
        )
        wait_for(
            lambda: (
                admin.get(f"/api/v1/projects/{project['id']}/tasks").json()["total"]
                >= documents
            ),
            timeout=600,
            interval=0.2,
        )
        seconds = time.monotonic() - started

        costs = [
            ProcessCost(
                process=name,
                cpu_ms_per_document=1000
                * (cpu_seconds(pid) - before[name])
                / documents,
                peak_rss_mib=peak_rss_mib(pid),
            )
            for name, pid in running.items()
        ]
    finally:
        strongroom.stop()
    return PipelineCost(documents, seconds, documents / seconds, costs)


def report(cost: PipelineCost) -> str:
    lines = [
        f"{cost.documents} documents through ingest, redact and queue in "
        f"{cost.seconds:.1f} s: {cost.documents_per_second:.1f} documents/s",
        f"{'process':<10} {'CPU ms/document':>16} {'peak RSS MiB':>13}",
    ]
    lines += [
        f"{p.process:<10} {p.cpu_ms_per_document:>16.1f} {p.peak_rss_mib:>13.0f}"
        for p in cost.processes
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-") as workdir:
        cost = measure(args.documents, Path(workdir))
    print(report(cost))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(cost), indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
