"""The permission matrix, enforced: every route and method as every caller.

Each REST route is called through the gateway and each gRPC method directly
on its service's address, as each role, anonymously, and with an expired, a
tampered and a wrong-audience token; every answer must be what
tests/e2e/permission_matrix.py says. A route or method without an entry
there fails the test.

An allowed caller gets a 2xx (OK over gRPC) or one of the domain answers
named per call (an empty queue, a page without an image, a correction that
meets the previous caller's): answers given only after the caller was let
through. The gRPC requests are the minimal ones shared with the access-event
test (tests/e2e/surface.py).

The isolation tests then call everything as the manager and the annotator of
project A with the ids of project B, and again with ids that do not exist:
the two answers must be the same, byte for byte once the ids are masked.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from strongroom.services.common.grpc_clients import caller_metadata
from strongroom.services.common.grpc_server import CODE_METADATA_KEY
from strongroom.v1 import tasks_pb2
from tests.backends.keycloak import KeycloakServer
from tests.e2e.cluster import start_cluster
from tests.e2e.harness import Strongroom, isolated_env, wait_for
from tests.e2e.permission_matrix import (
    ALLOWED,
    BAD_TOKENS,
    CALLERS,
    DENIED,
    GRPC,
    HIDDEN,
    REST,
    ROLES,
    Cell,
    expected,
)
from tests.e2e.surface import STUBS, all_methods, grpc_requests, route_table

Ctx = dict[str, Any]

# The not-found codes that also answer for a target in someone else's project.
HIDING_CODES = frozenset(
    {
        "project_not_found",
        "task_not_found",
        "document_not_found",
        "report_not_found",
        "export_not_found",
        "import_not_found",
    }
)
ANONYMOUS_CODES = frozenset({"token_missing", "token_invalid", "token_expired"})
PARAGRAPHS = 40
NOTE = "\n\n".join(
    f"Paragraph {n}: seen by Dr. Ines Ribeiro on 2023-02-{n % 28 + 1:02d}."
    for n in range(PARAGRAPHS)
)


# --- the platform and its people ---------------------------------------------


@dataclass
class Platform:
    strongroom: Strongroom
    # Every caller's username, password and token (the bad ones: token only).
    usernames: dict[str, str]
    passwords: dict[str, str]
    tokens: dict[str, str]
    clients: dict[str, httpx.Client] = field(default_factory=dict)
    # Ids of project A's targets, then the same for project B.
    a: Ctx = field(default_factory=dict)
    b: Ctx = field(default_factory=dict)

    def client(self, caller: str) -> httpx.Client:
        if caller not in self.clients:
            token = self.tokens.get(caller)
            headers = {"authorization": f"Bearer {token}"} if token else {}
            self.clients[caller] = httpx.Client(
                base_url=self.strongroom.url, timeout=120.0, headers=headers
            )
        return self.clients[caller]


# Annotator B is a member of project B only; everyone but the admin is a
# member of project A, or of no project (auditor, reidentifier, original
# reader).
PEOPLE = (*ROLES, "annotator_b")
PROJECT_ROLES = {"manager": "manager", "annotator": "annotator", "reviewer": "reviewer"}


def _tampered(good: str) -> str:
    """A valid token with its roles raised to admin, the signature left as is."""
    head, _payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    raised = {**claims, "realm_access": {"roles": ["admin", "auditor"]}}
    payload = base64.urlsafe_b64encode(json.dumps(raised).encode()).rstrip(b"=")
    return f"{head}.{payload.decode()}.{signature}"


def _embedded_bad_tokens(strongroom: Strongroom, good: str) -> dict[str, str]:
    """Expired, tampered and wrong-audience tokens, the first and last signed
    with the built-in issuer's own key."""
    key_pem = (strongroom.data_dir / "identity" / "signing-key.pem").read_bytes()
    key = serialization.load_pem_private_key(key_pem, password=None)
    header = jwt.get_unverified_header(good)
    claims = jwt.decode(good, options={"verify_signature": False})

    def sign(changed: dict[str, Any]) -> str:
        return jwt.encode(changed, key, algorithm="RS256", headers=header)

    return {
        "expired": sign({**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"]}),
        "tampered": _tampered(good),
        "wrong_audience": sign({**claims, "aud": "another-client"}),
    }


def _embedded(root: Path) -> Iterator[Platform]:
    strongroom = Strongroom(data_dir=root / "data", env=isolated_env(root / "home"))
    strongroom.start()
    try:
        assert strongroom.admin_password
        admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
        usernames = {"admin": "admin"}
        passwords = {"admin": strongroom.admin_password}
        for person in PEOPLE[1:]:
            usernames[person] = f"m-{person.replace('_', '-')}"
            made = admin.post(
                "/api/v1/users",
                json={
                    "username": usernames[person],
                    "roles": [person.removesuffix("_b")],
                },
            )
            assert made.status_code == 201, made.text
            passwords[person] = made.json()["password"]
        tokens = {p: strongroom.token(usernames[p], passwords[p]) for p in PEOPLE}
        tokens.update(_embedded_bad_tokens(strongroom, tokens["annotator"]))
        yield Platform(strongroom, usernames, passwords, tokens)
    finally:
        strongroom.stop()


def _cluster(request: pytest.FixtureRequest, root: Path) -> Iterator[Platform]:
    """Cluster mode on the real backends, people signed in through Keycloak."""
    keycloak: KeycloakServer = request.getfixturevalue("keycloak_server")
    started = start_cluster(
        root,
        postgres=request.getfixturevalue("postgres_server"),
        kafka=request.getfixturevalue("kafka_server"),
        s3=request.getfixturevalue("s3_server"),
        opensearch=request.getfixturevalue("opensearch_server"),
        keycloak=keycloak,
    )
    strongroom = started.strongroom
    try:
        usernames = dict(REALM_USERS)
        for person in ("reidentifier", "original_reader", "annotator_b"):
            usernames[person] = _realm_user(keycloak, person)
        passwords = {p: keycloak.passwords[usernames[p]] for p in PEOPLE}
        # Signing in through the gateway lets managers add them by username.
        tokens = {p: strongroom.token(usernames[p], passwords[p]) for p in PEOPLE}
        tokens.update(
            expired=keycloak.expired_token(),
            tampered=_tampered(tokens["annotator"]),
            wrong_audience=keycloak.token_for_another_audience(usernames["annotator"]),
        )
        yield Platform(strongroom, usernames, passwords, tokens)
    finally:
        strongroom.stop()


# The users the test realm brings (deploy/keycloak/strongroom-realm.json).
REALM_USERS = {
    "admin": "admin",
    "manager": "mgr",
    "annotator": "ann",
    "reviewer": "rev",
    "auditor": "aud",
}


def _realm_user(keycloak: KeycloakServer, person: str) -> str:
    """A realm user holding the person's role, made once per Keycloak."""
    username = f"matrix-{person.replace('_', '-')}"
    password = f"dev-only-{username}-password"
    role = person.removesuffix("_b")
    existing = keycloak.admin(
        "GET", f"{keycloak.realm}/users?exact=true&username={username}"
    ).json()
    if not existing:
        keycloak.admin(
            "POST",
            f"{keycloak.realm}/users",
            {
                "username": username,
                "enabled": True,
                "email": f"{username}@example.org",
                "emailVerified": True,
                "firstName": "Matrix",
                "lastName": person.capitalize(),
                "credentials": [
                    {"type": "password", "value": password, "temporary": False}
                ],
            },
        )
        user_id = keycloak.user_id(username)
        granted = keycloak.admin("GET", f"{keycloak.realm}/roles/{role}").json()
        keycloak.admin(
            "POST",
            f"{keycloak.realm}/users/{user_id}/role-mappings/realm",
            [granted],
        )
    keycloak.passwords[username] = password
    return username


@pytest.fixture(scope="module", params=["embedded", "cluster"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp(f"matrix-{request.param}")
    start = _embedded(root) if request.param == "embedded" else _cluster(request, root)
    found = next(start)
    try:
        found.a = _project(found, "A", PROJECT_ROLES)
        found.b = _project(found, "B", {"annotator_b": "annotator"})
        yield found
    finally:
        for client in found.clients.values():
            client.close()
        start.close()


def _project(platform: Platform, name: str, members: dict[str, str]) -> Ctx:
    """A project with a document of many paragraph tasks, an answer, a ready
    export and an import; returns the ids the calls need."""
    admin = platform.client("admin")
    made = admin.post(
        "/api/v1/projects",
        json={
            "name": f"Matrix {name}",
            "labels": ["PERSON"],
            "review": True,
            "window": {"kind": "paragraph", "size": 0},
        },
    )
    assert made.status_code == 201, made.text
    project = made.json()["id"]
    for person, project_role in members.items():
        added = admin.post(
            f"/api/v1/projects/{project}/members",
            json={"username": platform.usernames[person], "role": project_role},
        )
        assert added.status_code == 200, added.text
    uploaded = admin.post(
        f"/api/v1/projects/{project}/documents",
        files={"file": (f"{name}.txt", f"{name}\n\n{NOTE}".encode(), "text/plain")},
    )
    assert uploaded.status_code == 201, uploaded.text
    wait_for(
        lambda: (
            admin.get(f"/api/v1/projects/{project}/tasks").json()["total"] > PARAGRAPHS
        ),
        timeout=120,
    )
    ctx: Ctx = {"project": project, "document": uploaded.json()["id"]}
    annotator = "annotator" if "annotator" in members else "annotator_b"
    _answered(platform, ctx, annotator)
    export = admin.post(f"/api/v1/projects/{project}/exports", json={"format": "jsonl"})
    ctx["export"] = export.json()["id"]
    wait_for(
        lambda: (
            admin.get(f"/api/v1/exports/{ctx['export']}").json()["state"] == "ready"
        ),
        timeout=120,
    )
    line = json.dumps({"text": f"Imported into {name}.", "spans": []})
    started = admin.post(
        f"/api/v1/projects/{project}/imports",
        data={"format": "prodigy"},
        files={"file": ("import.jsonl", line.encode())},
    )
    assert started.status_code == 202 or started.is_success, started.text
    ctx["import"] = started.json()["id"]
    return ctx


# --- states a call needs -------------------------------------------------------


def _leased(platform: Platform, ctx: Ctx, annotator: str = "annotator") -> None:
    """The annotator holds a task's lease; it becomes the call's task."""
    client = platform.client(annotator)
    leased = client.post(f"/api/v1/projects/{ctx['project']}/tasks/next")
    assert leased.status_code == 200, leased.text
    ctx["task"] = leased.json()["id"]


def _answered(platform: Platform, ctx: Ctx, annotator: str = "annotator") -> None:
    """The annotator answered a task, which now waits for review."""
    _leased(platform, ctx, annotator)
    submitted = platform.client(annotator).post(
        f"/api/v1/tasks/{ctx['task']}/annotations", json={"spans": []}
    )
    assert submitted.status_code in (200, 201), submitted.text


def _in_review(platform: Platform, ctx: Ctx) -> None:
    """The reviewer holds the review of an answered task."""
    _answered(platform, ctx)
    leased = platform.client("reviewer").post(
        f"/api/v1/projects/{ctx['project']}/reviews/next"
    )
    assert leased.status_code == 200, leased.text
    ctx["task"] = leased.json()["task"]["id"]


Prepare = Callable[[Platform, Ctx], None]


# --- REST ------------------------------------------------------------------------

Send = Callable[[httpx.Client, Ctx, Platform], httpx.Response]


@dataclass(frozen=True)
class RestCall:
    send: Send
    prepare: Prepare | None = None
    # Domain answers that still mean the caller was let through.
    accept: frozenset[str] = frozenset()
    # The order allowed callers go in, where one's call changes the next's.
    order: tuple[str, ...] = ()


def _get(path: str, **params: str) -> Send:
    return lambda client, c, p: client.get(path.format(**c), params=params)


def _post(path: str, **body: Any) -> Send:
    return lambda client, c, p: client.post(path.format(**c), json=body)


def _token(client: httpx.Client, c: Ctx, p: Platform) -> httpx.Response:
    return client.post(
        "/oidc/token",
        data={
            "username": p.usernames["annotator"],
            "password": p.passwords["annotator"],
        },
    )


def _upload(client: httpx.Client, c: Ctx, p: Platform) -> httpx.Response:
    return client.post(
        f"/api/v1/projects/{c['project']}/documents",
        files={"file": ("again.txt", b"Uploaded again by the matrix.\n", "text/plain")},
    )


def _import(client: httpx.Client, c: Ctx, p: Platform) -> httpx.Response:
    line = json.dumps({"text": "Imported by the matrix.", "spans": []})
    return client.post(
        f"/api/v1/projects/{c['project']}/imports",
        data={"format": "prodigy"},
        files={"file": ("matrix.jsonl", line.encode())},
    )


def _target_account(platform: Platform, ctx: Ctx) -> None:
    """An account of its own for an admin route to act on (in cluster mode
    the route refuses before looking for it)."""
    ctx["target"] = f"m-target-{uuid.uuid4().hex[:8]}"
    platform.client("admin").post(
        "/api/v1/users", json={"username": ctx["target"], "roles": ["annotator"]}
    )


# In cluster mode Keycloak issues the tokens and the gateway has no users of
# its own: these answers come after the same checks as embedded mode's.
EXTERNAL_ISSUER = frozenset({"issuer_external"})
# In cluster mode the provider has the login page; the route is not there.
PROVIDER_LOGIN = frozenset({"http_404"})


def _sign_in_request(p: Platform) -> dict[str, str]:
    """A well-formed authorization request, as the gateway's /auth/login makes."""
    return {
        "client_id": "strongroom",
        "redirect_uri": f"{p.strongroom.url}/auth/callback",
        "response_type": "code",
        "scope": "openid",
        "state": "matrix-state",
        "nonce": "matrix-nonce",
        "code_challenge": "a" * 43,
        "code_challenge_method": "S256",
    }


def _login_page(client: httpx.Client, c: Ctx, p: Platform) -> httpx.Response:
    return client.get("/oidc/authorize", params=_sign_in_request(p))


def _log_in(client: httpx.Client, c: Ctx, p: Platform) -> httpx.Response:
    """A person's credentials on the login page; the browser follows the
    redirects (to a callback that has no sign-in of its own to finish)."""
    form = {
        **_sign_in_request(p),
        "username": p.usernames["annotator"],
        "password": p.passwords["annotator"],
    }
    return client.post("/oidc/authorize", data=form, follow_redirects=True)


P = "/api/v1/projects/{project}"
D = "/api/v1/documents/{document}"
T = "/api/v1/tasks/{task}"
E = "/api/v1/exports/{export}"

REST_CALLS: dict[str, RestCall] = {
    "GET /": RestCall(_get("/")),
    "MOUNT /static": RestCall(_get("/static/app.js")),
    "GET /openapi.json": RestCall(_get("/openapi.json")),
    "GET /healthz": RestCall(_get("/healthz")),
    "GET /readyz": RestCall(_get("/readyz")),
    "GET /readyz/gateway": RestCall(_get("/readyz/gateway")),
    "GET /metrics": RestCall(_get("/metrics")),
    "GET /oidc/.well-known/openid-configuration": RestCall(
        _get("/oidc/.well-known/openid-configuration"), accept=EXTERNAL_ISSUER
    ),
    "GET /oidc/jwks": RestCall(_get("/oidc/jwks"), accept=EXTERNAL_ISSUER),
    "POST /oidc/token": RestCall(_token),
    "GET /oidc/authorize": RestCall(_login_page, accept=PROVIDER_LOGIN),
    "POST /oidc/authorize": RestCall(_log_in, accept=PROVIDER_LOGIN),
    # Sign-in starts at the provider's login page; a callback with nothing
    # to finish and a sign-out with no session go back to the page.
    "GET /auth/login": RestCall(
        lambda client, c, p: client.get("/auth/login", follow_redirects=True)
    ),
    "GET /auth/callback": RestCall(
        lambda client, c, p: client.get("/auth/callback", follow_redirects=True)
    ),
    "POST /auth/logout": RestCall(lambda client, c, p: client.post("/auth/logout")),
    "GET /api/v1/me": RestCall(_get("/api/v1/me")),
    "POST /api/v1/users": RestCall(
        lambda client, c, p: client.post(
            "/api/v1/users",
            json={"username": f"m-{uuid.uuid4().hex[:12]}", "roles": ["annotator"]},
        ),
        accept=frozenset({"users_managed_externally"}),
    ),
    "GET /api/v1/users": RestCall(_get("/api/v1/users")),
    **{
        f"{method} /api/v1/users/{{username}}{suffix}": RestCall(
            lambda client, c, p, m=method, x=suffix, b=body: client.request(
                m, f"/api/v1/users/{c.get('target', 'm-nobody')}{x}", json=b
            ),
            prepare=_target_account,
            accept=frozenset({"users_managed_externally"}),
        )
        for method, suffix, body in (
            ("POST", "/disable", None),
            ("POST", "/enable", None),
            ("POST", "/password-reset", None),
            ("PUT", "/roles", {"roles": ["reviewer"]}),
            ("DELETE", "/totp", None),
        )
    },
    # Each caller's own account: a wrong current password or code, so no
    # caller's password, token or second factor changes.
    "POST /api/v1/users/me/password": RestCall(
        _post(
            "/api/v1/users/me/password",
            current_password="not the password at all",
            new_password="a new password, never set",
        ),
        accept=frozenset({"current_password_wrong", "users_managed_externally"}),
    ),
    "POST /api/v1/users/me/totp": RestCall(
        _post("/api/v1/users/me/totp"),
        accept=frozenset({"totp_already_enabled", "users_managed_externally"}),
    ),
    "POST /api/v1/users/me/totp/confirm": RestCall(
        _post("/api/v1/users/me/totp/confirm", code="abcdef"),
        accept=frozenset(
            {"totp_invalid", "totp_not_enrolled", "users_managed_externally"}
        ),
    ),
    "POST /api/v1/users/me/totp/disable": RestCall(
        _post("/api/v1/users/me/totp/disable", code="abcdef"),
        accept=frozenset({"totp_not_enabled", "users_managed_externally"}),
    ),
    "POST /api/v1/service-accounts": RestCall(
        lambda client, c, p: client.post(
            "/api/v1/service-accounts",
            json={"name": f"m-{uuid.uuid4().hex[:12]}", "roles": ["manager"]},
        ),
        accept=frozenset({"users_managed_externally"}),
    ),
    "GET /api/v1/service-accounts": RestCall(_get("/api/v1/service-accounts")),
    "POST /api/v1/projects": RestCall(
        _post("/api/v1/projects", name="Made by the matrix", labels=["PERSON"])
    ),
    "GET /api/v1/projects": RestCall(_get("/api/v1/projects")),
    "GET /api/v1/projects/{project_id}": RestCall(_get(P)),
    "POST /api/v1/projects/{project_id}/members": RestCall(
        lambda client, c, p: client.post(
            f"/api/v1/projects/{c['project']}/members",
            json={"username": p.usernames["annotator"], "role": "annotator"},
        )
    ),
    "POST /api/v1/projects/{project_id}/documents": RestCall(_upload),
    "GET /api/v1/projects/{project_id}/documents": RestCall(_get(P + "/documents")),
    "GET /api/v1/documents/{document_id}": RestCall(_get(D)),
    "GET /api/v1/documents/{document_id}/original": RestCall(
        _get(D + "/original", reason="permission matrix")
    ),
    "GET /api/v1/documents/{document_id}/redaction": RestCall(_get(D + "/redaction")),
    "GET /api/v1/documents/{document_id}/structure": RestCall(_get(D + "/structure")),
    "GET /api/v1/projects/{project_id}/quarantine": RestCall(_get(P + "/quarantine")),
    "GET /api/v1/projects/{project_id}/redaction-policy": RestCall(
        _get(P + "/redaction-policy")
    ),
    "PUT /api/v1/projects/{project_id}/redaction-policy": RestCall(
        lambda client, c, p: client.put(
            f"/api/v1/projects/{c['project']}/redaction-policy",
            json={"default_action": "mask"},
        )
    ),
    "GET /api/v1/projects/{project_id}/redaction": RestCall(_get(P + "/redaction")),
    "POST /api/v1/documents/{document_id}/redaction/corrections": RestCall(
        _post(
            D + "/redaction/corrections",
            corrections=[{"action": "add", "start": 0, "end": 1, "type": "ID_NUMBER"}],
        ),
        # The second caller's correction meets the first one's.
        accept=frozenset({"overlaps_redaction"}),
    ),
    "POST /api/v1/projects/{project_id}/reidentification": RestCall(
        _post(P + "/reidentification", reason="permission matrix")
    ),
    "POST /api/v1/projects/{project_id}/tasks/next": RestCall(
        _post(P + "/tasks/next"), accept=frozenset({"queue_empty"})
    ),
    "GET /api/v1/projects/{project_id}/tasks": RestCall(_get(P + "/tasks")),
    "GET /api/v1/tasks/{task_id}": RestCall(_get(T), _leased),
    "GET /api/v1/tasks/{task_id}/pages/{page}": RestCall(
        _get(T + "/pages/1"), _leased, accept=frozenset({"page_not_found"})
    ),
    "POST /api/v1/tasks/{task_id}/annotations": RestCall(
        _post(T + "/annotations", spans=[]), _leased
    ),
    "POST /api/v1/tasks/{task_id}/reopen": RestCall(_post(T + "/reopen"), _answered),
    "POST /api/v1/tasks/{task_id}/skip": RestCall(
        _post(T + "/skip", reason="permission matrix"), _leased
    ),
    "PATCH /api/v1/tasks/{task_id}": RestCall(
        lambda client, c, p: client.patch(
            f"/api/v1/tasks/{c['task']}", json={"priority": 1}
        ),
        _leased,
    ),
    "POST /api/v1/projects/{project_id}/assignments": RestCall(
        lambda client, c, p: client.post(
            f"/api/v1/projects/{c['project']}/assignments",
            json={"username": p.usernames["annotator"], "count": 1},
        )
    ),
    "GET /api/v1/projects/{project_id}/annotations": RestCall(_get(P + "/annotations")),
    "GET /api/v1/projects/{project_id}/stats": RestCall(_get(P + "/stats")),
    "POST /api/v1/projects/{project_id}/reviews/next": RestCall(
        _post(P + "/reviews/next"),
        _answered,
        accept=frozenset({"review_queue_empty"}),
        order=("reviewer", "manager"),
    ),
    "POST /api/v1/tasks/{task_id}/review": RestCall(
        _post(T + "/review", decision="correct", annotation={"spans": []}),
        _in_review,
    ),
    "POST /api/v1/projects/{project_id}/exports": RestCall(
        _post(P + "/exports", format="jsonl")
    ),
    "GET /api/v1/projects/{project_id}/exports": RestCall(_get(P + "/exports")),
    "GET /api/v1/exports/{export_id}": RestCall(_get(E)),
    "GET /api/v1/exports/{export_id}/files/{name:path}": RestCall(
        _get(E + "/files/manifest.json")
    ),
    "GET /api/v1/exports/signing-key": RestCall(_get("/api/v1/exports/signing-key")),
    "POST /api/v1/projects/{project_id}/imports": RestCall(_import),
    "GET /api/v1/imports/{import_id}": RestCall(_get("/api/v1/imports/{import}")),
    "POST /api/v1/projects/{project_id}/synthetic": RestCall(
        _post(P + "/synthetic", method="template", count=1),
        # The matrix's answers mark no spans, so templates have nothing to swap.
        accept=frozenset({"synthesis_unsupported"}),
    ),
    "PATCH /api/v1/projects/{project_id}/assistance": RestCall(
        lambda client, c, p: client.patch(
            P.format(**c) + "/assistance", json={"ordering": "arrival"}
        )
    ),
    "POST /api/v1/projects/{project_id}/models": RestCall(
        _post(P + "/models"),
        # Assistance stays off in the matrix's projects: the caller was let
        # through to the check of the project's settings.
        accept=frozenset({"assistance_off"}),
    ),
    "GET /api/v1/projects/{project_id}/models": RestCall(_get(P + "/models")),
    "GET /api/v1/audit/events": RestCall(_get("/api/v1/audit/events")),
    "GET /api/v1/audit/verify": RestCall(_get("/api/v1/audit/verify")),
    "GET /api/v1/audit/lineage/documents/{document_id}": RestCall(
        _get("/api/v1/audit/lineage/documents/{document}")
    ),
    "GET /api/v1/audit/activity/{username}": RestCall(
        lambda client, c, p: client.get(
            f"/api/v1/audit/activity/{p.usernames['annotator']}"
        )
    ),
    "GET /api/v1/audit/checkpoints": RestCall(_get("/api/v1/audit/checkpoints")),
    "GET /api/v1/audit/events/{event_id}/proof": RestCall(
        lambda client, c, p: client.get(f"/api/v1/audit/events/{uuid.uuid4()}/proof"),
        accept=frozenset({"audit_event_not_found"}),
    ),
    "GET /api/v1/audit/consistency": RestCall(
        _get("/api/v1/audit/consistency", first="1", second="1"),
        accept=frozenset({"checkpoint_not_found"}),
    ),
}


def _callers_in_order(entry: dict[str, Cell], order: tuple[str, ...]) -> list[str]:
    """Refused callers first, so a refusal never finds the state an allowed
    call left; then the allowed ones, in the order the call asks for."""
    everyone = [*CALLERS, *BAD_TOKENS]
    refused = [c for c in everyone if expected(entry, c).outcome != ALLOWED]
    allowed = [c for c in everyone if c not in refused]
    allowed.sort(key=lambda c: order.index(c) if c in order else len(order))
    return refused + allowed


def _rest_verdict(response: httpx.Response, cell: Cell, accept: frozenset[str]) -> str:
    """'' when the answer is what the cell says, else what is wrong with it."""
    code = ""
    if response.headers.get("content-type", "").startswith("application/problem"):
        code = response.json().get("code", "")
    status = response.status_code
    if cell.outcome == ALLOWED:
        ok = response.is_success or code in accept
    elif cell.outcome == DENIED:
        ok = status == 403 and bool(code)
    elif cell.outcome == HIDDEN:
        ok = status == 404 and code in HIDING_CODES
    else:
        ok = status == 401 and code in ANONYMOUS_CODES
    return "" if ok else f"{status} {code or response.text[:120]}"


def test_every_route_has_a_matrix_entry_and_a_call(tmp_path: Path) -> None:
    table = {f"{method} {path}" for method, path in route_table(tmp_path)}

    assert table - set(REST) == set(), "routes missing from permission_matrix.REST"
    assert set(REST) - table == set(), "matrix entries for routes that do not exist"
    assert set(REST_CALLS) == set(REST)


def test_every_route_answers_each_caller_as_the_matrix_says(
    platform: Platform,
) -> None:
    wrong = []
    for key, entry in REST.items():
        call = REST_CALLS[key]
        ctx = dict(platform.a)
        if call.prepare is not None:
            call.prepare(platform, ctx)
        for caller in _callers_in_order(entry, call.order):
            cell = expected(entry, caller)
            response = call.send(platform.client(caller), ctx, platform)
            problem = _rest_verdict(response, cell, call.accept)
            if problem:
                wrong.append(f"{key} as {caller}: wanted {cell.text}, got {problem}")
    assert not wrong, "\n".join(wrong)


# --- gRPC ------------------------------------------------------------------------

GRPC_PREPARE: dict[str, Prepare] = {
    "TaskService/GetTask": _leased,
    "TaskService/GetTaskPage": _leased,
    "TaskService/CompleteTask": _leased,
    "TaskService/SkipTask": _leased,
    "TaskService/UpdateTask": _leased,
    "TaskService/SetSuggestions": _leased,
    "LabelingService/SubmitAnnotation": _leased,
    "LabelingService/GetTaskAssistance": _leased,
    "LabelingService/ImportAnnotation": _leased,
    "TaskService/ReopenTask": _answered,
    "LabelingService/ListTaskAnnotations": _answered,
    "TaskService/LeaseNextReview": _answered,
    "TaskService/ResolveReview": _in_review,
    "LabelingService/ReviewTask": _in_review,
}
GRPC_ORDER = {"TaskService/LeaseNextReview": ("reviewer", "manager")}
# Domain answers that still mean the caller was let through: the shared
# requests are minimal, and some calls meet the state an earlier one left.
GRPC_ACCEPT: dict[str, frozenset[str]] = {
    "RedactionService/CorrectRedaction": frozenset({"overlaps_redaction"}),
    "TaskService/GetTaskPage": frozenset({"page_not_found"}),
    "TaskService/AssignTasks": frozenset({"annotator_required"}),
    "LabelingService/ReviewTask": frozenset({"annotation_unknown"}),
    "LabelingService/Synthesize": frozenset({"synthesis_unsupported"}),
    "LabelingService/TrainModel": frozenset({"assistance_off"}),
    "AuditService/ProveInclusion": frozenset({"audit_event_not_found"}),
    "AuditService/ProveConsistency": frozenset({"checkpoint_not_found"}),
}


def _grpc_answer(
    platform: Platform, method: str, request: Any, caller: str
) -> tuple[grpc.StatusCode, str, str]:
    """Call one method as a caller: its status, our code and the message."""
    service, name = method.split("/")
    target, stub_class = STUBS[service]
    token = platform.tokens.get(caller, "")
    metadata = caller_metadata(token) if token else ()
    address = platform.strongroom.addresses()[target]
    with grpc.insecure_channel(address) as channel:
        rpc = getattr(stub_class(channel), name)
        try:
            answer = rpc(request, metadata=metadata, timeout=60)
            if hasattr(answer, "__iter__") and not hasattr(answer, "ListFields"):
                list(answer)
        except grpc.RpcError as exc:
            trailing = dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
            code = str(trailing.get(CODE_METADATA_KEY, ""))
            return exc.code(), code, str(exc.details())
    return grpc.StatusCode.OK, "", ""


def _grpc_verdict(
    status: grpc.StatusCode, code: str, cell: Cell, accept: frozenset[str]
) -> bool:
    if cell.outcome == ALLOWED:
        return status == grpc.StatusCode.OK or code in accept
    if cell.outcome == DENIED:
        return status == grpc.StatusCode.PERMISSION_DENIED
    if cell.outcome == HIDDEN:
        return status == grpc.StatusCode.NOT_FOUND and code in HIDING_CODES
    return status == grpc.StatusCode.UNAUTHENTICATED


def test_every_grpc_method_has_a_matrix_entry() -> None:
    assert set(GRPC) == all_methods()


def test_every_grpc_method_answers_each_caller_as_the_matrix_says(
    platform: Platform,
) -> None:
    wrong = []
    for method, entry in GRPC.items():
        ctx = dict(platform.a)
        prepare = GRPC_PREPARE.get(method)
        if prepare is not None:
            prepare(platform, ctx)
        build = grpc_requests(ctx)[method]
        for caller in _callers_in_order(entry, GRPC_ORDER.get(method, ())):
            cell = expected(entry, caller)
            status, code, _message = _grpc_answer(platform, method, build(), caller)
            accept = GRPC_ACCEPT.get(method, frozenset())
            if not _grpc_verdict(status, code, cell, accept):
                wrong.append(
                    f"{method} as {caller}: wanted {cell.text}, "
                    f"got {status.name} {code}"
                )
    assert not wrong, "\n".join(wrong)


# --- isolation between projects ----------------------------------------------------


def _missing() -> Ctx:
    return {
        key: str(uuid.uuid4())
        for key in ("project", "document", "task", "export", "import")
    }


def _masked(text: str, ctx: Ctx) -> str:
    for key in ("project", "document", "task", "export", "import"):
        text = text.replace(str(ctx.get(key, "")), f"<{key}>")
    return text


@pytest.mark.parametrize("caller", ["manager", "annotator"])
def test_other_projects_answer_rest_as_if_they_did_not_exist(
    platform: Platform, caller: str
) -> None:
    """Every route, given project B's ids, answers exactly as for ids that
    do not exist: same status, same body, nothing counted or named."""
    differing = []
    client = platform.client(caller)
    for key, call in REST_CALLS.items():
        if key.startswith(("GET /api/v1/audit", "POST /oidc")):
            continue  # audit routes are for auditors; covered below
        missing = _missing()
        other = call.send(client, dict(platform.b), platform)
        absent = call.send(client, missing, platform)
        seen = (other.status_code, _masked(other.text, platform.b))
        unseen = (absent.status_code, _masked(absent.text, missing))
        if other.status_code < 400 and key not in _GLOBAL_READS:
            differing.append(f"{key}: B answered {other.status_code}")
        elif seen != unseen and key not in _GLOBAL_READS:
            differing.append(f"{key}: B {seen} vs missing {unseen}")
    assert not differing, "\n".join(differing)


# Routes that answer the same whatever project: they read no project's data.
_GLOBAL_READS = {
    "GET /",
    "MOUNT /static",
    "GET /openapi.json",
    "GET /healthz",
    "GET /readyz",
    "GET /readyz/gateway",
    "GET /metrics",
    "GET /oidc/.well-known/openid-configuration",
    "GET /oidc/jwks",
    "GET /oidc/authorize",
    "GET /auth/login",
    "GET /auth/callback",
    "POST /auth/logout",
    "GET /api/v1/me",
    "GET /api/v1/users",
    "POST /api/v1/users",
    "POST /api/v1/users/{username}/disable",
    "POST /api/v1/users/{username}/enable",
    "POST /api/v1/users/{username}/password-reset",
    "PUT /api/v1/users/{username}/roles",
    "DELETE /api/v1/users/{username}/totp",
    "POST /api/v1/users/me/password",
    "POST /api/v1/users/me/totp",
    "POST /api/v1/users/me/totp/confirm",
    "POST /api/v1/users/me/totp/disable",
    "GET /api/v1/service-accounts",
    "POST /api/v1/service-accounts",
    "POST /api/v1/projects",
    "GET /api/v1/projects",
    "GET /api/v1/exports/signing-key",
}


@pytest.mark.parametrize("caller", ["manager", "annotator"])
def test_other_projects_answer_grpc_as_if_they_did_not_exist(
    platform: Platform, caller: str
) -> None:
    differing = []
    global_methods = {
        "TaskService/CreateProject",
        "TaskService/ListProjects",
        "ExportService/GetSigningKey",
    }
    for method in GRPC:
        if method.startswith("AuditService/") or method in global_methods:
            continue
        missing = _missing()
        other = _grpc_answer(
            platform, method, grpc_requests(platform.b)[method](), caller
        )
        absent = _grpc_answer(
            platform, method, grpc_requests(missing)[method](), caller
        )
        seen = (other[0], other[1], _masked(other[2], platform.b))
        unseen = (absent[0], absent[1], _masked(absent[2], missing))
        if other[0] == grpc.StatusCode.OK:
            differing.append(f"{method}: B answered OK")
        elif seen != unseen:
            differing.append(f"{method}: B {seen} vs missing {unseen}")
    assert not differing, "\n".join(differing)


@pytest.mark.parametrize("caller", ["manager", "annotator"])
def test_lists_and_filters_show_nothing_of_other_projects(
    platform: Platform, caller: str
) -> None:
    client = platform.client(caller)
    projects = client.get("/api/v1/projects").json()
    audit = client.get(
        "/api/v1/audit/events", params={"project_id": platform.b["project"]}
    )

    assert [p["id"] for p in projects["projects"]] == [platform.a["project"]]
    assert projects["total"] == 1
    assert audit.status_code == 403
    assert platform.b["project"] not in audit.text
    answer = _grpc_answer(
        platform,
        "TaskService/ListProjects",
        tasks_pb2.ListProjectsRequest(),
        caller,
    )
    assert answer[0] == grpc.StatusCode.OK


def test_a_probe_of_another_project_is_audited_as_a_denial(
    platform: Platform,
) -> None:
    request_id = f"probe-{uuid.uuid4()}"
    probe = platform.client("annotator").get(
        f"/api/v1/tasks/{platform.b['task']}", headers={"x-request-id": request_id}
    )

    def denials() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = (
            platform.client("admin")
            .get("/api/v1/audit/events", params={"request_id": request_id})
            .json()["events"]
        )
        return [e for e in events if e["outcome"] == "denied"]

    assert probe.status_code == 404
    (denial,) = wait_for(denials, timeout=20)
    assert denial["reason"] == "task_not_found"
