"""The chart's commands and environment, run here as the images would run them.

No cluster and no container engine run on this machine, so each process is
started locally with exactly the command the chart gives its container (the
image's ENTRYPOINT, checked against deploy/Dockerfile) and the environment
the chart renders for it, pointed at the real backend servers of the test
harness. What Kubernetes itself would supply is supplied the same way here:
Secret values for ``secretKeyRef`` entries, a scratch folder for the mounted
data volume, and loopback ports for each pod's own address and for the
Service names, which only cluster DNS resolves.
"""

from __future__ import annotations

import json
import os
import re
import secrets as secrets_module
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from strongroom.services.common.config import SERVICE_NAMES
from strongroom.services.common.grpc_server import LIVENESS
from tests.backends.base import free_port
from tests.deploy.test_helm_chart import CHART, ROOT, by_kind, named, render
from tests.e2e.harness import wait_for

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
_STAGE = re.compile(r"^FROM runtime AS (\w+)\s*$")
_ENTRYPOINT = re.compile(r"^ENTRYPOINT (\[.*\])\s*$")


def dockerfile_entrypoints() -> dict[str, list[str]]:
    """The ENTRYPOINT of each final-stage target of deploy/Dockerfile."""
    entrypoints: dict[str, list[str]] = {}
    stage = ""
    for line in DOCKERFILE.read_text().splitlines():
        if match := _STAGE.match(line):
            stage = match.group(1)
        elif (match := _ENTRYPOINT.match(line)) and stage:
            entrypoints[stage] = json.loads(match.group(1))
    return entrypoints


def _container(manifests: list[dict[str, Any]], kind: str, name: str) -> Any:
    manifest = by_kind(manifests, kind)[name]
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    return container


def test_chart_commands_are_the_images_entrypoints(helm: Path) -> None:
    manifests = render(helm)
    entrypoints = dockerfile_entrypoints()

    assert set(entrypoints) == {"gateway", *SERVICE_NAMES}
    for component, entrypoint in entrypoints.items():
        container = _container(manifests, "Deployment", named(component))
        assert container["command"] == entrypoint, component
        assert container["image"].endswith(f"/strongroom-{component}:0.1.0")
    job = _container(manifests, "Job", named("migrate"))
    assert job["image"].endswith("/strongroom-gateway:0.1.0")


def _local_command(command: list[str]) -> list[str]:
    """The image's interpreter and console script are this virtualenv's."""
    if command[0] == "python":
        return [sys.executable, *command[1:]]
    if command[0] == "strongroom":
        return [sys.executable, "-m", "strongroom", *command[1:]]
    raise AssertionError(f"unexpected command {command}")


class ChartProcesses:
    """Every Strongroom process of one rendered release, started locally."""

    def __init__(self, manifests: list[dict[str, Any]], secrets: dict, root: Path):
        self.manifests = manifests
        self.secrets = secrets
        self.root = root
        self.ports = {name: free_port() for name in ("gateway", *SERVICE_NAMES)}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def environment(self, container: dict[str, Any], component: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
        for entry in container["env"]:
            if "value" in entry:
                env[entry["name"]] = entry["value"]
            else:
                ref = entry["valueFrom"]["secretKeyRef"]
                env[entry["name"]] = self.secrets[ref["name"]][ref["key"]]
        # What the pod's volume mounts and the cluster's Services provide.
        env["STRONGROOM_DATA_DIR"] = str(self.root / component)
        for entry in container.get("volumeMounts", []):
            if entry["name"] != "keys":
                continue
            # The Secret's files, in a scratch folder instead of the mount.
            mounted = self.mount_keys(component)
            for name, value in env.items():
                if value.startswith(entry["mountPath"] + "/"):
                    env[name] = str(mounted / Path(value).name)
        for name in SERVICE_NAMES:
            address = env[f"STRONGROOM_{name.upper()}_ADDRESS"]
            assert address == f"{named(name)}:{8470 + 1 + SERVICE_NAMES.index(name)}"
            env[f"STRONGROOM_{name.upper()}_ADDRESS"] = f"127.0.0.1:{self.ports[name]}"
        if component == "gateway":
            assert env["STRONGROOM_GATEWAY_HOST"] == "0.0.0.0"
            env["STRONGROOM_GATEWAY_HOST"] = "127.0.0.1"
            env["STRONGROOM_GATEWAY_PORT"] = str(self.ports["gateway"])
        elif component in SERVICE_NAMES:
            listen = env["STRONGROOM_GRPC_LISTEN_ADDRESS"]
            assert listen.startswith("0.0.0.0:"), listen
            env["STRONGROOM_GRPC_LISTEN_ADDRESS"] = f"127.0.0.1:{self.ports[component]}"
        return env

    def mount_keys(self, component: str) -> Path:
        """Write the files a component's ``keys`` Secret volume holds."""
        deployment = by_kind(self.manifests, "Deployment")[named(component)]
        (volume,) = [
            v for v in deployment["spec"]["template"]["spec"]["volumes"]
            if v["name"] == "keys"
        ]  # fmt: skip
        folder = self.root / "keys" / component
        folder.mkdir(parents=True, exist_ok=True)
        secret = self.secrets[volume["secret"]["secretName"]]
        for item in volume["secret"]["items"]:
            path = folder / item["path"]
            path.write_text(secret[item["key"]])
            path.chmod(0o440)
        return folder

    def run_migrations(self) -> str:
        container = _container(self.manifests, "Job", named("migrate"))
        result = subprocess.run(
            _local_command(container["command"]),
            env=self.environment(container, "migrate"),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def start(self, component: str) -> None:
        container = _container(self.manifests, "Deployment", named(component))
        log = (self.root / f"{component}.log").open("wb")
        self.processes[component] = subprocess.Popen(
            _local_command(container["command"]),
            env=self.environment(container, component),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def health(self, component: str, service: str = "") -> int:
        address = f"127.0.0.1:{self.ports[component]}"
        with grpc.insecure_channel(address) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=2
                )
            except grpc.RpcError:
                return -1
        status: int = reply.status
        return status

    def stop(self) -> dict[str, int | None]:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = None
        return codes

    def log(self, component: str) -> str:
        return (self.root / f"{component}.log").read_text(errors="replace")[-4000:]


@pytest.fixture
def release(
    helm: Path,
    tmp_path: Path,
    postgres_server: Any,
    kafka_server: Any,
    s3_server: Any,
    opensearch_server: Any,
    keycloak_server: Any,
) -> Iterator[ChartProcesses]:
    run = uuid.uuid4().hex[:8]
    urls = [
        postgres_server.url_for(f"chart_{run}_{name}")
        for name in (*SERVICE_NAMES, "identity")
    ]
    template = urls[0].replace(f"_{run}_{SERVICE_NAMES[0]}", f"_{run}_{{service}}")
    manifests = render(
        helm,
        "--set",
        f"backends.kafka.bootstrapServers={kafka_server.bootstrap_servers}",
        "--set",
        f"backends.s3.endpoint={s3_server.endpoint}",
        "--set",
        "backends.s3.secure=false",
        "--set",
        f"backends.s3.bucketPrefix=chart-{run}-",
        "--set",
        f"backends.opensearch.url={opensearch_server.url}",
        "--set",
        f"backends.opensearch.indexPrefix=chart-{run}-audit",
        "--set",
        f"backends.keycloak.issuer={keycloak_server.issuer}",
    )
    secrets = {
        "strongroom-s3": {
            "access-key": s3_server.access_key,
            "secret-key": s3_server.secret_key,
        },
        "strongroom-postgresql": {"url-template": template},
        # Made once by the operator (values.yaml tells how).
        "strongroom-redaction-key": {"redaction.key": secrets_module.token_hex(32)},
        "strongroom-export-signing-key": {
            "export-signing-key.pem": Ed25519PrivateKey.generate()
            .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            .decode()
        },
    }
    processes = ChartProcesses(manifests, secrets, tmp_path)
    yield processes
    processes.stop()


def test_chart_release_migrates_starts_and_becomes_ready(
    release: ChartProcesses,
) -> None:
    migrated = release.run_migrations()
    for component in ("gateway", *SERVICE_NAMES):
        release.start(component)

    serving = health_pb2.HealthCheckResponse.SERVING
    for component in SERVICE_NAMES:
        try:
            wait_for(lambda c=component: release.health(c) == serving, timeout=120)
        except AssertionError:
            pytest.fail(f"{component} never became ready:\n{release.log(component)}")
        assert release.health(component, LIVENESS) == serving
    gateway = f"http://127.0.0.1:{release.ports['gateway']}"
    wait_for(lambda: _status(f"{gateway}/readyz/gateway") == 200, timeout=60)
    wait_for(lambda: _status(f"{gateway}/readyz") == 200, timeout=60)
    codes = release.stop()

    assert [line.split(":")[0] for line in migrated.splitlines()] == [
        *SERVICE_NAMES,
        "gateway",
    ]
    assert codes == {name: 0 for name in SERVICE_NAMES} | {"gateway": codes["gateway"]}
    # uvicorn shuts down cleanly on SIGTERM, then ends by the same signal.
    assert codes["gateway"] in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in release.log("gateway")


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return -1


def test_chart_values_reach_the_processes(helm: Path) -> None:
    manifests = render(helm, "--set", "settings.maxUploadBytes=1234")
    env = {
        entry["name"]: entry.get("value")
        for entry in _container(manifests, "Deployment", named("ingestion"))["env"]
    }
    assert env["STRONGROOM_MAX_UPLOAD_BYTES"] == "1234"
    assert env["STRONGROOM_EVENT_BUS"] == "kafka"
    assert env["STRONGROOM_IDENTITY"] == "oidc"
    assert CHART.exists()
