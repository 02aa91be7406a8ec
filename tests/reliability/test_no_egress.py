"""The whole path, ingest to export and import, inside a network namespace
with loopback only: it must pass, and no process may even try to reach
another host (every lookup and connect is watched, see egress/sitecustomize.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WATCH = Path(__file__).resolve().parent / "egress"
# The path a user walks: upload to export (test_path), and moving in from
# other tools with a signed export back out (test_import). `make reliability`
# names more in NO_EGRESS_TESTS.
PATH_TESTS = tuple(
    os.environ.get(
        "NO_EGRESS_TESTS", "tests/e2e/test_path.py tests/e2e/test_import.py"
    ).split()
)


@pytest.mark.timeout(3600)
def test_the_path_passes_with_no_network_and_tries_none(tmp_path: Path) -> None:
    assert shutil.which("unshare") and shutil.which("ip"), "needs util-linux, iproute2"
    log = tmp_path / "egress.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(WATCH), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "NO_EGRESS_LOG": str(log),
    }
    inner = " ".join(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "inner"), *PATH_TESTS]
    )  # fmt: skip
    run = subprocess.run(
        ["unshare", "--net", "sh", "-c", f"ip link set lo up && exec {inner}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3500,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
    attempts = log.read_text() if log.exists() else ""
    assert attempts == "", f"outbound attempts:\n{attempts}"
    watched = Path(f"{log}.watched").read_text()
    # The platform's own processes were among those watched.
    for service in ("ingestion", "redaction", "tasks", "labeling", "export", "audit"):
        assert service in watched, (service, watched[-2000:])


def test_the_watch_sees_an_attempt_to_call_out(tmp_path: Path) -> None:
    """The watcher itself, so an empty log above means something."""
    log = tmp_path / "egress.log"
    code = (
        "import socket\n"
        "for call in (lambda: socket.getaddrinfo('example.org', 443),\n"
        "             lambda: socket.create_connection(('192.0.2.1', 443), 0.2)):\n"
        "    try:\n"
        "        call()\n"
        "    except OSError:\n"
        "        pass\n"
        "socket.socket().connect_ex(('127.0.0.1', 9))\n"
        "socket.getaddrinfo('localhost', 80)\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(WATCH), "NO_EGRESS_LOG": str(log)},
        check=True,
        timeout=60,
    )
    lines = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    assert lines == ["lookup example.org:443", "connect 192.0.2.1:443"]
