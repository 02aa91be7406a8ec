"""`strongroom up`: every service and the gateway on one machine.

Each service runs as its own process, as it would in a cluster, with the
embedded adapters. The launcher restarts a process that dies, and on SIGINT
or SIGTERM stops the gateway first, then the services, each with a grace
period.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from strongroom.services.common.config import SERVICE_NAMES, Settings
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.errors import StrongroomError
from strongroom.services.common.runtime import PRIVATE_UMASK, open_object_store

_READY_TIMEOUT_SECONDS = 90.0
_STOP_GRACE_SECONDS = 15.0
# A process that keeps dying is given up on after this many quick restarts.
_MAX_RESTARTS = 5
_STABLE_SECONDS = 60.0
# Shared by every Strongroom started on this machine (see _start_turn).
_START_LOCK = Path(tempfile.gettempdir()) / "strongroom-start.lock"

FIRST_ADMIN = "admin"


@dataclass
class Child:
    name: str
    module: str
    log: IO[bytes]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)


def is_port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def cluster_environment(config: Path) -> dict[str, str]:
    """Turn a cluster configuration file (TOML) into STRONGROOM_* variables.

    Its keys are the settings' names, e.g. ``event_bus = "kafka"``.
    """
    with config.open("rb") as handle:
        values = tomllib.load(handle)
    unknown = set(values) - set(Settings.model_fields)
    if unknown:
        raise ValueError(
            f"Unknown settings in {config.name}: {', '.join(sorted(unknown))}."
        )
    return {
        f"STRONGROOM_{key.upper()}": str(value).lower()
        if isinstance(value, bool)
        else str(value)
        for key, value in values.items()
    }


def tls_refusal(settings: Settings) -> str | None:
    """Why the deployment's certificate settings cannot work, if they cannot."""
    if not settings.tls_cert_file and not settings.tls_key_file:
        return None
    for what, name in (
        ("certificate", settings.tls_cert_file),
        ("key", settings.tls_key_file),
    ):
        if not name:
            return (
                "STRONGROOM_TLS_CERT_FILE and STRONGROOM_TLS_KEY_FILE go "
                f"together; the {what} is missing."
            )
        if not Path(name).is_file():
            return f"The TLS {what} file {name} cannot be read."
    return None


def plan_environment(
    data_dir: Path, host: str, port: int, base: dict[str, str]
) -> dict[str, str]:
    """Choose addresses for every process and return the STRONGROOM_* variables."""
    defaults = Settings(data_dir=data_dir)
    env = {
        **base,
        "STRONGROOM_DATA_DIR": str(data_dir),
        "STRONGROOM_GATEWAY_HOST": host,
        "STRONGROOM_GATEWAY_PORT": str(port),
    }
    if base.get("STRONGROOM_IDENTITY", "local") == "local":
        is_tls = bool(base.get("STRONGROOM_TLS_CERT_FILE") or defaults.tls_cert_file)
        scheme = "https" if is_tls else "http"
        env["STRONGROOM_OIDC_ISSUER"] = f"{scheme}://{host}:{port}/oidc"
    taken = {port}
    for name in SERVICE_NAMES:
        default_port = int(defaults.address_of(name).rsplit(":", 1)[1])
        chosen = default_port
        if chosen in taken or not is_port_free(host, chosen):
            chosen = free_port(host)
        taken.add(chosen)
        env[f"STRONGROOM_{name.upper()}_ADDRESS"] = f"{host}:{chosen}"
    return env


def migrate_databases(
    settings: Settings, names: Sequence[str]
) -> Iterator[tuple[str, int]]:
    """Migrate each named service's database; yield how many migrations ran."""
    from strongroom.gateway.identity import identity_migrations, open_identity_database

    for name in names:
        if name == "gateway":
            engine = open_identity_database(settings)
            migrations = identity_migrations(settings)
        else:
            engine = create_database_engine(settings.database_url(name))
            store = importlib.import_module(f"strongroom.services.{name}.store")
            migrations = store.MIGRATIONS
        try:
            yield name, migrate(engine, migrations)
        finally:
            engine.dispose()


def ensure_first_admin(settings: Settings) -> str | None:
    """Create the first admin on an empty data directory; return its password."""
    from strongroom.gateway.identity import open_identity
    from strongroom.services.common.adapters.local_oidc import LocalOidcIssuer

    if settings.identity != "local":
        return None
    issuer = open_identity(settings)
    assert isinstance(issuer, LocalOidcIssuer)
    try:
        if issuer.has_users():
            return None
        password = secrets.token_urlsafe(18)
        issuer.create_user(FIRST_ADMIN, password, {"admin"})
        return password
    finally:
        issuer.engine.dispose()


def object_store_refusal(settings: Settings) -> str | None:
    """Why the embedded object store will not open (its key file), if it won't.

    Checked once before any process starts, so a refused key stops
    `strongroom up` with its reason instead of every service failing alike.
    """
    if settings.object_store != "local":
        return None
    try:
        open_object_store(settings)
    except StrongroomError as exc:
        return exc.message
    return None


class Launcher:
    def __init__(
        self,
        data_dir: Path,
        host: str,
        port: int,
        say: Callable[[str], None],
        cluster: dict[str, str] | None = None,
    ) -> None:
        self.cluster = cluster or {}
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.say = say
        self.stopping = threading.Event()
        self.children: list[Child] = []
        self.scheme = "http"
        # Trust for the gateway's own certificate, when it has one.
        self.verify: ssl.SSLContext | bool = True

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def run(self) -> int:
        # Every process started from here inherits the mask as well.
        os.umask(PRIVATE_UMASK)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        lock = _lock_data_dir(self.data_dir)
        if lock is None:
            self.say(f"Another Strongroom is already running on {self.data_dir}.")
            return 1
        try:
            return self._run()
        finally:
            os.close(lock)

    def _run(self) -> int:
        with _start_turn():
            env = self._start()
        if env is None:
            return 1
        self._supervise(env)
        self._stop_all()
        self.say("Strongroom stopped.")
        return 0

    def _start(self) -> dict[str, str] | None:
        """Choose the addresses, start every process and wait until they
        answer; the environment they run with, or None if they did not."""
        planned = plan_environment(self.data_dir, self.host, self.port, self.cluster)
        env = {**os.environ, **planned}
        os.environ.update(env)
        settings = Settings()
        refusal = object_store_refusal(settings) or tls_refusal(settings)
        if refusal:
            self.say(f"Strongroom cannot start: {refusal}")
            return None
        if settings.is_tls:
            self.scheme = "https"
            if settings.tls_ca_file:
                self.verify = ssl.create_default_context(cafile=settings.tls_ca_file)
        password = ensure_first_admin(settings)
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())

        self._start_all(env)
        if not self._wait_ready():
            self.say(
                "Strongroom did not become ready; see the logs in "
                f"{self.data_dir / 'logs'}."
            )
            self._stop_all()
            return None
        self._announce(password)
        return env

    def _start_all(self, env: dict[str, str]) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        run = self.data_dir / "run"
        run.mkdir(exist_ok=True)
        addresses = {n: env[f"STRONGROOM_{n.upper()}_ADDRESS"] for n in SERVICE_NAMES}
        (run / "services.json").write_text(json.dumps(addresses, indent=2) + "\n")
        modules = [(n, f"strongroom.services.{n}") for n in SERVICE_NAMES]
        modules.append(("gateway", "strongroom.gateway"))
        for name, module in modules:
            child = Child(name, module, (logs / f"{name}.log").open("ab"))
            self._spawn(child, env)
            self.children.append(child)

    def _spawn(self, child: Child, env: dict[str, str]) -> None:
        # A session of its own, so Ctrl-C reaches only the launcher, which
        # then stops the processes in order.
        child.process = subprocess.Popen(
            [sys.executable, "-m", child.module],
            env=env,
            stdout=child.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        (self.data_dir / "run" / f"{child.name}.pid").write_text(
            f"{child.process.pid}\n"
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self.stopping.is_set():
            if any(c.process and c.process.poll() is not None for c in self.children):
                return False
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=2.0, verify=self.verify)
                if ready.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    def _announce(self, password: str | None) -> None:
        self.say(f"Strongroom is running at {self.url}")
        self.say(f"Data directory: {self.data_dir}")
        if password:
            self.say(
                f"First admin created. Username: {FIRST_ADMIN}  Password: {password}"
            )
            self.say("This password is shown once; store it now.")
        self.say("Press Ctrl-C to stop.")

    def _supervise(self, env: dict[str, str]) -> None:
        while not self.stopping.wait(0.5):
            for child in self.children:
                assert child.process is not None
                if child.process.poll() is None:
                    continue
                if time.monotonic() - child.started_at > _STABLE_SECONDS:
                    child.restarts = 0
                if child.restarts >= _MAX_RESTARTS:
                    self.say(
                        f"The {child.name} process keeps failing; stopping Strongroom."
                    )
                    self.stopping.set()
                    break
                child.restarts += 1
                self.say(
                    f"The {child.name} process exited "
                    f"(code {child.process.returncode}); restarting it."
                )
                self._spawn(child, env)

    def _stop_all(self) -> None:
        # Gateway first, so no new request arrives while services drain.
        for child in reversed(self.children):
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                if child.name == "gateway":
                    _wait(child, _STOP_GRACE_SECONDS)
        for child in self.children:
            _wait(child, _STOP_GRACE_SECONDS)
            child.log.close()
            (self.data_dir / "run" / f"{child.name}.pid").unlink(missing_ok=True)


def _lock_data_dir(data_dir: Path) -> int | None:
    """Hold an exclusive lock on the data directory; None if another holds it."""
    (data_dir / "run").mkdir(exist_ok=True)
    fd = os.open(data_dir / "run" / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def _start_turn(timeout: float = _READY_TIMEOUT_SECONDS + 30) -> Iterator[None]:
    """Take this machine's turn to start, waiting while another Strongroom
    starts; go on without it if the lock cannot be had.

    Ports are chosen free and bound by the services a moment later, so two
    Strongrooms starting at once could choose the same one and one of them
    would fail. Each holds the turn until its services answer.
    """
    try:
        fd = os.open(_START_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def _wait(child: Child, grace: float) -> None:
    if child.process is None:
        return
    try:
        child.process.wait(grace)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()
