"""Keycloak 26 in dev mode, with the Strongroom realm imported.

The distribution comes from Maven Central and is unpacked once into the
cache. Keycloak writes its database (H2 under ``data/``) and reads realms to
import from ``data/import`` relative to its home, so each server gets a home
of its own: ``bin/kc.sh``, ``conf/`` and ``data/`` are per run, while
``lib/``, ``themes/`` and ``providers/`` link to the cached distribution.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.backends.base import ServerProcess, cache_dir, free_port, run

VERSION = "26.7.3"
ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{VERSION}:tar.gz"
JAVA_HOME = Path(
    os.environ.get("STRONGROOM_KEYCLOAK_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64")
)
REALM = "strongroom"
REALM_FILE = (
    Path(__file__).resolve().parents[2]
    / "deploy"
    / "keycloak"
    / "strongroom-realm.json"
)
PUBLIC_CLIENT = "strongroom"
AUDIENCE = "strongroom"
SHORT_LIVED_CLIENT = "strongroom-test-short-lived"
HEAP = "-Xms64m -Xmx768m"
START_TIMEOUT = 240.0
# The first start also re-runs the Quarkus build for dev mode (a minute alone).
WARM_UP_TIMEOUT = 600.0

_COPY_GOAL = "org.apache.maven.plugins:maven-dependency-plugin:3.11.0:copy"
_READY_MARKER = ".strongroom-ready"
_WARM_UP_DIR = "warm-up"
_TEMPLATE_DIR = "template"
_SHARED_PARTS = ("lib", "themes", "providers")


def prepare() -> Path:
    """Return the cached distribution's home, fetching and warming it once.

    ``kc.sh build`` does not help here: the distribution is built for
    production, and ``start-dev`` re-builds it for the dev profile on its
    first start whatever ``build`` persisted. So the first preparation starts
    the server once: the dev-mode re-build lands in the cached ``lib/``, and
    the database it leaves behind (schema and master realm, about 45 seconds
    of work) becomes the template each later server copies.
    """
    root = cache_dir("keycloak")
    home = root / f"keycloak-{VERSION}"
    if (home / _READY_MARKER).exists():
        return home
    with (root / ".lock").open("w") as lock:
        # Two sessions preparing at once would unpack over each other.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / _READY_MARKER).exists():
            archive = _download(root)
            _unpack(archive, home)
            _warm_up(home)
            (home / _READY_MARKER).write_text(VERSION)
    return home


def _download(root: Path) -> Path:
    downloads = root / "download"
    archive = downloads / f"keycloak-quarkus-dist-{VERSION}.tar.gz"
    if archive.exists():
        return archive
    downloads.mkdir(parents=True, exist_ok=True)
    # ``copy`` fetches the archive alone; ``copy-dependencies`` would also
    # resolve the distribution's build dependencies, some of which live
    # outside Maven Central. The folder has no pom.xml, so mvn needs none.
    run(
        [
            "mvn",
            "-q",
            "-B",
            _COPY_GOAL,
            f"-Dartifact={ARTIFACT}",
            f"-DoutputDirectory={downloads}",
        ],
        cwd=downloads,
    )
    return archive


def _unpack(archive: Path, home: Path) -> None:
    staging = home.parent / "unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    (staging / home.name).rename(home)
    staging.rmdir()


def _warm_up(dist: Path) -> None:
    run_dir = dist / _WARM_UP_DIR
    shutil.rmtree(run_dir, ignore_errors=True)
    run_home = _lay_out_home(dist, run_dir)
    admin = {"username": "bootstrap-admin", "password": secrets.token_urlsafe(16)}
    port = free_port()
    process = ServerProcess(
        "keycloak (first start)",
        [str(run_home / "bin" / "kc.sh"), *_start_dev_args(port)],
        log_path=run_dir / "keycloak.log",
        ready=lambda: _realm_answers(port, "master"),
        env=_environment(admin["username"], admin["password"]),
        timeout=WARM_UP_TIMEOUT,
    )
    process.start()
    process.stop()
    template = dist / _TEMPLATE_DIR
    shutil.rmtree(template, ignore_errors=True)
    shutil.copytree(run_home / "data", template / "data")
    (template / "admin.json").write_text(json.dumps(admin))
    shutil.rmtree(run_dir)


def _lay_out_home(dist: Path, run_dir: Path) -> Path:
    home = run_dir / "home"
    (home / "bin").mkdir(parents=True)
    # kc.sh takes its home from its own resolved path, so it is copied, not linked.
    shutil.copy2(dist / "bin" / "kc.sh", home / "bin" / "kc.sh")
    shutil.copytree(dist / "conf", home / "conf")
    for part in _SHARED_PARTS:
        (home / part).symlink_to(dist / part, target_is_directory=True)
    template = dist / _TEMPLATE_DIR / "data"
    if template.exists():
        shutil.copytree(template, home / "data")
    (home / "data" / "import").mkdir(parents=True, exist_ok=True)
    return home


def _start_dev_args(port: int) -> list[str]:
    return [
        "start-dev",
        "--http-port",
        str(port),
        "--http-host",
        "127.0.0.1",
        "--import-realm",
    ]


def _environment(admin_username: str, admin_password: str) -> dict[str, str]:
    if not (JAVA_HOME / "bin" / "java").exists():
        raise RuntimeError(
            f"Keycloak {VERSION} needs Java 21 or later in {JAVA_HOME} "
            "(or set STRONGROOM_KEYCLOAK_JAVA_HOME)."
        )
    return {
        "JAVA_HOME": str(JAVA_HOME),
        # An inherited JAVA_OPTS would replace kc.sh's defaults and our heap cap.
        "JAVA_OPTS": "",
        "JAVA_OPTS_KC_HEAP": HEAP,
        # Creates the admin on the first start only; later servers start from
        # the template's database, which already holds that admin.
        "KC_BOOTSTRAP_ADMIN_USERNAME": admin_username,
        "KC_BOOTSTRAP_ADMIN_PASSWORD": admin_password,
    }


def _realm_answers(port: int, realm: str) -> bool:
    url = f"http://127.0.0.1:{port}/realms/{realm}/.well-known/openid-configuration"
    return httpx.get(url, timeout=5.0).status_code == 200


def realm_client_secrets(realm_file: Path = REALM_FILE) -> dict[str, str]:
    """The confidential clients' secrets, as the realm file declares them."""
    realm = json.loads(realm_file.read_text())
    return {
        client["clientId"]: client["secret"]
        for client in realm["clients"]
        if "secret" in client
    }


def realm_passwords(realm_file: Path = REALM_FILE) -> dict[str, str]:
    """The test users' passwords, as the realm file declares them."""
    realm = json.loads(realm_file.read_text())
    return {
        user["username"]: credential["value"]
        for user in realm["users"]
        for credential in user.get("credentials", [])
        if credential["type"] == "password"
    }


@dataclass
class KeycloakServer:
    base_url: str
    admin_username: str
    admin_password: str
    process: ServerProcess
    realm: str = REALM
    client_secrets: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{self.realm}"

    def token(
        self,
        username: str,
        password: str,
        *,
        client_id: str = PUBLIC_CLIENT,
        realm: str | None = None,
        base_url: str | None = None,
    ) -> str:
        """An access token from the password grant."""
        return self._token(
            {
                "grant_type": "password",
                "client_id": client_id,
                "username": username,
                "password": password,
                "scope": "openid",
            },
            realm or self.realm,
            base_url or self.base_url,
        )

    def service_token(self, client_id: str, secret: str | None = None) -> str:
        """An access token from the client-credentials grant."""
        return self._token(
            {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret or self.client_secrets[client_id],
            },
            self.realm,
            self.base_url,
        )

    def token_naming_another_issuer(self, username: str) -> str:
        """A genuine token of this realm whose ``iss`` names another host.

        Dev mode names the issuer after the host asked, so the same realm and
        key sign a token that says ``localhost`` instead of ``127.0.0.1``.
        """
        return self.token(
            username,
            self.passwords[username],
            base_url=self.base_url.replace("127.0.0.1", "localhost"),
        )

    def token_for_another_audience(self, username: str) -> str:
        """A token from the realm's public ``admin-cli`` client, which has no
        audience mapper for Strongroom."""
        return self.token(username, self.passwords[username], client_id="admin-cli")

    def expired_token(self) -> str:
        """A service-account token with a one-second lifespan, once it is past."""
        self._ensure_short_lived_client()
        token = self.service_token(SHORT_LIVED_CLIENT, "dev-only-short-lived")
        claims = jwt.decode(token, options={"verify_signature": False})
        time.sleep(max(0.0, claims["exp"] - time.time()) + 1.0)
        return token

    def _ensure_short_lived_client(self) -> None:
        found = self.admin("GET", f"{self.realm}/clients?clientId={SHORT_LIVED_CLIENT}")
        if found.json():
            return
        self.admin(
            "POST",
            f"{self.realm}/clients",
            {
                "clientId": SHORT_LIVED_CLIENT,
                "publicClient": False,
                "secret": "dev-only-short-lived",
                "serviceAccountsEnabled": True,
                "standardFlowEnabled": False,
                "attributes": {"access.token.lifespan": "1"},
                "protocolMappers": [
                    {
                        "name": "audience strongroom",
                        "protocol": "openid-connect",
                        "protocolMapper": "oidc-audience-mapper",
                        "config": {
                            "included.client.audience": AUDIENCE,
                            "access.token.claim": "true",
                        },
                    }
                ],
            },
        )

    def admin_token(self) -> str:
        return self.token(
            self.admin_username,
            self.admin_password,
            client_id="admin-cli",
            realm="master",
        )

    def admin(self, method: str, path: str, json_body: Any = None) -> httpx.Response:
        """Call the admin REST API under ``/admin/realms/``; raise unless 2xx."""
        response = httpx.request(
            method,
            f"{self.base_url}/admin/realms/{path.lstrip('/')}",
            json=json_body,
            headers={"Authorization": f"Bearer {self.admin_token()}"},
            timeout=30.0,
        )
        if response.is_error:
            raise RuntimeError(
                f"{method} {path} answered {response.status_code}: {response.text}"
            )
        return response

    def user_id(self, username: str) -> str:
        found = self.admin(
            "GET", f"{self.realm}/users?exact=true&username={username}"
        ).json()
        user_id: str = found[0]["id"]
        return user_id

    def stop(self) -> None:
        self.process.stop()

    def _token(self, form: dict[str, str], realm: str, base_url: str) -> str:
        url = f"{base_url}/realms/{realm}/protocol/openid-connect/token"
        response = httpx.post(url, data=form, timeout=30.0)
        if response.status_code != 200:
            # The error body names the OAuth error, never a credential.
            raise RuntimeError(
                f"The {form['grant_type']} grant for {form['client_id']} "
                f"answered {response.status_code}: {response.text}"
            )
        token: str = response.json()["access_token"]
        return token


def start_keycloak(run_dir: Path, realm_file: Path = REALM_FILE) -> KeycloakServer:
    """Start Keycloak in dev mode on a free loopback port with ``realm_file``."""
    dist = prepare()
    home = _lay_out_home(dist, run_dir)
    shutil.copy2(realm_file, home / "data" / "import" / realm_file.name)
    port = free_port()
    admin = json.loads((dist / _TEMPLATE_DIR / "admin.json").read_text())
    admin_username, admin_password = admin["username"], admin["password"]
    process = ServerProcess(
        "keycloak",
        [str(home / "bin" / "kc.sh"), *_start_dev_args(port)],
        log_path=run_dir / "keycloak.log",
        ready=lambda: _realm_answers(port, REALM),
        env=_environment(admin_username, admin_password),
        timeout=START_TIMEOUT,
    )
    process.start()
    return KeycloakServer(
        base_url=f"http://127.0.0.1:{port}",
        admin_username=admin_username,
        admin_password=admin_password,
        process=process,
        client_secrets=realm_client_secrets(realm_file),
        passwords=realm_passwords(realm_file),
    )


@pytest.fixture(scope="session")
def keycloak_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KeycloakServer]:
    server = start_keycloak(tmp_path_factory.mktemp("keycloak"))
    yield server
    server.stop()
