"""Service accounts of the built-in issuer: identities for automation.

A pipeline that uploads documents or builds exports signs in with the OAuth
client credentials grant: its client id and a secret shown once when an
admin creates it. It gets an access token like a person's, with the roles
it was given, and is a project member like anyone else, so the gateway and
every service check it the same way. Its username is ``svc-<name>``, a
prefix no person's username may take.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.services.common.adapters.local_oidc import (
    SERVICE_ACCOUNT_PREFIX,
    User,
    check_password,
    hash_password,
)
from strongroom.services.common.audit_trail import record_sign_in, stage_audit
from strongroom.services.common.auth import ROLES, Principal
from strongroom.services.common.database import Migration, migrate, utc_now
from strongroom.services.common.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)

PREFIX = SERVICE_ACCOUNT_PREFIX
SUBJECT_PREFIX = "service:"
_NAME_MAX = 48

MIGRATIONS = (
    Migration(
        110,
        "service accounts",
        (
            """CREATE TABLE service_accounts (
                client_id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                secret_hash TEXT NOT NULL,
                roles TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
        ),
    ),
)

# Compared against when the client id is unknown, so a miss costs the same.
_UNKNOWN_SECRET_HASH = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class ServiceAccount:
    client_id: str
    name: str
    roles: frozenset[str]
    created_at: str = ""

    @property
    def user(self) -> User:
        return User(f"{SUBJECT_PREFIX}{self.client_id}", PREFIX + self.name, self.roles)


class ServiceAccounts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        migrate(engine, MIGRATIONS)

    def create(
        self, name: str, roles: set[str], actor: Principal
    ) -> tuple[ServiceAccount, str]:
        """Create an account; return it and its secret, which is kept hashed.

        Raises:
            InvalidArgument: a bad name, no role, or an unknown role.
            Conflict: the name is taken.
        """
        if not name or len(name) > _NAME_MAX or not _is_plain(name):
            raise InvalidArgument(
                f"A service account's name is 1 to {_NAME_MAX} lowercase letters, "
                "digits or dashes.",
                code="service_account_name_invalid",
            )
        if not roles or not roles <= set(ROLES):
            raise InvalidArgument(
                f"A service account needs one or more of: {', '.join(sorted(ROLES))}.",
                code="roles_invalid",
            )
        account = ServiceAccount(str(uuid.uuid4()), name, frozenset(roles), utc_now())
        secret = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.text("SELECT 1 FROM service_accounts WHERE name = :n"), {"n": name}
            ).first()
            if taken:
                raise Conflict(
                    "That service account name is already taken.",
                    code="service_account_taken",
                )
            conn.execute(
                sa.text(
                    "INSERT INTO service_accounts (client_id, name, secret_hash, "
                    "roles, created_at) VALUES (:c, :n, :h, :r, :at)"
                ),
                {
                    "c": account.client_id,
                    "n": name,
                    "h": hash_password(secret),
                    "r": json.dumps(sorted(roles)),
                    "at": account.created_at,
                },
            )
            stage_audit(
                conn,
                service="gateway",
                action="service_account.create",
                actor=actor,
                resource_type="user",
                resource_id=account.user.subject,
                details={"roles": ",".join(sorted(roles))},
            )
        return account, secret

    def list(self) -> list[ServiceAccount]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT client_id, name, roles, created_at FROM service_accounts "
                    "ORDER BY name"
                )
            ).all()
        return [
            ServiceAccount(
                r.client_id, r.name, frozenset(json.loads(r.roles)), r.created_at
            )
            for r in rows
        ]

    def find(self, username: str) -> User:
        """The account behind a ``svc-`` username, as a user.

        Raises: NotFound: no service account has that name.
        """
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT client_id, name, roles FROM service_accounts "
                    "WHERE name = :n"
                ),
                {"n": username.removeprefix(PREFIX)},
            ).first()
        if row is None or not username.startswith(PREFIX):
            raise NotFound("No user has that username.", code="user_not_found")
        return ServiceAccount(
            row.client_id, row.name, frozenset(json.loads(row.roles))
        ).user

    def authenticate(self, client_id: str, secret: str, client_address: str) -> User:
        """Check a client's credentials, and audit the sign-in either way.

        Raises:
            Unauthenticated: the client id or secret is wrong (never says which).
        """
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT client_id, name, secret_hash, roles FROM service_accounts "
                    "WHERE client_id = :c"
                ),
                {"c": client_id[:64]},
            ).first()
        is_valid = check_password(
            secret[:256], row.secret_hash if row else _UNKNOWN_SECRET_HASH
        )
        if row is None or not is_valid:
            attempt = Principal("", "", frozenset(), client_address=client_address)
            record_sign_in(self.engine, attempt, is_refused=True)
            raise Unauthenticated(
                "The client id or secret is wrong.", code="bad_credentials"
            )
        user = ServiceAccount(
            row.client_id, row.name, frozenset(json.loads(row.roles))
        ).user
        signed_in = Principal(
            user.subject, user.username, user.roles, client_address=client_address
        )
        record_sign_in(self.engine, signed_in, is_refused=False)
        return user


def _is_plain(name: str) -> bool:
    return all(c.islower() or c.isdigit() or c == "-" for c in name) and name.isascii()
