"""Claiming several tasks in one transaction (SQLite and PostgreSQL): up to the number asked,
oldest first, each with its lease, attempt row and event; never a task twice, never one another
transaction holds; and a worker with free slots claims them in one go."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from hatchery.domain.tasks import Task, TaskStatus
from hatchery.store import events
from hatchery.store.db import Database
from hatchery.store.notify import Notifier
from hatchery.store.queue import TaskQueue, lease_of
from hatchery.store.tables import task_attempts, tasks
from hatchery.worker.pool import Worker
from tests.store_helpers import new_account, submit


@pytest.fixture
def queue(db: Database) -> TaskQueue:
    return TaskQueue(db, Notifier(), public_url="http://h", lease_seconds=30)


async def attempt_rows(db: Database) -> list[tuple[str, int, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(task_attempts.c.task_id, task_attempts.c.attempt, task_attempts.c.worker)
        )
        return sorted((r.task_id, r.attempt, r.worker) for r in rows)


async def test_claim_many_takes_up_to_the_limit_oldest_first_with_attempts_and_events(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    submitted = [await submit(queue, account_id) for _ in range(7)]
    with queue.notifier.watch(submitted[0]) as first_changed:
        first = await queue.claim_many("w1", 5)
        assert first_changed.is_set()
    assert [t.id for t in first] == submitted[:5]
    for task in first:
        assert task.status is TaskStatus.PROCESSING
        assert (task.lease_owner, task.attempt) == ("w1", 1)
        assert task.lease_expires_at is not None and task.started_at is not None

    rest = await queue.claim_many("w2", 5)
    assert [t.id for t in rest] == submitted[5:]
    assert await queue.claim_many("w3", 5) == []
    assert await queue.claim_many("w3", 0) == []

    owners = {t.id: t.lease_owner for t in [*first, *rest]}
    assert await attempt_rows(db) == sorted((i, 1, owners[i]) for i in submitted)
    async with db.read() as conn:
        for task in [*first, *rest]:
            latest = await events.latest(conn, task)
            assert latest.status is TaskStatus.PROCESSING and latest.id > events.SUBMITTED
    # Claimed tasks finish as any claimed task does.
    assert await queue.complete(lease_of(first[0]), output={"files": []}, usage={})


async def test_a_released_task_is_claimed_again_as_its_next_attempt(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    (first,) = await queue.claim_many("w1", 3)
    assert await queue.release(lease_of(first))
    (again,) = await queue.claim_many("w2", 3)
    assert (again.id, again.attempt, again.lease_owner) == (task_id, 2, "w2")
    assert await attempt_rows(db) == [(task_id, 1, "w1"), (task_id, 2, "w2")]


async def test_concurrent_claim_many_never_takes_a_task_twice(
    db: Database, queue: TaskQueue
) -> None:
    """Eight claimers asking for 7 at a time race over 90 tasks (on PostgreSQL through FOR UPDATE
    SKIP LOCKED): every task is claimed, each once, with one attempt row."""
    account_id = await new_account(db)
    submitted = {await submit(queue, account_id) for _ in range(90)}

    async def drain(name: str) -> list[Task]:
        got: list[Task] = []
        while batch := await queue.claim_many(name, 7):
            assert len(batch) <= 7
            got += batch
        return got

    batches = await asyncio.gather(*(drain(f"w{i}") for i in range(8)))
    claimed = [t.id for batch in batches for t in batch]
    assert sorted(claimed) == sorted(submitted)
    assert [attempt for _, attempt, _ in await attempt_rows(db)] == [1] * 90


@pytest.mark.postgresql_only
async def test_claim_many_skips_the_rows_another_transaction_holds(
    db: Database, queue: TaskQueue
) -> None:
    """The two oldest tasks are locked by an open transaction: a claim of three does not wait for
    it, and takes the three after them."""
    account_id = await new_account(db)
    submitted = [await submit(queue, account_id) for _ in range(5)]
    async with db.engine.connect() as other, other.begin():
        await other.execute(
            sa.select(tasks.c.id).where(tasks.c.id.in_(submitted[:2])).with_for_update()
        )
        async with asyncio.timeout(5):
            claimed = await queue.claim_many("w1", 3)
    assert [t.id for t in claimed] == submitted[2:]
    assert [t.id for t in await queue.claim_many("w2", 3)] == submitted[:2]


class CountingQueue(TaskQueue):
    """The queue, recording how many tasks each claim transaction asked for and got."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, Notifier(), public_url="http://h", lease_seconds=30)
        self.claims: list[tuple[int, int]] = []

    async def claim_many(self, owner: str, limit: int) -> list[Task]:
        claimed = await super().claim_many(owner, limit)
        self.claims.append((limit, len(claimed)))
        return claimed


class HoldingRunner:
    """Runs nothing: each task holds its slot until released, then gives itself back."""

    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue
        self.started: list[str] = []
        self.go = asyncio.Event()

    async def run(self, task: Task, on_wait: object = None) -> None:
        self.started.append(task.id)
        await self.go.wait()
        await self.queue.complete(lease_of(task), output={"files": []}, usage={})


async def test_a_worker_claims_all_its_free_slots_in_one_transaction(db: Database) -> None:
    queue = CountingQueue(db)
    account_id = await new_account(db)
    submitted = [await submit(queue, account_id) for _ in range(10)]
    runner = HoldingRunner(queue)
    worker = Worker(
        queue,
        runner,  # type: ignore[arg-type]
        queue.notifier,
        concurrency=4,
        poll_interval=0.05,
        lease_seconds=30,
        grace=5,
    )
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):
            while len(runner.started) < 4:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # every slot is busy: nothing more is claimed
            assert queue.claims == [(4, 4)]
            assert sorted(runner.started) == sorted(submitted[:4])
            runner.go.set()
            while len(runner.started) < 10:
                await asyncio.sleep(0.01)
    finally:
        worker.stop()
        await running
    assert sorted(runner.started) == sorted(submitted)
    assert sum(got for _, got in queue.claims) == 10
    assert all(got <= asked <= 4 for asked, got in queue.claims)
    assert len([got for _, got in queue.claims if got]) < 10  # some claims took several
