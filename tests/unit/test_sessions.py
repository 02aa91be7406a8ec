"""Browser sessions: sealed tokens, timeouts and single-use sign-ins."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.gateway.sessions import SessionStore
from strongroom.services.common.auth import Principal, TokenSet
from strongroom.services.common.database import create_database_engine
from strongroom.services.common.errors import Unauthenticated

PERSON = Principal("subject-1", "ana", frozenset({"annotator"}))
TOKENS = TokenSet("access-abc", 300, id_token="id-abc", refresh_token="refresh-abc")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return create_database_engine(f"sqlite:///{tmp_path / 'identity.db'}")


def _store(
    engine: Engine, idle: float = 60.0, absolute: float = 3600.0
) -> SessionStore:
    return SessionStore(engine, idle_seconds=idle, absolute_seconds=absolute)


def _audited(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        query = sa.text("SELECT payload FROM outbox ORDER BY position")
        rows = conn.execute(query).all()
    return [json.loads(row.payload) for row in rows]


def test_the_database_holds_neither_the_secret_nor_a_token(engine: Engine) -> None:
    store = _store(engine)

    secret, _session = store.create(PERSON, TOKENS)

    with engine.connect() as conn:
        dumped = " ".join(
            str(value)
            for row in conn.execute(sa.text("SELECT * FROM browser_sessions"))
            for value in row
        )
    assert secret not in dumped
    assert "abc" not in dumped
    assert store.resolve(secret).tokens == TOKENS
    assert secret not in json.dumps(_audited(engine))


def test_another_secret_opens_nothing(engine: Engine) -> None:
    store = _store(engine)
    store.create(PERSON, TOKENS)

    with pytest.raises(Unauthenticated) as refused:
        store.resolve("not-the-secret")

    assert refused.value.code == "session_missing"


def test_an_idle_session_expires_and_the_expiry_is_audited(engine: Engine) -> None:
    store = _store(engine, idle=0.2)
    secret, session = store.create(PERSON, TOKENS)

    time.sleep(0.3)
    with pytest.raises(Unauthenticated) as refused:
        store.resolve(secret)

    assert refused.value.code == "session_expired"
    expired = [e for e in _audited(engine) if e["action"] == "auth.session.expire"]
    assert [(e["resource"]["id"], e["reason"]) for e in expired] == [
        (session.id, "idle_timeout")
    ]
    with pytest.raises(Unauthenticated):
        store.resolve(secret)


def test_activity_does_not_outlast_the_absolute_timeout(engine: Engine) -> None:
    store = _store(engine, idle=10.0, absolute=0.5)
    secret, _session = store.create(PERSON, TOKENS)

    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:
        store.resolve(secret)
        time.sleep(0.05)
    time.sleep(0.2)

    with pytest.raises(Unauthenticated):
        store.resolve(secret)
    assert _audited(engine)[-1]["reason"] == "absolute_timeout"


def test_renewed_tokens_keep_the_refresh_token_when_none_comes_back(
    engine: Engine,
) -> None:
    store = _store(engine)
    secret, session = store.create(PERSON, TOKENS)

    store.renew(secret, session, TokenSet("access-new", 300))

    kept = store.resolve(secret).tokens
    assert kept.access_token == "access-new"
    assert kept.refresh_token == "refresh-abc" and kept.id_token == "id-abc"


def test_a_sign_in_is_finished_once_and_by_its_own_browser(engine: Engine) -> None:
    store = _store(engine)
    pending = store.begin_sign_in()
    other = store.begin_sign_in()

    with pytest.raises(Unauthenticated):
        store.finish_sign_in(other.state, pending.browser_secret)
    finished = store.finish_sign_in(pending.state, pending.browser_secret)
    with pytest.raises(Unauthenticated) as again:
        store.finish_sign_in(pending.state, pending.browser_secret)

    assert finished.code_verifier == pending.code_verifier
    assert finished.nonce == pending.nonce
    assert again.value.code == "sign_in_state_invalid"


def test_csrf_tokens_belong_to_one_session(engine: Engine) -> None:
    store = _store(engine)
    first, _ = store.create(PERSON, TOKENS)
    second, _ = store.create(PERSON, TOKENS)

    assert store.is_csrf_token(first, store.csrf_token(first))
    assert not store.is_csrf_token(first, store.csrf_token(second))
    assert not store.is_csrf_token(first, "")
