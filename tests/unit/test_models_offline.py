"""Model training and prediction with no network at all: a blank spaCy
pipeline needs nothing from outside the installed packages."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

SCRIPT = """
import socket
from strongroom.services.labeling import assistance, training
from strongroom.services.labeling.assistance import Example

try:
    socket.create_connection(("192.0.2.1", 80), timeout=1)
except OSError:
    pass
else:
    raise SystemExit("network reachable")
drugs = ["aspirin", "warfarin", "insulin", "metformin"]
examples = []
for index in range(24):
    drug = drugs[index % 4]
    text = f"Please stop {drug} before the operation."
    examples.append(Example(f"t{index}", text, spans=((12, 12 + len(drug), "DRUG"),)))
train, held = assistance.split_examples(examples)
spec = training.ModelSpec("spans", ("DRUG",))
run = training.TrainingRun(spec, tuple(train), tuple(held), epochs=8)
trained = training.train(run)
found = training.predict(spec, trained.model, ["Please stop insulin now."])
assert [s[:3] for s in found[0].spans] == [(12, 19, "DRUG")], found
print("ok", round(trained.scores["f1"], 3))
"""


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], check=False).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="unshare -n needs root here")
def test_models_train_and_predict_without_network() -> None:
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")
