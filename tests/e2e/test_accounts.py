"""Accounts of the built-in issuer, over REST and the CLI: disable and
enable, password resets and changes, roles, the password policy, lockout
without an oracle, and the TOTP second factor; every change audited.

The platform runs with a tiny lockout (5 failures, then 2 s, doubling to
4 s) so the lock can be watched ending.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from strongroom.gateway import app as gateway_app
from strongroom.gateway.identity import ExternalIdentity, open_identity_database
from strongroom.services.common import totp
from strongroom.services.common.auth import Principal
from strongroom.services.common.config import Settings
from tests.e2e.harness import Strongroom, isolated_env, wait_for

PASSWORD = "quiet meadow lantern 7"
NEW_PASSWORD = "amber tide compass 42"
LOCK_SECONDS = 2.0
LOCKOUT_ENV = {
    "STRONGROOM_LOGIN_LOCKOUT_THRESHOLD": "5",
    "STRONGROOM_LOGIN_LOCKOUT_WINDOW_SECONDS": "60",
    "STRONGROOM_LOGIN_LOCKOUT_BASE_SECONDS": str(LOCK_SECONDS),
    "STRONGROOM_LOGIN_LOCKOUT_MAX_SECONDS": str(2 * LOCK_SECONDS),
}


@pytest.fixture(scope="module")
def strongroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strongroom]:
    root = tmp_path_factory.mktemp("accounts")
    instance = Strongroom(
        data_dir=root / "data", env=isolated_env(root / "home", **LOCKOUT_ENV)
    )
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def admin(strongroom: Strongroom) -> httpx.Client:
    assert strongroom.admin_password
    return strongroom.client(strongroom.token("admin", strongroom.admin_password))


@pytest.fixture(scope="module")
def admin_cli(strongroom: Strongroom) -> Strongroom:
    """The module's platform with the CLI signed in as the first admin."""
    assert strongroom.admin_password
    strongroom.cli(
        "login", "--username", "admin", "--password", strongroom.admin_password
    )
    return strongroom


def _cli_as(
    strongroom: Strongroom, home: Path, *args: str, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI with its own home, so its saved sign-in is not the admin's."""
    env = {
        **strongroom.env,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "STRONGROOM_URL": strongroom.url,
    }
    return subprocess.run(
        [sys.executable, "-m", "strongroom", *args],
        capture_output=True,
        text=True,
        env=env,
        input=input_text,
        timeout=120,
    )


def _sign_in(strongroom: Strongroom, username: str, password: str, **extra: str):
    return httpx.post(
        f"{strongroom.url}/oidc/token",
        data={"username": username, "password": password, **extra},
    )


def _create(admin: httpx.Client, username: str, roles: list[str]) -> dict[str, Any]:
    made = admin.post(
        "/api/v1/users",
        json={"username": username, "roles": roles, "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


def _events_on(admin: httpx.Client, subject: str) -> list[dict[str, Any]]:
    found = admin.get(
        "/api/v1/audit/events", params={"resource_id": subject, "limit": 200}
    )
    assert found.status_code == 200, found.text
    events: list[dict[str, Any]] = found.json()["events"]
    return events


def _wait_for_actions(
    admin: httpx.Client, subject: str, *actions: str
) -> list[dict[str, Any]]:
    def arrived() -> list[dict[str, Any]] | None:
        events = _events_on(admin, subject)
        seen = {e["action"] for e in events}
        return events if set(actions) <= seen else None

    events: list[dict[str, Any]] = wait_for(arrived, timeout=30)
    return events


def _status_and_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("code", "")


class Codes:
    """Fresh TOTP codes: each one for a later time step than the last, as a
    used code is never accepted twice (the step after now is accepted)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.last_step = -1

    def next(self) -> str:
        while True:
            now = totp.time_step()
            for step in (now, now + 1):
                if step > self.last_step:
                    self.last_step = step
                    return totp.hotp(totp.decode_secret(self.secret), step)
            time.sleep(totp.STEP_SECONDS - time.time() % totp.STEP_SECONDS + 0.2)


def test_a_disabled_account_cannot_sign_in_and_its_token_stops_working(
    strongroom: Strongroom, admin: httpx.Client, admin_cli: Strongroom
) -> None:
    dina = _create(admin, "dina", ["annotator"])
    token = strongroom.token("dina", PASSWORD)
    as_dina = strongroom.client(token)
    assert as_dina.get("/api/v1/projects").status_code == 200

    out = admin_cli.cli("user", "disable", "dina").stdout

    assert "Disabled dina." in out
    assert _status_and_code(_sign_in(strongroom, "dina", PASSWORD)) == (
        401,
        "bad_credentials",
    )
    assert _status_and_code(as_dina.get("/api/v1/projects")) == (
        401,
        "account_disabled",
    )
    listed = admin_cli.cli("user", "list").stdout
    assert "dina\tannotator [disabled]" in listed

    admin_cli.cli("user", "enable", "dina")

    assert (
        strongroom.client(strongroom.token("dina", PASSWORD))
        .get("/api/v1/projects")
        .status_code
        == 200
    )
    assert _status_and_code(as_dina.get("/api/v1/projects")) == (401, "token_revoked")
    events = _wait_for_actions(admin, dina["subject"], "user.disable", "user.enable")
    for event in events:
        if event["action"] in ("user.disable", "user.enable"):
            assert event["actor"]["username"] == "admin"
            assert event["details"]["username"] == "dina"


def test_a_reset_password_replaces_the_old_one_and_must_be_changed(
    strongroom: Strongroom, admin: httpx.Client, admin_cli: Strongroom, tmp_path: Path
) -> None:
    rene = _create(admin, "rene", ["annotator"])

    out = admin_cli.cli("user", "reset-password", "rene").stdout

    one_time = out.split("Password (shown once): ", 1)[1].strip()
    assert _status_and_code(_sign_in(strongroom, "rene", PASSWORD)) == (
        401,
        "bad_credentials",
    )
    pending = strongroom.client(strongroom.token("rene", one_time))
    assert _status_and_code(pending.get("/api/v1/projects")) == (
        403,
        "password_change_required",
    )
    weak = pending.post(
        "/api/v1/users/me/password",
        json={"current_password": one_time, "new_password": one_time},
    )
    assert _status_and_code(weak) == (400, "password_weak")

    login = _cli_as(
        strongroom,
        tmp_path,
        "login",
        "--username",
        "rene",
        "--password",
        one_time,
        input_text=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n",
    )

    assert login.returncode == 0, login.stdout + login.stderr
    assert "choose a new one" in login.stdout
    me = _cli_as(strongroom, tmp_path, "project", "list")
    assert me.returncode == 0, me.stdout + me.stderr
    assert _sign_in(strongroom, "rene", one_time).status_code == 401
    assert _sign_in(strongroom, "rene", NEW_PASSWORD).status_code == 200
    events = _wait_for_actions(
        admin, rene["subject"], "user.password.reset", "user.password.change"
    )
    assert all(one_time not in str(e) and NEW_PASSWORD not in str(e) for e in events)


def test_a_user_changes_their_own_password_with_the_current_one(
    strongroom: Strongroom, admin: httpx.Client, tmp_path: Path
) -> None:
    cleo = _create(admin, "cleo", ["reviewer"])
    signed_in = _cli_as(
        strongroom, tmp_path, "login", "--username", "cleo", "--password", PASSWORD
    )
    assert signed_in.returncode == 0, signed_in.stderr

    wrong = _cli_as(
        strongroom,
        tmp_path,
        "user",
        "change-password",
        "--current-password",
        "not the password",
        "--new-password",
        NEW_PASSWORD,
    )
    changed = _cli_as(
        strongroom,
        tmp_path,
        "user",
        "change-password",
        "--current-password",
        PASSWORD,
        "--new-password",
        NEW_PASSWORD,
    )

    assert wrong.returncode != 0
    assert "current_password_wrong" in wrong.stderr
    assert changed.returncode == 0, changed.stderr
    still = _cli_as(strongroom, tmp_path, "project", "list")
    assert still.returncode == 0, still.stderr
    assert _sign_in(strongroom, "cleo", NEW_PASSWORD).status_code == 200
    events = _wait_for_actions(admin, cleo["subject"], "user.password.change")
    outcomes = {e["outcome"] for e in events if e["action"] == "user.password.change"}
    assert outcomes == {"success", "denied"}


def test_a_role_change_takes_effect_at_the_next_sign_in(
    strongroom: Strongroom, admin: httpx.Client, admin_cli: Strongroom
) -> None:
    rolf = _create(admin, "rolf", ["annotator"])
    before = strongroom.client(strongroom.token("rolf", PASSWORD))
    assert before.get("/api/v1/me").json()["roles"] == ["annotator"]

    out = admin_cli.cli(
        "user", "set-roles", "rolf", "--role", "manager", "--role", "reviewer"
    ).stdout

    assert "rolf now has manager, reviewer." in out
    assert _status_and_code(before.get("/api/v1/me")) == (401, "token_revoked")
    after = strongroom.client(strongroom.token("rolf", PASSWORD))
    assert after.get("/api/v1/me").json()["roles"] == ["manager", "reviewer"]
    events = _wait_for_actions(admin, rolf["subject"], "user.roles.set")
    (change,) = [e for e in events if e["action"] == "user.roles.set"]
    assert change["details"] == {
        "username": "rolf",
        "previous_roles": "annotator",
        "roles": "manager,reviewer",
    }
    demote_self = admin.put("/api/v1/users/admin/roles", json={"roles": ["auditor"]})
    assert _status_and_code(demote_self) == (400, "last_admin")


@pytest.mark.parametrize(
    ("username", "password", "rule"),
    [
        ("wendy", "short", "12 to 1024 characters"),
        ("wendy.walker.1", "wendy.walker.1", "not be the username"),
        ("wendy", "Password1234", "common passwords"),
    ],
)
def test_weak_passwords_are_refused_naming_the_rule(
    admin: httpx.Client, username: str, password: str, rule: str
) -> None:
    refused = admin.post(
        "/api/v1/users",
        json={"username": username, "roles": ["annotator"], "password": password},
    )

    assert _status_and_code(refused) == (400, "password_weak")
    assert rule in refused.json()["detail"]
    assert password not in refused.text.replace(f'"{username}"', "")


def test_lockout_refuses_even_the_right_password_without_an_oracle(
    strongroom: Strongroom, admin: httpx.Client
) -> None:
    lola = _create(admin, "lola", ["annotator"])

    def five_failures_then(username: str, password: str) -> list[httpx.Response]:
        answers = [_sign_in(strongroom, username, "wrong password") for _ in range(5)]
        answers.append(_sign_in(strongroom, username, password))
        return answers

    known = five_failures_then("lola", PASSWORD)
    unknown = five_failures_then("nobody-at-all", PASSWORD)

    for answer in [*known, *unknown]:
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert {a.text for a in known} == {a.text for a in unknown}
    assert known[-1].json()["code"] == "bad_credentials"

    time.sleep(LOCK_SECONDS)
    assert wait_for(
        lambda: _sign_in(strongroom, "lola", PASSWORD).status_code == 200, timeout=10
    )
    # A success forgets the failures: one more mistake does not lock again.
    assert _sign_in(strongroom, "lola", "wrong password").status_code == 401
    assert _sign_in(strongroom, "lola", PASSWORD).status_code == 200
    events = _wait_for_actions(admin, lola["subject"], "auth.lockout")
    (lockout,) = [e for e in events if e["action"] == "auth.lockout"]
    assert lockout["details"] == {"failures": "5", "delay_seconds": "2"}
    assert lockout["actor"]["username"] == ""


def test_totp_enrol_confirm_sign_in_and_disable(
    strongroom: Strongroom, admin: httpx.Client, tmp_path: Path
) -> None:
    tara = _create(admin, "tara", ["annotator"])
    as_tara = strongroom.client(strongroom.token("tara", PASSWORD))

    enrolment = as_tara.post("/api/v1/users/me/totp")

    assert enrolment.status_code == 201, enrolment.text
    secret = enrolment.json()["secret"]
    assert enrolment.json()["otpauth_uri"].startswith(
        f"otpauth://totp/Strongroom:tara?secret={secret}&issuer=Strongroom"
    )
    codes = Codes(secret)
    wrong = as_tara.post("/api/v1/users/me/totp/confirm", json={"code": "12345x"})
    assert _status_and_code(wrong) == (400, "totp_invalid")
    confirmed = as_tara.post(
        "/api/v1/users/me/totp/confirm", json={"code": codes.next()}
    )
    assert confirmed.json()["has_totp"] is True

    without = _sign_in(strongroom, "tara", PASSWORD)
    wrong_code = _sign_in(strongroom, "tara", PASSWORD, totp="000000")
    cli = _cli_as(
        strongroom,
        tmp_path,
        "login",
        "--username",
        "tara",
        "--password",
        PASSWORD,
        "--totp",
        codes.next(),
    )

    assert _status_and_code(without) == (401, "totp_required")
    if totp.totp(secret) != "000000":
        assert _status_and_code(wrong_code) == (401, "bad_credentials")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert _cli_as(strongroom, tmp_path, "project", "list").returncode == 0
    prompted = _cli_as(
        strongroom,
        tmp_path,
        "login",
        "--username",
        "tara",
        "--password",
        PASSWORD,
        input_text=codes.next() + "\n",
    )
    assert prompted.returncode == 0, prompted.stdout + prompted.stderr
    assert "authenticator app" in prompted.stdout

    off = _cli_as(strongroom, tmp_path, "user", "disable-totp", codes.next())

    assert off.returncode == 0, off.stdout + off.stderr
    assert _sign_in(strongroom, "tara", PASSWORD).status_code == 200
    events = _wait_for_actions(
        admin,
        tara["subject"],
        "user.totp.enrol",
        "user.totp.enable",
        "user.totp.disable",
    )
    assert all(secret not in str(e) for e in events)
    reasons = {e["reason"] for e in _login_events(admin, tara["subject"])}
    assert {"totp_required", "totp_invalid"} <= reasons


def _login_events(admin: httpx.Client, subject: str) -> list[dict[str, Any]]:
    found = admin.get(
        "/api/v1/audit/events",
        params={"actor": subject, "action": "auth.login", "limit": 200},
    )
    events: list[dict[str, Any]] = found.json()["events"]
    return events


def test_an_admin_removes_a_second_factor(
    strongroom: Strongroom, admin: httpx.Client, admin_cli: Strongroom
) -> None:
    tess = _create(admin, "tess", ["annotator"])
    as_tess = strongroom.client(strongroom.token("tess", PASSWORD))
    secret = as_tess.post("/api/v1/users/me/totp").json()["secret"]
    as_tess.post(
        "/api/v1/users/me/totp/confirm", json={"code": totp.totp(secret)}
    ).raise_for_status()
    assert _status_and_code(_sign_in(strongroom, "tess", PASSWORD)) == (
        401,
        "totp_required",
    )

    admin_cli.cli("user", "remove-totp", "tess")

    assert _sign_in(strongroom, "tess", PASSWORD).status_code == 200
    assert "tess\tannotator" in admin_cli.cli("user", "list").stdout
    events = _wait_for_actions(admin, tess["subject"], "user.totp.remove")
    (removal,) = [e for e in events if e["action"] == "user.totp.remove"]
    assert removal["details"] == {"username": "tess", "was_enabled": "1"}
    assert removal["actor"]["username"] == "admin"


def test_only_admins_manage_accounts(
    strongroom: Strongroom, admin: httpx.Client
) -> None:
    _create(admin, "nina", ["manager"])
    as_nina = strongroom.client(strongroom.token("nina", PASSWORD))

    calls = [
        as_nina.post("/api/v1/users/admin/disable"),
        as_nina.post("/api/v1/users/admin/enable"),
        as_nina.post("/api/v1/users/admin/password-reset"),
        as_nina.put("/api/v1/users/nina/roles", json={"roles": ["admin"]}),
        as_nina.delete("/api/v1/users/admin/totp"),
    ]

    assert [_status_and_code(c) for c in calls] == [(403, "role_required")] * 5
    missing = admin.post("/api/v1/users/nobody-here/disable")
    assert _status_and_code(missing) == (404, "user_not_found")


# --- cluster mode -------------------------------------------------------------

ADMIN = Principal("kc-admin", "kc-admin", frozenset({"admin"}))


def test_in_cluster_mode_every_account_route_says_users_are_managed_externally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data", identity="oidc")

    def external(settings: Settings) -> ExternalIdentity:
        identity = ExternalIdentity(settings, open_identity_database(settings))
        identity.verifier.verify = lambda token: ADMIN  # type: ignore[method-assign]
        return identity

    monkeypatch.setattr(gateway_app, "open_identity", external)
    client = TestClient(gateway_app.create_app(settings))
    headers = {"authorization": "Bearer from-keycloak"}
    code = {"code": "123456"}

    calls = [
        client.post("/api/v1/users/someone/disable", headers=headers),
        client.post("/api/v1/users/someone/enable", headers=headers),
        client.post("/api/v1/users/someone/password-reset", headers=headers),
        client.put(
            "/api/v1/users/someone/roles", json={"roles": ["admin"]}, headers=headers
        ),
        client.delete("/api/v1/users/someone/totp", headers=headers),
        client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=headers,
        ),
        client.post("/api/v1/users/me/totp", headers=headers),
        client.post("/api/v1/users/me/totp/confirm", json=code, headers=headers),
        client.post("/api/v1/users/me/totp/disable", json=code, headers=headers),
    ]

    assert [(c.status_code, c.json()["code"]) for c in calls] == [
        (400, "users_managed_externally")
    ] * len(calls)
