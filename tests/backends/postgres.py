"""PostgreSQL for the tests: Debian's server binaries, one private cluster per run.

The cluster is a throwaway: trust authentication on loopback only, and no
fsync, so it starts in seconds and never holds data worth keeping.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from tests.backends.base import ServerProcess, free_port, run

BINARY_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
# The account initdb and the server run as when the tests run as root,
# since PostgreSQL refuses to run as root.
SERVICE_ACCOUNT = "postgres"
# Names that need no quoting in a URL and fit PostgreSQL's 63-byte limit.
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # Small: the test machine runs other servers beside this one.
    "shared_buffers": "32MB",
}


def find_binaries() -> Path | None:
    """Return the newest ``bin`` folder that holds initdb and postgres, if any."""
    found = [
        folder
        for folder in BINARY_ROOT.glob("*/bin")
        if (folder / "initdb").is_file() and (folder / "postgres").is_file()
    ]
    return max(found, key=_major_version, default=None)


def prepare() -> Path:
    """Install Debian's PostgreSQL server when it is missing; return its ``bin``."""
    binaries = find_binaries()
    if binaries is None:
        _install_server()
        binaries = find_binaries()
    if binaries is None:
        raise RuntimeError(
            f"apt-get installed postgresql, but no initdb is under {BINARY_ROOT}."
        )
    return binaries


def _major_version(binaries: Path) -> tuple[int, ...]:
    return tuple(
        int(part) for part in binaries.parent.name.split(".") if part.isdigit()
    )


def _install_server() -> None:
    # sudo -n fails at once instead of waiting for a password nobody types.
    sudo = [] if _is_root() else ["sudo", "-n"]
    apt = [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    run([*apt, "update", "-qq"])
    run(
        [
            *apt,
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            # Other set-up steps may hold the dpkg lock for a while.
            "-o",
            "DPkg::Lock::Timeout=600",
            "postgresql",
        ]
    )


def _is_root() -> bool:
    return os.geteuid() == 0


class PostgresCluster:
    """A private cluster listening on 127.0.0.1, with its data in ``directory``."""

    def __init__(self, binaries: Path, directory: Path) -> None:
        self.binaries = binaries
        self.directory = directory
        self.data_dir = directory / "data"
        self.socket_dir = directory / "sockets"
        self.port = 0
        self._server: ServerProcess | None = None
        # As root, initdb and the server run as the service account.
        self._as_owner = ["runuser", "-u", SERVICE_ACCOUNT, "--"] if _is_root() else []

    def url_for(self, database: str) -> str:
        """Return a SQLAlchemy URL for ``database``, creating it when missing."""
        if not _DATABASE_NAME.fullmatch(database):
            raise ValueError(
                f"A test database name must match {_DATABASE_NAME.pattern}; "
                f"got {database!r}."
            )
        with self._admin() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if exists is None:
                # A concurrent caller may have created it in the meantime.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
                    )
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def drop(self, database: str) -> None:
        """Drop ``database``, disconnecting whoever is still connected to it."""
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(database)
                )
            )

    def server_version(self) -> str:
        with self._admin() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else ""

    def start(self, attempts: int = 3) -> None:
        """Create the cluster, then start its server on a free port.

        Another process can take the port between the probe and the bind, so
        a bind failure is retried on a new port.
        """
        self._initdb()
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            self._server = self._server_process()
            try:
                self._server.start()
                return
            except RuntimeError as exc:
                self._server = None
                if attempt == attempts or "already in use" not in str(exc):
                    raise

    def restart(
        self, down_for: float = 0.0, while_down: Callable[[], None] | None = None
    ) -> None:
        """Stop the server, stay down ``down_for`` seconds, start on the same port.

        ``while_down`` runs once the server has stopped, before it starts again.
        """
        self.stop()
        if while_down is not None:
            while_down()
        time.sleep(down_for)
        self._server = self._server_process()
        self._server.start()

    def stop(self) -> None:
        """Shut the server down fast: open sessions are ended, not waited for."""
        server, self._server = self._server, None
        if server is None:
            return
        try:
            if server.process is not None and server.process.poll() is None:
                self._run_as_owner(
                    [
                        str(self.binaries / "pg_ctl"),
                        "--pgdata",
                        str(self.data_dir),
                        "--mode=fast",
                        "--wait",
                        "--timeout=120",
                        "stop",
                    ]
                )
        finally:
            server.stop()

    def _initdb(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if _is_root():
            for path in (self.directory, self.socket_dir):
                shutil.chown(path, SERVICE_ACCOUNT, SERVICE_ACCOUNT)
            self._check_reachable()
        self._run_as_owner(
            [
                str(self.binaries / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                # Byte order for text, as SQLite compares it.
                "--locale=C",
                "--no-sync",
            ]
        )

    def _check_reachable(self) -> None:
        try:
            self._run_as_owner(["test", "-w", str(self.directory)])
        except RuntimeError as exc:
            raise RuntimeError(
                f"The {SERVICE_ACCOUNT} account cannot write to {self.directory}; "
                "every folder above it must be searchable by other users."
            ) from exc

    def _server_process(self) -> ServerProcess:
        settings = [
            argument
            for name, value in _SERVER_SETTINGS.items()
            for argument in ("-c", f"{name}={value}")
        ]
        command = [
            *self._as_owner,
            str(self.binaries / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            *settings,
        ]
        return ServerProcess(
            "postgres",
            command,
            log_path=self.directory / "server.log",
            ready=self._is_ready,
            cwd=self.directory,
            timeout=180.0,
        )

    def _is_ready(self) -> bool:
        with self._admin(connect_timeout=2):
            return True

    def _admin(self, connect_timeout: int = 10) -> psycopg.Connection[TupleRow]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=connect_timeout,
        )

    def _run_as_owner(self, command: list[str]) -> str:
        # The service account may not read the caller's working directory.
        return run([*self._as_owner, *command], cwd=self.directory, timeout=600)


def start_postgres(directory: Path, binaries: Path | None = None) -> PostgresCluster:
    """Create a cluster in ``directory`` and start it on a free loopback port.

    As root, ``directory`` must be reachable by the postgres account: every
    folder above it searchable by other users (``/tmp`` is; pytest's own
    temporary folders are not).
    """
    cluster = PostgresCluster(binaries or prepare(), directory)
    cluster.start()
    return cluster


@pytest.fixture(scope="session")
def postgres_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the whole test session."""
    binaries = prepare()
    directory, is_private = _run_directory(tmp_path_factory)
    try:
        cluster = start_postgres(directory, binaries)
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        if is_private:
            shutil.rmtree(directory, ignore_errors=True)


def _run_directory(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bool]:
    """Pick the cluster's folder; True when the caller must remove it afterwards."""
    if not _is_root():
        return tmp_path_factory.mktemp("postgres"), False
    # pytest's base temporary folder is private to root, so the postgres
    # account could not reach a cluster inside it.
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(tempfile.mkdtemp(prefix=f"strongroom-postgres-{stamp}-")), True
