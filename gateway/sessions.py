"""Browser sessions, kept in the gateway's own database.

The cookie holds only a random secret. The database keys the session by the
secret's SHA-256 and keeps the provider's tokens sealed (AES-256-GCM) under a
key derived from the secret, so neither a copy of the database nor a log line
gives anyone a token: the tokens open only with the cookie that came with the
request. The CSRF token the page sends back is derived from the secret too.
Every session ends after an idle timeout and in any case an absolute one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import Connection, Engine

from strongroom.services.common.audit_trail import DENIED, SUCCESS, stage_audit
from strongroom.services.common.auth import Principal, TokenSet
from strongroom.services.common.database import Migration, migrate
from strongroom.services.common.errors import Unauthenticated

# A sign-in left unfinished for this long (the login page abandoned) is void.
SIGN_IN_LIFETIME_SECONDS = 600
# A session is written back only when this share of the idle timeout has
# passed since it was last seen, so reading a page costs no write per request.
_TOUCH_FRACTION = 0.05

MIGRATIONS = (
    Migration(
        200,
        "browser sessions",
        (
            """CREATE TABLE browser_sessions (
                id TEXT PRIMARY KEY,
                secret_hash TEXT NOT NULL UNIQUE,
                subject TEXT NOT NULL,
                username TEXT NOT NULL,
                sealed_tokens TEXT NOT NULL,
                access_expires_at DOUBLE PRECISION NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                last_seen_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE pending_sign_ins (
                state_hash TEXT PRIMARY KEY,
                browser_hash TEXT NOT NULL,
                nonce TEXT NOT NULL,
                code_verifier TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
)


@dataclass(frozen=True)
class PendingSignIn:
    """What the gateway keeps between sending the browser away and its return."""

    browser_secret: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Session:
    id: str
    subject: str
    username: str
    tokens: TokenSet
    access_expires_at: float
    created_at: float


class SessionStore:
    def __init__(
        self, engine: Engine, idle_seconds: float, absolute_seconds: float
    ) -> None:
        self.engine = engine
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        migrate(engine, MIGRATIONS)

    # --- the sign-in in progress ---------------------------------------------

    def begin_sign_in(self) -> PendingSignIn:
        """Make and keep the state, nonce and PKCE verifier of a new sign-in."""
        pending = PendingSignIn(
            browser_secret=secrets.token_urlsafe(32),
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
        )
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM pending_sign_ins WHERE expires_at < :now"),
                {"now": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO pending_sign_ins (state_hash, browser_hash, nonce, "
                    "code_verifier, expires_at) VALUES (:s, :b, :n, :v, :exp)"
                ),
                {
                    "s": _digest(pending.state),
                    "b": _digest(pending.browser_secret),
                    "n": pending.nonce,
                    "v": pending.code_verifier,
                    "exp": now + SIGN_IN_LIFETIME_SECONDS,
                },
            )
        return pending

    def finish_sign_in(self, state: str, browser_secret: str) -> PendingSignIn:
        """Take back a sign-in by its state, once, from the browser that began it.

        Raises:
            Unauthenticated: no sign-in with that state is waiting for this
                browser, or it waited too long (``sign_in_state_invalid``).
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.text(
                    "DELETE FROM pending_sign_ins WHERE state_hash = :s "
                    "RETURNING browser_hash, nonce, code_verifier, expires_at"
                ),
                {"s": _digest(state)},
            ).first()
        is_valid = (
            row is not None
            and row.expires_at >= time.time()
            and hmac.compare_digest(row.browser_hash, _digest(browser_secret))
        )
        if row is None or not is_valid:
            raise Unauthenticated(
                "This sign-in is unknown or has expired; please start again.",
                code="sign_in_state_invalid",
            )
        return PendingSignIn(browser_secret, state, row.nonce, row.code_verifier)

    # --- sessions ------------------------------------------------------------

    def create(self, principal: Principal, tokens: TokenSet) -> tuple[str, Session]:
        """Open a session for a signed-in person; return its cookie secret."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(
            id=str(uuid.uuid4()),
            subject=principal.subject,
            username=principal.username,
            tokens=tokens,
            access_expires_at=now + tokens.expires_in,
            created_at=now,
        )
        with self.engine.begin() as conn:
            self._expire_lapsed(conn, now)
            conn.execute(
                sa.text(
                    "INSERT INTO browser_sessions (id, secret_hash, subject, "
                    "username, sealed_tokens, access_expires_at, created_at, "
                    "last_seen_at) VALUES (:id, :h, :s, :u, :t, :exp, :now, :now)"
                ),
                {
                    "id": session.id,
                    "h": _digest(secret),
                    "s": session.subject,
                    "u": session.username,
                    "t": _seal(secret, session.id, tokens),
                    "exp": session.access_expires_at,
                    "now": now,
                },
            )
            stage_audit(
                conn,
                service="gateway",
                action="auth.session.start",
                actor=principal,
                resource_type="session",
                resource_id=session.id,
            )
        return secret, session

    def resolve(self, secret: str, client_address: str = "") -> Session:
        """The live session behind a cookie secret; an ended one is expired.

        Raises:
            Unauthenticated: no such session (``session_missing``), or it
                passed its idle or absolute timeout (``session_expired``).
        """
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT id, subject, username, sealed_tokens, access_expires_at, "
                    "created_at, last_seen_at FROM browser_sessions "
                    "WHERE secret_hash = :h"
                ),
                {"h": _digest(secret)},
            ).first()
            if row is None:
                raise Unauthenticated("Please sign in.", code="session_missing")
            lapsed = self._lapse_reason(row.created_at, row.last_seen_at, now)
            if lapsed:
                self._expire(conn, row.id, row.subject, row.username, lapsed)
            elif now - row.last_seen_at >= self.idle_seconds * _TOUCH_FRACTION:
                conn.execute(
                    sa.text(
                        "UPDATE browser_sessions SET last_seen_at = :now WHERE id = :id"
                    ),
                    {"now": now, "id": row.id},
                )
        if lapsed:
            raise Unauthenticated(
                "The session has ended; please sign in again.", code="session_expired"
            )
        return Session(
            id=row.id,
            subject=row.subject,
            username=row.username,
            tokens=_unseal(secret, row.id, row.sealed_tokens),
            access_expires_at=row.access_expires_at,
            created_at=row.created_at,
        )

    def renew(self, secret: str, session: Session, tokens: TokenSet) -> Session:
        """Keep renewed tokens; a refresh token not sent again stays."""
        kept = TokenSet(
            access_token=tokens.access_token,
            expires_in=tokens.expires_in,
            id_token=tokens.id_token or session.tokens.id_token,
            refresh_token=tokens.refresh_token or session.tokens.refresh_token,
        )
        expires_at = time.time() + tokens.expires_in
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE browser_sessions SET sealed_tokens = :t, "
                    "access_expires_at = :exp WHERE id = :id"
                ),
                {
                    "t": _seal(secret, session.id, kept),
                    "exp": expires_at,
                    "id": session.id,
                },
            )
        return Session(
            session.id,
            session.subject,
            session.username,
            kept,
            expires_at,
            session.created_at,
        )

    def end(self, session: Session, actor: Principal, reason: str = "") -> None:
        """Close a session: signed out, or its provider session is gone."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM browser_sessions WHERE id = :id"),
                {"id": session.id},
            )
            stage_audit(
                conn,
                service="gateway",
                action="auth.session.end",
                actor=actor,
                resource_type="session",
                resource_id=session.id,
                reason=reason,
            )

    def csrf_token(self, secret: str) -> str:
        """The token the page must send with every state-changing request."""
        mac = hmac.new(secret.encode(), b"strongroom-csrf", hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def is_csrf_token(self, secret: str, presented: str) -> bool:
        return hmac.compare_digest(self.csrf_token(secret), presented)

    def _lapse_reason(self, created_at: float, last_seen_at: float, now: float) -> str:
        if now - created_at >= self.absolute_seconds:
            return "absolute_timeout"
        if now - last_seen_at >= self.idle_seconds:
            return "idle_timeout"
        return ""

    def _expire_lapsed(self, conn: Connection, now: float) -> None:
        # Sessions nobody came back to are expired (and audited) as new ones
        # open, so the table does not grow with abandoned browsers.
        rows = conn.execute(
            sa.text(
                "SELECT id, subject, username, created_at, last_seen_at "
                "FROM browser_sessions WHERE last_seen_at < :idle OR created_at < :abs"
            ),
            {"idle": now - self.idle_seconds, "abs": now - self.absolute_seconds},
        ).all()
        for row in rows:
            reason = self._lapse_reason(row.created_at, row.last_seen_at, now)
            self._expire(conn, row.id, row.subject, row.username, reason)

    def _expire(
        self,
        conn: Connection,
        session_id: str,
        subject: str,
        username: str,
        reason: str,
    ) -> None:
        conn.execute(
            sa.text("DELETE FROM browser_sessions WHERE id = :id"), {"id": session_id}
        )
        stage_audit(
            conn,
            service="gateway",
            action="auth.session.expire",
            actor=Principal(subject, username, frozenset()),
            resource_type="session",
            resource_id=session_id,
            outcome=SUCCESS,
            reason=reason,
        )


def record_sign_in_refusal(engine: Engine, actor: Principal, code: str) -> None:
    """Audit a browser sign-in that came back refused or could not be checked."""
    with engine.begin() as conn:
        stage_audit(
            conn,
            service="gateway",
            action="auth.session.start",
            actor=actor,
            resource_type="session",
            outcome=DENIED,
            reason=code,
        )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _token_key(secret: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"strongroom-session-tokens",
    ).derive(secret.encode())


def _seal(secret: str, session_id: str, tokens: TokenSet) -> str:
    plain = json.dumps(
        {
            "access_token": tokens.access_token,
            "expires_in": tokens.expires_in,
            "id_token": tokens.id_token,
            "refresh_token": tokens.refresh_token,
        }
    ).encode()
    nonce = os.urandom(12)
    sealed = AESGCM(_token_key(secret)).encrypt(nonce, plain, session_id.encode())
    return base64.b64encode(nonce + sealed).decode()


def _unseal(secret: str, session_id: str, stored: str) -> TokenSet:
    raw = base64.b64decode(stored)
    plain = AESGCM(_token_key(secret)).decrypt(raw[:12], raw[12:], session_id.encode())
    return TokenSet(**json.loads(plain))
