"""The whole system's gauges (``observe.scrape.SystemGauges`` over ``store.operator.system_state``)
on a real database (SQLite and PostgreSQL): the queue, the webhook outbox, the workers alive; read
at most once per interval, and a failed read keeps the last state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.observe import scrape
from hatchery.observe.scrape import Exposition, SystemGauges
from hatchery.store import workers as worker_store
from hatchery.store.db import Database, utcnow
from hatchery.store.notify import Notifier
from hatchery.store.queue import TaskQueue
from hatchery.store.tables import tasks, webhook_deliveries
from tests.store_helpers import new_account, submit

HEARTBEAT = 5.0  # seconds between a worker's beats: alive while younger than 3 of them
HOOK = "http://127.0.0.1:9/h"


@pytest.fixture
def queue(db: Database) -> TaskQueue:
    return TaskQueue(db, Notifier(), public_url="http://h", lease_seconds=30)


class CountingReads:
    """The database, counting the read transactions asked of it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.reads = 0

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        self.reads += 1
        return self.db.read()


def gauges_of(db: Database | CountingReads, refresh: float) -> tuple[SystemGauges, Sample]:
    gauges = SystemGauges(db, refresh=refresh, heartbeat=HEARTBEAT)  # type: ignore[arg-type]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(gauges)
    return gauges, Sample(registry)


class Sample:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def __call__(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


async def set_created(db: Database, task_id: str, at: datetime) -> None:
    async with db.write() as conn:
        await conn.execute(tasks.update().where(tasks.c.id == task_id).values(created_at=at))


async def set_due(db: Database, task_id: str, at: datetime) -> None:
    d = webhook_deliveries.c
    async with db.write() as conn:
        await conn.execute(
            webhook_deliveries.update().where(d.subject_id == task_id).values(next_attempt_at=at)
        )


async def beat(db: Database, worker_id: str, at: datetime) -> None:
    row = worker_store.Beat(
        id=worker_id,
        host="host",
        pid=1,
        started_at=at,
        heartbeat_at=at,
        concurrency=4,
        running=0,
        waiting=0,
        providers={},
    )
    async with db.write() as conn:
        await worker_store.beat(conn, row)


@pytest.fixture
async def account_id(db: Database) -> str:
    return await new_account(db)


async def test_nothing_is_reported_before_the_first_read(db: Database) -> None:
    _, sample = gauges_of(db, 3600)
    assert sample("hatchery_queue_tasks", status="pending") is None
    assert sample("hatchery_workers_alive") is None


async def test_an_empty_system(db: Database) -> None:
    gauges, sample = gauges_of(db, 3600)
    await gauges.refresh()
    assert sample("hatchery_queue_tasks", status="pending") == 0
    assert sample("hatchery_queue_tasks", status="processing") == 0
    assert sample("hatchery_queue_oldest_pending_age_seconds") == 0
    assert sample("hatchery_webhook_backlog_messages") == 0
    assert sample("hatchery_webhook_oldest_due_age_seconds") == 0
    assert sample("hatchery_workers_alive") == 0


async def test_the_queue_by_status_and_its_oldest_pending_task(
    db: Database, queue: TaskQueue, account_id: str
) -> None:
    first, second, _third = [await submit(queue, account_id) for _ in range(3)]
    claimed = await queue.claim("worker-1")
    assert claimed is not None and claimed.id == first
    now = utcnow()
    # The claimed task is the oldest of all: a gauge that counted it would say 1000 s or more.
    await set_created(db, first, now - timedelta(seconds=1000))
    await set_created(db, second, now - timedelta(seconds=120))
    gauges, sample = gauges_of(db, 3600)
    await gauges.refresh()
    assert sample("hatchery_queue_tasks", status="pending") == 2
    assert sample("hatchery_queue_tasks", status="processing") == 1
    age = sample("hatchery_queue_oldest_pending_age_seconds")
    assert age is not None and 120 <= age < 200  # the second's, not the claimed first's


async def test_ended_tasks_are_not_in_the_queue(
    db: Database, queue: TaskQueue, account_id: str
) -> None:
    task_id = await submit(queue, account_id)
    await queue.cancel(task_id, account_id)
    gauges, sample = gauges_of(db, 3600)
    await gauges.refresh()
    assert sample("hatchery_queue_tasks", status="pending") == 0
    assert sample("hatchery_queue_tasks", status="processing") == 0
    assert sample("hatchery_queue_oldest_pending_age_seconds") == 0


async def test_the_webhook_backlog_and_its_most_overdue_message(
    db: Database, queue: TaskQueue, account_id: str
) -> None:
    # A cancelled task with a webhook URL leaves one message in the outbox.
    overdue, due, later, delivered = [await submit(queue, account_id, HOOK) for _ in range(4)]
    for task_id in (overdue, due, later, delivered):
        await queue.cancel(task_id, account_id)
    now = utcnow()
    await set_due(db, overdue, now - timedelta(seconds=300))
    await set_due(db, due, now - timedelta(seconds=30))
    await set_due(db, later, now + timedelta(hours=1))  # retrying later: not due yet
    await set_due(db, delivered, now - timedelta(seconds=5000))
    d = webhook_deliveries.c
    async with db.write() as conn:
        await conn.execute(
            webhook_deliveries.update()
            .where(d.subject_id == delivered)
            .values(status="delivered", delivered_at=now)
        )
    gauges, sample = gauges_of(db, 3600)
    await gauges.refresh()
    assert sample("hatchery_webhook_backlog_messages") == 3
    age = sample("hatchery_webhook_oldest_due_age_seconds")
    assert age is not None and 300 <= age < 400


async def test_no_message_due_is_an_overdue_age_of_zero(
    db: Database, queue: TaskQueue, account_id: str
) -> None:
    task_id = await submit(queue, account_id, HOOK)
    await queue.cancel(task_id, account_id)
    await set_due(db, task_id, utcnow() + timedelta(hours=1))
    gauges, sample = gauges_of(db, 3600)
    await gauges.refresh()
    assert sample("hatchery_webhook_backlog_messages") == 1
    assert sample("hatchery_webhook_oldest_due_age_seconds") == 0


async def test_workers_alive_counts_fresh_heartbeats_only(db: Database) -> None:
    now = utcnow()
    await beat(db, "fresh", now)
    await beat(db, "stale", now - timedelta(seconds=10 * HEARTBEAT))
    await beat(db, "also-fresh", now - timedelta(seconds=HEARTBEAT))
    gauges, sample = gauges_of(db, 3600)
    await gauges.refresh()
    assert sample("hatchery_workers_alive") == 2


async def test_a_second_refresh_within_the_interval_does_not_read_again(
    db: Database, queue: TaskQueue, account_id: str
) -> None:
    await submit(queue, account_id)
    counting = CountingReads(db)
    gauges, sample = gauges_of(counting, 3600)
    await gauges.refresh()
    assert sample("hatchery_queue_tasks", status="pending") == 1
    await submit(queue, account_id)
    await gauges.refresh()
    await asyncio.gather(*(gauges.refresh() for _ in range(5)))
    assert counting.reads == 1
    assert sample("hatchery_queue_tasks", status="pending") == 1


async def test_concurrent_scrapes_read_once(db: Database) -> None:
    counting = CountingReads(db)
    gauges, sample = gauges_of(counting, 3600)
    await asyncio.gather(*(gauges.refresh() for _ in range(8)))
    assert counting.reads == 1
    assert sample("hatchery_queue_tasks", status="pending") == 0


async def test_a_refresh_after_the_interval_reads_again(
    db: Database, queue: TaskQueue, account_id: str
) -> None:
    await submit(queue, account_id)
    counting = CountingReads(db)
    gauges, sample = gauges_of(counting, 0.001)
    await gauges.refresh()
    assert sample("hatchery_queue_tasks", status="pending") == 1
    await submit(queue, account_id)
    await asyncio.sleep(0.05)  # well past the interval
    await gauges.refresh()
    assert counting.reads == 2
    assert sample("hatchery_queue_tasks", status="pending") == 2


@pytest.fixture
async def broken(tmp_path: Path) -> AsyncIterator[Database]:
    """A database without the schema: every query of the gauges fails."""
    database = Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    yield database
    await database.dispose()


async def test_a_failed_read_keeps_the_last_state_and_does_not_raise(
    db: Database,
    broken: Database,
    queue: TaskQueue,
    account_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await submit(queue, account_id)
    gauges, sample = gauges_of(db, 0.001)
    await gauges.refresh()
    state, read_at = gauges.state, gauges.read_at
    assert sample("hatchery_queue_tasks", status="pending") == 1
    gauges.db = broken
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="hatchery.metrics"):
        await gauges.refresh()
    assert gauges.state is state
    assert gauges.read_at == read_at
    assert sample("hatchery_queue_tasks", status="pending") == 1
    assert any("failed" in r.getMessage() for r in caplog.records if r.name == "hatchery.metrics")
    gauges.db = db  # and the next read works again
    await submit(queue, account_id)
    await asyncio.sleep(0.05)
    await gauges.refresh()
    assert sample("hatchery_queue_tasks", status="pending") == 2


async def test_gauges_go_once_the_last_good_read_is_stale(
    db: Database,
    broken: Database,
    queue: TaskQueue,
    account_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unreadable database does not freeze the gauges at their last values (where no alert on
    them could fire): after a while they are not reported at all."""
    monkeypatch.setattr(scrape, "STALE_AFTER", 0.2)
    await submit(queue, account_id)
    gauges, sample = gauges_of(db, 0.01)
    await gauges.refresh()
    gauges.db = broken
    await asyncio.sleep(0.05)
    await gauges.refresh()
    assert sample("hatchery_queue_tasks", status="pending") == 1  # a blip: the last values
    await asyncio.sleep(0.3)
    await gauges.refresh()
    assert sample("hatchery_queue_tasks", status="pending") is None
    assert sample("hatchery_workers_alive") is None
    gauges.db = db
    await gauges.refresh()
    assert sample("hatchery_queue_tasks", status="pending") == 1


async def test_a_failed_first_read_reports_nothing_and_does_not_raise(broken: Database) -> None:
    gauges, sample = gauges_of(broken, 3600)
    await gauges.refresh()
    assert gauges.state is None
    assert sample("hatchery_queue_tasks", status="pending") is None


async def test_the_exposition_has_the_process_metrics_and_the_system_gauges(
    db: Database, queue: TaskQueue, account_id: str
) -> None:
    await submit(queue, account_id)
    exposition = Exposition(SystemGauges(db, refresh=3600, heartbeat=HEARTBEAT))
    text = (await exposition.render()).decode()
    lines = text.splitlines()
    assert 'hatchery_queue_tasks{status="pending"} 1.0' in lines
    assert 'hatchery_queue_tasks{status="processing"} 0.0' in lines
    assert "hatchery_workers_alive 0.0" in lines
    assert "# TYPE hatchery_tasks_submitted_total counter" in lines
    assert any(line.startswith("hatchery_build_info{") for line in lines)
    assert sum(line.startswith("# TYPE hatchery_queue_tasks ") for line in lines) == 1
