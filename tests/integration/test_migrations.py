"""Migrations on both databases: from empty to head, and from an older revision with data in
it (a task pending, one in flight, money reserved) to head, after which the queue carries on."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from hatchery import admin
from hatchery.domain.tasks import TaskStatus, new_task_id
from hatchery.store import counts, migrate, tables, usage
from hatchery.store import tasks as task_store
from hatchery.store.db import Database, utcnow
from hatchery.store.notify import Notifier
from hatchery.store.queue import TaskQueue
from hatchery.store.tasks import Lease
from tests.store_helpers import PRICE, account, submit, task_values

TABLES = {
    "accounts",
    "api_keys",
    "tasks",
    "task_attempts",
    "task_counts",
    "task_events",
    "idempotency_keys",
    "usage_records",
    "usage_daily",
    "ledger",
    "webhook_deliveries",
}


# The last revision before task_counts (0004), the task-control tables (0005) and usage (0006):
# data written then must be counted by 0004's backfill and carried through 0005 and 0006.
OLD_REVISION = "0003"


async def table_names(db: Database) -> set[str]:
    async with db.read() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def old_account(db: Database) -> str:
    """An account as the previous version wrote it (no rate_limit column yet)."""
    async with db.write() as conn:
        await conn.execute(
            tables.accounts.insert().values(
                id="acct_old",
                email="old@example.com",
                status="active",
                balance_micros=1_000_000,
                reserved_micros=0,
                created_at=utcnow(),
            )
        )
    return "acct_old"


async def old_submit(db: Database, account_id: str, **params: object) -> str:
    """A task queued by the previous version: reserved and inserted, with no task_counts (nor
    the columns of 0006)."""
    task_id = new_task_id()
    stamps = {"status": "pending", "cost_micros": 0, "attempt": 0, "file_token": task_id}
    async with db.write() as conn:
        a = tables.accounts
        await conn.execute(
            a.update()
            .where(a.c.id == account_id)
            .values(reserved_micros=a.c.reserved_micros + PRICE)
        )
        values = task_values(task_id, account_id) | stamps | {"created_at": utcnow()}
        values["params"] |= params
        await conn.execute(tables.tasks.insert().values(**values))
    return task_id


async def totals(db: Database, account_id: str) -> tuple[int, ...]:
    """The list's total: unfiltered, then pending, processing and completed."""
    async with db.read() as conn:
        return tuple(
            [
                await counts.total(conn, account_id, task_store.TaskFilter(s))
                for s in (None, "pending", "processing", "completed")
            ]
        )


async def check_usage_backfill(db: Database, account_id: str, done: str) -> None:
    """0006: the task with reference images is an edit of 2 units, its charge has its usage
    record (no API key: none was recorded then) and the day's sum; the others have 1 unit."""
    async with db.read() as conn:
        edited = await task_store.get(conn, done)
        assert edited is not None and (edited.type.value, edited.units) == ("image_edit", 2)
        units = await conn.execute(sa.select(tables.tasks.c.units).where(tables.tasks.c.id != done))
        assert [u for (u,) in units] == [1, 1]
        [record] = await usage.page(conn, account_id, usage.UsageFilter(), limit=10, offset=0)
        assert (record.task_id, record.type.value, record.api_key) == (done, "image_edit", None)
        assert (record.units, record.unit_price_micros, record.cost_micros) == (
            2,
            PRICE // 2,
            PRICE,
        )
        assert record.resolution == "1k"
        [summed] = await usage.summary(conn, account_id, usage.UsageFilter())
        assert (summed.model, summed.units, summed.cost_micros, summed.requests) == (
            "nanobanana",
            2,
            PRICE,
            1,
        )
        by_type = await counts.total(conn, account_id, task_store.TaskFilter(type="image_edit"))
        assert by_type == 1


async def test_upgrade_from_an_empty_database_reaches_head(database_url: str) -> None:
    db = Database.connect(database_url)
    try:
        assert await migrate.current_revision(db) is None
        await migrate.upgrade(db)
        assert await migrate.is_current(db)
        assert TABLES <= await table_names(db)
        await migrate.upgrade(db)  # again: nothing to do, nothing broken
        assert await migrate.is_current(db)
    finally:
        await db.dispose()


async def test_upgrade_from_an_older_revision_keeps_data_and_the_queue_carries_on(
    database_url: str,
) -> None:
    db = Database.connect(database_url)
    try:
        await migrate.upgrade(db, OLD_REVISION)
        account_id = await old_account(db)
        queue = TaskQueue(db, Notifier(), public_url="http://h", lease_seconds=30)
        pending, in_flight = [await old_submit(db, account_id) for _ in range(2)]
        done = await old_submit(db, account_id, num_outputs=2, image_urls=["https://a/b.png"])
        async with db.write() as conn:  # claimed by a worker of the old version
            await conn.execute(
                sa.text(
                    "UPDATE tasks SET status = 'processing', lease_owner = 'old-worker', "
                    "attempt = 1 WHERE id = :id"
                ),
                {"id": in_flight},
            )
            await conn.execute(
                sa.text(
                    "UPDATE tasks SET status = 'completed', cost_micros = price_micros, "
                    "completed_at = created_at WHERE id = :id"
                ),
                {"id": done},
            )
            await conn.execute(
                sa.text(
                    "UPDATE accounts SET reserved_micros = reserved_micros - :price WHERE id = :id"
                ),
                {"price": PRICE, "id": account_id},
            )

        await migrate.upgrade(db)
        assert await migrate.is_current(db)
        acct = await account(db, account_id)
        assert (acct.balance_micros, acct.reserved_micros) == (1_000_000, 2 * PRICE)
        assert await totals(db, account_id) == (3, 1, 1, 1)
        await check_usage_backfill(db, account_id, done)
        async with db.read() as conn:  # 0005: the tasks past pending have their current event
            rows = await conn.execute(
                sa.select(tables.task_events.c.task_id, tables.task_events.c.status)
            )
            assert sorted(rows) == sorted([(in_flight, "processing"), (done, "completed")])
        async with db.read() as conn:
            kept = {t: await task_store.get(conn, t) for t in (pending, in_flight)}
        assert kept[pending] is not None and kept[pending].status is TaskStatus.PENDING
        assert kept[in_flight] is not None and kept[in_flight].lease_owner == "old-worker"

        claimed = await queue.claim("new-worker")
        assert claimed is not None and claimed.id == pending
        assert await queue.complete(Lease(pending, "new-worker", 1), output={}, usage={})
        assert await queue.complete(Lease(in_flight, "old-worker", 1), output={}, usage={})
        acct = await account(db, account_id)
        assert (acct.balance_micros, acct.reserved_micros) == (1_000_000 - 2 * PRICE, 0)
        assert await totals(db, account_id) == (3, 0, 0, 3)
    finally:
        await db.dispose()


@pytest.mark.postgresql_only
async def test_on_postgresql_a_queued_task_is_announced_on_commit(database_url: str) -> None:
    """Migration 0002's trigger: a pending task sends NOTIFY hatchery_tasks when it commits.
    (SQLite has no NOTIFY: there the one process that writes wakes its own workers.)"""
    import asyncpg

    db = Database.connect(database_url)
    listener = await asyncpg.connect(db.listen_dsn())
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await migrate.upgrade(db)
        await listener.add_listener("hatchery_tasks", lambda *args: heard.put_nowait(args[2]))
        account_id = (await admin.create_user(db, "n@example.com", 1_000_000)).id
        queue = TaskQueue(db, Notifier(), public_url="http://h", lease_seconds=30)
        assert heard.empty()
        await submit(queue, account_id)
        assert await asyncio.wait_for(heard.get(), 5) == "hatchery_tasks"
    finally:
        await listener.close()
        await db.dispose()


@pytest.mark.postgresql_only
async def test_on_postgresql_each_task_event_is_announced_with_the_task_id(
    database_url: str,
) -> None:
    """Migration 0005's trigger: every task event sends NOTIFY hatchery_task_events with the id
    of its task, which is how a waiting request in another API process hears of it."""
    import asyncpg

    db = Database.connect(database_url)
    listener = await asyncpg.connect(db.listen_dsn())
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await migrate.upgrade(db)
        await listener.add_listener("hatchery_task_events", lambda *a: heard.put_nowait(a[3]))
        account_id = (await admin.create_user(db, "e@example.com", 1_000_000)).id
        queue = TaskQueue(db, Notifier(), public_url="http://h", lease_seconds=30)
        task_id = await submit(queue, account_id)
        claimed = await queue.claim("w")
        assert claimed is not None and claimed.id == task_id
        assert await asyncio.wait_for(heard.get(), 5) == task_id
        await queue.cancel(task_id, account_id)
        assert await asyncio.wait_for(heard.get(), 5) == task_id
        assert heard.empty()
    finally:
        await listener.close()
        await db.dispose()


async def test_0010_carries_the_outbox_over_and_back(database_url: str) -> None:
    """A webhook queued before 0010 keeps its body, gets its id as its message id and its
    URL's origin as its receiver; back at 0009 the rows of endpoints (and their attempts) go
    and the old guard against a task's webhook queued twice is there again."""
    from alembic import command

    db = Database.connect(database_url)
    try:
        await migrate.upgrade(db, "0009")
        account_id = await old_account(db)
        task_id = await old_submit(db, account_id)
        now = utcnow()
        legacy = {
            "id": "whd_legacy",
            "task_id": task_id,
            "account_id": account_id,
            "event": "task.completed",
            "url": "https://hooks.example:8443/in?x=1",
            "body": "{}",
            "status": "pending",
            "next_attempt_at": now,
            "created_at": now,
        }
        columns = ", ".join(legacy)
        insert = f"INSERT INTO webhook_deliveries ({columns}) VALUES (:{', :'.join(legacy)})"
        async with db.write() as conn:
            await conn.execute(sa.text(insert), legacy)
        await migrate.upgrade(db)
        d = tables.webhook_deliveries.c
        async with db.read() as conn:
            row = (await conn.execute(sa.select(d.message_id, d.target, d.subject_id))).one()
        assert tuple(row) == ("whd_legacy", "https://hooks.example:8443", task_id)
        async with db.write() as conn:  # a message to an endpoint, with an attempt
            await conn.execute(
                tables.webhook_deliveries.insert().values(
                    {
                        **{k: v for k, v in legacy.items() if k != "task_id"},
                        "id": "whd_endpoint",
                        "message_id": "msg_1",
                        "subject_id": task_id,
                        "endpoint_id": "ep_12345678",
                        "target": "ep_12345678",
                    }
                )
            )
            await conn.execute(
                tables.webhook_attempts.insert().values(
                    delivery_id="whd_endpoint", attempt=1, started_at=now, duration_ms=1
                )
            )

        def downgrade(connection: sa.Connection) -> None:
            command.downgrade(migrate._config(connection), "0009")

        async with db.write() as conn:
            await conn.run_sync(downgrade)
        async with db.read() as conn:
            kept = await conn.execute(sa.text("SELECT id, task_id FROM webhook_deliveries"))
            assert [tuple(r) for r in kept] == [("whd_legacy", task_id)]
            attempts = await conn.execute(sa.text("SELECT count(*) FROM webhook_attempts"))
            assert attempts.scalar_one() == 0
        with pytest.raises(sa.exc.IntegrityError):
            async with db.write() as conn:
                await conn.execute(sa.text(insert), {**legacy, "id": "whd_twice"})
    finally:
        await db.dispose()
