"""The cluster audit index: chained audit entries in monthly OpenSearch indices.

Each entry is one document whose id is its event's id, in the index named
after the month of the event's time (``<prefix>-YYYY.MM``), so old months can
be closed or deleted whole. An index template gives every such index the same
explicit mappings. The stored ``_source`` is the chain entry exactly as the
audit service hashed it; the words for free-text search are indexed beside it
but never stored.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import (
    ConnectionError,
    OpenSearchException,
    TransportError,
)

from strongroom.services.common.errors import (
    DependencyUnavailable,
    InternalError,
    InvalidArgument,
    StrongroomError,
)
from strongroom.services.common.ports import AuditQuery, AuditSearchResult

logger = logging.getLogger(__name__)

# Per-document statuses worth another try: the node was overloaded (429) or a
# shard was briefly unavailable (5xx). Anything else is a verdict on the entry.
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_ALREADY_INDEXED = 409
_BULK_ATTEMPTS = 4
_REMOVE_BATCH = 1000
_FIRST_BACKOFF_SECONDS = 0.5

# OpenSearch's default index.max_result_window: from + size beyond it is refused.
_RESULT_WINDOW = 10_000

_WORD_FIELDS = ("action", "actor", "resource", "outcome", "details")
# A run of letters or digits; everything else separates words, as it does for
# the embedded index's unicode61 tokenizer.
_WORD = re.compile(r"[^\W_]+")

_KEYWORD = {"type": "keyword"}
_MAPPINGS: dict[str, Any] = {
    # Fields added to entries later are kept in _source but not indexed,
    # rather than rejecting the entry or growing the mapping on their own.
    "dynamic": False,
    "_source": {"excludes": ["words"]},
    "properties": {
        "sequence": {"type": "long"},
        "prev_hash": _KEYWORD,
        "hash": _KEYWORD,
        "event": {
            "properties": {
                "id": _KEYWORD,
                # Event times carry microseconds; a millisecond "date" would
                # round them, and since/until bounds would then disagree with
                # the embedded index for events in the same millisecond.
                "time": {"type": "date_nanos"},
                "action": _KEYWORD,
                "actor": {
                    "properties": {
                        "subject": _KEYWORD,
                        "username": _KEYWORD,
                        "display_name": _KEYWORD,
                        "user_agent": _KEYWORD,
                        "roles": _KEYWORD,
                        "client_address": _KEYWORD,
                    }
                },
                "resource": {
                    "properties": {
                        "type": _KEYWORD,
                        "id": _KEYWORD,
                        "project_id": _KEYWORD,
                    }
                },
                "outcome": _KEYWORD,
                "reason": _KEYWORD,
                "request_id": _KEYWORD,
                "service": _KEYWORD,
                "documents": _KEYWORD,
                # Free-form keys would grow the mapping without bound; they
                # are searchable through words.details instead.
                "details": {"type": "object", "enabled": False},
            }
        },
        "words": {"properties": {name: {"type": "text"} for name in _WORD_FIELDS}},
    },
}
_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    "auto_expand_replicas": "0-1",
    # An explicit interval keeps refreshing shards that nobody searched for a
    # while, so an add waiting for the next refresh waits at most this long.
    "refresh_interval": "1s",
}


def plain_words(text: str) -> str:
    """Return the letters-and-digits words of ``text``, accents removed."""
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_WORD.findall(folded))


class OpenSearchAuditIndex:
    def __init__(
        self,
        url: str,
        *,
        index_prefix: str = "strongroom-audit",
        ca_file: str = "",
        username: str = "",
        password: str = "",
        wait_for_refresh: bool = True,
    ) -> None:
        # The transport retries a whole request on a refused connection, a
        # timeout or a 502/503/504 before any error reaches this adapter.
        # The pool holds a connection for each of the service's gRPC worker
        # threads and its consumer, so none is opened and thrown away per call.
        self.client = OpenSearch(
            hosts=[url],
            timeout=30,
            max_retries=3,
            retry_on_timeout=True,
            pool_maxsize=32,
            # None means the CA bundle the client library ships with.
            ca_certs=ca_file or None,
            http_auth=(username, password) if username else None,
        )
        self.index_prefix = index_prefix
        self._refresh = "wait_for" if wait_for_refresh else False
        self._pattern = f"{index_prefix}-*"
        self._has_template = False

    def add(self, entries: Sequence[dict[str, Any]]) -> None:
        """Index chained audit entries; adding an entry twice keeps one copy.

        Raises:
            InvalidArgument: an entry lacks an event id or a valid event time,
                or the index refused it.
            DependencyUnavailable: OpenSearch cannot be reached or stays
                overloaded after retries.
        """
        if not entries:
            return
        actions: dict[str, dict[str, Any]] = {}
        for entry in entries:
            action = self._action(entry)
            actions.setdefault(action["_id"], action)

        with _translated_errors():
            self._ensure_template()
            pending = list(actions)
            for attempt in range(_BULK_ATTEMPTS):
                if attempt:
                    logger.warning(
                        "audit_index_retry",
                        extra={"attempt": attempt, "entry_count": len(pending)},
                    )
                    time.sleep(_FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
                pending = self._bulk([actions[event_id] for event_id in pending])
                if not pending:
                    return
        raise DependencyUnavailable(
            f"{len(pending)} audit entries could not be indexed after "
            f"{_BULK_ATTEMPTS} attempts.",
            code="audit_index_unavailable",
        )

    def search(self, query: AuditQuery) -> AuditSearchResult:
        """Return matching entries, newest first, with the exact match count.

        Raises:
            InvalidArgument: the page lies beyond the first 10,000 matches, or
                a time bound is not an ISO 8601 time.
            DependencyUnavailable: OpenSearch cannot be reached.
        """
        # TODO: paging stops at OpenSearch's 10,000-hit result window, so
        # entries older than that can only be reached by narrowing the query.
        if query.offset + query.limit > _RESULT_WINDOW:
            raise InvalidArgument(
                f"Audit search pages must end within the first {_RESULT_WINDOW} "
                f"matches, not at {query.offset + query.limit}.",
                code="audit_page_too_deep",
            )
        body = {
            "query": _query(query),
            "sort": [
                {"event.time": {"order": "desc"}},
                {"sequence": {"order": "desc"}},
            ],
            "from": query.offset,
            "size": query.limit,
            "track_total_hits": True,
        }

        with _translated_errors():
            response = self.client.search(
                index=self._pattern, body=body, ignore_unavailable=True
            )

        hits = response["hits"]
        return AuditSearchResult(
            events=[hit["_source"] for hit in hits["hits"]],
            total=int(hits["total"]["value"]),
        )

    def remove(self, sequences: Sequence[int]) -> None:
        """Drop entries whose retention ended, from whichever monthly index.

        Finds each entry's index and id, then deletes them in bulk (no
        delete-by-query, which not every distribution carries).

        Raises:
            DependencyUnavailable: OpenSearch cannot be reached.
        """
        for start in range(0, len(sequences), _REMOVE_BATCH):
            batch = list(sequences[start : start + _REMOVE_BATCH])
            with _translated_errors():
                hits = self.client.search(
                    index=self._pattern,
                    body={
                        "query": {"terms": {"sequence": batch}},
                        "_source": False,
                        "size": len(batch),
                    },
                    ignore_unavailable=True,
                )["hits"]["hits"]
                if not hits:
                    continue
                helpers.bulk(
                    self.client,
                    [
                        {
                            "_op_type": "delete",
                            "_index": hit["_index"],
                            "_id": hit["_id"],
                        }
                        for hit in hits
                    ],
                    raise_on_error=False,
                    refresh="wait_for",
                )

    def last_sequence(self) -> int:
        """Return the highest chain sequence indexed, 0 when empty.

        Raises:
            DependencyUnavailable: OpenSearch cannot be reached.
        """
        body = {"size": 0, "aggs": {"last": {"max": {"field": "sequence"}}}}

        with _translated_errors():
            response = self.client.search(
                index=self._pattern, body=body, ignore_unavailable=True
            )

        # With no index yet the search matches nothing and the aggregation is
        # absent; with empty indices its value is null.
        value = response.get("aggregations", {}).get("last", {}).get("value")
        return int(value or 0)

    def check(self) -> None:
        """Raise DependencyUnavailable unless OpenSearch answers now."""
        with _translated_errors():
            self.client.info()

    def _ensure_template(self) -> None:
        # Must exist before the first bulk request auto-creates a month's index.
        if self._has_template:
            return
        self.client.indices.put_index_template(
            name=self.index_prefix,
            body={
                "index_patterns": [self._pattern],
                "template": {"settings": _SETTINGS, "mappings": _MAPPINGS},
            },
        )
        self._has_template = True

    def _action(self, entry: dict[str, Any]) -> dict[str, Any]:
        try:
            event = entry["event"]
            moment = datetime.fromisoformat(event["time"]).astimezone(UTC)
            words = _words(event)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(
                "An audit entry lacks an event with a valid ISO 8601 time.",
                code="audit_entry_invalid",
            ) from exc
        return {
            # "create" leaves an indexed entry untouched, as the embedded
            # index does: a second copy is answered with 409 and dropped.
            "_op_type": "create",
            "_index": f"{self.index_prefix}-{moment:%Y.%m}",
            "_id": event["id"],
            "_source": {**entry, "words": words},
        }

    def _bulk(self, actions: list[dict[str, Any]]) -> list[str]:
        """Send ``actions``; return the event ids worth another attempt."""
        # refresh="wait_for" (the default) returns once the entries are
        # searchable, so a search right after add sees them, without forcing
        # a refresh per call: concurrent adds share the next scheduled
        # refresh instead of each writing a tiny segment. The audit service
        # does not wait: its entries become searchable within the interval.
        _, failures = helpers.bulk(
            self.client,
            actions,
            raise_on_error=False,
            refresh=self._refresh,
        )
        retry: list[str] = []
        for failure in failures:
            item = next(iter(failure.values()))
            status = int(item.get("status", 500))
            if status == _ALREADY_INDEXED:
                continue
            if status in _TRANSIENT_STATUSES:
                retry.append(item["_id"])
            elif status == 400:
                raise InvalidArgument(
                    f"The audit index refused the entry for event {item['_id']}.",
                    code="audit_entry_rejected",
                )
            else:
                raise InternalError(
                    f"The audit index answered status {status} for event "
                    f"{item['_id']}.",
                    code="audit_index_failed",
                )
        return retry


def _words(event: dict[str, Any]) -> dict[str, str]:
    actor, resource = event["actor"], event["resource"]
    return {
        "action": plain_words(event["action"]),
        "actor": plain_words(f"{actor['subject']} {actor['username']}"),
        "resource": plain_words(
            " ".join(
                (
                    resource["type"],
                    resource["id"],
                    resource["project_id"],
                    *(event.get("documents") or ()),
                )
            )
        ),
        "outcome": plain_words(event["outcome"]),
        "details": plain_words(
            " ".join(f"{key} {value}" for key, value in event["details"].items())
        ),
    }


def _query(query: AuditQuery) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [
        {"term": {field: value}}
        for field, value in (
            ("event.action", query.action),
            ("event.resource.id", query.resource_id),
            ("event.actor.subject", query.actor_subject),
            ("event.resource.project_id", query.project_id),
            ("event.resource.type", query.resource_type),
            ("event.outcome", query.outcome),
            ("event.request_id", query.request_id),
        )
        if value
    ]
    if query.document_id:
        filters.append(
            {
                "bool": {
                    "should": [
                        {"term": {"event.resource.id": query.document_id}},
                        {"term": {"event.documents": query.document_id}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    bounds = {"gte": query.since, "lt": query.until}
    bounds = {bound: value for bound, value in bounds.items() if value}
    if bounds:
        filters.append({"range": {"event.time": bounds}})
    return {"bool": {"filter": filters, "must": _text_clauses(query.text)}}


def _text_clauses(text: str) -> list[dict[str, Any]]:
    """Require every word of ``text``, each as a phrase in one word field.

    The text goes through a multi_match phrase query, never a query-string
    parser, so quotes, operators, wildcards and field prefixes are plain
    characters. A word with no letters or digits (``*``) is ignored, and text
    made only of such words matches nothing, as in the embedded index.
    """
    phrases = [plain_words(word) for word in text.split()]
    clauses: list[dict[str, Any]] = [
        {
            "multi_match": {
                "query": phrase,
                "type": "phrase",
                "fields": [f"words.{name}" for name in _WORD_FIELDS],
            }
        }
        for phrase in phrases
        if phrase
    ]
    if phrases and not clauses:
        return [{"match_none": {}}]
    return clauses


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Turn opensearch-py's exceptions into Strongroom's typed errors."""
    try:
        yield
    except ConnectionError as exc:
        raise DependencyUnavailable(
            "The audit index cannot be reached.", code="audit_index_unavailable"
        ) from exc
    except TransportError as exc:
        raise _error_for_status(exc.status_code) from exc
    except OpenSearchException as exc:
        raise InternalError(
            "The audit index answered in an unexpected way.", code="audit_index_failed"
        ) from exc


def _error_for_status(status: object) -> StrongroomError:
    if status == 400:
        return InvalidArgument(
            "The audit index refused the request as malformed.",
            code="audit_query_invalid",
        )
    if status in _TRANSIENT_STATUSES:
        return DependencyUnavailable(
            "The audit index is overloaded or starting.",
            code="audit_index_unavailable",
        )
    return InternalError(
        f"The audit index answered with status {status}.", code="audit_index_failed"
    )
