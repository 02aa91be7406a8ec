"""Annotators and uploaders for Strongroom's load test.

Run by tests/reliability/test_load.py as its own process (`locust --headless`),
so gevent's monkeypatching never reaches pytest. The test passes, in the
environment:

- ``LOAD_PROJECT``: the project's id;
- ``LOAD_TOKENS``: a JSON file, ``{"annotators": [token, ...], "uploader": token}``;
  each annotator user takes a token of its own, so each is a different person;
- ``LOAD_UPLOADERS``: how many of the users upload (the rest annotate);
- ``LOAD_LOG``: where to write, when locust quits, what the users were
  answered: status counts per request kind, the documents and answers
  accepted, and each annotator's tasks in the order it was handed them.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, between, events, task
from locust.contrib.fasthttp import FastResponse
from locust.env import Environment
from locust.stats import RequestStats

from tests.reliability.load.documents import CLASSES, LABEL, SKIP_REASON, note

PROJECT = os.environ["LOAD_PROJECT"]
TOKENS = json.loads(Path(os.environ["LOAD_TOKENS"]).read_text())
UPLOADERS = int(os.environ.get("LOAD_UPLOADERS", "1"))
LOG_PATH = Path(os.environ["LOAD_LOG"])
# One answer in ten is a skip with a reason.
SKIP_SHARE = 0.1
# As the CLI does, an upload that met a 503 is sent again after a pause:
# ingestion returns the document an earlier attempt created, if any.
UPLOAD_RETRY_DELAYS = (1.0, 2.0, 4.0)
WORD = re.compile(r"[A-Za-z]{4,}")

statuses: Counter[str] = Counter()
refusals_without_problem: list[str] = []
uploads: list[str] = []
submitted: list[str] = []
skipped: list[str] = []
# Per annotator: [task id, what became of it] in the order "next" handed them.
handed: dict[int, list[list[str]]] = {}
_free_tokens = list(enumerate(TOKENS["annotators"]))


@events.request.add_listener
def count_status(
    name: str, response: Any, exception: BaseException | None, **_: Any
) -> None:
    status = getattr(response, "status_code", 0) or 0
    code = ""
    if status >= 400:
        kind = (response.headers.get("content-type") or "").split(";")[0]
        if kind == "application/problem+json":
            code = str(response.json().get("code", ""))
        else:
            refusals_without_problem.append(f"{name} {status} {kind}")
    statuses[f"{name} {status} {code}".strip()] += 1


@events.quitting.add_listener
def write_log(environment: Environment, **_: Any) -> None:
    # Quitting comes after the users stopped (each finished the request it
    # was in), so these figures count every answer the platform sent.
    LOG_PATH.write_text(
        json.dumps(
            {
                "figures": figures(environment.stats),
                "statuses": dict(statuses),
                "refusals_without_problem": refusals_without_problem,
                "uploads": uploads,
                "submitted": submitted,
                "skipped": skipped,
                "handed": {str(k): v for k, v in handed.items()},
            }
        )
    )


def figures(stats: RequestStats) -> dict[str, dict[str, float]]:
    """Requests, failures, throughput and latency per kind, and all together."""
    entries = sorted(stats.entries.values(), key=lambda entry: entry.name)
    return {
        entry.name: {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "per_second": round(entry.total_rps, 1),
            "p50_ms": entry.get_response_time_percentile(0.50),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": round(entry.max_response_time),
        }
        for entry in (*entries, stats.total)
    }


def _code(response: FastResponse) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


class Annotator(FastHttpUser):
    """Pulls the next task, answers it with a span and a class, or skips it."""

    wait_time = between(0.2, 1.0)
    network_timeout = 120.0
    connection_timeout = 30.0

    def on_start(self) -> None:
        self.number, token = _free_tokens.pop()
        self.auth = {"authorization": f"Bearer {token}"}
        self.tasks_seen = handed.setdefault(self.number, [])

    @task
    def annotate(self) -> None:
        lease = self._next()
        if lease is None:
            return
        entry = [lease["id"], "failed"]
        self.tasks_seen.append(entry)
        if random.random() < SKIP_SHARE:
            if self._skip(lease["id"]):
                entry[1] = "skipped"
        elif self._submit(lease):
            entry[1] = "submitted"

    def _next(self) -> dict[str, Any] | None:
        with self.client.post(
            f"/api/v1/projects/{PROJECT}/tasks/next",
            name="next",
            headers=self.auth,
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                lease: dict[str, Any] = response.json()
                return lease
            if response.status_code == 404 and _code(response) == "queue_empty":
                response.success()
            else:
                response.failure(f"next answered {response.status_code}")
        return None

    def _submit(self, lease: dict[str, Any]) -> bool:
        word = WORD.search(lease["text"])
        assert word is not None, "every note has a word of four letters"
        start = lease["window_start"] + word.start()
        with self.client.post(
            f"/api/v1/tasks/{lease['id']}/annotations",
            name="submit",
            headers=self.auth,
            json={
                "spans": [
                    {"start": start, "end": start + len(word[0]), "label": LABEL}
                ],
                "classes": [random.choice(CLASSES)],
                "seconds": round(random.uniform(5, 60), 1),
            },
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"submit answered {response.status_code}")
                return False
            submitted.append(response.json()["id"])
            return True

    def _skip(self, task_id: str) -> bool:
        with self.client.post(
            f"/api/v1/tasks/{task_id}/skip",
            name="skip",
            headers=self.auth,
            json={"reason": SKIP_REASON},
            catch_response=True,
        ) as response:
            if response.status_code != 204:
                response.failure(f"skip answered {response.status_code}")
                return False
            skipped.append(task_id)
            return True


class Uploader(FastHttpUser):
    """Uploads small text notes, one at a time, as a browser form would."""

    fixed_count = UPLOADERS
    wait_time = between(0.5, 2.0)
    network_timeout = 300.0
    connection_timeout = 30.0
    _made = 0

    def on_start(self) -> None:
        self.auth = {"authorization": f"Bearer {TOKENS['uploader']}"}

    @task
    def upload(self) -> None:
        Uploader._made += 1
        number = Uploader._made
        data = note("load", number).encode()
        for delay in (*UPLOAD_RETRY_DELAYS, None):
            with self.client.post(
                f"/api/v1/projects/{PROJECT}/documents",
                name="upload",
                headers=self.auth,
                files={"file": (f"load-{number}.txt", data, "text/plain")},
                catch_response=True,
            ) as response:
                if response.status_code == 201:
                    uploads.append(response.json()["id"])
                    return
                response.failure(f"upload answered {response.status_code}")
                if response.status_code != 503 or delay is None:
                    return
            gevent.sleep(delay)
