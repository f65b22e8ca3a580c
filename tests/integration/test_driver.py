"""The driver path (``store.driver``) on a real database, SQLite and PostgreSQL: what it writes
reads the same through the engine, a write returns once committed, concurrent writes on SQLite
share commits without sharing failures, and a database that does not answer is StoreUnavailable."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from hatchery.errors import InsufficientBalance, StoreUnavailable
from hatchery.store import tasks as task_store
from hatchery.store.db import SQLITE_BUSY_TIMEOUT_MS, Database
from hatchery.store.driver import PgDriver, SqliteDriver, Statement, Tx
from hatchery.store.notify import Notifier
from hatchery.store.queue import TaskQueue
from hatchery.store.tables import ledger
from tests.store_helpers import PRICE, account, new_account, task_values

NOTE = Statement(
    ledger.insert().values(
        account_id=sa.bindparam("account_id"),
        kind="credit",
        amount_micros=sa.bindparam("amount"),
        note=sa.bindparam("b_note"),
        created_at=sa.bindparam("at"),
    )
)
NOTES = Statement(
    sa.select(ledger.c.amount_micros, ledger.c.note, ledger.c.created_at)
    .where(ledger.c.account_id == sa.bindparam("account_id"), ledger.c.note != "initial balance")
    .order_by(ledger.c.amount_micros)
)


@pytest.fixture
def queue(db: Database) -> TaskQueue:
    return TaskQueue(db, Notifier(), public_url="http://h", lease_seconds=30)


def note(account_id: str, amount: int, text: str = "n") -> dict[str, Any]:
    return {"account_id": account_id, "amount": amount, "b_note": text, "at": datetime.now(UTC)}


async def notes(db: Database, account_id: str) -> list[int]:
    """The amounts of the account's noted ledger rows, read through the engine."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(ledger.c.amount_micros)
            .where(ledger.c.account_id == account_id, ledger.c.note != "initial balance")
            .order_by(ledger.c.amount_micros)
        )
        return [r.amount_micros for r in rows]


async def test_a_task_written_on_the_driver_reads_the_same_through_the_engine(
    db: Database, queue: TaskQueue
) -> None:
    account_id = await new_account(db)
    values = task_values("gen_driverroundtrip01", account_id)
    values["params"] |= {"nested": {"a": [1, 2.5, None, "é"]}}
    submitted = await queue.submit(values)
    async with db.read() as conn:
        through_engine = await task_store.get(conn, submitted.id)
    on_driver = await task_store.read(db.driver, submitted.id, account_id)
    assert submitted == through_engine == on_driver
    assert on_driver is not None and on_driver.params["nested"] == {"a": [1, 2.5, None, "é"]}
    assert on_driver.created_at.tzinfo is not None
    assert on_driver.created_at == through_engine.created_at  # type: ignore[union-attr]
    assert await task_store.read(db.driver, submitted.id, "acct_someoneelse") is None


async def test_values_written_through_the_engine_read_the_same_on_the_driver(db: Database) -> None:
    account_id = await new_account(db)
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    async with db.write() as conn:
        await conn.execute(
            ledger.insert().values(
                account_id=account_id, kind="credit", amount_micros=7, note="x", created_at=at
            )
        )
    assert await db.driver.all(NOTES, {"account_id": account_id}) == [
        {"amount_micros": 7, "note": "x", "created_at": at}
    ]


async def test_a_write_is_committed_when_it_returns_and_undone_when_it_raises(
    db: Database,
) -> None:
    account_id = await new_account(db)

    async def write(tx: Tx) -> int:
        return await tx.execute(NOTE, note(account_id, 1))

    assert await db.driver.write(write) == 1
    assert await notes(db, account_id) == [1]  # another connection sees it

    async def half_then_fail(tx: Tx) -> None:
        await tx.execute(NOTE, note(account_id, 2))
        raise InsufficientBalance("no")

    with pytest.raises(InsufficientBalance):
        await db.driver.write(half_then_fail)
    assert await notes(db, account_id) == [1]


async def test_a_refused_submit_reserves_and_queues_nothing(db: Database, queue: TaskQueue) -> None:
    account_id = await new_account(db, balance=PRICE - 1)
    with pytest.raises(InsufficientBalance):
        await queue.submit(task_values("gen_driverrefused0001", account_id))
    assert (await account(db, account_id)).reserved_micros == 0
    assert await task_store.read(db.driver, "gen_driverrefused0001", account_id) is None


async def test_concurrent_writes_each_commit_or_fail_alone(db: Database) -> None:
    account_id = await new_account(db)

    async def write(amount: int, tx: Tx) -> int:
        await tx.execute(NOTE, note(account_id, amount))
        if amount % 5 == 0:
            raise ValueError(f"refused {amount}")
        return amount

    outcomes = await asyncio.gather(
        *(db.driver.write(lambda tx, n=n: write(n, tx)) for n in range(1, 61)),
        return_exceptions=True,
    )
    kept = [n for n in range(1, 61) if n % 5]
    assert [o for o in outcomes if not isinstance(o, BaseException)] == kept
    assert all(isinstance(o, ValueError) for o in outcomes if isinstance(o, BaseException))
    assert await notes(db, account_id) == kept


@pytest.mark.sqlite_only
async def test_sqlite_writes_that_arrive_together_share_one_commit(db: Database) -> None:
    driver = db.driver
    assert isinstance(driver, SqliteDriver)
    account_id = await new_account(db)
    before = driver.commits

    async def write(amount: int, tx: Tx) -> None:
        await tx.execute(NOTE, note(account_id, amount))

    await asyncio.gather(*(driver.write(lambda tx, n=n: write(n, tx)) for n in range(100)))
    assert await notes(db, account_id) == list(range(100))
    assert 1 <= driver.commits - before < 100


@pytest.mark.sqlite_only
async def test_sqlite_a_write_cancelled_before_it_starts_writes_nothing(db: Database) -> None:
    account_id = await new_account(db)

    async def write(amount: int, tx: Tx) -> None:
        await tx.execute(NOTE, note(account_id, amount))

    async with db.write():  # holds the write turn: the driver's writes wait behind it
        first = asyncio.ensure_future(db.driver.write(lambda tx: write(1, tx)))
        second = asyncio.ensure_future(db.driver.write(lambda tx: write(2, tx)))
        await asyncio.sleep(0.05)
        first.cancel()
    await second
    assert await notes(db, account_id) == [2]


@pytest.mark.sqlite_only
async def test_sqlite_a_locked_database_is_unavailable_and_nothing_is_half_written(
    db: Database,
) -> None:
    account_id = await new_account(db)
    path = db.engine.url.database
    assert path
    short = SqliteDriver(path, db.engine.dialect, asyncio.Semaphore(1), busy_ms=100)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing (a migration, say)
    try:

        async def write(tx: Tx) -> None:
            await tx.execute(NOTE, note(account_id, 3))

        with pytest.raises(StoreUnavailable, match="try again"):
            await short.write(write)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await short.write(write)  # the writer recovers once the lock is gone
    await short.close()
    assert await notes(db, account_id) == [3]
    assert SQLITE_BUSY_TIMEOUT_MS >= 1000  # the server's own writers wait far longer


@pytest.mark.postgresql_only
async def test_postgresql_a_server_that_is_gone_is_unavailable(db: Database) -> None:
    assert isinstance(db.driver, PgDriver)
    gone = PgDriver(db.driver.dsn.replace(f":{db.engine.url.port}/", ":1/"), db.engine.dialect, 2)
    with pytest.raises(StoreUnavailable, match="try again"):
        await gone.one(NOTES, {"account_id": "acct_x"})
    await gone.close()


@pytest.mark.postgresql_only
async def test_postgresql_at_most_size_connections_each_lent_to_one_caller(
    db: Database,
) -> None:
    """Twenty concurrent reads through a driver of two connections: all answered, never more
    than two connections open; a cancelled caller's connection is not lent again."""
    assert isinstance(db.driver, PgDriver)
    small = PgDriver(db.driver.dsn, db.engine.dialect, 2)
    pids = Statement(sa.select(sa.func.pg_backend_pid().label("pid"), sa.func.pg_sleep(0.02)))
    rows = await asyncio.gather(*(small.one(pids) for _ in range(20)))
    assert len({row["pid"] for row in rows if row}) <= 2
    slow = asyncio.ensure_future(
        small.one(Statement(sa.select(sa.func.pg_backend_pid().label("pid"), sa.func.pg_sleep(5))))
    )
    await asyncio.sleep(0.3)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    after = await asyncio.gather(*(small.one(pids) for _ in range(4)))
    assert all(row is not None for row in after)
    await small.close()


@pytest.mark.sqlite_only
async def test_sqlite_the_driver_commits_as_durably_as_the_engine(db: Database) -> None:
    """The driver's own connections: WAL, synchronous=FULL (a 202 survives power loss), foreign
    keys on; the same settings as the engine's."""
    driver = db.driver
    assert isinstance(driver, SqliteDriver)
    await driver.write(lambda tx: tx.execute(NOTES, {"account_id": "acct_x"}))  # opens the writer
    await driver.one(NOTES, {"account_id": "acct_x"})  # opens the reader
    for conn in (driver._writer, driver._reader):
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


NOTED = Statement(
    ledger.insert()
    .values(
        account_id=sa.bindparam("account_id"),
        kind="credit",
        amount_micros=sa.bindparam("amount"),
        note=sa.bindparam("b_note"),
        created_at=sa.bindparam("at"),
    )
    .returning(ledger.c.amount_micros, ledger.c.note)
)


async def test_write_one_commits_one_statement_and_returns_its_row(db: Database) -> None:
    account_id = await new_account(db)
    row = await db.driver.write_one(NOTED, note(account_id, 7, "seven"))
    assert row == {"amount_micros": 7, "note": "seven"}
    assert await notes(db, account_id) == [7]  # committed: the engine's own connection sees it
    with pytest.raises(sa.exc.IntegrityError):  # no such account: nothing written
        await db.driver.write_one(NOTED, note("acct_missing", 8))
    assert await notes(db, account_id) == [7]
