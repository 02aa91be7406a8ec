"""Start a real `strongroom up` in a subprocess and drive it like a user."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

READY_LINE = "Strongroom is running at "
ANNOUNCED_LINE = "Press Ctrl-C to stop."
PASSWORD_PREFIX = "Password: "


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Strongroom:
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    admin_password: str | None = None
    # Extra arguments for `strongroom up`, e.g. ["--cluster", "cluster.toml"].
    up_args: list[str] = field(default_factory=list)
    # A command `strongroom up` runs under, e.g. one that mounts its disk.
    command_prefix: list[str] = field(default_factory=list)
    # The CA that signed the platform's certificate, when it runs with TLS.
    ca_file: Path | None = None
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def url(self) -> str:
        scheme = "https" if self.ca_file else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True

    def start(self, timeout: float = 120.0) -> None:
        self.output.clear()
        self.admin_password = None
        self._lines = queue.Queue()
        self.process = subprocess.Popen(
            [
                *self.command_prefix,
                sys.executable,
                "-m",
                "strongroom",
                "up",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                *self.up_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(
                    "strongroom up exited:\n" + "".join(self.output) + self.logs()
                )
            if PASSWORD_PREFIX in line:
                self.admin_password = line.split(PASSWORD_PREFIX, 1)[1].strip()
            if line.startswith(ANNOUNCED_LINE):
                return
        self.stop()
        raise RuntimeError(
            "strongroom up did not become ready:\n" + "".join(self.output) + self.logs()
        )

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def stop(self, timeout: float = 60.0, how: signal.Signals = signal.SIGTERM) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(how)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self.process = None
        return code

    def logs(self) -> str:
        directory = self.data_dir / "logs"
        if not directory.exists():
            return ""
        return "".join(
            f"\n== {p.name}\n{p.read_text()[-4000:]}"
            for p in sorted(directory.glob("*.log"))
        )

    def cli(
        self, *args: str, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "strongroom", *args],
            capture_output=True,
            text=True,
            env={**self.env, "STRONGROOM_URL": self.url},
            input=input_text,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"strongroom {' '.join(args)} failed "
                f"({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def token(self, username: str, password: str) -> str:
        response = httpx.post(
            f"{self.url}/oidc/token",
            data={"username": username, "password": password},
            verify=self.verify,
            # An external provider under load can take a while to answer.
            timeout=60,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            timeout=60.0,
            headers={"authorization": f"Bearer {token}"},
            verify=self.verify,
        )

    def browser_session(self, username: str, password: str) -> BrowserSession:
        """Sign in the way the web page does (/auth/login, the built-in login
        page, /auth/callback); return a client holding the session cookie."""
        with httpx.Client(base_url=self.url, timeout=60.0, verify=self.verify) as plain:
            started = plain.get("/auth/login")
            assert started.status_code == 303, started.text
            sign_in_secret = set_cookies(started)[SIGN_IN_COOKIE]
            request = dict(httpx.URL(started.headers["location"]).params)
            login = plain.post(
                "/oidc/authorize",
                data={**request, "username": username, "password": password},
            )
            assert login.status_code == 303, login.text
            back = plain.get(
                login.headers["location"],
                headers={"cookie": f"{SIGN_IN_COOKIE}={sign_in_secret}"},
            )
        assert back.status_code == 303 and back.headers["location"] == "/", back
        return BrowserSession.open(
            self.url, set_cookies(back)[SESSION_COOKIE], self.verify
        )

    def addresses(self) -> dict[str, str]:
        """The gRPC address of each running service."""
        loaded: dict[str, str] = json.loads(
            (self.data_dir / "run" / "services.json").read_text()
        )
        return loaded

    def channel(self, address: str) -> grpc.Channel:
        """A channel to a service, TLS when the platform runs with it."""
        if self.ca_file is None:
            return grpc.insecure_channel(address)
        roots = grpc.ssl_channel_credentials(self.ca_file.read_bytes())
        return grpc.secure_channel(address, roots)

    def health(self, service: str = "") -> dict[str, int]:
        """Each service's gRPC health status under ``service`` (a health name)."""
        statuses = {}
        for name, address in self.addresses().items():
            with self.channel(address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=10
                )
                statuses[name] = reply.status
        return statuses


SESSION_COOKIE = "strongroom_session"
SIGN_IN_COOKIE = "strongroom_sign_in"


@dataclass
class BrowserSession:
    """What a signed-in page holds: the session cookie and its CSRF token."""

    cookie: str
    csrf_token: str
    client: httpx.Client

    @classmethod
    def open(cls, url: str, cookie: str, verify: str | bool = True) -> BrowserSession:
        # The cookie header is set by hand: http.cookiejar keeps Secure
        # cookies off plain http, even on loopback, where browsers send them.
        client = httpx.Client(
            base_url=url,
            timeout=60.0,
            headers={"cookie": f"{SESSION_COOKIE}={cookie}"},
            verify=verify,
        )
        me = client.get("/api/v1/me")
        me.raise_for_status()
        return cls(cookie, me.json()["csrf_token"], client)

    @property
    def csrf(self) -> dict[str, str]:
        return {"x-csrf-token": self.csrf_token}


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """The cookies a response sets, by name (attributes dropped)."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0].strip().strip('"')
    return found


def upload_file(
    client: httpx.Client, project_id: str, name: str, data: bytes
) -> httpx.Response:
    """Upload bytes as a file the way a browser form would, naming no type."""
    return client.post(
        f"/api/v1/projects/{project_id}/documents",
        files={"file": (name, data, "application/octet-stream")},
        timeout=120,
    )


def signed_in_user(
    strongroom: Strongroom, admin: httpx.Client, username: str, roles: list[str]
) -> httpx.Client:
    """A new account holding ``roles``, signed in: its client."""
    created = admin.post("/api/v1/users", json={"username": username, "roles": roles})
    created.raise_for_status()
    return strongroom.client(strongroom.token(username, created.json()["password"]))


def add_annotators(
    strongroom: Strongroom,
    admin: httpx.Client,
    project_id: str,
    count: int,
    prefix: str = "annotator",
) -> list[str]:
    """Create ``count`` annotators, each a member of the project; their tokens."""
    tokens = []
    for n in range(count):
        username = f"{prefix}{n:03d}"
        created = admin.post(
            "/api/v1/users", json={"username": username, "roles": ["annotator"]}
        )
        created.raise_for_status()
        user = created.json()
        admin.post(
            f"/api/v1/projects/{project_id}/members",
            json={
                "username": username,
                "subject": user["subject"],
                "role": "annotator",
            },
        ).raise_for_status()
        tokens.append(strongroom.token(username, user["password"]))
    return tokens


def every_page(
    client: httpx.Client, path: str, key: str, limit: int = 500
) -> Iterator[dict[str, Any]]:
    """Each entry of a paged list (``{key: [...], "total": n}``), page by page."""
    offset = 0
    while True:
        response = client.get(path, params={"limit": limit, "offset": offset})
        response.raise_for_status()
        page = response.json()
        yield from page[key]
        offset += len(page[key])
        if not page[key] or offset >= page["total"]:
            return


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """The test's own HOME and config, with no STRONGROOM_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")})
    env.update(extra)
    return env


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1
) -> Any:
    """Poll until ``predicate`` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
