"""The AuditIndex port contract, run against every adapter in INDEX_KINDS."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from strongroom.services.audit.domain import GENESIS_HASH, ChainHead, chain_entry
from strongroom.services.common.adapters.opensearch_audit_index import (
    OpenSearchAuditIndex,
)
from strongroom.services.common.adapters.sqlite_audit_index import SqliteAuditIndex
from strongroom.services.common.errors import DependencyUnavailable, InvalidArgument
from strongroom.services.common.ports import AuditIndex, AuditQuery
from tests.backends.base import free_port

INDEX_KINDS = ["sqlite", "opensearch"]


def _opensearch_index(request: pytest.FixtureRequest) -> OpenSearchAuditIndex:
    server = request.getfixturevalue("opensearch_server")
    # One prefix per test: the node is shared by the whole session.
    return OpenSearchAuditIndex(
        server.url, index_prefix=f"audit-test-{uuid.uuid4().hex[:12]}"
    )


@pytest.fixture(params=INDEX_KINDS)
def index(request: pytest.FixtureRequest, tmp_path: Path) -> AuditIndex:
    if request.param == "sqlite":
        return SqliteAuditIndex(tmp_path / "index.db")
    if request.param == "opensearch":
        return _opensearch_index(request)
    raise NotImplementedError(request.param)


def _event(
    number: int,
    action: str,
    subject: str = "u-mia",
    resource_id: str = "",
    outcome: str = "success",
    month: int = 5,
) -> dict[str, Any]:
    # Shaped like services/common/audit_trail.py stage_audit builds them.
    return {
        "id": f"evt-{number}",
        "time": f"2024-{month:02d}-{number:02d}T10:00:00.000000+00:00",
        "actor": {
            "subject": subject,
            "username": "mia" if subject == "u-mia" else "ann",
            "roles": ["manager"],
            "client_address": "10.0.0.7",
        },
        "action": action,
        "resource": {
            "type": action.split(".")[0],
            "id": resource_id or f"r-{number}",
            "project_id": "p-claims",
        },
        "outcome": outcome,
        "reason": "" if outcome == "success" else "bad_credentials",
        "request_id": f"req-{number}",
        "service": "gateway",
        "details": {"size_bytes": str(number * 1000)},
    }


def _chain(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    head = ChainHead(0, GENESIS_HASH)
    entries = []
    for event in events:
        entry = chain_entry(head, event)
        entries.append(entry)
        head = ChainHead(entry["sequence"], entry["hash"])
    return entries


ENTRIES = _chain(
    [
        _event(1, "user.create", subject="system"),
        _event(2, "auth.login", outcome="denied", subject="u-ann"),
        _event(3, "document.ingest", resource_id="d-1"),
        _event(4, "document.ingest", resource_id="d-2", subject="u-ann"),
        _event(5, "task.claim", resource_id="d-1", subject="u-ann"),
        _event(6, "export.create"),
    ]
)


def _ids(index: AuditIndex, **query: Any) -> tuple[list[str], int]:
    result = index.search(AuditQuery(**query))
    return [e["event"]["id"] for e in result.events], result.total


def test_search_everything_newest_first(index: AuditIndex) -> None:
    index.add(ENTRIES)

    result = index.search(AuditQuery())

    assert [e["sequence"] for e in result.events] == [6, 5, 4, 3, 2, 1]
    assert result.total == 6
    assert result.events[-1] == ENTRIES[0]


def test_search_by_word_of_action(index: AuditIndex) -> None:
    index.add(ENTRIES)

    assert _ids(index, text="ingest") == (["evt-4", "evt-3"], 2)
    assert _ids(index, text="INGEST document") == (["evt-4", "evt-3"], 2)
    assert _ids(index, text="denied") == (["evt-2"], 1)
    assert _ids(index, text="nothing-matches-this") == ([], 0)


def test_search_by_fields(index: AuditIndex) -> None:
    index.add(ENTRIES)

    assert _ids(index, action="document.ingest") == (["evt-4", "evt-3"], 2)
    assert _ids(index, resource_id="d-1") == (["evt-5", "evt-3"], 2)
    assert _ids(index, actor_subject="u-ann") == (["evt-5", "evt-4", "evt-2"], 3)
    assert _ids(index, action="document.ingest", actor_subject="u-ann") == (
        ["evt-4"],
        1,
    )


def test_search_by_time_range(index: AuditIndex) -> None:
    index.add(ENTRIES)

    since = "2024-05-03T00:00:00.000000+00:00"
    until = "2024-05-05T10:00:00.000000+00:00"
    assert _ids(index, since=since, until=until) == (["evt-4", "evt-3"], 2)
    assert _ids(index, since=ENTRIES[5]["event"]["time"]) == (["evt-6"], 1)


def test_limit_and_offset_page_through_total(index: AuditIndex) -> None:
    index.add(ENTRIES)

    assert _ids(index, limit=2) == (["evt-6", "evt-5"], 6)
    assert _ids(index, limit=2, offset=2) == (["evt-4", "evt-3"], 6)
    assert _ids(index, limit=2, offset=6) == ([], 6)


def test_adding_an_entry_twice_keeps_one(index: AuditIndex) -> None:
    index.add(ENTRIES[:3])
    index.add(ENTRIES[2:])

    assert index.search(AuditQuery()).total == 6
    assert _ids(index, text="ingest") == (["evt-4", "evt-3"], 2)


LINEAGE = _chain(
    [
        _event(1, "document.ingest", resource_id="d-7"),
        {**_event(2, "task.read", resource_id="t-1"), "documents": ["d-7"]},
        {
            **_event(3, "export.contents", resource_id="x-1"),
            "documents": ["d-8", "d-7"],
        },
        {**_event(4, "task.read", resource_id="t-2"), "documents": ["d-8"]},
        _event(5, "auth.login", outcome="denied", subject="u-ann"),
    ]
)


def test_search_by_document_project_outcome_type_and_request(index: AuditIndex) -> None:
    index.add(LINEAGE)

    assert _ids(index, document_id="d-7") == (["evt-3", "evt-2", "evt-1"], 3)
    assert _ids(index, document_id="d-8") == (["evt-4", "evt-3"], 2)
    assert _ids(index, text="d-8") == (["evt-4", "evt-3"], 2)
    assert _ids(index, outcome="denied") == (["evt-5"], 1)
    assert _ids(index, resource_type="task") == (["evt-4", "evt-2"], 2)
    assert _ids(index, project_id="p-claims")[1] == 5
    assert _ids(index, project_id="p-other") == ([], 0)
    assert _ids(index, request_id="req-3") == (["evt-3"], 1)


def test_removed_entries_are_no_longer_found(index: AuditIndex) -> None:
    index.add(LINEAGE)

    index.remove([2, 3])

    assert _ids(index, document_id="d-7") == (["evt-1"], 1)
    assert _ids(index, text="d-8") == (["evt-4"], 1)
    assert index.search(AuditQuery()).total == 3
    index.remove([])


def test_last_sequence(index: AuditIndex) -> None:
    assert index.last_sequence() == 0

    index.add(ENTRIES[:4])

    assert index.last_sequence() == 4


@pytest.mark.parametrize(
    "text",
    [
        'a" OR * NEAR(',
        '"',
        "*",
        "NOT",
        "AND OR",
        "col:value",
        "(",
        "^x",
        'a" OR * AND (x:y',
        "event.action:* OR _exists_:hash",
        "/ing.*/",
        "ingest~2",
        "\\",
    ],
)
def test_query_syntax_in_text_is_harmless(index: AuditIndex, text: str) -> None:
    index.add(ENTRIES)

    result = index.search(AuditQuery(text=text))

    assert result.total == len(result.events)
    assert result.total == 0


def test_query_syntax_around_words_is_read_as_words(index: AuditIndex) -> None:
    index.add(ENTRIES)

    # "+", "-" and "*" would require, exclude and widen in query syntax.
    assert _ids(index, text="+document -ingest") == (["evt-4", "evt-3"], 2)
    assert _ids(index, text='"ingest" *') == (["evt-4", "evt-3"], 2)
    assert _ids(index, text="document.ingest") == (["evt-4", "evt-3"], 2)


MONTHS = _chain(
    [
        _event(28, "document.ingest", resource_id="d-1", month=4),
        _event(30, "task.claim", resource_id="d-1", month=4),
        _event(2, "export.create", resource_id="d-1", month=5),
    ]
)


def test_entries_from_two_months_are_all_found(index: AuditIndex) -> None:
    index.add(MONTHS)

    assert _ids(index, resource_id="d-1") == (["evt-2", "evt-30", "evt-28"], 3)
    assert _ids(index, since="2024-04-30T00:00:00.000000+00:00") == (
        ["evt-2", "evt-30"],
        2,
    )
    assert _ids(index, text="claim") == (["evt-30"], 1)
    assert index.last_sequence() == 3


def test_each_month_has_its_own_opensearch_index(
    request: pytest.FixtureRequest,
) -> None:
    index = _opensearch_index(request)

    index.add(MONTHS)

    client = OpenSearch(hosts=[request.getfixturevalue("opensearch_server").url])
    counts = client.cat.indices(index=f"{index.index_prefix}-*", format="json")
    assert sorted((c["index"], c["docs.count"]) for c in counts) == [
        (f"{index.index_prefix}-2024.04", "2"),
        (f"{index.index_prefix}-2024.05", "1"),
    ]


def test_check_passes_while_the_index_answers(index: AuditIndex) -> None:
    index.check()


def test_unreachable_opensearch_is_dependency_unavailable() -> None:
    index = OpenSearchAuditIndex(f"http://127.0.0.1:{free_port()}")

    with pytest.raises(DependencyUnavailable):
        index.check()
    with pytest.raises(DependencyUnavailable):
        index.search(AuditQuery())
    with pytest.raises(DependencyUnavailable):
        index.add(ENTRIES)


def test_malformed_time_bound_is_invalid_for_opensearch(
    request: pytest.FixtureRequest,
) -> None:
    index = _opensearch_index(request)
    index.add(ENTRIES)

    with pytest.raises(InvalidArgument):
        index.search(AuditQuery(since="last tuesday"))
