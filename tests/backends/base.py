"""Shared plumbing for the backend servers: cache, ports, processes, readiness."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

CACHE = Path(os.environ.get("STRONGROOM_CACHE", Path.home() / ".cache" / "strongroom"))


def cache_dir(name: str) -> Path:
    """A folder under the cache, outside the repository, kept between runs."""
    path = CACHE / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def go_build_cached(
    name: str, binary_name: str, build: Callable[[Path, dict[str, str]], None]
) -> Path:
    """Return the cached Go binary ``binary_name``, building it once if missing.

    ``build(partial, env)`` writes the binary to ``partial`` with every Go
    cache inside ``cache_dir(name)``; a lock keeps two pytest sessions from
    building it at the same time.
    """
    go = shutil.which("go") or "/usr/local/go/bin/go"
    root = cache_dir(name)
    binary = root / "bin" / binary_name
    if binary.exists():
        return binary
    env = {
        "GO": go,
        "GOPATH": str(root / "gopath"),
        "GOMODCACHE": str(root / "gomodcache"),
        "GOCACHE": str(root / "gocache"),
        # Lets a person delete the cache without chmod first.
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": "local",
    }
    with (root / ".build-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            binary.parent.mkdir(parents=True, exist_ok=True)
            partial = binary.with_name(binary.name + ".partial")
            build(partial, env)
            os.replace(partial, binary)
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 1800,
) -> str:
    """Run a set-up command; raise with its output when it fails."""
    result = subprocess.run(
        list(command),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def maven_fetch(
    artifacts: Sequence[str], destination: Path, *, artifact_type: str = "jar"
) -> None:
    """Lay the artifacts and their runtime dependencies in ``destination / "lib"``.

    ``artifacts`` are ``group:artifact:version`` coordinates. A marker file
    records what was fetched, so a warm cache costs nothing.
    """
    marker = destination / ".fetched"
    wanted = "\n".join([artifact_type, *artifacts])
    if marker.exists() and marker.read_text() == wanted:
        return
    destination.mkdir(parents=True, exist_ok=True)
    dependencies = "\n".join(
        "<dependency><groupId>{}</groupId><artifactId>{}</artifactId>"
        "<version>{}</version><type>{}</type></dependency>".format(
            *coordinates.split(":"), artifact_type
        )
        for coordinates in artifacts
    )
    pom = destination / "pom.xml"
    pom.write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0'
        "</modelVersion><groupId>strongroom.test</groupId><artifactId>fetch</artifactId>"
        f"<version>1</version><dependencies>{dependencies}</dependencies></project>"
    )
    goal = "org.apache.maven.plugins:maven-dependency-plugin:3.11.0:copy-dependencies"
    run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            goal,
            "-DincludeScope=runtime",
            f"-DoutputDirectory={destination / 'lib'}",
        ]
    )
    marker.write_text(wanted)


class ServerProcess:
    """One server process: started in its own session, stopped by its PID."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log_path: Path,
        ready: Callable[[], bool],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 180.0,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.ready = ready
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.ready():
                    return
            except Exception:  # any failure here means "not ready yet"
                pass
            time.sleep(0.5)
        code = self.process.poll()
        self.stop()
        raise RuntimeError(
            f"{self.name} did not become ready (exit code {code}):\n" + self.log_tail()
        )

    def stop(self, grace: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, characters: int = 8000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-characters:]
