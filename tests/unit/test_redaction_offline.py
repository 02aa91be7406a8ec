"""Redaction with no network at all: the model loads from its package folder."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

SCRIPT = """
import socket
from strongroom.services.redaction.domain import find_identifiers
from strongroom.services.redaction.ner import shared_model

try:
    socket.create_connection(("192.0.2.1", 80), timeout=1)
except OSError:
    pass
else:
    raise SystemExit("network reachable")
text = "Dr. Alan Brooks saw Maria Lopez in Leeds; call (217) 555-0143."
model = shared_model()
found = {(f.type, text[f.start:f.end]) for f in find_identifiers(
    text, entities=model.entities(text))}
assert ("NAME", "Maria Lopez") in found, found
assert ("PHONE", "(217) 555-0143") in found, found
print("ok", model.version)
"""


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], check=False).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="unshare -n needs root here")
def test_redaction_runs_without_network() -> None:
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")
