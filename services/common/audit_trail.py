"""Writing audit events: every service stages them in its own outbox.

An audit event is staged in the same transaction as the change it records,
so a change cannot commit without its audit event. Details hold ids, counts,
codes and hashes only. The schema is documented in docs/audit-events.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.auth import Principal
from strongroom.services.common.database import utc_now
from strongroom.services.common.events import AUDIT_EVENT, stage_event
from strongroom.services.common.logs import request_id_var, user_agent_var

SUCCESS = "success"
DENIED = "denied"
ERROR = "error"

SYSTEM = Principal(subject="system", username="system", roles=frozenset())


def stage_audit(
    conn: Connection,
    *,
    service: str,
    action: str,
    actor: Principal,
    resource_type: str,
    resource_id: str = "",
    project_id: str = "",
    outcome: str = SUCCESS,
    reason: str = "",
    details: Mapping[str, str | int] | None = None,
    documents: Sequence[str] = (),
) -> str:
    """Stage one audit event in the caller's transaction; return its id.

    ``documents`` names every document the action touched beyond the
    resource itself, so a document's lineage finds it (a task read, an
    annotation, an export). A document resource and a ``document_id`` detail
    are included without being named.
    """
    details = dict(details or {})
    touched = [*documents]
    if resource_type == "document" and resource_id:
        touched.append(resource_id)
    if "document_id" in details:
        touched.append(str(details["document_id"]))
    event = {
        "id": str(uuid.uuid4()),
        "time": utc_now(),
        "actor": {
            "subject": actor.subject,
            "username": actor.username,
            "display_name": actor.display_name,
            "roles": sorted(actor.roles),
            "client_address": actor.client_address,
            "user_agent": user_agent_var.get(),
        },
        "action": action,
        "resource": {
            "type": resource_type,
            "id": resource_id,
            "project_id": project_id,
        },
        "outcome": outcome,
        "reason": reason,
        "request_id": request_id_var.get(),
        "service": service,
        "details": {key: str(value) for key, value in details.items()},
        "documents": sorted(set(touched)),
    }
    stage_event(conn, AUDIT_EVENT, resource_id or action, event)
    return str(event["id"])


def record_sign_in(
    engine: Engine,
    actor: Principal,
    *,
    is_refused: bool,
    reason: str = "bad_credentials",
) -> None:
    """Audit one password sign-in at the gateway, refused or not.

    A refused attempt carries no username: a mistyped password is often
    another user's name or the password itself. ``reason`` says why it was
    refused (the caller is told only ``bad_credentials``): a wrong password,
    ``locked``, ``account_disabled``, ``totp_required`` or ``totp_invalid``.
    """
    with engine.begin() as conn:
        stage_audit(
            conn,
            service="gateway",
            action="auth.login",
            actor=actor,
            resource_type="session",
            resource_id="" if is_refused else actor.subject,
            outcome=DENIED if is_refused else SUCCESS,
            reason=reason if is_refused else "",
        )
