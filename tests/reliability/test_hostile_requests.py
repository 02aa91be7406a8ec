"""Hostile requests at the gateway: names that climb out of folders, headers
and bodies too large, clients that send slowly, and tokens that are not.

Each must get a clear refusal (or a harmless answer) and leave the platform
serving everyone else.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from strongroom.v1 import tasks_pb2, tasks_pb2_grpc
from tests.e2e.harness import Strongroom, upload_file, wait_for

TRAVERSING_NAMES = [
    "../../../../etc/strongroom-escape.txt",
    "..\\..\\..\\strongroom-escape.txt",
    "/etc/strongroom-escape.txt",
    "notes/../../strongroom-escape.txt",
    "nul\x00byte.txt",
    "x" * 5000 + ".txt",
]


@pytest.fixture(scope="module")
def project(admin: httpx.Client) -> dict:
    created = admin.post("/api/v1/projects", json={"name": "Hostile", "labels": ["X"]})
    created.raise_for_status()
    body: dict = created.json()
    return body


def _escaped(strongroom: Strongroom) -> list[Path]:
    """Files named like the escape attempts anywhere they could have landed."""
    places = [Path("/etc"), Path("/tmp"), strongroom.data_dir.parent, Path.cwd()]
    found = [path for place in places for path in place.glob("strongroom-escape*")]
    return found + list(strongroom.data_dir.rglob("*strongroom-escape*"))


@pytest.mark.parametrize("name", TRAVERSING_NAMES, ids=range(len(TRAVERSING_NAMES)))
def test_a_name_that_climbs_out_stays_a_name(
    strongroom: Strongroom, admin: httpx.Client, project: dict, name: str
) -> None:
    # Each its own content, so none is a duplicate of another.
    content = f"Seen today; upload {TRAVERSING_NAMES.index(name)}.\n".encode()
    response = upload_file(admin, project["id"], name, content)
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        assert response.headers["content-type"] == "application/problem+json"
    assert not _escaped(strongroom)


def test_a_zip_entry_that_climbs_out_stays_inside(
    strongroom: Strongroom, admin: httpx.Client, project: dict
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../../../tmp/strongroom-escape-zip.txt", b"climbing\n")
        archive.writestr("/tmp/strongroom-escape-abs.txt", b"absolute\n")
        archive.writestr("fine.txt", b"staying\n")
    response = upload_file(admin, project["id"], "bundle.zip", buffer.getvalue())
    assert response.status_code == 201, response.text
    assert len(response.json()["child_ids"]) == 3
    assert not _escaped(strongroom)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
        "/api/v1/documents/..%2f..%2fetc%2fpasswd",
        "/api/v1/projects/%2e%2e/tasks",
    ],
)
def test_a_path_that_climbs_out_finds_nothing(
    strongroom: Strongroom, admin: httpx.Client, path: str
) -> None:
    response = admin.get(path)
    assert response.status_code in (400, 403, 404), response.text
    assert b"[project]" not in response.content and b"root:" not in response.content


def _raw_request(strongroom: Strongroom, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", strongroom.port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def test_an_oversized_header_is_refused_and_the_gateway_serves_on(
    strongroom: Strongroom, admin: httpx.Client
) -> None:
    huge = b"x" * (256 * 1024)
    answer = _raw_request(
        strongroom,
        b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
        + huge
        + b"\r\n\r\n",
    )
    assert _status(answer) in (0, 400, 431)  # refused, or the connection closed
    assert admin.get("/api/v1/me").status_code == 200


def test_an_oversized_body_is_refused_before_it_is_read(
    admin: httpx.Client,
) -> None:
    body = b'{"name": "' + b"x" * (64 << 20) + b'", "labels": ["X"]}'
    response = admin.post(
        "/api/v1/projects",
        content=body,
        headers={"content-type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 413, response.text[:200]
    assert response.json()["code"] == "request_too_large"
    assert admin.get("/api/v1/me").status_code == 200
    refusals = admin.get(
        "/api/v1/audit/events", params={"action": "http.request", "limit": 10}
    ).json()["events"]
    assert any(event["reason"] == "request_too_large" for event in refusals)


def test_an_oversized_chunked_body_is_refused(admin: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(64):
            yield b"x" * (1 << 20)
        yield b'", "labels": ["X"]}'

    response = admin.post(
        "/api/v1/projects",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 413, response.text[:200]
    assert response.json()["code"] == "request_too_large"


def test_slow_clients_do_not_stop_anyone_else(
    strongroom: Strongroom, admin: httpx.Client
) -> None:
    # Each sends the start of a request and then a byte now and again.
    slow = []
    for _ in range(64):
        s = socket.create_connection(("127.0.0.1", strongroom.port), timeout=10)
        s.sendall(b"POST /api/v1/projects HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        slow.append(s)
    try:
        started = time.monotonic()
        for _ in range(10):
            for s in slow:
                with contextlib.suppress(OSError):
                    s.sendall(b"X")
            assert admin.get("/api/v1/me", timeout=10).status_code == 200
        assert time.monotonic() - started < 60
    finally:
        for s in slow:
            s.close()


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hs256(claims: dict, secret: bytes) -> str:
    """A token signed with HMAC, as an attacker would make it by hand."""
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _bad_tokens(strongroom: Strongroom, good: str) -> dict[str, str]:
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    jwks = httpx.get(f"{strongroom.url}/oidc/jwks").json()
    public_pem = jwt.PyJWK(jwks["keys"][0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raised = {**claims, "realm_access": {"roles": ["admin", "auditor"]}}
    return {
        "garbage": "not-a-token",
        "empty": "",
        "three dots": "...",
        "none algorithm": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "claims changed": f"{header}.{_b64(raised)}.{signature}",
        "signature cut": f"{header}.{payload}.{signature[:10]}",
        "huge": "a" * 12000,
        "not ascii": "tökén.ünïcode.x",
        "hmac with a guessed secret": _hs256(claims, b"secret"),
        "hmac keyed with the public key": _hs256(claims, public_pem),
    }


def test_malformed_tokens_are_refused_everywhere(
    strongroom: Strongroom, admin: httpx.Client
) -> None:
    good = admin.headers["authorization"].split(" ", 1)[1]
    bad = _bad_tokens(strongroom, good)
    channel = grpc.insecure_channel(strongroom.addresses()["tasks"])
    stub = tasks_pb2_grpc.TaskServiceStub(channel)
    # Refusals by the service itself, each of which it audits.
    refused_by_service = 0
    try:
        for kind, token in bad.items():
            try:
                response = httpx.get(
                    f"{strongroom.url}/api/v1/projects",
                    headers={"authorization": f"Bearer {token}"},
                    timeout=10,
                )
            except (UnicodeEncodeError, httpx.LocalProtocolError):
                response = None  # the client refuses to send it at all
            if response is not None:
                assert response.status_code == 401, kind
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["code"].startswith("token_"), kind
            if not token.isascii():
                continue  # gRPC metadata is ASCII; the client will not send it
            metadata = (("authorization", f"Bearer {token}"),)
            with pytest.raises(grpc.RpcError) as refused:
                stub.ListProjects(
                    tasks_pb2.ListProjectsRequest(), timeout=10, metadata=metadata
                )
            expected = {grpc.StatusCode.UNAUTHENTICATED}
            if kind == "huge":  # gRPC's own metadata limit may refuse it first
                expected.add(grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert refused.value.code() in expected, kind
            if refused.value.code() == grpc.StatusCode.UNAUTHENTICATED:
                refused_by_service += 1
    finally:
        channel.close()

    def refused_sign_ins() -> bool:
        events = admin.get(
            "/api/v1/audit/events",
            params={"action": "rpc.ListProjects", "outcome": "denied", "limit": 100},
        ).json()["events"]
        return len(events) >= refused_by_service

    # Each service's refusals travel to the audit trail through its outbox.
    # gRPC itself refuses metadata between its soft and hard size limits at
    # random, before the service sees the call, so the huge token is audited
    # only when it got through.
    assert refused_by_service >= len(bad) - 2
    wait_for(refused_sign_ins, timeout=120, interval=1)
    assert admin.get("/api/v1/me").status_code == 200
