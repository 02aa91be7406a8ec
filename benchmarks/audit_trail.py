"""How fast the audit trail takes events in, verifies and answers searches.

Three measurements, each on this machine:

- throughput: a service process stages audit events in its outbox (in
  transactions of ``--per-transaction``) while its relay publishes them to
  the embedded event log, and the audit service's consumer chains and
  indexes them in another process; events per second from the first staged
  event until the last is chained and indexed.
- verify: a chain of ``--verify-events`` entries with a signed checkpoint
  every 100,000, verified from its file as ``strongroom audit verify`` does.
- search: the same entries in the embedded index (and in OpenSearch with
  ``--opensearch``), then auditor queries by person, document, action and
  period, outcome and free text; p50 and p95 latency per query kind.

    python -m benchmarks.audit_trail [--events N] [--verify-events N]
        [--search-events N] [--opensearch] [--json FILE]

Targets (issue 7): 10,000 events/s into the chain, verify of 1M events in
under 10 s, search p95 under 200 ms at 1M events.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.services.audit import store
from strongroom.services.audit.domain import (
    GENESIS_HASH,
    ChainHead,
    Checkpoint,
    SignedCheckpoint,
    chain_entry,
    entry_line,
    sign_checkpoint,
    verify_chain,
)
from strongroom.services.audit.handlers import batch_handlers
from strongroom.services.audit.merkle import Frontier, leaf_hash
from strongroom.services.common.adapters.sqlite_audit_index import SqliteAuditIndex
from strongroom.services.common.adapters.sqlite_event_log import SqliteEventLog
from strongroom.services.common.audit_trail import stage_audit
from strongroom.services.common.auth import Principal
from strongroom.services.common.database import (
    create_database_engine,
    migrate,
)
from strongroom.services.common.events import EventConsumer, OutboxRelay
from strongroom.services.common.ports import AuditIndex, AuditQuery
from strongroom.services.common.signing import key_id

CHECKPOINT_EVERY = 100_000
_PEOPLE = 200
_DOCUMENTS = 20_000
_ACTIONS = ("task.read", "task.lease", "annotation.submit", "document.read")
_QUERY_RUNS = 40


@dataclass
class Results:
    throughput_events: int = 0
    per_transaction: int = 0
    whole_path_per_second: float = 0.0
    outbox_per_second: float = 0.0
    chained_per_second: float = 0.0
    verify_events: int = 0
    verify_checkpoints: int = 0
    verify_seconds: float = 0.0
    search: dict[str, dict[str, Any]] = field(default_factory=dict)


# --- throughput --------------------------------------------------------------


def _actor(n: int) -> Principal:
    return Principal(
        subject=f"u-{n % _PEOPLE}",
        username=f"user{n % _PEOPLE}",
        roles=frozenset({"annotator"}),
        client_address="10.0.0.7",
    )


def _produce(data_dir: str, events: int, per_transaction: int) -> None:
    """A service: stage audit events, relay them, stop when all are out."""
    engine = create_database_engine(f"sqlite:///{data_dir}/producer.db")
    migrate(engine, ())
    bus = SqliteEventLog(Path(data_dir) / "events.db")
    relay = OutboxRelay(engine, bus)
    relay.start()
    for start in range(0, events, per_transaction):
        with engine.begin() as conn:
            for n in range(start, min(events, start + per_transaction)):
                stage_audit(
                    conn,
                    service="tasks",
                    action=_ACTIONS[n % len(_ACTIONS)],
                    actor=_actor(n),
                    resource_type="task",
                    resource_id=f"t-{n}",
                    project_id="p-1",
                    details={"document_id": f"d-{n % _DOCUMENTS}", "text": 1},
                )
    while relay.step():
        pass
    relay.stop()


@dataclass(frozen=True)
class Throughput:
    # Producer and audit service running together, as in production.
    whole_path_per_second: float
    # One service's side alone: staging in the outbox and relaying to the bus.
    outbox_per_second: float
    # The audit service alone, from events waiting on the bus to chained and
    # indexed: its capacity.
    chained_per_second: float


def measure_throughput(events: int, per_transaction: int, work: Path) -> Throughput:
    together = _run_path(events, per_transaction, work / "together", concurrent=True)
    outbox, chained = _run_path(
        events, per_transaction, work / "apart", concurrent=False
    )
    return Throughput(
        whole_path_per_second=round(events / together[0]),
        outbox_per_second=round(events / outbox),
        chained_per_second=round(events / chained),
    )


def _run_path(
    events: int, per_transaction: int, work: Path, *, concurrent: bool
) -> tuple[float, float]:
    """Seconds until every event is chained and indexed.

    Concurrent: (from the first staged event, 0). Apart: (the producer's
    seconds, then the audit service's seconds once every event is on the bus).
    """
    work.mkdir(parents=True)
    engine = create_database_engine(f"sqlite:///{work}/audit.db")
    migrate(engine, store.MIGRATIONS)
    chain = store.ChainFile(work / "audit" / "chain.jsonl")
    index = SqliteAuditIndex(work / "audit" / "index.db")
    # The event log must exist before both processes open it.
    SqliteEventLog(work / "events.db").engine.dispose()
    consumer = EventConsumer(
        "audit",
        SqliteEventLog(work / "events.db"),
        engine,
        {},
        batch_handlers=batch_handlers(chain, index),
    )
    context = multiprocessing.get_context("spawn")
    producer = context.Process(
        target=_produce, args=(str(work), events, per_transaction)
    )
    started = time.perf_counter()
    producer.start()
    produced = 0.0
    if not concurrent:
        producer.join()
        produced = time.perf_counter() - started
        started = time.perf_counter()
    consumer.start()
    while True:
        with engine.connect() as conn:
            if store.read_head(conn).head.sequence >= events:
                break
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    consumer.stop()
    producer.join()
    return (seconds, 0.0) if concurrent else (produced, seconds)


# --- a large chain -----------------------------------------------------------


def _event(n: int) -> dict[str, Any]:
    person = n % _PEOPLE
    action = _ACTIONS[n % len(_ACTIONS)]
    document = f"d-{(n * 7919) % _DOCUMENTS}"
    return {
        "id": f"{n:012d}-4e1c-4b8e-9d5a-2f3c6a7b8c9d",
        "time": f"2026-{1 + n * 12 // 1_000_000 % 12:02d}-15T10:00:00.{n % 999999:06d}"
        "+00:00",
        "actor": {
            "subject": f"u-{person}",
            "username": f"user{person}",
            "display_name": "",
            "roles": ["annotator"],
            "client_address": "10.0.0.7",
            "user_agent": "python-httpx/0.28.1",
        },
        "action": action,
        "resource": {"type": "task", "id": f"t-{n}", "project_id": f"p-{n % 20}"},
        "outcome": "denied" if n % 97 == 0 else "success",
        "reason": "",
        "request_id": f"r-{n}",
        "service": "tasks",
        "details": {"document_id": document, "text": "1"},
        "documents": [document],
    }


def build_chain(
    events: int, path: Path, key: Ed25519PrivateKey
) -> tuple[ChainHead, list[SignedCheckpoint]]:
    """Write a chain of ``events`` entries, sealed every CHECKPOINT_EVERY."""
    head, frontier = ChainHead(0, GENESIS_HASH), Frontier()
    checkpoints: list[SignedCheckpoint] = []
    with path.open("wb") as handle:
        for n in range(1, events + 1):
            entry = chain_entry(head, _event(n))
            handle.write(entry_line(entry))
            head = ChainHead(n, entry["hash"])
            frontier.add(leaf_hash(bytes.fromhex(entry["hash"])))
            if n % CHECKPOINT_EVERY == 0 or n == events:
                previous = checkpoints[-1] if checkpoints else None
                checkpoint = Checkpoint(
                    number=len(checkpoints) + 1,
                    tree_size=n,
                    root_hash=frontier.root().hex(),
                    chain_hash=head.hash,
                    segment_start=previous.checkpoint.tree_size if previous else 0,
                    segment_sha256="0" * 64,
                    previous=previous.record_hash() if previous else GENESIS_HASH,
                    time="2026-12-31T00:00:00+00:00",
                    key_id=key_id(key.public_key()),
                )
                checkpoints.append(sign_checkpoint(checkpoint, key))
    return head, checkpoints


def measure_verify(
    path: Path, head: ChainHead, checkpoints: list[SignedCheckpoint], key: Any
) -> float:
    started = time.perf_counter()
    with path.open("rb") as handle:
        result = verify_chain(handle, head, checkpoints, key.public_key())
    seconds = time.perf_counter() - started
    if not result.is_intact:
        raise RuntimeError(f"the benchmark chain does not verify: {result.problem}")
    return seconds


# --- search ------------------------------------------------------------------


def _entries(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            yield json.loads(line)


def load_index(index: AuditIndex, path: Path, batch: int = 20_000) -> float:
    started = time.perf_counter()
    pending: list[dict[str, Any]] = []
    for entry in _entries(path):
        pending.append(entry)
        if len(pending) == batch:
            index.add(pending)
            pending = []
    index.add(pending)
    return time.perf_counter() - started


def _queries(rng: random.Random) -> dict[str, Callable[[], AuditQuery]]:
    return {
        "person": lambda: AuditQuery(actor_subject=f"u-{rng.randrange(_PEOPLE)}"),
        "document": lambda: AuditQuery(document_id=f"d-{rng.randrange(_DOCUMENTS)}"),
        "action_in_month": lambda: AuditQuery(
            action=rng.choice(_ACTIONS),
            since=f"2026-{rng.randrange(1, 12):02d}-01T00:00:00+00:00",
            until=f"2026-{rng.randrange(1, 12) + 1:02d}-01T00:00:00+00:00",
        ),
        "denied": lambda: AuditQuery(outcome="denied"),
        "free_text": lambda: AuditQuery(text=f"user{rng.randrange(_PEOPLE)}"),
    }


def measure_search(index: AuditIndex) -> dict[str, dict[str, Any]]:
    rng = random.Random(7)
    results = {}
    for name, make in _queries(rng).items():
        timings, matches = [], 0
        index.search(make())  # warm
        for _ in range(_QUERY_RUNS):
            query = make()
            started = time.perf_counter()
            found = index.search(query)
            timings.append((time.perf_counter() - started) * 1000)
            matches += found.total
        timings.sort()
        results[name] = {
            "p50_ms": round(statistics.median(timings), 2),
            "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 2),
            "mean_matches": matches // _QUERY_RUNS,
        }
    return results


def _opensearch_index(work: Path) -> tuple[AuditIndex, Callable[[], None]]:
    from strongroom.services.common.adapters.opensearch_audit_index import (
        OpenSearchAuditIndex,
    )
    from tests.backends.opensearch import start_opensearch

    server = start_opensearch(work / "opensearch", work / "opensearch.log")
    return OpenSearchAuditIndex(server.url, index_prefix="bench-audit"), server.stop


# --- report ------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> Results:
    results = Results(
        throughput_events=args.events, per_transaction=args.per_transaction
    )
    throughput = measure_throughput(args.events, args.per_transaction, work)
    results.whole_path_per_second = throughput.whole_path_per_second
    results.outbox_per_second = throughput.outbox_per_second
    results.chained_per_second = throughput.chained_per_second

    key = Ed25519PrivateKey.generate()
    chain_file = work / "chain.jsonl"
    size = max(args.verify_events, args.search_events)
    head, checkpoints = build_chain(size, chain_file, key)
    if args.verify_events:
        verify_file = chain_file
        if args.verify_events != size:
            verify_file = work / "verify.jsonl"
            head, checkpoints = build_chain(args.verify_events, verify_file, key)
        results.verify_events = args.verify_events
        results.verify_checkpoints = len(checkpoints)
        results.verify_seconds = round(
            measure_verify(verify_file, head, checkpoints, key), 2
        )

    if args.search_events:
        index: AuditIndex = SqliteAuditIndex(work / "index.db")
        load = load_index(index, chain_file)
        results.search["embedded"] = {
            "events": size,
            "load_seconds": round(load, 1),
            "queries": measure_search(index),
        }
        if args.opensearch:
            remote, stop = _opensearch_index(work)
            try:
                load = load_index(remote, chain_file)
                time.sleep(2)  # one refresh interval, so every entry is searchable
                results.search["opensearch"] = {
                    "events": size,
                    "load_seconds": round(load, 1),
                    "queries": measure_search(remote),
                }
            finally:
                stop()
    return results


def report(results: Results) -> str:
    lines = [
        f"throughput, {results.throughput_events} events staged "
        f"{results.per_transaction} per transaction:",
        f"  audit service, bus to chained and indexed: "
        f"{results.chained_per_second} events/s",
        f"  one service's outbox and relay alone:      "
        f"{results.outbox_per_second} events/s",
        f"  whole path, both running together:         "
        f"{results.whole_path_per_second} events/s",
    ]
    if results.verify_events:
        lines.append(
            f"verify: {results.verify_events} events and "
            f"{results.verify_checkpoints} signed checkpoints in "
            f"{results.verify_seconds} s"
        )
    for backend, figures in results.search.items():
        lines.append(
            f"search ({backend}, {figures['events']} events, loaded in "
            f"{figures['load_seconds']} s):"
        )
        for name, q in figures["queries"].items():
            lines.append(
                f"  {name:<16} p50 {q['p50_ms']:>8} ms   p95 {q['p95_ms']:>8} ms   "
                f"~{q['mean_matches']} matches"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-transaction", type=int, default=100)
    parser.add_argument("--verify-events", type=int, default=1_000_000)
    parser.add_argument("--search-events", type=int, default=1_000_000)
    parser.add_argument("--opensearch", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-") as scratch:
        results = run(args, Path(scratch))
    print(report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(results), indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
