"""SeaweedFS as the test S3 server: built from source once, started per session.

SeaweedFS (Apache-2.0) implements bucket versioning, object lock and S3
checksums; S3Proxy, the other licence-clean choice, implements none of them.
The MinIO server is AGPL-licensed and is not used.

``go install module@version`` refuses SeaweedFS because its go.mod carries a
replace directive, so the module is downloaded and built in place, with
every Go cache under ``cache_dir("seaweedfs")``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3
from minio import Minio

from tests.backends.base import ServerProcess, free_port, go_build_cached, run

SEAWEEDFS_MODULE = "github.com/seaweedfs/seaweedfs"
SEAWEEDFS_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
ACCESS_KEY = "strongroom-test"
SECRET_KEY = "strongroom-test-secret"
START_TIMEOUT = 300.0
START_ATTEMPTS = 3
_BIND_FAILURE = "address already in use"


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: ServerProcess

    def stop(self) -> None:
        # A graceful stop spends about 20 s flushing the filer's metadata log
        # after the volume server has gone; the test data is thrown away.
        self.process.stop(grace=5.0)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server, stay down ``down_for`` seconds, start it on its data."""
        self.stop()
        time.sleep(down_for)
        self.process.start()


def prepare() -> Path:
    """Build the ``weed`` binary into the cache unless it is there; return it."""
    return go_build_cached("seaweedfs", f"weed-{SEAWEEDFS_VERSION}", _build)


def _build(partial: Path, env: dict[str, str]) -> None:
    module = f"{SEAWEEDFS_MODULE}@{SEAWEEDFS_VERSION}"
    go = env["GO"]
    info = json.loads(run([go, "mod", "download", "-json", module], env=env))
    run(
        [go, "build", "-trimpath", "-o", str(partial), "./weed"],
        cwd=Path(info["Dir"]),
        env=env,
    )


def start_s3_server(directory: Path) -> S3Server:
    """Start master, volume server, filer and S3 gateway on loopback ports.

    A free port can be taken by another process before SeaweedFS binds it;
    then SeaweedFS exits at once and is started again on other ports.
    """
    binary = prepare()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "s3.json"
    config.write_text(json.dumps(_identities()))

    for attempt in range(1, START_ATTEMPTS + 1):
        data = directory / "data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir()
        try:
            return _start(binary, directory, data, config)
        except RuntimeError as exc:
            if attempt == START_ATTEMPTS or _BIND_FAILURE not in str(exc):
                raise
    raise AssertionError("unreachable")


def _start(binary: Path, directory: Path, data: Path, config: Path) -> S3Server:
    ports = _free_ports(len(_PORT_FLAGS))
    endpoint = f"127.0.0.1:{ports[_PORT_FLAGS.index('s3.port')]}"
    command = [
        str(binary),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        "-filer",
        "-s3",
        f"-s3.config={config}",
        f"-s3.localSocket={directory / 's3.sock'}",
        f"-filer.localSocket={directory / 'filer.sock'}",
        # Extra listeners the tests do not need, and no calls home.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        # Small volumes, as many as the disk allows: each bucket is a collection
        # with volumes of its own, and the tests create many buckets.
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
        "-volume.minFreeSpace=256MiB",
        *(f"-{flag}={port}" for flag, port in zip(_PORT_FLAGS, ports, strict=True)),
    ]
    process = ServerProcess(
        "seaweedfs",
        command,
        log_path=directory / "seaweedfs.log",
        ready=lambda: _can_list_buckets(endpoint),
        # One volume per new collection instead of seven keeps bucket creation
        # quick on a two-core machine.
        env={"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"},
        cwd=directory,
        timeout=START_TIMEOUT,
    )
    process.start()
    return S3Server(endpoint, ACCESS_KEY, SECRET_KEY, process)


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


# Every listener gets a free port: SeaweedFS's defaults (9333, 8080, 8888 and
# their gRPC ports at +10000) collide with other servers on the machine.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def _identities() -> dict[str, object]:
    return {
        "identities": [
            {
                "name": "strongroom-test",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def _can_list_buckets(endpoint: str) -> bool:
    http = urllib3.PoolManager(timeout=5.0, retries=False)
    client = Minio(endpoint, ACCESS_KEY, SECRET_KEY, secure=False, http_client=http)
    try:
        client.list_buckets()
    finally:
        http.clear()
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "s3: the test needs the S3 test server")


_build_failures: list[Exception] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    # Build before the first test runs, so a cold build does not count
    # against that test's timeout. A failed build fails the tests that need
    # the server, through the fixture, and not the whole session.
    if any(
        "s3_server" in getattr(item, "fixturenames", ())
        or item.get_closest_marker("s3")
        for item in session.items
    ):
        try:
            prepare()
        except Exception as exc:
            _build_failures.append(exc)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if _build_failures:
        raise RuntimeError("SeaweedFS could not be built.") from _build_failures[0]
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()
