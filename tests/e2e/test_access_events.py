"""Every route and gRPC method that touches data leaves an audit event.

The test walks the gateway's route table and every service's gRPC methods.
Each must either appear in the calls below, and then leave at least one
audit event carrying the request's id, or in the reviewed list of routes
that touch no data. A new route or method with neither fails the test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest

from strongroom.services.common import totp
from strongroom.services.common.grpc_clients import caller_metadata
from strongroom.services.common.logs import request_id_var
from tests.e2e.harness import Strongroom, signed_in_user, wait_for
from tests.e2e.surface import STUBS, all_methods, grpc_requests, route_table

# Reviewed: these answer without touching documents, tasks, annotations,
# exports, users or the audit trail.
NO_DATA_ROUTES = {
    ("GET", "/"): "the web page's HTML",
    ("MOUNT", "/static"): "the web page's own scripts and styles",
    ("GET", "/openapi.json"): "the API description",
    ("GET", "/healthz"): "liveness",
    ("GET", "/readyz"): "readiness of the services",
    ("GET", "/readyz/gateway"): "readiness of the gateway's backends",
    ("GET", "/metrics"): "request counts and latencies per route template",
    ("GET", "/oidc/.well-known/openid-configuration"): "the issuer's public metadata",
    ("GET", "/oidc/jwks"): "the issuer's public keys",
    ("GET", "/oidc/authorize"): "the built-in login page's form",
    ("GET", "/auth/login"): "a redirect to the provider, starting a sign-in",
    ("GET", "/api/v1/me"): "the caller's own token, read back",
}

NOTE = "Seen by Dr. Ines Ribeiro on 2023-02-11.\n"
ACCOUNT = "route-acct"
ACCOUNT_PASSWORD = "route table account 1"

Ctx = dict[str, Any]


@pytest.fixture(scope="module")
def ctx(strongroom: Strongroom, tmp_path_factory: pytest.TempPathFactory) -> Ctx:
    scratch = tmp_path_factory.mktemp("routes")
    assert strongroom.admin_password
    admin = strongroom.client(strongroom.token("admin", strongroom.admin_password))
    return {
        "strongroom": strongroom,
        "admin": admin,
        "password": strongroom.admin_password,
        "scratch": scratch,
    }


def _events_of(admin: httpx.Client, request_id: str) -> list[dict[str, Any]]:
    found = admin.get(
        "/api/v1/audit/events",
        params={"request_id": request_id},
        headers={"x-request-id": f"check-{uuid.uuid4()}"},
    )
    events: list[dict[str, Any]] = found.json()["events"]
    return events


# Each REST call in order; later ones use what earlier ones created.
def _rest_calls() -> list[tuple[str, str, Callable[[Ctx, dict[str, str]], Any]]]:
    def admin(c: Ctx) -> httpx.Client:
        client: httpx.Client = c["admin"]
        return client

    def ann(c: Ctx) -> httpx.Client:
        if "ann" not in c:
            c["ann"] = c["strongroom"].client(
                c["strongroom"].token("route-ann", c["ann_password"])
            )
        client: httpx.Client = c["ann"]
        return client

    def custodian(c: Ctx) -> httpx.Client:
        """A holder of the original_reader role, made at first use."""
        if "custodian" not in c:
            c["custodian"] = signed_in_user(
                c["strongroom"], admin(c), "route-custodian", ["original_reader"]
            )
        client: httpx.Client = c["custodian"]
        return client

    def token(c: Ctx, h: dict[str, str]) -> Any:
        return httpx.post(
            f"{c['strongroom'].url}/oidc/token",
            data={"username": "admin", "password": c["password"]},
            headers=h,
        )

    def authorize(c: Ctx, h: dict[str, str]) -> Any:
        started = httpx.get(f"{c['strongroom'].url}/auth/login")
        request = dict(httpx.URL(started.headers["location"]).params)
        return httpx.post(
            f"{c['strongroom'].url}/oidc/authorize",
            data={**request, "username": "admin", "password": c["password"]},
            headers=h,
        )

    def callback(c: Ctx, h: dict[str, str]) -> Any:
        # A state no sign-in started: refused, and the refusal audited.
        return httpx.get(
            f"{c['strongroom'].url}/auth/callback",
            params={"code": "unknown", "state": "unknown"},
            headers=h,
        )

    def logout(c: Ctx, h: dict[str, str]) -> Any:
        session = c["strongroom"].browser_session("admin", c["password"])
        return session.client.post("/auth/logout", headers={**h, **session.csrf})

    def create_user(c: Ctx, h: dict[str, str]) -> Any:
        made = admin(c).post(
            "/api/v1/users",
            json={"username": "route-ann", "roles": ["annotator"]},
            headers=h,
        )
        c["ann_password"] = made.json()["password"]
        return made

    def acct(c: Ctx) -> httpx.Client:
        client: httpx.Client = c["strongroom"].client(c["acct_token"])
        return client

    def disable_account(c: Ctx, h: dict[str, str]) -> Any:
        # Its own account, so route-ann's token keeps working for the calls
        # below while this one is disabled, reset and changed.
        admin(c).post(
            "/api/v1/users",
            json={
                "username": ACCOUNT,
                "roles": ["annotator"],
                "password": ACCOUNT_PASSWORD,
            },
        ).raise_for_status()
        return admin(c).post(f"/api/v1/users/{ACCOUNT}/disable", headers=h)

    def reset_password(c: Ctx, h: dict[str, str]) -> Any:
        reset = admin(c).post(f"/api/v1/users/{ACCOUNT}/password-reset", headers=h)
        c["acct_password"] = reset.json()["password"]
        return reset

    def change_password(c: Ctx, h: dict[str, str]) -> Any:
        pending = c["strongroom"].client(
            c["strongroom"].token(ACCOUNT, c["acct_password"])
        )
        changed = pending.post(
            "/api/v1/users/me/password",
            json={
                "current_password": c["acct_password"],
                "new_password": ACCOUNT_PASSWORD,
            },
            headers=h,
        )
        c["acct_token"] = changed.json()["access_token"]
        return changed

    def enrol_totp(c: Ctx, h: dict[str, str]) -> Any:
        enrolment = acct(c).post("/api/v1/users/me/totp", headers=h)
        c["acct_secret"] = enrolment.json()["secret"]
        return enrolment

    def confirm_totp(c: Ctx, h: dict[str, str]) -> Any:
        code = totp.totp(c["acct_secret"])
        return acct(c).post(
            "/api/v1/users/me/totp/confirm", json={"code": code}, headers=h
        )

    def disable_totp(c: Ctx, h: dict[str, str]) -> Any:
        # The next step's code: the current one was just used to confirm.
        code = totp.totp(c["acct_secret"], time.time() + totp.STEP_SECONDS)
        return acct(c).post(
            "/api/v1/users/me/totp/disable", json={"code": code}, headers=h
        )

    def create_project(c: Ctx, h: dict[str, str]) -> Any:
        made = admin(c).post(
            "/api/v1/projects", json={"name": "Routes", "labels": ["PERSON"]}, headers=h
        )
        c["project"] = made.json()["id"]
        return made

    def upload(c: Ctx, h: dict[str, str]) -> Any:
        made = admin(c).post(
            f"/api/v1/projects/{c['project']}/documents",
            files={"file": ("note.txt", NOTE.encode(), "text/plain")},
            headers=h,
        )
        c["document"] = made.json()["id"]
        return made

    def lease(c: Ctx, h: dict[str, str]) -> Any:
        def leased() -> Any:
            response = ann(c).post(
                f"/api/v1/projects/{c['project']}/tasks/next", headers=h
            )
            return response if response.status_code == 200 else None

        response = wait_for(leased)
        c["task"] = response.json()["id"]
        return response

    def export(c: Ctx, h: dict[str, str]) -> Any:
        made = admin(c).post(
            f"/api/v1/projects/{c['project']}/exports",
            json={"format": "jsonl"},
            headers=h,
        )
        c["export"] = made.json()["id"]
        wait_for(
            lambda: (
                admin(c).get(f"/api/v1/exports/{c['export']}").json()["state"]
                == "ready"
            ),
            timeout=120,
        )
        return made

    def start_import(c: Ctx, h: dict[str, str]) -> Any:
        line = json.dumps({"text": "Imported through the route table.", "spans": []})
        made = admin(c).post(
            f"/api/v1/projects/{c['project']}/imports",
            data={"format": "prodigy"},
            files={"file": ("import.jsonl", line.encode())},
            headers=h,
        )
        c["import"] = made.json()["id"]
        return made

    def get(path: str, who: Callable[[Ctx], httpx.Client] = admin, **params: str):
        return lambda c, h: who(c).get(path.format(**c), params=params, headers=h)

    return [
        ("POST", "/oidc/token", token),
        ("POST", "/oidc/authorize", authorize),
        ("GET", "/auth/callback", callback),
        ("POST", "/auth/logout", logout),
        ("POST", "/api/v1/users", create_user),
        ("GET", "/api/v1/users", get("/api/v1/users")),
        ("POST", "/api/v1/users/{username}/disable", disable_account),
        (
            "POST",
            "/api/v1/users/{username}/enable",
            lambda c, h: admin(c).post(f"/api/v1/users/{ACCOUNT}/enable", headers=h),
        ),
        (
            "PUT",
            "/api/v1/users/{username}/roles",
            lambda c, h: admin(c).put(
                f"/api/v1/users/{ACCOUNT}/roles",
                json={"roles": ["annotator", "reviewer"]},
                headers=h,
            ),
        ),
        ("POST", "/api/v1/users/{username}/password-reset", reset_password),
        ("POST", "/api/v1/users/me/password", change_password),
        ("POST", "/api/v1/users/me/totp", enrol_totp),
        ("POST", "/api/v1/users/me/totp/confirm", confirm_totp),
        ("POST", "/api/v1/users/me/totp/disable", disable_totp),
        (
            "DELETE",
            "/api/v1/users/{username}/totp",
            lambda c, h: admin(c).delete(f"/api/v1/users/{ACCOUNT}/totp", headers=h),
        ),
        (
            "POST",
            "/api/v1/service-accounts",
            lambda c, h: admin(c).post(
                "/api/v1/service-accounts",
                json={"name": "route-bot", "roles": ["manager"]},
                headers=h,
            ),
        ),
        ("GET", "/api/v1/service-accounts", get("/api/v1/service-accounts")),
        ("POST", "/api/v1/projects", create_project),
        ("GET", "/api/v1/projects", get("/api/v1/projects")),
        ("GET", "/api/v1/projects/{project_id}", get("/api/v1/projects/{project}")),
        (
            "POST",
            "/api/v1/projects/{project_id}/members",
            lambda c, h: admin(c).post(
                f"/api/v1/projects/{c['project']}/members",
                json={"username": "route-ann", "role": "annotator"},
                headers=h,
            ),
        ),
        ("POST", "/api/v1/projects/{project_id}/documents", upload),
        (
            "GET",
            "/api/v1/projects/{project_id}/documents",
            get("/api/v1/projects/{project}/documents"),
        ),
        ("GET", "/api/v1/documents/{document_id}", get("/api/v1/documents/{document}")),
        (
            "GET",
            "/api/v1/documents/{document_id}/original",
            get(
                "/api/v1/documents/{document}/original",
                custodian,
                reason="route table review",
            ),
        ),
        (
            "GET",
            "/api/v1/documents/{document_id}/redaction",
            get("/api/v1/documents/{document}/redaction"),
        ),
        (
            "GET",
            "/api/v1/projects/{project_id}/redaction-policy",
            get("/api/v1/projects/{project}/redaction-policy"),
        ),
        (
            "PUT",
            "/api/v1/projects/{project_id}/redaction-policy",
            lambda c, h: admin(c).put(
                f"/api/v1/projects/{c['project']}/redaction-policy",
                json={"default_action": "mask"},
                headers=h,
            ),
        ),
        (
            "GET",
            "/api/v1/projects/{project_id}/redaction",
            get("/api/v1/projects/{project}/redaction"),
        ),
        (
            "POST",
            "/api/v1/documents/{document_id}/redaction/corrections",
            lambda c, h: admin(c).post(
                f"/api/v1/documents/{c['document']}/redaction/corrections",
                json={
                    "corrections": [
                        {"action": "add", "start": 0, "end": 3, "type": "ID_NUMBER"}
                    ]
                },
                headers=h,
            ),
        ),
        (
            "POST",
            "/api/v1/projects/{project_id}/reidentification",
            lambda c, h: admin(c).post(
                f"/api/v1/projects/{c['project']}/reidentification",
                json={"reason": "route table review"},
                headers=h,
            ),
        ),
        (
            "GET",
            "/api/v1/documents/{document_id}/structure",
            get("/api/v1/documents/{document}/structure"),
        ),
        (
            "GET",
            "/api/v1/projects/{project_id}/quarantine",
            get("/api/v1/projects/{project}/quarantine"),
        ),
        ("POST", "/api/v1/projects/{project_id}/tasks/next", lease),
        (
            "GET",
            "/api/v1/projects/{project_id}/tasks",
            get("/api/v1/projects/{project}/tasks"),
        ),
        ("GET", "/api/v1/tasks/{task_id}", get("/api/v1/tasks/{task}", ann)),
        (
            "POST",
            "/api/v1/tasks/{task_id}/annotations",
            lambda c, h: ann(c).post(
                f"/api/v1/tasks/{c['task']}/annotations",
                json={"spans": [{"start": 8, "end": 20, "label": "PERSON"}]},
                headers=h,
            ),
        ),
        (
            "GET",
            "/api/v1/projects/{project_id}/annotations",
            get("/api/v1/projects/{project}/annotations"),
        ),
        (
            "POST",
            "/api/v1/tasks/{task_id}/reopen",
            lambda c, h: ann(c).post(f"/api/v1/tasks/{c['task']}/reopen", headers=h),
        ),
        (
            "POST",
            "/api/v1/tasks/{task_id}/skip",
            lambda c, h: ann(c).post(
                f"/api/v1/tasks/{c['task']}/skip",
                json={"reason": "route table review"},
                headers=h,
            ),
        ),
        (
            "GET",
            "/api/v1/tasks/{task_id}/pages/{page}",
            get("/api/v1/tasks/{task}/pages/1", ann),
        ),
        (
            "PATCH",
            "/api/v1/tasks/{task_id}",
            lambda c, h: admin(c).patch(
                f"/api/v1/tasks/{c['task']}", json={"priority": 5}, headers=h
            ),
        ),
        (
            "POST",
            "/api/v1/projects/{project_id}/assignments",
            lambda c, h: admin(c).post(
                f"/api/v1/projects/{c['project']}/assignments",
                json={"username": "route-ann", "count": 1},
                headers=h,
            ),
        ),
        (
            "GET",
            "/api/v1/projects/{project_id}/stats",
            get("/api/v1/projects/{project}/stats"),
        ),
        (
            "PATCH",
            "/api/v1/projects/{project_id}/assistance",
            lambda c, h: admin(c).patch(
                f"/api/v1/projects/{c['project']}/assistance",
                json={"enabled": True},
                headers=h,
            ),
        ),
        (
            "POST",
            "/api/v1/projects/{project_id}/models",
            lambda c, h: admin(c).post(
                f"/api/v1/projects/{c['project']}/models", headers=h
            ),
        ),
        (
            "GET",
            "/api/v1/projects/{project_id}/models",
            get("/api/v1/projects/{project}/models"),
        ),
        (
            "POST",
            "/api/v1/projects/{project_id}/reviews/next",
            lambda c, h: admin(c).post(
                f"/api/v1/projects/{c['project']}/reviews/next", headers=h
            ),
        ),
        (
            "POST",
            "/api/v1/tasks/{task_id}/review",
            lambda c, h: admin(c).post(
                f"/api/v1/tasks/{c['task']}/review",
                json={"decision": "correct", "annotation": {"spans": []}},
                headers=h,
            ),
        ),
        ("POST", "/api/v1/projects/{project_id}/exports", export),
        (
            "GET",
            "/api/v1/projects/{project_id}/exports",
            get("/api/v1/projects/{project}/exports"),
        ),
        ("GET", "/api/v1/exports/{export_id}", get("/api/v1/exports/{export}")),
        (
            "GET",
            "/api/v1/exports/{export_id}/files/{name:path}",
            get("/api/v1/exports/{export}/files/manifest.json"),
        ),
        (
            "GET",
            "/api/v1/exports/signing-key",
            get("/api/v1/exports/signing-key"),
        ),
        ("POST", "/api/v1/projects/{project_id}/imports", start_import),
        (
            "POST",
            "/api/v1/projects/{project_id}/synthetic",
            lambda c, h: admin(c).post(
                f"/api/v1/projects/{c['project']}/synthetic",
                json={"method": "template", "count": 1},
                headers=h,
            ),
        ),
        ("GET", "/api/v1/imports/{import_id}", get("/api/v1/imports/{import}")),
        ("GET", "/api/v1/audit/events", get("/api/v1/audit/events")),
        ("GET", "/api/v1/audit/verify", get("/api/v1/audit/verify")),
        (
            "GET",
            "/api/v1/audit/lineage/documents/{document_id}",
            get("/api/v1/audit/lineage/documents/{document}"),
        ),
        (
            "GET",
            "/api/v1/audit/activity/{username}",
            get("/api/v1/audit/activity/route-ann"),
        ),
        ("GET", "/api/v1/audit/checkpoints", get("/api/v1/audit/checkpoints")),
        (
            "GET",
            "/api/v1/audit/events/{event_id}/proof",
            lambda c, h: admin(c).get(
                f"/api/v1/audit/events/{uuid.uuid4()}/proof", headers=h
            ),
        ),
        (
            "GET",
            "/api/v1/audit/consistency",
            get("/api/v1/audit/consistency", first="1", second="1"),
        ),
    ]


@pytest.fixture(scope="module")
def rest_results(ctx: Ctx) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """Call every route once, in order; what each answered and left behind."""
    results = {}
    for method, path, call in _rest_calls():
        request_id = f"route-{uuid.uuid4()}"
        response = call(ctx, {"x-request-id": request_id})
        try:
            events = wait_for(lambda r=request_id: _events_of(ctx["admin"], r), 20)
        except AssertionError:
            events = []
        results[(method, path)] = (
            response.status_code,
            [e["action"] for e in events],
        )
    return results


def test_every_route_is_either_audited_or_reviewed_as_touching_no_data(
    ctx: Ctx, rest_results: dict[tuple[str, str], tuple[int, list[str]]]
) -> None:
    table = route_table(ctx["scratch"])

    unlisted = table - set(rest_results) - set(NO_DATA_ROUTES)
    stale = (set(rest_results) | set(NO_DATA_ROUTES)) - table
    silent = {route: r for route, r in rest_results.items() if not r[1]}

    assert not unlisted, f"routes with no access-event check: {sorted(unlisted)}"
    assert not stale, f"checked routes that no longer exist: {sorted(stale)}"
    assert not silent, f"routes that left no audit event: {silent}"
    assert all(status < 500 for status, _ in rest_results.values()), rest_results


def test_reads_of_protected_data_are_recorded_as_reads(
    rest_results: dict[tuple[str, str], tuple[int, list[str]]],
) -> None:
    expected = {
        ("GET", "/api/v1/documents/{document_id}/original"): "document.original.read",
        ("GET", "/api/v1/tasks/{task_id}"): "task.read",
        ("GET", "/api/v1/exports/{export_id}/files/{name:path}"): "export.download",
        ("GET", "/api/v1/users"): "user.list",
        ("GET", "/api/v1/projects/{project_id}/tasks"): "task.list",
        ("GET", "/api/v1/projects/{project_id}/stats"): "project.stats.read",
        ("GET", "/api/v1/audit/events"): "audit.search",
    }
    for route, action in expected.items():
        status, actions = rest_results[route]
        assert status == 200, (route, status)
        assert action in actions, (route, actions)


# --- gRPC --------------------------------------------------------------------


def test_every_grpc_method_leaves_an_audit_event(
    ctx: Ctx, rest_results: dict[tuple[str, str], tuple[int, list[str]]]
) -> None:
    requests = grpc_requests(ctx)
    assert set(requests) == all_methods(), "every gRPC method needs a call here"
    addresses = ctx["strongroom"].addresses()
    admin_token = ctx["strongroom"].token("admin", ctx["password"])
    silent = []
    for method, build in requests.items():
        service, name = method.split("/")
        target, stub_class = STUBS[service]
        request_id = f"grpc-{uuid.uuid4()}"
        request_id_var.set(request_id)
        with grpc.insecure_channel(addresses[target]) as channel:
            rpc = getattr(stub_class(channel), name)
            try:
                answer = rpc(build(), metadata=caller_metadata(admin_token), timeout=30)
                if hasattr(answer, "__iter__") and not hasattr(answer, "ListFields"):
                    list(answer)
            except grpc.RpcError as exc:
                assert exc.code() != grpc.StatusCode.INTERNAL, method
        try:
            wait_for(lambda r=request_id: _events_of(ctx["admin"], r), 20)
        except AssertionError:
            silent.append(method)
    assert not silent, f"gRPC methods that left no audit event: {silent}"
