"""The permission matrix: who may call each REST route and gRPC method.

This module is the single source: docs/permissions.md embeds the table that
``render_markdown`` prints, a unit test checks the two agree, and
tests/e2e/test_permission_matrix.py calls every entry as every caller and
compares the answers with it. Regenerate the document's table with
``python -m tests.e2e.permission_matrix``.

Targets are always in project A, where the manager, annotator and reviewer
are members; the auditor, the reidentifier and the original reader are
members of no project.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from strongroom.services.common.auth import ROLE_ORDER

ALLOWED = "allowed"
DENIED = "denied"  # 403 problem / PERMISSION_DENIED
HIDDEN = "hidden"  # 404 problem / NOT_FOUND, the answer for an id that does not exist
UNAUTHENTICATED = "unauthenticated"  # 401 problem / UNAUTHENTICATED

# Every role Strongroom knows is a column: a new role fails every row until
# its cells are written.
ROLES = ROLE_ORDER
CALLERS = (*ROLES, "anonymous")
# Tokens that must be refused like no token at all wherever one is needed.
BAD_TOKENS = ("expired", "tampered", "wrong_audience")

# What a short note in a cell stands for.
NOTES = {
    "own": "own projects",
    "member": "as a member",
    "lease": "own tasks",
    "answer": "own answers",
    "queue": "review queue",
    "reason": "with a reason",
    "self": "self",
    "list": "lists own",
}


@dataclass(frozen=True)
class Cell:
    outcome: str
    note: str = ""

    @property
    def text(self) -> str:
        word = {
            ALLOWED: "allowed",
            DENIED: "403",
            HIDDEN: "404",
            UNAUTHENTICATED: "401",
        }[self.outcome]
        return f"{word}: {NOTES[self.note]}" if self.note else word


_SHORT = {"ok": ALLOWED, "403": DENIED, "404": HIDDEN, "401": UNAUTHENTICATED}


def _row(spec: str) -> dict[str, Cell]:
    """One cell per caller in CALLERS order: "ok ok:own 403 403 404 404 404 401"."""
    cells = []
    for token in spec.split():
        short, _, note = token.partition(":")
        cells.append(Cell(_SHORT[short], note))
    assert len(cells) == len(CALLERS), spec
    return dict(zip(CALLERS, cells, strict=True))


PUBLIC = "ok ok ok ok ok ok ok ok"
SIGNED_IN = "ok ok ok ok ok ok ok 401"
ADMIN_ONLY = "ok 403 403 403 403 403 403 401"
MANAGERS = "ok ok:own 403 403 403 403 403 401"
# Project-role checks: members of A in another role are denied; the auditor,
# the reidentifier and the original reader, in no project, are answered as
# for a missing id.
MANAGERS_OF_PROJECT = "ok ok:own 403 403 404 404 404 401"
AUDITORS = "ok 403 403 403 ok 403 403 401"

REST: dict[str, dict[str, Cell]] = {
    "GET /": _row(PUBLIC),
    "MOUNT /static": _row(PUBLIC),
    "GET /openapi.json": _row(PUBLIC),
    "GET /healthz": _row(PUBLIC),
    "GET /readyz": _row(PUBLIC),
    "GET /readyz/gateway": _row(PUBLIC),
    "GET /metrics": _row(PUBLIC),
    "GET /oidc/.well-known/openid-configuration": _row(PUBLIC),
    "GET /oidc/jwks": _row(PUBLIC),
    "POST /oidc/token": _row(PUBLIC),
    "GET /oidc/authorize": _row(PUBLIC),
    "POST /oidc/authorize": _row(PUBLIC),
    "GET /auth/login": _row(PUBLIC),
    "GET /auth/callback": _row(PUBLIC),
    "POST /auth/logout": _row(PUBLIC),
    "GET /api/v1/me": _row(
        "ok:self ok:self ok:self ok:self ok:self ok:self ok:self 401"
    ),
    "POST /api/v1/users": _row(ADMIN_ONLY),
    "GET /api/v1/users": _row(ADMIN_ONLY),
    "POST /api/v1/users/{username}/disable": _row(ADMIN_ONLY),
    "POST /api/v1/users/{username}/enable": _row(ADMIN_ONLY),
    "POST /api/v1/users/{username}/password-reset": _row(ADMIN_ONLY),
    "PUT /api/v1/users/{username}/roles": _row(ADMIN_ONLY),
    "DELETE /api/v1/users/{username}/totp": _row(ADMIN_ONLY),
    "POST /api/v1/users/me/password": _row(
        "ok:self ok:self ok:self ok:self ok:self ok:self ok:self 401"
    ),
    "POST /api/v1/users/me/totp": _row(
        "ok:self ok:self ok:self ok:self ok:self ok:self ok:self 401"
    ),
    "POST /api/v1/users/me/totp/confirm": _row(
        "ok:self ok:self ok:self ok:self ok:self ok:self ok:self 401"
    ),
    "POST /api/v1/users/me/totp/disable": _row(
        "ok:self ok:self ok:self ok:self ok:self ok:self ok:self 401"
    ),
    "POST /api/v1/service-accounts": _row(ADMIN_ONLY),
    "GET /api/v1/service-accounts": _row(ADMIN_ONLY),
    "POST /api/v1/projects": _row(ADMIN_ONLY),
    "GET /api/v1/projects": _row(
        "ok ok:list ok:list ok:list ok:list ok:list ok:list 401"
    ),
    "GET /api/v1/projects/{project_id}": _row(
        "ok ok:member ok:member ok:member 404 404 404 401"
    ),
    "POST /api/v1/projects/{project_id}/members": _row(MANAGERS),
    "POST /api/v1/projects/{project_id}/documents": _row(MANAGERS),
    "GET /api/v1/projects/{project_id}/documents": _row(MANAGERS),
    "GET /api/v1/documents/{document_id}": _row(MANAGERS),
    "GET /api/v1/documents/{document_id}/original": _row(
        "403 403 403 403 403 403 ok:reason 401"
    ),
    "GET /api/v1/documents/{document_id}/redaction": _row(MANAGERS),
    "GET /api/v1/documents/{document_id}/structure": _row(MANAGERS),
    "GET /api/v1/projects/{project_id}/quarantine": _row(MANAGERS),
    "GET /api/v1/projects/{project_id}/redaction-policy": _row(MANAGERS),
    "PUT /api/v1/projects/{project_id}/redaction-policy": _row(MANAGERS),
    "GET /api/v1/projects/{project_id}/redaction": _row(MANAGERS),
    "POST /api/v1/documents/{document_id}/redaction/corrections": _row(
        "ok ok:own 403 ok:own 403 403 403 401"
    ),
    "POST /api/v1/projects/{project_id}/reidentification": _row(
        "403 403 403 403 403 ok:reason 403 401"
    ),
    "POST /api/v1/projects/{project_id}/tasks/next": _row(
        "403 403 ok:own 403 404 404 404 401"
    ),
    "GET /api/v1/projects/{project_id}/tasks": _row(MANAGERS_OF_PROJECT),
    "GET /api/v1/tasks/{task_id}": _row("ok ok:own ok:lease 403 404 404 404 401"),
    "GET /api/v1/tasks/{task_id}/pages/{page}": _row(
        "ok ok:own ok:lease 403 404 404 404 401"
    ),
    "POST /api/v1/tasks/{task_id}/annotations": _row(
        "403 403 ok:lease 403 404 404 404 401"
    ),
    "POST /api/v1/tasks/{task_id}/reopen": _row(
        "403 403 ok:answer 403 404 404 404 401"
    ),
    "POST /api/v1/tasks/{task_id}/skip": _row("403 403 ok:lease 403 404 404 404 401"),
    "PATCH /api/v1/tasks/{task_id}": _row(MANAGERS_OF_PROJECT),
    "POST /api/v1/projects/{project_id}/assignments": _row(MANAGERS_OF_PROJECT),
    "GET /api/v1/projects/{project_id}/annotations": _row(MANAGERS),
    "GET /api/v1/projects/{project_id}/stats": _row(MANAGERS_OF_PROJECT),
    "POST /api/v1/projects/{project_id}/reviews/next": _row(
        "403 ok:own 403 ok:queue 404 404 404 401"
    ),
    "POST /api/v1/tasks/{task_id}/review": _row("403 403 403 ok:queue 404 404 404 401"),
    "POST /api/v1/projects/{project_id}/exports": _row(MANAGERS),
    "GET /api/v1/projects/{project_id}/exports": _row(MANAGERS),
    "GET /api/v1/exports/{export_id}": _row(MANAGERS),
    "GET /api/v1/exports/{export_id}/files/{name:path}": _row(MANAGERS),
    "GET /api/v1/exports/signing-key": _row(SIGNED_IN),
    "POST /api/v1/projects/{project_id}/imports": _row(MANAGERS),
    "GET /api/v1/imports/{import_id}": _row(MANAGERS),
    "POST /api/v1/projects/{project_id}/synthetic": _row(MANAGERS_OF_PROJECT),
    "PATCH /api/v1/projects/{project_id}/assistance": _row(MANAGERS_OF_PROJECT),
    "POST /api/v1/projects/{project_id}/models": _row(MANAGERS_OF_PROJECT),
    "GET /api/v1/projects/{project_id}/models": _row(MANAGERS_OF_PROJECT),
    "GET /api/v1/audit/events": _row(AUDITORS),
    "GET /api/v1/audit/verify": _row(AUDITORS),
    "GET /api/v1/audit/lineage/documents/{document_id}": _row(AUDITORS),
    "GET /api/v1/audit/activity/{username}": _row(AUDITORS),
    "GET /api/v1/audit/checkpoints": _row(AUDITORS),
    "GET /api/v1/audit/events/{event_id}/proof": _row(AUDITORS),
    "GET /api/v1/audit/consistency": _row(AUDITORS),
}

GRPC: dict[str, dict[str, Cell]] = {
    "IngestionService/IngestDocument": _row(MANAGERS),
    "IngestionService/GetDocument": _row(MANAGERS),
    "IngestionService/ListDocuments": _row(MANAGERS),
    "IngestionService/ReadOriginal": _row("403 403 403 403 403 403 ok:reason 401"),
    "IngestionService/ReadStructure": _row(MANAGERS),
    "IngestionService/ListQuarantined": _row(MANAGERS),
    "RedactionService/GetRedactionReport": _row(MANAGERS),
    "RedactionService/GetProjectRedactionReport": _row(MANAGERS),
    "RedactionService/GetRedactionPolicy": _row(MANAGERS),
    "RedactionService/SetRedactionPolicy": _row(MANAGERS),
    "RedactionService/CorrectRedaction": _row("ok ok:own 403 ok:own 403 403 403 401"),
    "RedactionService/MapSpans": _row(MANAGERS),
    "RedactionService/ReadReidentification": _row(
        "403 403 403 403 403 ok:reason 403 401"
    ),
    "TaskService/CreateProject": _row(ADMIN_ONLY),
    "TaskService/GetProject": _row("ok ok:member ok:member ok:member 404 404 404 401"),
    "TaskService/ListProjects": _row(
        "ok ok:list ok:list ok:list ok:list ok:list ok:list 401"
    ),
    "TaskService/AddMember": _row(MANAGERS),
    "TaskService/LeaseNextTask": _row("403 403 ok:own 403 404 404 404 401"),
    "TaskService/GetTask": _row("ok ok:own ok:lease 403 404 404 404 401"),
    "TaskService/GetTaskPage": _row("ok ok:own ok:lease 403 404 404 404 401"),
    "TaskService/CompleteTask": _row("403 403 ok:lease 403 404 404 404 401"),
    "TaskService/SkipTask": _row("403 403 ok:lease 403 404 404 404 401"),
    "TaskService/ReopenTask": _row("403 403 ok:answer 403 404 404 404 401"),
    "TaskService/ListTasks": _row(MANAGERS_OF_PROJECT),
    "TaskService/UpdateTask": _row(MANAGERS_OF_PROJECT),
    "TaskService/SetSuggestions": _row(MANAGERS_OF_PROJECT),
    "TaskService/AddSyntheticTask": _row(MANAGERS_OF_PROJECT),
    "TaskService/AssignTasks": _row(MANAGERS_OF_PROJECT),
    "TaskService/GetQueueStats": _row(MANAGERS_OF_PROJECT),
    "TaskService/LeaseNextReview": _row("403 ok:own 403 ok:queue 404 404 404 401"),
    "TaskService/ResolveReview": _row("403 403 403 ok:queue 404 404 404 401"),
    "LabelingService/SubmitAnnotation": _row("403 403 ok:lease 403 404 404 404 401"),
    "LabelingService/ListTaskAnnotations": _row(
        "ok ok:own ok:answer 403 404 404 404 401"
    ),
    "LabelingService/ReviewTask": _row("403 403 403 ok:queue 404 404 404 401"),
    "LabelingService/ListAnnotations": _row(MANAGERS),
    "LabelingService/GetProjectStats": _row(MANAGERS_OF_PROJECT),
    "LabelingService/ImportAnnotation": _row(MANAGERS_OF_PROJECT),
    "LabelingService/Synthesize": _row(MANAGERS_OF_PROJECT),
    "LabelingService/SetAssistance": _row(MANAGERS_OF_PROJECT),
    "LabelingService/TrainModel": _row(MANAGERS_OF_PROJECT),
    "LabelingService/ListModels": _row(MANAGERS_OF_PROJECT),
    "LabelingService/GetTaskAssistance": _row("ok ok:own ok:lease 403 404 404 404 401"),
    "ExportService/CreateExport": _row(MANAGERS),
    "ExportService/ListExports": _row(MANAGERS),
    "ExportService/GetExport": _row(MANAGERS),
    "ExportService/ReadExportFile": _row(MANAGERS),
    "ExportService/GetSigningKey": _row(SIGNED_IN),
    "ExportService/StartImport": _row(MANAGERS),
    "ExportService/GetImport": _row(MANAGERS),
    "AuditService/SearchEvents": _row(AUDITORS),
    "AuditService/VerifyChain": _row(AUDITORS),
    "AuditService/GetDocumentLineage": _row(AUDITORS),
    "AuditService/GetActorActivity": _row(AUDITORS),
    "AuditService/ListCheckpoints": _row(AUDITORS),
    "AuditService/ProveInclusion": _row(AUDITORS),
    "AuditService/ProveConsistency": _row(AUDITORS),
}


def expected(entry: dict[str, Cell], caller: str) -> Cell:
    """The cell for any caller, a bad token included: refused like no token
    wherever a token is needed, ignored where none is."""
    if caller in BAD_TOKENS:
        anonymous = entry["anonymous"]
        return Cell(UNAUTHENTICATED) if anonymous.outcome != ALLOWED else anonymous
    return entry[caller]


def _table(rows: dict[str, dict[str, Cell]], first: str) -> list[str]:
    lines = [
        f"| {first} | {' | '.join(CALLERS)} |",
        "|---" * (len(CALLERS) + 1) + "|",
    ]
    for name, cells in rows.items():
        texts = " | ".join(cells[c].text for c in CALLERS)
        lines.append(f"| `{name}` | {texts} |")
    return lines


BEGIN = "<!-- matrix:begin (generated by python -m tests.e2e.permission_matrix) -->"
END = "<!-- matrix:end -->"
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def render_markdown() -> str:
    """The two tables of docs/permissions.md, between their markers."""
    lines = [
        BEGIN,
        "",
        "### REST routes",
        "",
        *_table(REST, "route"),
        "",
        "### gRPC methods",
        "",
        *_table(GRPC, "method"),
        "",
        END,
    ]
    return "\n".join(lines)


def embedded_markdown(document: str) -> str:
    """The generated part of a document, markers included."""
    found = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), document, re.DOTALL)
    return found.group(0) if found else ""


def main() -> None:
    text = DOCUMENT.read_text()
    current = embedded_markdown(text)
    if not current:
        sys.exit(f"{DOCUMENT} has no generated matrix section to replace.")
    DOCUMENT.write_text(text.replace(current, render_markdown()))


if __name__ == "__main__":
    main()
