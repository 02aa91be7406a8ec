"""The task queue and the answer store, on SQLite and on a real PostgreSQL.

The rules (overlap, never the same task twice, leases that lapse, review
that returns an answer) are checked one by one, then hammered from many
threads at once, after which the invariants must hold: no task ever held by
more annotators than its overlap, no annotator holding a task twice, and
every answer counted.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.labeling import store as labeling_store
from strongroom.services.labeling.domain import (
    GOLD,
    Annotation,
    Content,
    Review,
    SpanLabel,
)
from strongroom.services.tasks import handlers, store
from strongroom.services.tasks.domain import (
    ASSIGNED,
    COMPLETED,
    FULL,
    LEASED,
    OPEN,
    RETURNED,
    REVIEW,
    SKIPPED,
    SUBMITTED,
    Label,
    LabelSchema,
    Project,
    Settings,
    Task,
)
from tests.backends.postgres import PostgresCluster

PROJECT = "p-queue"
T0 = datetime(2026, 5, 6, 9, 0, tzinfo=UTC)


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_database_engine(f"sqlite:///{tmp_path / 'queue.db'}")
        yield engine
        engine.dispose()
        return
    server: PostgresCluster = request.getfixturevalue("postgres_server")
    database = f"queue_{uuid.uuid4().hex}"
    engine = create_database_engine(server.url_for(database))
    yield engine
    engine.dispose()
    server.drop(database)


def queue(
    engine: Engine, tasks: int, overlap: int = 1, review: bool = False
) -> list[str]:
    migrate(engine, store.MIGRATIONS)
    project = Project(
        id=PROJECT,
        name="Queue",
        settings=Settings(
            schema=LabelSchema(spans=(Label("PERSON"),)), overlap=overlap, review=review
        ),
        created_at=T0.isoformat(),
    )
    ids = [f"t-{n:04d}" for n in range(tasks)]
    with engine.begin() as conn:
        store.insert_project(conn, project)
        for n, task_id in enumerate(ids):
            assert store.insert_task(
                conn,
                Task(
                    id=task_id,
                    project_id=PROJECT,
                    document_id=f"d-{n}",
                    state=OPEN,
                    text_sha256="0" * 64,
                    text_length=100,
                    window_end=100,
                    overlap=overlap,
                    created_at=T0.isoformat(),
                ),
            )
    return ids


def claim(engine: Engine, who: str, minute: float = 0) -> str | None:
    with engine.begin() as conn:
        return store.claim_from_pool(conn, PROJECT, who, at(minute + 30))


def submit(
    engine: Engine, task_id: str, who: str, review: bool = False, version: int = 1
) -> bool:
    with engine.begin() as conn:
        task = store.get_task(conn, task_id)
        answer_id = f"a-{task_id}-{who}-{version}"
        return store.submit(conn, task, who, answer_id, 12.5, review, version)


def task(engine: Engine, task_id: str) -> Task:
    with engine.connect() as conn:
        return store.get_task(conn, task_id)


def assignment_state(engine: Engine, task_id: str, who: str) -> str | None:
    with engine.connect() as conn:
        mine = store.get_assignment(conn, task_id, who)
    return mine.state if mine else None


def test_overlap_gives_each_task_to_that_many_different_annotators(
    engine: Engine,
) -> None:
    (only,) = queue(engine, 1, overlap=2)

    assert claim(engine, "ann") == only
    assert claim(engine, "ann") is None, "never the same task twice"
    assert task(engine, only).state == OPEN
    assert claim(engine, "ben") == only
    assert task(engine, only).state == FULL
    assert claim(engine, "cat") is None, "no slot left"


def test_the_pool_serves_higher_priority_first_then_arrival_order(
    engine: Engine,
) -> None:
    ids = queue(engine, 3)
    with engine.begin() as conn:
        store.set_priority(conn, ids[2], 5)

    assert [claim(engine, who) for who in ("ann", "ben", "cat")] == [
        ids[2],
        ids[0],
        ids[1],
    ]


def test_answers_complete_a_task_or_send_it_to_review(engine: Engine) -> None:
    plain, reviewed = queue(engine, 2, overlap=2)
    for who in ("ann", "ben"):
        claim(engine, who)
        claim(engine, who)

    assert submit(engine, plain, "ann")
    assert not submit(engine, plain, "ann"), "the same answer counts once"
    assert task(engine, plain).submitted == 1
    assert submit(engine, plain, "ben")
    assert submit(engine, reviewed, "ann", review=True)
    assert submit(engine, reviewed, "ben", review=True)

    assert task(engine, plain).state == COMPLETED
    assert task(engine, reviewed).state == REVIEW


def test_a_lapsed_lease_returns_the_slot_to_the_pool(engine: Engine) -> None:
    (only,) = queue(engine, 1)
    claim(engine, "ann", minute=0)

    with engine.begin() as conn:
        early = handlers.expire(conn, at(29))
    with engine.begin() as conn:
        lapsed = handlers.expire(conn, at(31))

    assert early == []
    assert [(a.task_id, a.annotator) for a in lapsed] == [(only, "ann")]
    assert task(engine, only).active == 0
    assert claim(engine, "ben", minute=31) == only


def test_an_answer_after_the_lease_lapsed_is_still_counted(engine: Engine) -> None:
    (only,) = queue(engine, 1, overlap=1)
    claim(engine, "ann")
    with engine.begin() as conn:
        handlers.expire(conn, at(31))
    assert claim(engine, "ben", minute=31) == only

    assert submit(engine, only, "ann")

    counted = task(engine, only)
    assert (counted.submitted, counted.state) == (1, COMPLETED)
    assert assignment_state(engine, only, "ann") == SUBMITTED


def test_skipping_frees_the_slot_and_the_task_never_comes_back(engine: Engine) -> None:
    first, second = queue(engine, 2)
    assert claim(engine, "ann") == first

    with engine.begin() as conn:
        store.skip(conn, store.get_task(conn, first), "ann", "Not English")

    assert assignment_state(engine, first, "ann") == SKIPPED
    assert claim(engine, "ann") == second
    assert claim(engine, "ben") == first


def test_a_late_or_older_answer_report_changes_nothing(engine: Engine) -> None:
    (only,) = queue(engine, 1, overlap=1, review=True)
    claim(engine, "ann")
    assert submit(engine, only, "ann", review=True, version=1)
    with engine.begin() as conn:
        store.reopen(conn, store.get_task(conn, only), "ann", at(30), review=True)

    assert not submit(engine, only, "ann", review=True, version=1)
    assert assignment_state(engine, only, "ann") == LEASED, "still reopened"
    assert submit(engine, only, "ann", review=True, version=3)
    assert not submit(engine, only, "ann", review=True, version=2)
    with engine.connect() as conn:
        mine = store.get_assignment(conn, only, "ann")
    assert mine is not None
    assert (mine.annotation_id, mine.answer_version) == (f"a-{only}-ann-3", 3)
    assert (task(engine, only).state, task(engine, only).submitted) == (REVIEW, 1)


def test_reopening_takes_an_answer_back_until_it_is_resubmitted(
    engine: Engine,
) -> None:
    (only,) = queue(engine, 1, overlap=1, review=True)
    claim(engine, "ann")
    submit(engine, only, "ann", review=True)
    assert task(engine, only).state == REVIEW

    with engine.begin() as conn:
        store.reopen(conn, store.get_task(conn, only), "ann", at(30), review=True)

    assert (task(engine, only).state, task(engine, only).submitted) == (FULL, 0)
    assert assignment_state(engine, only, "ann") == LEASED
    with engine.begin() as conn:
        # Left alone past its lease, the reopened answer stands as it was.
        handlers.expire(conn, at(31))
    assert assignment_state(engine, only, "ann") == SUBMITTED
    assert (task(engine, only).state, task(engine, only).submitted) == (REVIEW, 1)


def test_review_leases_one_reviewer_then_returns_or_closes(engine: Engine) -> None:
    first, second = queue(engine, 2, overlap=1, review=True)
    for task_id, who in ((first, "ann"), (second, "ben")):
        assert claim(engine, who) == task_id
        submit(engine, task_id, who, review=True)

    with engine.begin() as conn:
        held = store.claim_review(conn, PROJECT, "rev", at(0), at(30))
        again = store.claim_review(conn, PROJECT, "rev", at(1), at(31))
        other = store.claim_review(conn, PROJECT, "rita", at(1), at(31))
        nothing = store.claim_review(conn, PROJECT, "roy", at(1), at(31))
    assert held is not None and again is not None and other is not None
    assert (held.id, again.id, other.id, nothing) == (first, first, second, None)

    with engine.begin() as conn:
        assert not store.return_answer(conn, held, "ann", "a-other", "Wrong answer")
        assert store.return_answer(
            conn, held, "ann", f"a-{first}-ann-1", "Missed a name"
        )
        assert store.close_review(conn, store.get_task(conn, second))
    assert (task(engine, first).state, task(engine, first).reviewer) == (FULL, "")
    assert assignment_state(engine, first, "ann") == RETURNED
    assert task(engine, second).state == COMPLETED

    with engine.begin() as conn:
        back = store.mine(conn, PROJECT, "ann", RETURNED)
        assert back is not None and back.comment == "Missed a name"
        store.lease(conn, first, "ann", at(60))
    assert not submit(engine, first, "ann", review=True), "the returned one, late"
    assert submit(engine, first, "ann", review=True, version=2)
    assert task(engine, first).state == REVIEW
    with engine.begin() as conn:
        # A late copy of the rejection finds the new answer and leaves it.
        late = store.get_task(conn, first)
        assert not store.return_answer(conn, late, "ann", f"a-{first}-ann-1", "Late")
    with engine.connect() as conn:
        resubmitted = store.get_assignment(conn, first, "ann")
    assert resubmitted is not None and resubmitted.comment == ""


def test_a_rejection_applied_from_its_event_first_still_gets_its_comment(
    engine: Engine,
) -> None:
    (only,) = queue(engine, 1, overlap=1, review=True)
    claim(engine, "ann")
    submit(engine, only, "ann", review=True)
    answer_id = f"a-{only}-ann-1"

    with engine.begin() as conn:
        rejected = store.get_task(conn, only)
        handlers.apply_review(
            conn, rejected, "reject", "ann", answer_id,
            handlers.RETURNED_WITHOUT_COMMENT, "r-1", handlers.SYSTEM,
        )  # fmt: skip
    with engine.begin() as conn:
        handlers.apply_review(
            conn, store.get_task(conn, only), "reject", "ann", answer_id,
            "Name the drug.", "r-1", handlers.SYSTEM,
        )  # fmt: skip

    with engine.connect() as conn:
        back = store.get_assignment(conn, only, "ann")
    assert back is not None
    assert (back.state, back.comment) == (RETURNED, "Name the drug.")


def test_pre_assigned_tasks_stay_with_their_annotator(engine: Engine) -> None:
    first, second = queue(engine, 2)
    with engine.begin() as conn:
        assigned = store.claim_from_pool(conn, PROJECT, "ann", at(0), pre_assigned=True)
    assert assigned == first
    assert assignment_state(engine, first, "ann") == ASSIGNED
    assert claim(engine, "ben") == second, "an assigned slot is taken"

    with engine.begin() as conn:
        mine = store.mine(conn, PROJECT, "ann", ASSIGNED)
        assert mine is not None
        store.lease(conn, mine.task_id, "ann", at(30))
    with engine.begin() as conn:
        handlers.expire(conn, at(31))
    assert assignment_state(engine, first, "ann") == ASSIGNED


def test_counts_for_the_dashboard(engine: Engine) -> None:
    ids = queue(engine, 4, overlap=2, review=True)
    for who in ("ann", "ben"):
        claim(engine, who)
    submit(engine, ids[0], "ann", review=True)
    submit(engine, ids[0], "ben", review=True)
    claim(engine, "ann")

    with engine.connect() as conn:
        counts = store.task_counts(conn, PROJECT)
        people = store.annotator_counts(conn, PROJECT)

    assert counts == {
        "open": 2,
        "in_progress": 1,
        "in_review": 1,
        "completed": 0,
        "total": 4,
        "queue_depth": 2 + 2 + 1,
    }
    ann = next(p for p in people if p["subject"] == "ann")
    assert (ann["submitted"], ann["leased"], ann["seconds"]) == (1, 1, 12.5)


# --- under concurrency -----------------------------------------------------


def test_many_annotators_at_once_keep_every_invariant(engine: Engine) -> None:
    """Eight annotators lease, answer, skip and let leases lapse at once,
    while an expiry loop runs; afterwards every task has exactly its overlap
    of answers, from different people, and nothing was counted twice."""
    overlap, annotators = 2, [f"u-{n}" for n in range(8)]
    ids = queue(engine, 40, overlap=overlap)
    start = threading.Barrier(len(annotators) + 1)
    stop = threading.Event()
    submitted: Counter[str] = Counter()
    lock = threading.Lock()

    def expiry_loop() -> None:
        start.wait(timeout=60)
        while not stop.is_set():
            with engine.begin() as conn:
                # Leases taken at minute 0 run to minute 30; only the ones
                # abandoned below, taken at minute -40, have lapsed by now.
                handlers.expire(conn, at(0))

    def work(who: str) -> None:
        rng = random.Random(who)
        start.wait(timeout=60)
        while True:
            roll = rng.random()
            task_id = claim(engine, who, minute=-40 if roll < 0.05 else 0)
            if task_id is None:
                return
            if roll < 0.05:
                continue  # abandoned: its lease lapses
            if roll < 0.15:
                with engine.begin() as conn:
                    store.skip(conn, store.get_task(conn, task_id), who, "unclear")
                continue
            assert submit(engine, task_id, who)
            with lock:
                submitted[task_id] += 1

    expirer = threading.Thread(target=expiry_loop)
    expirer.start()
    try:
        with ThreadPoolExecutor(len(annotators)) as pool:
            list(pool.map(work, annotators))
    finally:
        stop.set()
        expirer.join(60)
    # Whatever is still abandoned lapses; finish the pool one by one.
    with engine.begin() as conn:
        handlers.expire(conn, at(10_000))
    for who in annotators:
        while (task_id := claim(engine, who, minute=10_000)) is not None:
            assert submit(engine, task_id, who)
            submitted[task_id] += 1

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT task_id, annotator, state FROM assignments")
        ).all()
        tasks = {t.id: t for t in store.list_tasks(conn, PROJECT, 100, 0)[0]}
    answers = Counter(r.task_id for r in rows if r.state == SUBMITTED)
    assert len({(r.task_id, r.annotator) for r in rows}) == len(rows)
    for task_id in ids:
        done = tasks[task_id]
        # Skips by all eight could starve a task; with these odds none does.
        assert answers[task_id] == overlap == done.submitted, task_id
        assert done.state == COMPLETED
        assert done.active == overlap
        assert submitted[task_id] == overlap


def test_no_task_is_ever_leased_beyond_its_overlap(engine: Engine) -> None:
    """Twelve annotators race for three tasks of overlap two."""
    ids = queue(engine, 3, overlap=2)
    racers = [f"u-{n}" for n in range(12)]
    start = threading.Barrier(len(racers))

    def race(who: str) -> str | None:
        start.wait(timeout=60)
        return claim(engine, who)

    with ThreadPoolExecutor(len(racers)) as pool:
        won = list(pool.map(race, racers))

    assert Counter(t for t in won if t) == {task_id: 2 for task_id in ids}
    with engine.connect() as conn:
        for task_id in ids:
            assert store.get_task(conn, task_id).active == 2


def test_one_annotator_racing_themselves_gets_one_slot_per_task(
    engine: Engine,
) -> None:
    (only,) = queue(engine, 1, overlap=3)
    start = threading.Barrier(6)

    def race(_: int) -> str | None:
        start.wait(timeout=60)
        return claim(engine, "ann")

    with ThreadPoolExecutor(6) as pool:
        won = list(pool.map(race, range(6)))

    assert won.count(only) == 1
    assert task(engine, only).active == 1


def test_an_answer_reported_twice_at_once_counts_once(engine: Engine) -> None:
    """The labeling service's call and its event often arrive together."""
    ids = queue(engine, 12, overlap=2, review=True)
    for _ in ids:
        claim(engine, "ann")
    start = threading.Barrier(4)

    def report(task_id: str) -> bool:
        start.wait(timeout=60)
        return submit(engine, task_id, "ann", review=True)

    with ThreadPoolExecutor(4) as pool:
        for task_id in ids:
            counted = list(pool.map(report, [task_id] * 4))
            assert counted.count(True) == 1, counted
            after = task(engine, task_id)
            assert (after.state, after.active, after.submitted) == (OPEN, 1, 1)


def test_a_skip_pressed_twice_at_once_gives_one_slot_back(engine: Engine) -> None:
    (only,) = queue(engine, 1, overlap=2)
    claim(engine, "ann")
    claim(engine, "ben")
    start = threading.Barrier(3)

    def press(_: int) -> bool:
        start.wait(timeout=60)
        with engine.begin() as conn:
            return store.skip(conn, store.get_task(conn, only), "ann", "unreadable")

    with ThreadPoolExecutor(3) as pool:
        pressed = list(pool.map(press, range(3)))

    assert pressed.count(True) == 1
    assert (task(engine, only).state, task(engine, only).active) == (OPEN, 1)


# --- the labeling service's answers ------------------------------------------


def answer(
    task_id: str, who: str, version: int = 1, kind: str = "answer"
) -> Annotation:
    return Annotation(
        id=f"a-{task_id}-{who}-{kind}-{version}",
        task_id=task_id,
        project_id=PROJECT,
        document_id="d-1",
        text_sha256="0" * 64,
        annotator=who,
        content=Content(
            spans=(SpanLabel(0, 4, "PERSON"),),
            classes=("Urgent",),
            fields={"summary": f"v{version}"},
            seconds=3.5,
        ),
        created_at=at(version).isoformat(),
        version=version,
        kind=kind,
    )


def test_every_answer_version_is_kept_and_one_is_current(engine: Engine) -> None:
    migrate(engine, labeling_store.MIGRATIONS)
    with engine.begin() as conn:
        labeling_store.insert_annotation(conn, answer("t-1", "ann"))
        labeling_store.insert_annotation(conn, answer("t-1", "ben"))
        labeling_store.insert_annotation(conn, answer("t-1", "ann", version=2))
        labeling_store.insert_annotation(conn, answer("t-1", "rev", kind=GOLD))

    with engine.connect() as conn:
        current = labeling_store.task_annotations(conn, "t-1")
        gold = labeling_store.task_annotations(conn, "t-1", GOLD)
        first = labeling_store.get_annotation(conn, answer("t-1", "ann").id)
        listed, total = labeling_store.list_annotations(conn, PROJECT, 10, 0)
        streamed = list(labeling_store.iter_current(conn, PROJECT, "answer", batch=1))
        versions = conn.execute(sa.text("SELECT COUNT(*) FROM annotations")).scalar()

    assert [(a.annotator, a.version) for a in current] == [("ben", 1), ("ann", 2)]
    assert current[1] == answer("t-1", "ann", version=2)
    assert [a.annotator for a in gold] == ["rev"]
    assert first == answer("t-1", "ann")
    assert (len(listed), total) == (2, 2)
    assert streamed == current
    assert versions == 4


def test_reviews_are_counted_by_decision(engine: Engine) -> None:
    migrate(engine, labeling_store.MIGRATIONS)
    with engine.begin() as conn:
        for n, decision in enumerate(["accept", "reject", "reject", "correct"]):
            labeling_store.insert_review(
                conn,
                Review(
                    id=f"r-{n}",
                    task_id=f"t-{n % 2}",
                    project_id=PROJECT,
                    decision=decision,
                    annotation_id="a",
                    gold_annotation_id="",
                    comment="Why" if decision == "reject" else "",
                    reviewer="rev",
                    created_at=at(n).isoformat(),
                ),
            )

    with engine.connect() as conn:
        counts = labeling_store.review_counts(conn, PROJECT)
        latest = labeling_store.latest_reviews(conn, ["t-0", "t-1"])

    assert counts == {"accept": 1, "reject": 2, "correct": 1}
    assert {k: v.id for k, v in latest.items()} == {"t-0": "r-2", "t-1": "r-3"}
    assert replace(latest["t-0"], id="x").comment == "Why"
