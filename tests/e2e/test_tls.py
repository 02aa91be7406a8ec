"""TLS between every part: the gateway speaks HTTPS only, every service's
gRPC server TLS only, and the calls between them trust a private CA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.harness import Strongroom, isolated_env, upload_file, wait_for
from tests.fixtures.tls import Pki, make_pki

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def strongroom(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> Iterator[Strongroom]:
    root = tmp_path_factory.mktemp("tls")
    env = isolated_env(
        root / "home",
        STRONGROOM_TLS_CERT_FILE=str(pki.cert_file),
        STRONGROOM_TLS_KEY_FILE=str(pki.key_file),
        STRONGROOM_TLS_CA_FILE=str(pki.ca_file),
        # The CLI trusts the private CA the usual way.
        SSL_CERT_FILE=str(pki.ca_file),
    )
    instance = Strongroom(data_dir=root / "data", env=env, ca_file=pki.ca_file)
    instance.start()
    yield instance
    instance.stop()


def test_the_whole_path_runs_over_tls(strongroom: Strongroom, tmp_path: Path) -> None:
    assert strongroom.url.startswith("https://")
    assert strongroom.admin_password
    admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
    project = admin.post("/api/v1/projects", json={"name": "TLS", "labels": ["X"]})
    project.raise_for_status()
    project_id = project.json()["id"]
    # Upload over REST, and with the CLI, which trusts the CA through SSL_CERT_FILE.
    assert upload_file(admin, project_id, "a.txt", b"Seen today.\n").status_code == 201
    note = tmp_path / "b.txt"
    note.write_text("Seen again today.\n")
    strongroom.cli(
        "login",
        "--url",
        strongroom.url,
        "--username",
        "admin",
        "--password",
        strongroom.admin_password,
    )
    strongroom.cli("ingest", "--project", project_id, str(note))
    # Ingestion, redaction and tasks talk to each other over TLS to get here.
    wait_for(
        lambda: admin.get(f"/api/v1/projects/{project_id}/tasks").json()["total"] == 2,
        timeout=90,
    )
    assert set(strongroom.health().values()) == {SERVING}


def test_the_web_sign_in_runs_over_tls(strongroom: Strongroom) -> None:
    assert strongroom.admin_password

    # The gateway exchanges the code at its own https token endpoint,
    # trusting the private CA.
    session = strongroom.browser_session("admin", strongroom.admin_password)
    made = session.client.post(
        "/api/v1/projects",
        json={"name": "TLS page", "labels": ["X"]},
        headers=session.csrf,
    )

    assert made.status_code == 201


def test_plain_http_is_not_served(strongroom: Strongroom) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{strongroom.port}/readyz", timeout=10)


def test_services_refuse_plaintext_and_strangers_certificates(
    strongroom: Strongroom, tmp_path: Path
) -> None:
    stranger = make_pki(tmp_path / "stranger", ca_name="Someone else's CA")
    request = health_pb2.HealthCheckRequest(service="")
    for name, address in strongroom.addresses().items():
        with grpc.insecure_channel(address) as channel:
            with pytest.raises(grpc.RpcError) as plain:
                health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
            assert plain.value.code() == grpc.StatusCode.UNAVAILABLE, name
        roots = grpc.ssl_channel_credentials(stranger.ca_file.read_bytes())
        with grpc.secure_channel(address, roots) as channel:
            with pytest.raises(grpc.RpcError) as untrusted:
                health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
            assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE, name


def test_a_certificate_without_its_key_stops_the_start(
    tmp_path: Path, pki: Pki
) -> None:
    env = isolated_env(
        tmp_path / "home",
        STRONGROOM_TLS_CERT_FILE=str(pki.cert_file),
    )
    instance = Strongroom(data_dir=tmp_path / "data", env=env, ca_file=pki.ca_file)
    with pytest.raises(RuntimeError, match="go together; the key is missing"):
        instance.start(timeout=60)
