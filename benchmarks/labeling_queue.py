"""The task queue against Label Studio: import, next task and submit, under load.

One run measures both tools on this machine with the same generated tasks
(short clinical notes, one task each) and the same load:

- import: seconds from the first upload until every task can be handed out.
  Label Studio: its import API with JSON batches. Strongroom: JSONL uploads,
  timed until every record has been ingested, redacted and queued.
- load: 1, 50 and 200 simulated annotators (``--levels``), each its own user
  with its own connection, each in a closed loop of "next task" then "submit
  an annotation with one span", for ``--seconds`` per level. Latency p50,
  p95 and p99 of each call and completed tasks per second.
- memory: resident set of every process at the start and the end, and its
  peak.
- invariants (Strongroom, and Label Studio for comparison): no task held by
  more annotators at once than its overlap, no annotator handed a task it had
  already annotated, and every submit answered 2xx present in the project's
  annotation list afterwards.

    python -m benchmarks.labeling_queue [--tasks 100000] [--levels 1,50,200]
        [--seconds 25] [--no-label-studio] [--cluster] [--profile DIR]
        [--json FILE]

``--short`` is a small run of both (2,000 tasks, 1 and 10 annotators, 5 s).

Label Studio is installed from PyPI into its own virtual environment at
~/.cache/strongroom/label-studio-venv the first time (never into
Strongroom's), and started with its default SQLite database.

Linux only (memory is read from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.e2e.harness import (
    Strongroom,
    add_annotators,
    every_page,
    free_port,
    isolated_env,
)

LABELS = ("PERSON", "LOCATION", "DATE")
# Strongroom refuses files with more records than its ingestion limit
# (STRONGROOM_INGEST_MAX_RECORDS, 100,000 by default); uploads stay below it.
RECORDS_PER_FILE = 20_000
LABEL_STUDIO_BATCH = 10_000
T = TypeVar("T")
LABEL_STUDIO_VENV = Path.home() / ".cache" / "strongroom" / "label-studio-venv"
PASSWORD = "bench-only-password-1"

_CITIES = ("Leeds", "Porto", "Ghent", "Lyon", "Turku", "Graz", "Cork", "Bergen")
_NAMES = ("Ana Souza", "Jonas Berg", "Mei Tanaka", "Omar Haddad", "Lena Novak")
_NOTE = (
    "Note {n}: {name} was seen at the {city} clinic on 03/{day:02d}/2021 and "
    "called back from (555) 201-{tail:04d}. Assessment stable; follow-up in "
    "two weeks with labs."
)


def note(n: int) -> str:
    """The text of task ``n``: the same for both tools."""
    return _NOTE.format(
        n=n,
        name=_NAMES[n % len(_NAMES)],
        city=_CITIES[n % len(_CITIES)],
        day=1 + n % 28,
        tail=n % 10_000,
    )


# --- measurements ------------------------------------------------------------


@dataclass
class Latency:
    count: int = 0
    errors: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @classmethod
    def of(cls, samples: list[float], errors: int) -> Latency:
        if not samples:
            return cls(errors=errors)
        ordered = sorted(samples)

        def rank(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        return cls(
            count=len(ordered),
            errors=errors,
            p50_ms=rank(0.50),
            p95_ms=rank(0.95),
            p99_ms=rank(0.99),
            max_ms=round(ordered[-1], 2),
        )


@dataclass
class Level:
    annotators: int
    seconds: float
    completed: int
    tasks_per_second: float
    next: Latency
    submit: Latency
    queue_empty: bool = False
    # The machine's one-minute load average as the level ended: the machine
    # is shared, and this says how much else was running.
    load_average: float = 0.0


@dataclass
class Invariants:
    leases: int = 0
    submitted: int = 0
    # A task held by more annotators at once than its overlap allows.
    double_assignments: int = 0
    # An annotator handed a task it had already annotated.
    repeated_tasks: int = 0
    # A submit answered 2xx whose annotation the project does not list.
    lost_annotations: int = 0
    listed_annotations: int = 0

    @property
    def hold(self) -> bool:
        return not (
            self.double_assignments or self.repeated_tasks or self.lost_annotations
        )


@dataclass
class Side:
    tool: str
    version: str
    tasks: int
    import_seconds: float = 0.0
    import_tasks_per_second: float = 0.0
    # Strongroom only: when the last upload was answered (ingested, before
    # redaction and queueing finished).
    upload_seconds: float = 0.0
    levels: list[Level] = field(default_factory=list)
    invariants: Invariants = field(default_factory=Invariants)
    rss_start_mib: dict[str, float] = field(default_factory=dict)
    rss_end_mib: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Results:
    date: str
    machine: str
    tasks: int
    seconds_per_level: float
    sides: list[Side] = field(default_factory=list)
    ratios: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, list[str]] = field(default_factory=dict)


def _status_kib(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def rss_mib(pid: int) -> float:
    return round(_status_kib(pid, "VmRSS") / 1024, 1)


def peak_mib(pid: int) -> float:
    return round(_status_kib(pid, "VmHWM") / 1024, 1)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


# --- the load ----------------------------------------------------------------


@dataclass
class Lease:
    annotator: int
    task: str
    granted: float
    released: float | None = None


@dataclass
class LoadLog:
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    next_errors: int = 0
    submit_errors: int = 0
    completed: int = 0
    queue_empty: bool = False


class Annotator:
    """One simulated annotator: its own user and its own connection."""

    def __init__(self, number: int, client: httpx.AsyncClient) -> None:
        self.number = number
        self.client = client

    async def next(self) -> dict[str, Any] | None:
        """The next task, or None when the queue is empty."""
        raise NotImplementedError

    async def submit(self, task: dict[str, Any]) -> str:
        """Annotate one span of ``task``; the annotation's id."""
        raise NotImplementedError

    @staticmethod
    def task_id(task: dict[str, Any]) -> str:
        return str(task["id"])


async def _annotate(
    annotator: Annotator,
    deadline: float,
    log: LoadLog,
    leases: list[Lease],
    submitted: list[str],
) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            task = await annotator.next()
        except Exception:
            log.next_errors += 1
            await asyncio.sleep(0.05)
            continue
        got = time.perf_counter()
        if task is None:
            log.queue_empty = True
            return
        log.next_ms.append((got - started) * 1000)
        lease = Lease(annotator.number, annotator.task_id(task), got)
        leases.append(lease)
        started = time.perf_counter()
        try:
            annotation_id = await annotator.submit(task)
        except Exception:
            log.submit_errors += 1
            continue
        done = time.perf_counter()
        lease.released = done
        log.submit_ms.append((done - started) * 1000)
        log.completed += 1
        submitted.append(annotation_id)


def run_level(
    make_annotators: Callable[[int], list[Annotator]],
    count: int,
    seconds: float,
    leases: list[Lease],
    submitted: list[str],
) -> Level:
    """``count`` annotators, each in its closed loop for ``seconds``."""
    log = LoadLog()

    async def all_of_them() -> float:
        # The clients belong to this event loop, so they are made in it.
        annotators = make_annotators(count)
        try:
            started = time.perf_counter()
            deadline = started + seconds
            await asyncio.gather(
                *(_annotate(a, deadline, log, leases, submitted) for a in annotators)
            )
            return time.perf_counter() - started
        finally:
            await asyncio.gather(*(a.client.aclose() for a in annotators))

    elapsed = asyncio.run(all_of_them())
    return Level(
        annotators=count,
        seconds=round(elapsed, 2),
        completed=log.completed,
        tasks_per_second=round(log.completed / elapsed, 1),
        next=Latency.of(log.next_ms, log.next_errors),
        submit=Latency.of(log.submit_ms, log.submit_errors),
        queue_empty=log.queue_empty,
        load_average=round(os.getloadavg()[0], 2),
    )


def check_leases(leases: list[Lease], overlap: int, invariants: Invariants) -> None:
    """Count double assignments and repeats in what the annotators were handed.

    A lease lasts from the answer to "next" until the answer to its submit
    (or the end of the run). An annotator handed back the task it still
    holds (a submit failed) is the same lease, not a repeat.
    """
    by_task: dict[str, list[Lease]] = {}
    for lease in leases:
        by_task.setdefault(lease.task, []).append(lease)
    end = time.perf_counter()
    for held in by_task.values():
        held.sort(key=lambda lease: lease.granted)
        done_by: set[int] = set()
        for lease in held:
            if lease.annotator in done_by:
                invariants.repeated_tasks += 1
            if lease.released is not None:
                done_by.add(lease.annotator)
        events = []
        for lease in held:
            events.append((lease.granted, 1, lease.annotator))
            events.append((lease.released or end, -1, lease.annotator))
        holders: dict[int, int] = {}
        for _, step, who in sorted(events, key=lambda e: (e[0], e[1])):
            holders[who] = holders.get(who, 0) + step
            if sum(1 for n in holders.values() if n > 0) > overlap:
                invariants.double_assignments += 1
                break
    invariants.leases = len(leases)


def run_load(
    make_annotators: Callable[[int], list[Annotator]],
    levels: Iterable[int],
    seconds: float,
    side: Side,
    overlap: int,
) -> list[str]:
    """Every level in turn; the ids of the annotations answered 2xx."""
    leases: list[Lease] = []
    submitted: list[str] = []
    for count in levels:
        level = run_level(make_annotators, count, seconds, leases, submitted)
        side.levels.append(level)
        print(
            f"  {side.tool}, {count} annotators: {level.completed} tasks, "
            f"next p99 {level.next.p99_ms} ms, submit p99 {level.submit.p99_ms} ms",
            flush=True,
        )
        if level.queue_empty:
            side.notes.append(f"the queue ran empty at {count} annotators")
            break
    check_leases(leases, overlap, side.invariants)
    side.invariants.submitted = len(submitted)
    return submitted


def _async_client(base_url: str, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=120.0,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


# --- Strongroom --------------------------------------------------------------

# Called after the measured levels with the service pids and a function that
# runs one more level of load, to sample the processes while it runs.
Profile = Callable[[dict[str, int], Callable[[], "Level"]], None]


class StrongroomAnnotator(Annotator):
    def __init__(self, number: int, client: httpx.AsyncClient, project_id: str) -> None:
        super().__init__(number, client)
        self.project_id = project_id

    async def next(self) -> dict[str, Any] | None:
        response = await self.client.post(
            f"/api/v1/projects/{self.project_id}/tasks/next"
        )
        if response.status_code == 404 and "queue_empty" in response.text:
            return None
        response.raise_for_status()
        task: dict[str, Any] = response.json()
        return task

    async def submit(self, task: dict[str, Any]) -> str:
        # The note's first word ("Note") as a span, in task-text offsets.
        response = await self.client.post(
            f"/api/v1/tasks/{task['id']}/annotations",
            json={"spans": [{"start": 0, "end": 4, "label": LABELS[0]}]},
        )
        response.raise_for_status()
        return str(response.json()["id"])


def jsonl_files(tasks: int, per_file: int) -> Iterator[bytes]:
    for start in range(0, tasks, per_file):
        yield b"".join(
            json.dumps({"text": note(n)}).encode() + b"\n"
            for n in range(start, min(tasks, start + per_file))
        )


def _strongroom_pids(strongroom: Strongroom) -> dict[str, int]:
    run_dir = strongroom.data_dir / "run"
    found = {}
    for path in sorted(run_dir.glob("*.pid")):
        try:
            found[path.stem] = int(path.read_text())
        except ValueError:
            continue
    return found


def _memory(pids: dict[str, int]) -> dict[str, float]:
    return {name: rss_mib(pid) for name, pid in pids.items()}


def _queued(admin: httpx.Client, project_id: str) -> int:
    response = admin.get(f"/api/v1/projects/{project_id}/tasks", params={"limit": 1})
    response.raise_for_status()
    total: int = response.json()["total"]
    return total


def _wait_queued(
    admin: httpx.Client, project_id: str, tasks: int, timeout: float
) -> int:
    deadline = time.monotonic() + timeout
    queued = _queued(admin, project_id)
    while queued < tasks and time.monotonic() < deadline:
        time.sleep(1.0)
        queued = _queued(admin, project_id)
    return queued


def _listed_annotations(admin: httpx.Client, project_id: str) -> set[str]:
    path = f"/api/v1/projects/{project_id}/annotations"
    return {a["id"] for a in every_page(admin, path, "annotations", limit=1000)}


def _strongroom_version() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "show", "strongroom"],
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"^Version: (.+)$", out, re.M)
    return match.group(1) if match else "unknown"


def measure_strongroom(
    tasks: int,
    levels: list[int],
    seconds: float,
    work: Path,
    *,
    up_args: list[str] | None = None,
    tool: str = "strongroom",
    overlap: int = 1,
    profile: Profile | None = None,
    per_file: int = RECORDS_PER_FILE,
) -> Side:
    """Start a platform, import, load it, check the invariants, stop it."""
    side = Side(tool=tool, version=_strongroom_version(), tasks=tasks)
    strongroom = Strongroom(
        data_dir=work / "data",
        env=isolated_env(work / "home"),
        up_args=up_args or [],
    )
    strongroom.start(timeout=300)
    try:
        _strongroom_side(strongroom, side, levels, seconds, overlap, profile, per_file)
    finally:
        strongroom.stop()
    return side


def _strongroom_side(
    strongroom: Strongroom,
    side: Side,
    levels: list[int],
    seconds: float,
    overlap: int,
    profile: Profile | None,
    per_file: int,
) -> None:
    assert strongroom.admin_password is not None
    admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
    pids = _strongroom_pids(strongroom)
    side.rss_start_mib = _memory(pids)
    project = admin.post(
        "/api/v1/projects",
        json={
            "name": "Queue benchmark",
            "labels": list(LABELS),
            "overlap": overlap,
            "review": False,
        },
    )
    project.raise_for_status()
    project_id = project.json()["id"]

    # One user per simulated annotator, all members of the project.
    tokens = add_annotators(strongroom, admin, project_id, max(levels))

    started = time.monotonic()
    for number, data in enumerate(jsonl_files(side.tasks, per_file)):
        response = admin.post(
            f"/api/v1/projects/{project_id}/documents",
            files={"file": (f"notes-{number:03d}.jsonl", data, "application/x-ndjson")},
            timeout=1800,
        )
        response.raise_for_status()
    side.upload_seconds = round(time.monotonic() - started, 1)
    queued = _wait_queued(admin, project_id, side.tasks, timeout=7200)
    side.import_seconds = round(time.monotonic() - started, 1)
    side.import_tasks_per_second = round(queued / side.import_seconds, 1)
    if queued < side.tasks:
        side.notes.append(f"only {queued} of {side.tasks} tasks were queued")
    print(
        f"  {side.tool}: {queued} tasks queued in {side.import_seconds} s "
        f"(uploads answered after {side.upload_seconds} s)",
        flush=True,
    )

    def annotators(count: int) -> list[Annotator]:
        return [
            StrongroomAnnotator(
                n,
                _async_client(strongroom.url, {"authorization": f"Bearer {tokens[n]}"}),
                project_id,
            )
            for n in range(count)
        ]

    submitted = run_load(annotators, levels, seconds, side, overlap)
    listed = _listed_annotations(admin, project_id)
    side.invariants.listed_annotations = len(listed)
    side.invariants.lost_annotations = len(set(submitted) - listed)
    side.rss_end_mib = _memory(pids)
    side.peak_rss_mib = {name: peak_mib(pid) for name, pid in pids.items()}
    if profile is not None:

        def extra_level() -> Level:
            return run_level(annotators, min(50, max(levels)), seconds, [], [])

        profile(pids, extra_level)


# --- Label Studio ------------------------------------------------------------

LABEL_CONFIG = (
    "<View>\n"
    '  <Labels name="label" toName="text">\n'
    + "".join(f'    <Label value="{name}"/>\n' for name in LABELS)
    + "  </Labels>\n"
    '  <Text name="text" value="$text"/>\n'
    "</View>\n"
)


def label_studio_binary(venv: Path = LABEL_STUDIO_VENV) -> Path:
    """Label Studio's command, installing the latest release into its own venv."""
    binary = venv / "bin" / "label-studio"
    if not binary.exists():
        print(f"installing label-studio into {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "label-studio"],
            check=True,
        )
    return binary


def label_studio_version(venv: Path = LABEL_STUDIO_VENV) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "pip"), "show", "label-studio"],
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"^Version: (.+)$", out, re.M)
    return match.group(1) if match else "unknown"


class LabelStudio:
    """``label-studio start`` on its own port and data directory (SQLite)."""

    def __init__(self, work: Path, admin: str, password: str) -> None:
        self.work = work
        self.admin = admin
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> None:
        binary = label_studio_binary()
        self.work.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO")}
        env.update({"HOME": str(self.work / "home"), "PYTHONUNBUFFERED": "1"})
        log = (self.work / "label-studio.log").open("wb")
        self.process = subprocess.Popen(
            [
                str(binary),
                "start",
                "--no-browser",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.work / "data"),
                "--username",
                self.admin,
                "--password",
                self.password,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("label-studio exited:\n" + self.log_tail())
            try:
                if httpx.get(f"{self.url}/health/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        self.stop()
        raise RuntimeError("label-studio did not start:\n" + self.log_tail())

    def log_tail(self) -> str:
        path = self.work / "label-studio.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def pids(self) -> dict[str, int]:
        assert self.process is not None
        return {
            f"label-studio[{n}]" if n else "label-studio": pid
            for n, pid in enumerate(descendants(self.process.pid))
        }

    def personal_token(self, email: str, password: str, *, sign_up: bool) -> str:
        """A personal access token (a JWT refresh token) for a user.

        Signs the user up (or in) through the web forms, then asks the token
        endpoint for a token with that session, as the account page does.
        """
        with httpx.Client(base_url=self.url, timeout=60.0) as browser:
            page = "/user/signup/" if sign_up else "/user/login/"
            browser.get(page).raise_for_status()
            csrf = browser.cookies["csrftoken"]
            answer = browser.post(
                page,
                data={
                    "email": email,
                    "password": password,
                    "csrfmiddlewaretoken": csrf,
                },
                headers={"referer": self.url + page},
            )
            if (
                answer.status_code not in (200, 302)
                or "sessionid" not in browser.cookies
            ):
                raise RuntimeError(
                    f"label-studio refused {page} ({answer.status_code})"
                )
            csrf = browser.cookies["csrftoken"]
            created = browser.post(
                "/api/token/",
                headers={"x-csrftoken": csrf, "referer": self.url + "/"},
            )
            created.raise_for_status()
            token: str = created.json()["token"]
            return token

    def access_token(self, personal_token: str) -> str:
        """The short-lived access token a personal token is exchanged for."""
        response = httpx.post(
            f"{self.url}/api/token/refresh/",
            json={"refresh": personal_token},
            timeout=60,
        )
        response.raise_for_status()
        access: str = response.json()["access"]
        return access


class LabelStudioAnnotator(Annotator):
    def __init__(self, number: int, client: httpx.AsyncClient, project_id: int) -> None:
        super().__init__(number, client)
        self.project_id = project_id

    async def next(self) -> dict[str, Any] | None:
        # What its labeling stream asks for: the next task for this user.
        response = await self.client.get(f"/api/projects/{self.project_id}/next/")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        task: dict[str, Any] = response.json()
        return task

    async def submit(self, task: dict[str, Any]) -> str:
        response = await self.client.post(
            f"/api/tasks/{task['id']}/annotations/",
            json={
                "project": self.project_id,
                "lead_time": 1.0,
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "text",
                        "type": "labels",
                        "value": {
                            "start": 0,
                            "end": 4,
                            "text": "Note",
                            "labels": [LABELS[0]],
                        },
                    }
                ],
            },
        )
        response.raise_for_status()
        return str(response.json()["id"])


def measure_label_studio(
    tasks: int, levels: list[int], seconds: float, work: Path
) -> Side:
    """Start Label Studio, import, load it, count what it kept, stop it."""
    label_studio_binary()
    side = Side(tool="label-studio", version=label_studio_version(), tasks=tasks)
    admin_email = "admin@bench.example"
    server = LabelStudio(work, admin_email, PASSWORD)
    server.start()
    try:
        _label_studio_side(server, side, levels, seconds)
    finally:
        server.stop()
    return side


def _label_studio_side(
    server: LabelStudio, side: Side, levels: list[int], seconds: float
) -> None:
    side.rss_start_mib = _memory(server.pids())
    admin_token = server.personal_token(server.admin, server.password, sign_up=False)
    admin = httpx.Client(
        base_url=server.url,
        timeout=1800.0,
        headers={"authorization": f"Bearer {server.access_token(admin_token)}"},
    )
    project = admin.post(
        "/api/projects/",
        json={"title": "Queue benchmark", "label_config": LABEL_CONFIG},
    )
    project.raise_for_status()
    project_id: int = project.json()["id"]

    started = time.monotonic()
    for start in range(0, side.tasks, LABEL_STUDIO_BATCH):
        batch = [
            {"text": note(n)}
            for n in range(start, min(side.tasks, start + LABEL_STUDIO_BATCH))
        ]
        # A fresh access token per batch: they live five minutes.
        admin.headers["authorization"] = f"Bearer {server.access_token(admin_token)}"
        admin.post(f"/api/projects/{project_id}/import", json=batch).raise_for_status()
    side.import_seconds = round(time.monotonic() - started, 1)
    count = admin.get(f"/api/projects/{project_id}/").json()["task_number"]
    side.import_tasks_per_second = round(count / side.import_seconds, 1)
    if count != side.tasks:
        side.notes.append(f"label-studio holds {count} of {side.tasks} tasks")
    print(
        f"  label-studio: {count} tasks imported in {side.import_seconds} s", flush=True
    )

    tokens = [
        server.personal_token(f"annotator{n:03d}@bench.example", PASSWORD, sign_up=True)
        for n in range(max(levels))
    ]

    def annotators(count: int) -> list[Annotator]:
        return [
            LabelStudioAnnotator(
                n,
                _async_client(
                    server.url,
                    {"authorization": f"Bearer {server.access_token(tokens[n])}"},
                ),
                project_id,
            )
            for n in range(count)
        ]

    submitted = run_load(annotators, levels, seconds, side, overlap=1)
    admin.headers["authorization"] = f"Bearer {server.access_token(admin_token)}"
    kept = sum(
        1
        for annotation_id in submitted
        if admin.get(f"/api/annotations/{annotation_id}/").status_code == 200
    )
    side.invariants.listed_annotations = kept
    side.invariants.lost_annotations = len(submitted) - kept
    pids = server.pids()
    side.rss_end_mib = _memory(pids)
    side.peak_rss_mib = {name: peak_mib(pid) for name, pid in pids.items()}
    admin.close()


# --- cluster mode ------------------------------------------------------------


def measure_cluster(tasks: int, levels: list[int], seconds: float, work: Path) -> Side:
    """The Strongroom side on PostgreSQL, Kafka, S3 and OpenSearch.

    The servers are the integration-test ones (tests/backends); identity stays
    local, so the same users and tokens work.
    """
    from strongroom.services.common.config import SERVICE_NAMES
    from tests.backends.kafka import start_kafka
    from tests.backends.opensearch import start_opensearch
    from tests.backends.postgres import start_postgres
    from tests.backends.s3 import start_s3_server

    # As root the postgres account must reach its folder, so not ``work``.
    postgres_dir = Path(tempfile.mkdtemp(prefix="lq-pg-", dir="/tmp"))
    stops: list[Callable[[], None]] = [
        lambda: shutil.rmtree(postgres_dir, ignore_errors=True)
    ]
    try:
        postgres = start_postgres(postgres_dir)
        stops.append(postgres.stop)
        kafka = start_kafka(work / "kafka")
        stops.append(kafka.stop)
        s3 = start_s3_server(work / "s3")
        stops.append(s3.stop)
        (work / "opensearch").mkdir()
        opensearch = start_opensearch(work / "opensearch", work / "opensearch.log")
        stops.append(opensearch.stop)

        run = uuid.uuid4().hex[:8]
        for name in (*SERVICE_NAMES, "identity"):
            postgres.url_for(f"bench_{run}_{name}")
        template = postgres.url_for(f"bench_{run}_identity").replace(
            f"_{run}_identity", f"_{run}_{{service}}"
        )
        settings = {
            "database_url_template": template,
            "event_bus": "kafka",
            "kafka_bootstrap_servers": kafka.bootstrap_servers,
            "object_store": "s3",
            "s3_endpoint": s3.endpoint,
            "s3_access_key": s3.access_key,
            "s3_secret_key": s3.secret_key,
            "s3_secure": False,
            "s3_bucket_prefix": f"bench-{run}-",
            "audit_index": "opensearch",
            "opensearch_url": opensearch.url,
            "opensearch_index_prefix": f"bench-{run}-audit",
        }
        config = work / "cluster.toml"
        config.write_text(
            "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
        )
        return measure_strongroom(
            tasks,
            levels,
            seconds,
            work / "strongroom",
            up_args=["--cluster", str(config)],
            tool="strongroom-cluster",
        )
    finally:
        for stop in reversed(stops):
            stop()


# --- profile -----------------------------------------------------------------

PY_SPY_VENV = Path.home() / ".cache" / "strongroom" / "py-spy-venv"


def py_spy() -> Path:
    binary = PY_SPY_VENV / "bin" / "py-spy"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PY_SPY_VENV)], check=True)
        subprocess.run(
            [str(PY_SPY_VENV / "bin" / "pip"), "install", "--quiet", "py-spy"],
            check=True,
        )
    return binary


def hot_spots(collapsed: str, top: int = 12) -> list[str]:
    """The frames most samples were in (own time), from py-spy's raw output."""
    own: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        leaf = stack.split(";")[-1]
        own[leaf] = own.get(leaf, 0) + samples
    ranked = sorted(own.items(), key=lambda item: -item[1])[:top]
    return [f"{100 * n / max(total, 1):5.1f}% {frame}" for frame, n in ranked]


def within(collapsed: str, markers: tuple[str, ...], top: int = 15) -> list[str]:
    """Inclusive time of the frames whose text contains one of ``markers``."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        # By function, whichever of its lines the sample was on.
        functions = {re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")}
        for frame in functions:
            if any(marker in frame for marker in markers):
                inclusive[frame] = inclusive.get(frame, 0) + samples
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])[:top]
    return [f"{100 * n / max(total, 1):5.1f}% {frame}" for frame, n in ranked]


def sample_processes(
    pids: dict[str, int], names: Sequence[str], run: Callable[[], T], out: Path
) -> tuple[T, dict[str, list[str]]]:
    """py-spy on the named processes while ``run`` runs: its result, and each
    process's hot spots (own time, and inclusive within Strongroom's code)."""
    binary = py_spy()
    out.mkdir(parents=True, exist_ok=True)
    samplers = {
        name: subprocess.Popen(
            [str(binary), "record", "--pid", str(pids[name]), "--format", "raw",
             "--rate", "50", "--nonblocking", "--output", str(out / f"{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in names
    }  # fmt: skip
    time.sleep(1.0)
    result = run()
    for sampler in samplers.values():
        sampler.send_signal(signal.SIGINT)
    found: dict[str, list[str]] = {}
    for name, sampler in samplers.items():
        sampler.wait(60)
        path = out / f"{name}.txt"
        if not path.exists():
            found[name] = ["py-spy wrote no samples"]
            continue
        collapsed = path.read_text()
        found[f"{name} own time"] = hot_spots(collapsed)
        found[f"{name} inclusive"] = within(collapsed, ("strongroom/", "services/"))
    return result, found


def profile_strongroom(
    pids: dict[str, int], run: Callable[[], Level], out: Path
) -> dict[str, list[str]]:
    """Sample the gateway, tasks and labeling processes during ``run``."""
    level, found = sample_processes(pids, ("gateway", "tasks", "labeling"), run, out)
    found["level"] = [
        f"{level.annotators} annotators, {level.completed} tasks, "
        f"next p50 {level.next.p50_ms} ms, submit p50 {level.submit.p50_ms} ms"
    ]
    return found


# --- report ------------------------------------------------------------------


def ratios(sides: list[Side]) -> dict[str, Any]:
    """Strongroom's figure divided by Label Studio's, level by level."""
    by_tool = {side.tool: side for side in sides}
    other = by_tool.get("label-studio")
    if other is None:
        return {}
    found: dict[str, Any] = {}
    for side in sides:
        if side.tool == "label-studio":
            continue

        def ratio(mine: float, theirs: float) -> float | None:
            return round(mine / theirs, 3) if theirs else None

        entry: dict[str, Any] = {
            "import_tasks_per_second": ratio(
                side.import_tasks_per_second, other.import_tasks_per_second
            )
        }
        theirs = {level.annotators: level for level in other.levels}
        for level in side.levels:
            match = theirs.get(level.annotators)
            if match is None:
                continue
            entry[f"{level.annotators}_annotators"] = {
                "next_p50": ratio(level.next.p50_ms, match.next.p50_ms),
                "next_p99": ratio(level.next.p99_ms, match.next.p99_ms),
                "submit_p50": ratio(level.submit.p50_ms, match.submit.p50_ms),
                "submit_p99": ratio(level.submit.p99_ms, match.submit.p99_ms),
                "tasks_per_second": ratio(
                    level.tasks_per_second, match.tasks_per_second
                ),
            }
        found[f"{side.tool} / label-studio"] = entry
    return found


def report(results: Results) -> str:
    lines = [f"{results.tasks} tasks, {results.seconds_per_level} s per level"]
    for side in results.sides:
        lines.append(
            f"{side.tool} {side.version}: import {side.import_seconds} s "
            f"({side.import_tasks_per_second} tasks/s)"
        )
        lines.append(
            f"  {'annotators':>10} {'tasks/s':>8} {'next p50':>9} {'p95':>8} "
            f"{'p99':>8} {'submit p50':>11} {'p95':>8} {'p99':>8}  errors"
        )
        for level in side.levels:
            lines.append(
                f"  {level.annotators:>10} {level.tasks_per_second:>8} "
                f"{level.next.p50_ms:>9} {level.next.p95_ms:>8} {level.next.p99_ms:>8} "
                f"{level.submit.p50_ms:>11} {level.submit.p95_ms:>8} "
                f"{level.submit.p99_ms:>8}  {level.next.errors + level.submit.errors}"
            )
        inv = side.invariants
        lines.append(
            f"  invariants: {inv.leases} leases, {inv.submitted} submitted, "
            f"{inv.double_assignments} double assignments, {inv.repeated_tasks} "
            f"repeated tasks, {inv.lost_annotations} lost annotations"
        )
        lines.append(
            "  RSS MiB start/end/peak: "
            + ", ".join(
                f"{name} {side.rss_start_mib.get(name, 0)}/{mib}"
                f"/{side.peak_rss_mib.get(name, 0)}"
                for name, mib in side.rss_end_mib.items()
            )
        )
        lines.extend(f"  note: {text}" for text in side.notes)
    for name, figures in results.ratios.items():
        lines.append(f"{name}: {json.dumps(figures)}")
    return "\n".join(lines)


def markdown(results: Results) -> str:
    """The latency table of benchmarks/README.md, with Strongroom / Label Studio."""
    by_tool = {side.tool: side for side in results.sides}
    other = by_tool.get("label-studio")
    lines = [
        "| tool | annotators | tasks/s | next p50 | next p95 | next p99 "
        "| submit p50 | submit p95 | submit p99 | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(mine: float, theirs: float | None) -> str:
        if theirs is None or not theirs or not mine:
            return f"{mine:,.1f}"
        return f"{mine:,.1f} ({mine / theirs:.2g}x)"

    for side in results.sides:
        theirs = {lv.annotators: lv for lv in other.levels} if other else {}
        for level in side.levels:
            match = None if side is other else theirs.get(level.annotators)
            pairs = [
                (level.tasks_per_second, match.tasks_per_second if match else None),
                (level.next.p50_ms, match.next.p50_ms if match else None),
                (level.next.p95_ms, match.next.p95_ms if match else None),
                (level.next.p99_ms, match.next.p99_ms if match else None),
                (level.submit.p50_ms, match.submit.p50_ms if match else None),
                (level.submit.p95_ms, match.submit.p95_ms if match else None),
                (level.submit.p99_ms, match.submit.p99_ms if match else None),
            ]
            figures = [cell(mine, peer) for mine, peer in pairs]
            errors = level.next.errors + level.submit.errors
            lines.append(
                f"| {side.tool} | {level.annotators} | "
                + " | ".join(figures)
                + f" | {errors} |"
            )
    return "\n".join(lines)


def _machine() -> str:
    cores = os.cpu_count() or 0
    return f"{cores} cores, Python {sys.version.split()[0]}, {os.uname().release}"


def run(args: argparse.Namespace, work: Path) -> Results:
    levels = [int(n) for n in str(args.levels).split(",") if n]
    results = Results(
        date=datetime.date.today().isoformat(),
        machine=_machine(),
        tasks=args.tasks,
        seconds_per_level=args.seconds,
    )
    # One platform at a time: each side starts, is measured and is stopped
    # before the next one starts.
    if args.label_studio:
        print("label-studio:", flush=True)
        results.sides.append(
            measure_label_studio(args.tasks, levels, args.seconds, work / "ls")
        )
    print("strongroom (embedded):", flush=True)
    profile: Profile | None = None
    if args.profile:

        def profile(pids: dict[str, int], extra: Callable[[], Level]) -> None:
            results.profile = profile_strongroom(pids, extra, Path(args.profile))

    side = measure_strongroom(
        args.tasks, levels, args.seconds, work / "strongroom", profile=profile
    )
    results.sides.append(side)
    if args.cluster:
        print("strongroom (cluster):", flush=True)
        cluster_levels = [n for n in levels if n <= args.cluster_annotators] or levels
        results.sides.append(
            measure_cluster(
                args.cluster_tasks or args.tasks,
                cluster_levels,
                args.seconds,
                work / "cluster",
            )
        )
    results.ratios = ratios(results.sides)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--levels", default="1,50,200")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--no-label-studio", dest="label_studio", action="store_false")
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--cluster-tasks", type=int, default=0)
    parser.add_argument("--cluster-annotators", type=int, default=50)
    parser.add_argument("--profile", type=Path, help="folder for py-spy samples")
    parser.add_argument("--short", action="store_true", help="a small run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path, help="write the README table here")
    args = parser.parse_args(argv)
    if args.short:
        args.tasks, args.levels, args.seconds = 2000, "1,10", 5.0
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-") as scratch:
        results = run(args, Path(scratch))
    print(report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(results), indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(results) + "\n")


if __name__ == "__main__":
    main()
