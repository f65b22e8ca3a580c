"""The queue on a real database (SQLite and PostgreSQL): claims, leases, guarded finishes, the
reaper, money."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hatchery.domain.catalog import Catalog
from hatchery.domain.moderation import DenyList
from hatchery.domain.tasks import Task, TaskStatus, new_task_id
from hatchery.domain.usage import usage_id
from hatchery.errors import Conflict, NotFound, StoreUnavailable
from hatchery.providers.base import Artifact, Finished, Job, Running
from hatchery.storage import LocalStore, UrlSigner
from hatchery.store import counts, events, idempotency, migrate
from hatchery.store import outbox as outbox_store
from hatchery.store import tasks as task_store
from hatchery.store.db import Database, utcnow
from hatchery.store.notify import Notifier
from hatchery.store.queue import TaskQueue, lease_of
from hatchery.store.tables import (
    defined_here,
    idempotency_keys,
    ledger,
    metadata,
    task_attempts,
    tasks,
    usage_daily,
    usage_records,
    webhook_deliveries,
)
from hatchery.store.webhooks import WebhookOutbox
from hatchery.worker.pool import Worker
from hatchery.worker.reaper import Reaper
from hatchery.worker.runner import FallbackPolicy, TaskRunner
from tests.helpers import free_port
from tests.store_helpers import PRICE, account, new_account, submit, task_values


@pytest.fixture
def queue(db: Database) -> TaskQueue:
    return TaskQueue(db, Notifier(), public_url="http://h", lease_seconds=0.3)


@pytest.mark.sqlite_only
async def test_sqlite_runs_in_wal_with_a_busy_timeout(db: Database) -> None:
    async with db.read() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 30_000


@pytest.mark.sqlite_only
async def test_write_transactions_queue_instead_of_failing(db: Database) -> None:
    """Writers begin IMMEDIATE: a second writer waits for the first instead of failing."""
    account_id = await new_account(db)
    order: list[str] = []

    async def writer(name: str, hold: float) -> None:
        async with db.write() as conn:
            order.append(f"{name} in")
            balance = (await account(db, account_id)).balance_micros
            await asyncio.sleep(hold)
            await conn.execute(
                sa.text("UPDATE accounts SET balance_micros = :b WHERE id = :id"),
                {"b": balance + 1, "id": account_id},
            )
            order.append(f"{name} out")

    await asyncio.gather(writer("a", 0.3), writer("b", 0.0))
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    assert (await account(db, account_id)).balance_micros == 1_000_002


async def test_migrations_match_the_table_definitions(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def diff(conn: sa.Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"include_object": defined_here})
        return list(compare_metadata(context, metadata))

    async with db.read() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.is_current(db)


async def test_claim_renew_complete_charges_once(db: Database, queue: TaskQueue) -> None:
    account_id = await new_account(db)
    task_id = await submit(queue, account_id, webhook="http://127.0.0.1:9/h")
    assert (await account(db, account_id)).reserved_micros == PRICE
    task = await queue.claim("w1")
    assert task is not None and task.id == task_id and task.attempt == 1
    assert await queue.claim("w2") is None
    lease = lease_of(task)
    assert await queue.renew(lease)
    done = await queue.complete(lease, output={"files": []}, usage={"outputs": 0})
    assert done is not None and done.status is TaskStatus.COMPLETED and done.cost_micros == PRICE
    assert await queue.complete(lease, output={"files": []}, usage={}) is None
    assert await queue.fail(lease, "late") is None
    acct = await account(db, account_id)
    assert (acct.balance_micros, acct.reserved_micros) == (1_000_000 - PRICE, 0)
    async with db.read() as conn:
        charges = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(ledger).where(ledger.c.kind == "charge")
            )
        ).scalar()
        hooks = (await conn.execute(sa.select(webhook_deliveries.c.event))).scalars().all()
    assert charges == 1
    assert hooks == ["task.completed"]


async def test_a_usage_record_that_cannot_be_written_takes_the_charge_with_it(
    db: Database, queue: TaskQueue
) -> None:
    """The record and the charge are one transaction: when the record fails (here its id is
    taken), nothing of the completion is kept: no charge, no day sums, the task still running."""
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    task = await queue.claim("w1")
    assert task is not None and task.id == task_id
    async with db.write() as conn:
        await conn.execute(
            usage_records.insert().values(
                id=usage_id(task_id),
                account_id=account_id,
                task_id="gen_someotherone0000",
                model="nanobanana",
                type="image_generate",
                units=1,
                unit="image",
                unit_price_micros=1,
                cost_micros=1,
                created_at=utcnow(),
            )
        )
    with pytest.raises(sa.exc.IntegrityError):
        await queue.complete(lease_of(task), output={"files": []}, usage={})
    acct = await account(db, account_id)
    assert (acct.balance_micros, acct.reserved_micros) == (1_000_000, PRICE)
    async with db.read() as conn:
        charges = await conn.execute(sa.select(ledger.c.seq).where(ledger.c.kind == "charge"))
        assert charges.all() == []
        assert (await conn.execute(sa.select(usage_daily.c.day))).all() == []
        current = await task_store.get(conn, task_id)
    assert current is not None and current.status is TaskStatus.PROCESSING


async def test_lapsed_lease_is_reclaimed_and_the_late_worker_loses(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    await submit(queue, account_id)
    first = await queue.claim("slow-worker")
    assert first is not None
    await asyncio.sleep(0.4)
    reaper = Reaper(queue, interval=0.1, max_attempts=5)
    assert await reaper.reap_once() == 1
    second = await queue.claim("new-worker")
    assert second is not None and second.id == first.id and second.attempt == 2
    assert not await queue.renew(lease_of(first))
    assert await queue.complete(lease_of(first), output={"files": []}, usage={}) is None
    assert await queue.complete(lease_of(second), output={"files": []}, usage={}) is not None
    acct = await account(db, account_id)
    assert (acct.balance_micros, acct.reserved_micros) == (1_000_000 - PRICE, 0)


async def test_reaper_and_late_finish_race_has_one_winner(db: Database, queue: TaskQueue) -> None:
    account_id = await new_account(db)
    for _ in range(20):
        await submit(queue, account_id)
    claimed = [await queue.claim("racer") for _ in range(20)]
    await asyncio.sleep(0.4)
    reaper = Reaper(queue, interval=0.1, max_attempts=1)  # a lapsed task fails at once
    results = await asyncio.gather(
        reaper.reap_once(),
        *(queue.complete(lease_of(t), output={"files": []}, usage={}) for t in claimed if t),
    )
    reaped, finished = results[0], [r for r in results[1:] if r is not None]
    assert reaped + len(finished) == 20
    acct = await account(db, account_id)
    assert acct.reserved_micros == 0
    assert acct.balance_micros == 1_000_000 - PRICE * len(finished)


async def test_task_that_keeps_losing_its_worker_fails_and_is_released(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    reaper = Reaper(queue, interval=0.1, max_attempts=2)
    for _ in range(2):
        assert await queue.claim("doomed") is not None
        await asyncio.sleep(0.4)
        await reaper.reap_once()
    async with db.read() as conn:
        task = await task_store.get(conn, task_id)
    assert task is not None and task.status is TaskStatus.FAILED
    assert "interrupted 2 times" in (task.error or "")
    acct = await account(db, account_id)
    assert (acct.balance_micros, acct.reserved_micros) == (1_000_000, 0)


async def test_reservations_never_exceed_the_balance(db: Database, queue: TaskQueue) -> None:
    account_id = await new_account(db, balance=PRICE * 3)
    results = await asyncio.gather(
        *(submit(queue, account_id) for _ in range(10)), return_exceptions=True
    )
    assert sum(isinstance(r, str) for r in results) == 3
    assert (await account(db, account_id)).reserved_micros == PRICE * 3
    async with db.read() as conn:  # a refused submit wrote nothing: no task, not counted
        rows = await conn.execute(sa.select(tasks.c.id).where(tasks.c.account_id == account_id))
        assert sorted(rows.scalars()) == sorted(r for r in results if isinstance(r, str))
        assert await counts.total(conn, account_id, task_store.TaskFilter()) == 3


class CrashingRunner:
    async def run(self, task: object, on_wait: object = None) -> None:
        raise RuntimeError("disk on fire")


class DatabaseDownRunner:
    """The database does not answer on the first run of a task, then the task completes."""

    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue
        self.runs: list[int] = []

    async def run(self, task: Task, on_wait: object = None) -> None:
        self.runs.append(task.attempt)
        if len(self.runs) == 1:
            raise StoreUnavailable("The database is unavailable (OperationalError: locked)")
        await self.queue.complete(lease_of(task), output={"files": []}, usage={})


class StuckRunner:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self, task: object, on_wait: object = None) -> None:
        self.started.set()
        await asyncio.sleep(3600)


class SlowRunner:
    """Takes ``seconds`` (many lease lengths), then completes the task through the queue."""

    def __init__(self, queue: TaskQueue, seconds: float) -> None:
        self.queue = queue
        self.seconds = seconds
        self.runs: list[int] = []

    async def run(self, task: Task, on_wait: object = None) -> None:
        self.runs.append(task.attempt)
        await asyncio.sleep(self.seconds)
        await self.queue.complete(lease_of(task), output={"files": []}, usage={})


def make_worker(
    queue: TaskQueue, runner: object, grace: float = 0.2, lease_seconds: float = 30
) -> Worker:
    return Worker(
        queue,
        runner,
        queue.notifier,
        concurrency=1,  # type: ignore[arg-type]
        poll_interval=0.05,
        lease_seconds=lease_seconds,
        grace=grace,
    )


async def attempts_of(db: Database, task_id: str) -> list[tuple[int, str, str | None]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(task_attempts.c.attempt, task_attempts.c.worker, task_attempts.c.outcome)
            .where(task_attempts.c.task_id == task_id)
            .order_by(task_attempts.c.attempt)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_a_long_task_that_keeps_renewing_its_lease_runs_exactly_once(
    db: Database, queue: TaskQueue
) -> None:
    """The task runs for ~7 lease lengths while a reaper sweeps every 50 ms: never reclaimed."""
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    runner = SlowRunner(queue, seconds=2.0)
    worker = make_worker(queue, runner, lease_seconds=0.3)
    reaper = Reaper(queue, interval=0.05, max_attempts=5)
    running = [asyncio.create_task(worker.run()), asyncio.create_task(reaper.run())]
    try:
        async with asyncio.timeout(10):
            while not (rows := await attempts_of(db, task_id)) or rows[-1][2] is None:
                await asyncio.sleep(0.05)
    finally:
        worker.stop()
        running[1].cancel()
        await asyncio.gather(*running, return_exceptions=True)
    assert runner.runs == [1]
    assert await attempts_of(db, task_id) == [(1, worker.owner, "completed")]
    acct = await account(db, account_id)
    assert (acct.balance_micros, acct.reserved_micros) == (1_000_000 - PRICE, 0)


async def test_a_task_whose_renewals_stop_is_reclaimed_within_lease_plus_reaper_interval(
    db: Database, queue: TaskQueue
) -> None:
    """A worker claims (lease 0.3 s) and goes silent; a reaper sweeping every 0.2 s gives the task
    back and another worker takes it: within 0.3 + 0.2 s of the last renewal, plus slack for a
    loaded machine, and not before the lease lapsed."""
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    silent = await queue.claim("silent-worker")
    assert silent is not None and silent.lease_expires_at is not None
    renewed_at = time.monotonic()
    reaper = Reaper(queue, interval=0.2, max_attempts=5)
    sweeping = asyncio.create_task(reaper.run())
    try:
        async with asyncio.timeout(10):
            while (second := await queue.claim("healthy-worker")) is None:
                await asyncio.sleep(0.02)
        reclaimed_after = time.monotonic() - renewed_at
    finally:
        sweeping.cancel()
        await asyncio.gather(sweeping, return_exceptions=True)
    assert 0.3 <= reclaimed_after <= 0.3 + 0.2 + 0.5
    assert second.id == task_id and second.attempt == 2
    assert await attempts_of(db, task_id) == [
        (1, "silent-worker", "lapsed"),
        (2, "healthy-worker", None),
    ]


async def test_worker_fails_a_task_whose_runner_crashes(db: Database, queue: TaskQueue) -> None:
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    worker = make_worker(queue, CrashingRunner())
    running = asyncio.create_task(worker.run())
    for _ in range(100):
        async with db.read() as conn:
            task = await task_store.get(conn, task_id)
        if task and task.status is TaskStatus.FAILED:
            break
        await asyncio.sleep(0.05)
    worker.stop()
    await running
    assert task is not None and task.status is TaskStatus.FAILED
    assert task.error == "generation failed: internal error (RuntimeError: disk on fire)"
    assert (await account(db, account_id)).reserved_micros == 0


async def test_a_database_outage_gives_the_task_back_instead_of_failing_it(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    runner = DatabaseDownRunner(queue)
    worker = make_worker(queue, runner)
    running = asyncio.create_task(worker.run())
    for _ in range(100):
        async with db.read() as conn:
            task = await task_store.get(conn, task_id)
        if task and task.status is TaskStatus.COMPLETED:
            break
        await asyncio.sleep(0.05)
    worker.stop()
    await running
    assert task is not None and task.status is TaskStatus.COMPLETED
    assert runner.runs == [1, 2]
    assert [outcome for _, _, outcome in await attempts_of(db, task_id)] == [
        "released",
        "completed",
    ]
    acct = await account(db, account_id)
    assert (acct.balance_micros, acct.reserved_micros) == (1_000_000 - PRICE, 0)


async def test_an_unreachable_database_is_store_unavailable() -> None:
    db = Database.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    try:
        with pytest.raises(StoreUnavailable, match="The database is unavailable"):
            await db.ping()
        with pytest.raises(StoreUnavailable):
            async with db.write():
                pass
    finally:
        await db.dispose()


async def test_stop_keeps_to_the_grace_period_when_every_slot_is_busy(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    await submit(queue, account_id)  # waits for the only slot
    runner = StuckRunner()
    worker = make_worker(queue, runner, grace=0.3)
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(runner.started.wait(), 5)
    worker.stop()
    await asyncio.wait_for(running, 2)  # not the hour the task would take
    async with db.read() as conn:
        task = await task_store.get(conn, task_id)
    assert task is not None and task.status is TaskStatus.PENDING and task.lease_owner is None


def outbox_of(
    db: Database, queue: TaskQueue, per_receiver: int = 1000, lease: float = 60
) -> WebhookOutbox:
    return WebhookOutbox(
        db, queue.notifier, lease_seconds=lease, per_target=per_receiver, disable_after=86400
    )


async def test_a_redelivery_of_a_message_whose_sender_died_gets_the_whole_schedule(
    db: Database, queue: TaskQueue
) -> None:
    """Two failed attempts, then a third whose worker dies (its lease lapses, unrecorded); a
    redelivery then starts the schedule after the two recorded: the next attempt is its first
    retry place, not past its end. One asked for during a live attempt starts after that."""
    account_id = await new_account(db)
    await submit(queue, account_id, webhook="http://127.0.0.1:9/h")
    task = await queue.claim("w")
    assert task is not None
    await queue.complete(lease_of(task), output={"files": []}, usage={})
    outbox = outbox_of(db, queue, lease=0.2)
    for _ in range(2):
        delivery = await outbox.claim("sender")
        assert delivery is not None
        failed = {"duration_ms": 1, "status_code": 500, "error": "HTTP 500", "response": None}
        assert await outbox.record(
            delivery, started_at=utcnow(), outcome="pending", next_attempt_at=utcnow(), **failed
        )
    dying = await outbox.claim("dies")
    assert dying is not None and dying.attempts == 2
    await asyncio.sleep(0.3)  # its lease lapses
    async with db.write() as conn:
        assert await outbox_store.redeliver(conn, dying.id, account_id, utcnow())
    again = await outbox.claim("heir")
    assert again is not None and again.id == dying.id
    assert again.attempts + 1 - again.schedule_from == 1  # the first place of the new schedule
    async with db.write() as conn:  # asked for while the heir's attempt is live
        assert await outbox_store.redeliver(conn, again.id, account_id, utcnow())
    assert await outbox.record(
        again, started_at=utcnow(), outcome="delivered", next_attempt_at=None, **failed
    )
    async with db.read() as conn:
        [logged], _ = await outbox_store.logged(conn, account_id)
    assert (logged.status, len(logged.attempts)) == ("pending", 3)  # sent again, and then
    last = await outbox.claim("next")
    assert last is not None and last.attempts + 1 - last.schedule_from == 1


async def test_an_in_flight_delivery_is_not_due_until_its_lease_lapses(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    await submit(queue, account_id, webhook="http://127.0.0.1:9/h")
    task = await queue.claim("w")
    assert task is not None
    await queue.complete(lease_of(task), output={"files": []}, usage={})
    outbox = outbox_of(db, queue)
    due = await outbox.next_due_at()
    assert due is not None and due <= utcnow()
    delivery = await outbox.claim("sender")
    assert delivery is not None and await outbox.claim("other") is None
    due = await outbox.next_due_at()
    assert due is not None and (due - utcnow()).total_seconds() > 55


async def test_concurrent_claimers_take_each_task_and_each_delivery_once(
    db: Database, queue: TaskQueue
) -> None:
    """Eight claimers race over 40 tasks, then over their 40 webhook deliveries (on PostgreSQL
    through FOR UPDATE SKIP LOCKED): every one is taken, none twice."""
    account_id = await new_account(db)
    submitted = {await submit(queue, account_id, webhook="http://127.0.0.1:9/h") for _ in range(40)}

    async def drain_tasks(name: str) -> list[Task]:
        got = []
        while (task := await queue.claim(name)) is not None:
            got.append(task)
        return got

    batches = await asyncio.gather(*(drain_tasks(f"w{i}") for i in range(8)))
    claimed = [t for batch in batches for t in batch]
    assert sorted(t.id for t in claimed) == sorted(submitted)
    for task in claimed:
        assert await queue.complete(lease_of(task), output={"files": []}, usage={})

    outbox = outbox_of(db, queue)

    async def drain_deliveries(name: str) -> list[str]:
        got = []
        while (delivery := await outbox.claim(name)) is not None:
            got.append(delivery.subject_id)
        return got

    taken = await asyncio.gather(*(drain_deliveries(f"d{i}") for i in range(8)))
    assert sorted(t for batch in taken for t in batch) == sorted(submitted)


class ResumableProvider:
    """An upstream that runs a job over two polls; counts submits and polls."""

    name = "fake"

    def __init__(self, name: str = "fake", finish_after: int = 1) -> None:
        self.name = name
        self.finish_after = finish_after
        self.submits = 0
        self.cancelled: list[dict[str, object]] = []
        self.polls: list[dict[str, object]] = []

    def serves(self, model: str) -> bool:
        return True

    def unsupported(self, job: Job) -> str | None:
        return None

    def image_sizes(self, model: str) -> frozenset[str]:
        return frozenset({"1k"})

    async def cancel(self, job: Job, upstream: dict[str, object]) -> None:
        self.cancelled.append(upstream)

    async def submit(self, job: Job) -> Finished | Running:
        self.submits += 1
        return Running({"operation": "op-1", "step": 0}, poll_after=0)

    async def poll(self, job: Job, upstream: dict[str, object]) -> Finished | Running:
        self.polls.append(upstream)
        if upstream["step"] < self.finish_after:
            step = int(upstream["step"]) + 1  # type: ignore[call-overload]
            return Running({"operation": "op-1", "step": step}, poll_after=0)
        return Finished([Artifact(b"\x89PNG fake", "png", 1, 1)])


def fake_runner(
    queue: TaskQueue,
    provider: ResumableProvider,
    tmp_path: Path,
    *others: ResumableProvider,
    policy: FallbackPolicy | None = None,
) -> TaskRunner:
    providers = {p.name: p for p in (provider, *others)}
    names = ", ".join(f'"{name}"' for name in providers)
    catalog = Catalog.parse(
        f'[models.nanobanana]\ntype = "image"\nprice_per_output = "0.01"\nproviders = [{names}]\n'
    )
    store = LocalStore(tmp_path / "out", UrlSigner(b"secret", "http://h"))
    return TaskRunner(queue, catalog, providers, store, DenyList.empty(), policy=policy)


async def test_runner_stores_the_upstream_handle_and_a_new_attempt_resumes_from_it(
    db: Database, queue: TaskQueue, tmp_path: Path
) -> None:
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    first = await queue.claim("w1")
    assert first is not None
    # The first attempt submits and stores the handle, then "dies" before finishing.
    provider = ResumableProvider()
    step = await provider.submit(Job.from_params(task_id, "nanobanana", "image", first.params))
    assert isinstance(step, Running)
    assert await queue.save_upstream(lease_of(first), {"provider": "fake", "handle": step.upstream})
    await asyncio.sleep(0.4)
    await Reaper(queue, interval=0.1, max_attempts=5).reap_once()

    second = await queue.claim("w2")
    assert second is not None and second.upstream is not None
    await fake_runner(queue, provider, tmp_path).run(second)
    async with db.read() as conn:
        done = await task_store.get(conn, task_id)
    assert done is not None and done.status is TaskStatus.COMPLETED
    assert provider.submits == 1  # the resumed attempt only polled
    assert provider.polls[0] == {"operation": "op-1", "step": 0}
    assert done.upstream is not None
    assert done.upstream["handle"] == {"operation": "op-1", "step": 1}
    assert done.usage is not None and done.usage["provider"] == "fake"
    assert [a["outcome"] for a in done.usage["attempts"]] == ["completed"]


async def test_a_resumed_job_of_the_second_provider_is_polled_before_the_first_is_tried(
    db: Database, queue: TaskQueue, tmp_path: Path
) -> None:
    """The first provider had failed and the second's job was in flight when the worker died:
    the new attempt polls the second's job, and never submits to the first again."""
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    first_claim = await queue.claim("w1")
    assert first_claim is not None
    stored = {
        "provider": "second",
        "handle": {"operation": "op-1", "step": 0},
        "since": time.time(),
        "attempts": [{"provider": "first", "outcome": "failed", "error": "HTTP 503"}],
    }
    assert await queue.save_upstream(lease_of(first_claim), stored)
    await asyncio.sleep(0.4)
    await Reaper(queue, interval=0.1, max_attempts=5).reap_once()
    task = await queue.claim("w2")
    assert task is not None
    first, second = ResumableProvider("first"), ResumableProvider("second")
    await fake_runner(queue, first, tmp_path, second).run(task)
    async with db.read() as conn:
        done = await task_store.get(conn, task_id)
    assert done is not None and done.status is TaskStatus.COMPLETED
    assert (first.submits, second.submits, len(second.polls)) == (0, 0, 2)
    assert done.usage is not None and done.usage["provider"] == "second"
    assert [(a["provider"], a["outcome"]) for a in done.usage["attempts"]] == [
        ("first", "failed"),
        ("second", "completed"),
    ]


async def test_an_upstream_job_past_the_deadline_is_cancelled_and_the_task_fails(
    db: Database, queue: TaskQueue, tmp_path: Path
) -> None:
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    task = await queue.claim("w1")
    assert task is not None
    endless = ResumableProvider(finish_after=10**9)
    policy = FallbackPolicy(rounds=1, poll_max=0.02, deadline=0.3)
    await fake_runner(queue, endless, tmp_path, policy=policy).run(task)
    async with db.read() as conn:
        done = await task_store.get(conn, task_id)
    assert done is not None and done.status is TaskStatus.FAILED
    assert done.error == (
        "generation failed: fake: the upstream job did not finish within 0.3s; cancelled"
    )
    assert len(endless.cancelled) == 1 and endless.cancelled[0]["operation"] == "op-1"
    assert len(endless.polls) >= 3
    acct = await account(db, account_id)
    assert (acct.balance_micros, acct.reserved_micros) == (1_000_000, 0)


async def test_stopping_lets_a_webhook_in_flight_finish_instead_of_cutting_it_off(
    db: Database, queue: TaskQueue
) -> None:
    """Shutdown while a receiver takes 1 s to answer: the attempt completes and is recorded."""
    import httpx

    from hatchery.domain.webhooks import Schedule
    from hatchery.webhooks.delivery import Schedules, WebhookDispatcher
    from tests.helpers import LocalHTTPServer

    def slow(path: str, method: str) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1)
        return 200, {}, b"ok"

    receiver = LocalHTTPServer(slow)
    account_id = await new_account(db)
    task_id = await submit(queue, account_id, webhook=receiver.url("/slow"))
    task = await queue.claim("w")
    assert task is not None
    await queue.complete(lease_of(task), output={"files": []}, usage={})
    async with httpx.AsyncClient() as client:
        dispatcher = WebhookDispatcher(
            outbox_of(db, queue),
            client,
            queue.notifier,
            owner="stopping",
            schedules=Schedules(
                url=Schedule.exponential(5, 60, 3600, timeout=10), endpoint=Schedule((), 10)
            ),
            allow_private=True,
            poll_interval=0.05,
        )
        running = asyncio.create_task(dispatcher.run())
        while not dispatcher._inflight:
            await asyncio.sleep(0.01)
        running.cancel()  # shutdown begins while the receiver is still thinking
        await asyncio.gather(running, return_exceptions=True)
        await dispatcher.drain(timeout=5)
    receiver.close()
    [hook] = receiver.received
    assert json.loads(hook.body)["task_id"] == task_id
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(webhook_deliveries.c.status, webhook_deliveries.c.attempts)
            )
        ).one()
    assert tuple(row) == ("delivered", 1)


async def totals(db: Database, account_id: str, model: str | None = None) -> dict[str, int]:
    """What a list's ``total`` says for each status filter ('all': none)."""
    async with db.read() as conn:
        return {
            str(status or "all"): await counts.total(
                conn, account_id, task_store.TaskFilter(status, model)
            )
            for status in (None, *(s.value for s in TaskStatus))
        }


async def test_list_totals_follow_every_transition_without_counting_the_tasks(
    db: Database, queue: TaskQueue
) -> None:
    account_id, other = await new_account(db), await new_account(db)
    ids = [await submit(queue, account_id) for _ in range(4)]
    await submit(queue, other)
    assert await totals(db, account_id) == {
        "all": 4,
        "pending": 4,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }
    leases = [lease_of(t) for t in [await queue.claim("w") for _ in range(3)] if t]
    assert len(leases) == 3
    assert await queue.complete(leases[0], output={}, usage={})
    assert await queue.fail(leases[1], "no")
    assert await queue.release(leases[2])
    assert await totals(db, account_id) == {
        "all": 4,
        "pending": 2,
        "processing": 0,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
    }
    assert await totals(db, account_id, model="veo3.1") == dict.fromkeys(
        ("all", "pending", "processing", "completed", "failed", "cancelled"), 0
    )
    again = await queue.claim("w")
    assert again is not None and again.id in ids
    assert (await totals(db, account_id))["processing"] == 1
    assert (await totals(db, account_id))["pending"] == 1
    assert (await totals(db, other))["all"] == 1
    [waiting] = [t for t in ids if t not in {lease.task_id for lease in leases[:2]} | {again.id}]
    await queue.cancel(waiting, account_id)
    await queue.cancel(again.id, account_id)
    assert await totals(db, account_id) == {
        "all": 4,
        "pending": 0,
        "processing": 0,
        "completed": 1,
        "failed": 1,
        "cancelled": 2,
    }
    async with db.read() as conn:  # the stored counts, one row per account and model
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT total, completed, failed, cancelled FROM task_counts "
                    "WHERE account_id = :a"
                ),
                {"a": account_id},
            )
        ).all()
    assert [tuple(r) for r in rows] == [(4, 1, 1, 2)]


async def test_every_status_change_is_an_event_in_order_and_watchers_wake(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)

    async def stored() -> list[tuple[int, str]]:
        async with db.read() as conn:
            task = await task_store.get(conn, task_id)
            assert task is not None
            latest = await events.latest(conn, task)
            found = await events.since(conn, task, -1)
        assert found[-1] == latest
        return [(e.id, e.status.value) for e in found]

    with queue.notifier.watch(task_id) as changed:
        assert await stored() == [(0, "pending")]
        first = await queue.claim("w1")
        assert first is not None and changed.is_set()
        changed.clear()
        assert await queue.release(lease_of(first))
        assert changed.is_set()
        changed.clear()
        second = await queue.claim("w2")
        assert second is not None
        assert await queue.cancel(task_id, account_id)
        assert changed.is_set()
    history = await stored()
    assert [s for _, s in history] == [
        "pending",
        "processing",
        "pending",
        "processing",
        "cancelled",
    ]
    ids = [i for i, _ in history]
    assert ids == sorted(ids) and len(set(ids)) == 5
    async with db.read() as conn:
        task = await task_store.get(conn, task_id)
        assert task is not None
        assert [e.status.value for e in await events.since(conn, task, ids[2])] == [
            "processing",
            "cancelled",
        ]
        assert await events.since(conn, task, ids[-1]) == []
        outcomes = (
            await conn.execute(
                sa.select(task_attempts.c.outcome)
                .where(task_attempts.c.task_id == task_id)
                .order_by(task_attempts.c.attempt)
            )
        ).all()
    assert [o for (o,) in outcomes] == ["released", "cancelled"]


async def test_cancel_is_guarded_by_the_status_and_by_the_account(
    db: Database, queue: TaskQueue
) -> None:
    account_id, other = await new_account(db), await new_account(db)
    task_id = await submit(queue, account_id)
    claimed = await queue.claim("w")
    assert claimed is not None
    with pytest.raises(NotFound):
        await queue.cancel(task_id, other)
    cancelled = await queue.cancel(task_id, account_id)
    assert cancelled.status is TaskStatus.CANCELLED and cancelled.lease_owner is None
    assert cancelled.completed_at is not None and cancelled.cost_micros == 0
    # The worker that held it can neither renew, save, complete nor fail it any more.
    lease = lease_of(claimed)
    assert await queue.renew_all("w", [lease]) == set()
    assert not await queue.save_upstream(lease, {"provider": "x"})
    assert await queue.complete(lease, output={}, usage={}) is None
    assert await queue.fail(lease, "late") is None
    with pytest.raises(Conflict, match="already cancelled"):
        await queue.cancel(task_id, account_id)
    acct = await account(db, account_id)
    assert (acct.balance_micros, acct.reserved_micros) == (1_000_000, 0)


async def test_an_idempotency_key_is_claimed_once_and_taken_over_when_stale(
    db: Database, queue: TaskQueue
) -> None:
    account_id, other = await new_account(db), await new_account(db)
    ours = await queue.claim_key(account_id, "k", "f1")
    assert ours.mine and ours.task_id is None
    theirs = await queue.claim_key(account_id, "k", "f1")
    assert not theirs.mine and (theirs.fingerprint, theirs.task_id) == ("f1", None)
    assert (await queue.claim_key(account_id, "k", "f2")).fingerprint == "f1"
    assert (await queue.claim_key(other, "k", "f1")).mine  # another account's key
    task = await queue.submit(task_values(new_task_id(), account_id), ("k", ours))
    replay = await queue.claim_key(account_id, "k", "f1")
    assert (replay.mine, replay.task_id) == (False, task.id)
    await queue.forget_key(account_id, "k", ours)  # only an in-flight claim is forgotten
    assert (await queue.claim_key(account_id, "k", "f1")).task_id == task.id

    # The other account's request died half-way: after a while its claim is taken over, and if
    # it comes back it can attach nothing to the key (nor queue a task).
    dead = await queue.claim_key(other, "k2", "f3")
    await age_keys(db, other, idempotency.ABANDONED + timedelta(seconds=1))
    taker = await queue.claim_key(other, "k2", "f3")
    assert taker.mine and taker.at > dead.at
    with pytest.raises(Conflict, match="taken over"):
        await queue.submit(task_values(new_task_id(), other), ("k2", dead))
    async with db.read() as conn:
        assert await counts.total(conn, other, task_store.TaskFilter()) == 0
    # A finished key is kept 24 hours; then it can be claimed again, and it is purged.
    await age_keys(db, account_id, idempotency.KEEP + timedelta(seconds=1))
    assert (await queue.claim_key(account_id, "k", "f9")).mine
    await age_keys(db, account_id, idempotency.KEEP + timedelta(seconds=1))
    assert await queue.purge_idempotency_keys() == 1
    async with db.read() as conn:
        left = (await conn.execute(sa.select(idempotency_keys.c.key))).all()
    assert sorted(key for (key,) in left) == ["k", "k2"]  # the other account's two


async def age_keys(db: Database, account_id: str, by: timedelta) -> None:
    async with db.write() as conn:
        await conn.execute(
            idempotency_keys.update()
            .where(idempotency_keys.c.account_id == account_id)
            .values(created_at=utcnow() - by)
        )


class CancelledMeanwhile(ResumableProvider):
    """An upstream whose submit returns after the task was cancelled by its owner."""

    def __init__(self, queue: TaskQueue, account_id: str) -> None:
        super().__init__()
        self.queue, self.account_id = queue, account_id

    async def submit(self, job: Job) -> Finished | Running:
        await self.queue.cancel(job.task_id, self.account_id)
        return await super().submit(job)


async def test_a_job_accepted_upstream_after_its_task_was_cancelled_is_cancelled_there(
    db: Database, queue: TaskQueue, tmp_path: Path
) -> None:
    """Nobody would ever poll that job: the worker cancels it upstream and writes nothing."""
    account_id = await new_account(db)
    task_id = await submit(queue, account_id)
    task = await queue.claim("w1")
    assert task is not None
    provider = CancelledMeanwhile(queue, account_id)
    await fake_runner(queue, provider, tmp_path).run(task)
    assert provider.cancelled == [{"operation": "op-1", "step": 0}]
    assert provider.polls == []
    async with db.read() as conn:
        done = await task_store.get(conn, task_id)
    assert done is not None and done.status is TaskStatus.CANCELLED and done.upstream is None
    acct = await account(db, account_id)
    assert (acct.balance_micros, acct.reserved_micros) == (1_000_000, 0)


async def test_the_reaper_purges_expired_idempotency_keys_once_an_hour(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    await queue.claim_key(account_id, "old", "f")
    await age_keys(db, account_id, idempotency.KEEP + timedelta(seconds=1))
    await queue.claim_key(account_id, "new", "f")
    reaper = Reaper(queue, interval=0.01, max_attempts=5)
    await reaper.purge_keys()
    await queue.claim_key(account_id, "late", "f")
    await age_keys(db, account_id, idempotency.KEEP + timedelta(seconds=1))
    await reaper.purge_keys()  # within the hour: nothing more is deleted
    async with db.read() as conn:
        left = (await conn.execute(sa.select(idempotency_keys.c.key))).all()
    assert sorted(key for (key,) in left) == ["late", "new"]
