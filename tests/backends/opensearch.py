"""A single-node OpenSearch from Maven Central for the audit index contract tests.

The integ-test distribution is the server and its transport module only: plain
HTTP, no security plugin, no extra analysers. It runs on the Java 17 found on
PATH. OpenSearch refuses to start as root, so under root (as CI runs) it is
started as a dedicated system user that owns the run's folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.base import (
    ServerProcess,
    cache_dir,
    free_port,
    maven_fetch,
    run,
)

VERSION = "2.19.6"
ARTIFACT = f"org.opensearch.distribution.integ-test-zip:opensearch:{VERSION}"
SERVICE_USER = "strongroom-search"
START_TIMEOUT = 240.0


def prepare() -> Path:
    """Fetch and unpack the distribution once; return its home folder."""
    root = cache_dir("opensearch")
    home = root / f"opensearch-{VERSION}"
    if (home / "bin" / "opensearch").exists():
        return home

    download = root / "download"
    maven_fetch([ARTIFACT], download, artifact_type="zip")
    archive = download / "lib" / f"opensearch-{VERSION}.zip"

    # Unpacked beside the target and renamed into place, so a run that stops
    # half-way never leaves a home that looks complete.
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root))
    try:
        _unzip(archive, staging)
        # The node may run as another user, who must read all of it.
        run(["chmod", "-R", "a+rX", str(staging)])
        (staging / f"opensearch-{VERSION}").rename(home)
    except OSError:
        # Another session may have renamed its own copy into place first.
        if not (home / "bin" / "opensearch").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def _unzip(archive: Path, destination: Path) -> None:
    # zipfile drops the Unix modes; bin/opensearch must stay executable.
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            path = Path(bundle.extract(member, destination))
            mode = (member.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


class OpenSearchServer:
    """One running node; ``url`` is its HTTP endpoint."""

    def __init__(self, process: ServerProcess, url: str, run_dir: Path) -> None:
        self.process = process
        self.url = url
        self.run_dir = run_dir
        self.pid = _read_pid(run_dir / "opensearch.pid")

    def stop(self) -> None:
        self._halt()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the node, stay down ``down_for`` seconds, start it on its data."""
        self._halt()
        time.sleep(down_for)
        self.process.start()
        self.pid = _read_pid(self.run_dir / "opensearch.pid")

    def _halt(self) -> None:
        self.process.stop()
        # runuser may put the JVM in a session of its own, out of reach of
        # the process-group kill; the PID file names it.
        if self.pid and _is_running(self.pid):
            _kill_and_wait(self.pid)


def start_opensearch(
    run_dir: Path, log_path: Path, *, timeout: float = START_TIMEOUT
) -> OpenSearchServer:
    """Start a single node on free loopback ports with its data in ``run_dir``."""
    home = prepare()
    http_port, transport_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}"
    config = _write_config(home, run_dir)

    command = [
        str(home / "bin" / "opensearch"),
        "-p",
        str(run_dir / "opensearch.pid"),
        "-Ediscovery.type=single-node",
        "-Enetwork.host=127.0.0.1",
        f"-Ehttp.port={http_port}",
        f"-Etransport.port={transport_port}",
        f"-Epath.data={run_dir / 'data'}",
        f"-Epath.logs={run_dir / 'logs'}",
    ]
    if os.geteuid() == 0:
        _hand_over(home, run_dir)
        command = ["runuser", "-u", SERVICE_USER, "--", *command]

    process = ServerProcess(
        "opensearch",
        command,
        log_path=log_path,
        ready=lambda: _is_ready(url),
        env={
            "OPENSEARCH_JAVA_HOME": _java_home(),
            "OPENSEARCH_PATH_CONF": str(config),
            "OPENSEARCH_JAVA_OPTS": "-Xms512m -Xmx512m",
            "OPENSEARCH_TMPDIR": str(run_dir / "tmp"),
        },
        cwd=home,
        timeout=timeout,
    )
    try:
        process.start()
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return OpenSearchServer(process, url, run_dir)


def _java_home() -> str:
    # The integ-test distribution bundles no JDK; without a Java home it looks
    # for one inside itself. An explicit OPENSEARCH_JAVA_HOME still wins.
    if os.environ.get("OPENSEARCH_JAVA_HOME"):
        return os.environ["OPENSEARCH_JAVA_HOME"]
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("OpenSearch needs Java 17 or newer on PATH.")
    return str(Path(java).resolve().parent.parent)


def _write_config(home: Path, run_dir: Path) -> Path:
    # A private copy of config/: the node writes nothing into the shared
    # distribution, and the JVM's GC log and heap dumps go to the run's folder
    # instead of paths relative to the distribution.
    config = run_dir / "config"
    shutil.copytree(home / "config", config)
    jvm_options = config / "jvm.options"
    jvm_options.write_text(
        jvm_options.read_text()
        .replace("file=logs/gc.log", f"file={run_dir / 'logs' / 'gc.log'}")
        .replace("HeapDumpPath=data", f"HeapDumpPath={run_dir / 'data'}")
        .replace("ErrorFile=logs/", f"ErrorFile={run_dir / 'logs'}/")
    )
    for name in ("data", "logs", "tmp"):
        (run_dir / name).mkdir(exist_ok=True)
    return config


def _hand_over(home: Path, run_dir: Path) -> None:
    """Let the service user read the distribution and own the run's folder."""
    known = subprocess.run(["id", "-u", SERVICE_USER], capture_output=True)
    if known.returncode != 0:
        result = subprocess.run(
            ["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", SERVICE_USER],
            capture_output=True,
            text=True,
        )
        # Exit code 9: another run created the user in the meantime.
        if result.returncode not in (0, 9):
            raise RuntimeError(f"useradd {SERVICE_USER} failed: {result.stderr}")
    _allow_traversal(home)
    _allow_traversal(run_dir)
    run(["chown", "-R", f"{SERVICE_USER}:", str(run_dir)])


def _allow_traversal(path: Path) -> None:
    # Only the search bit is added: the user can reach the folder by name but
    # cannot list the parents (the cache usually lives in root's home).
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _is_ready(url: str) -> bool:
    health = f"{url}/_cluster/health?wait_for_status=yellow&timeout=2s"
    with urllib.request.urlopen(health, timeout=5) as response:
        return bool(response.status == 200)


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_and_wait(pid: int, grace: float = 30.0) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _is_running(pid):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def opensearch_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OpenSearchServer]:
    """One node for the whole session; each test uses its own index prefix."""
    # The data lives under the cache rather than pytest's temporary folder:
    # pytest keeps that folder private to root, and a concurrent session may
    # reset its permissions while the node still writes there.
    runs = cache_dir("opensearch") / "runs"
    runs.mkdir(exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="node-", dir=runs))
    log_path = tmp_path_factory.mktemp("opensearch") / "opensearch.log"

    server = start_opensearch(run_dir, log_path)
    yield server
    server.stop()
