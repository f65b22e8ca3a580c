"""Queries on the tasks table. Every state change is a guarded update: it names the state (and,
for a running task, the lease owner and attempt) it expects, and reports whether it won."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.tasks import Task, TaskStatus, TaskType
from hatchery.store.accounts import reservation
from hatchery.store.db import equal_to, skip_locked, utcnow
from hatchery.store.driver import Driver, Reader, Row, Statement, Tx
from hatchery.store.tables import UTCDateTime, accounts, task_attempts, task_counts, tasks

PENDING = TaskStatus.PENDING.value
PROCESSING = TaskStatus.PROCESSING.value
CANCELLED = TaskStatus.CANCELLED.value
# How an attempt ended, besides the task's own terminal status.
RELEASED = "released"  # given back by its worker (graceful shutdown)
LAPSED = "lapsed"  # its worker stopped renewing the lease; the reaper took it back


@dataclass(frozen=True)
class Lease:
    """Who runs a task, and which attempt: the guard on every update of a running task."""

    task_id: str
    owner: str
    attempt: int


@dataclass(frozen=True)
class TaskFilter:
    """Which of an account's tasks a list shows (None: any)."""

    status: str | None = None
    model: str | None = None
    type: str | None = None
    types: tuple[str, ...] = ()  # any of these types (none: any type)

    def conditions(self, table: sa.Table) -> list[sa.ColumnElement[bool]]:
        """The filter on ``table`` (tasks, or their counts), but for the status."""
        where = equal_to(table, model=self.model, type=self.type)
        if self.types:
            where.append(table.c.type.in_(self.types))
        return where


_TYPES = {t.value: t for t in TaskType}
_STATUSES = {s.value: s for s in TaskStatus}


def to_task(row: sa.Row[Any] | Mapping[str, Any]) -> Task:
    m = dict(row._mapping if isinstance(row, sa.Row) else row)
    m.pop("seq", None)
    m["type"] = _TYPES[m["type"]]
    m["status"] = _STATUSES[m["status"]]
    return Task(**m)


# What a submit writes; the rest of a task's columns start empty or at their defaults.
SUBMITTED = (
    "id",
    "account_id",
    "api_key",
    "model",
    "type",
    "params",
    "webhook_url",
    "price_micros",
    "units",
    "status",
    "cost_micros",
    "attempt",
    "file_token",
    "created_at",
    "trace_context",
)
_OPTIONAL = {"api_key": None, "webhook_url": None, "units": 1, "trace_context": None}
# The submit and the poll, on the driver.
_INSERT = Statement(tasks.insert().returning(*tasks.c), keys=SUBMITTED)
_GET = sa.select(tasks).where(tasks.c.id == sa.bindparam("task_id"))
_GET_OWN = _GET.where(tasks.c.account_id == sa.bindparam("account_id"))
_READ_OWN = Statement(_GET_OWN)


def _reserve_insert_count(dialect: str) -> sa.ClauseElement:
    """The submit as one statement, for PostgreSQL (data-modifying CTEs): hold the price on the
    account if its available balance covers it, insert the task only if it did, count it in
    ``task_counts``; the task, or no row (nothing written) when the balance is short."""
    from sqlalchemy.dialects import postgresql

    reserved = reservation("price_micros").returning(accounts.c.id).cte("reserved")
    row = sa.select(*(sa.bindparam(name, type_=tasks.c[name].type) for name in SUBMITTED))
    inserted = (
        tasks.insert()
        .from_select(SUBMITTED, row.select_from(reserved))
        .returning(*tasks.c)
        .cte("inserted")
    )
    kinds = ("account_id", "model", "type")
    first = sa.select(*(inserted.c[k] for k in kinds), *(sa.literal(n) for n in (1, 0, 0, 0)))
    counted = (
        postgresql.insert(task_counts)
        .from_select([*kinds, "total", "completed", "failed", "cancelled"], first)
        .on_conflict_do_update(index_elements=kinds, set_={"total": task_counts.c.total + 1})
        .cte("counted")
    )
    return sa.select(inserted).add_cte(counted)


_RESERVE_INSERT_COUNT = Statement(_reserve_insert_count)


async def insert(tx: Tx, values: Mapping[str, Any]) -> Task:
    """A new task; ``values`` has every column of ``SUBMITTED`` but the optional ones."""
    row = await tx.one(_INSERT, {**_OPTIONAL, **values})
    assert row is not None
    return to_task(row)


async def reserve_insert_count(driver: Driver, values: Mapping[str, Any]) -> Task | None:
    """PostgreSQL's submit without an Idempotency-Key (``_reserve_insert_count``), one round trip
    committed on its own; None, with nothing written, if the balance is short."""
    row = await driver.write_one(_RESERVE_INSERT_COUNT, {**_OPTIONAL, **values})
    return None if row is None else to_task(row)


async def read(reader: Reader, task_id: str, account_id: str) -> Task | None:
    """The account's task: on the driver, one statement with no transaction around it, or in a
    write transaction."""
    row = await reader.one(_READ_OWN, {"task_id": task_id, "account_id": account_id})
    return to_task(row) if row else None


async def get(conn: AsyncConnection, task_id: str, account_id: str | None = None) -> Task | None:
    if account_id is None:
        result = await conn.execute(_GET, {"task_id": task_id})
    else:
        result = await conn.execute(_GET_OWN, {"task_id": task_id, "account_id": account_id})
    row = result.first()
    return to_task(row) if row else None


def _matching(account_id: str, filters: TaskFilter) -> list[sa.ColumnElement[bool]]:
    return [
        tasks.c.account_id == account_id,
        *equal_to(tasks, status=filters.status),
        *filters.conditions(tasks),
    ]


async def page(
    conn: AsyncConnection,
    account_id: str,
    filters: TaskFilter = TaskFilter(),
    *,
    limit: int,
    offset: int = 0,
    before: int | None = None,
) -> tuple[list[Task], int | None]:
    """Up to ``limit`` of the account's tasks that match, newest first: skipping ``offset`` of
    them, or only those older than the position ``before``. Also returns the position after the
    last one when more follow (a keyset: the next page costs the same however deep it is)."""
    where = _matching(account_id, filters)
    if before is not None:
        where.append(tasks.c.seq < before)
    query = sa.select(tasks).where(*where).order_by(tasks.c.seq.desc())
    rows = (await conn.execute(query.offset(offset).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [to_task(r) for r in rows], rows[-1].seq if more else None


def _claim(dialect: str) -> sa.Update:
    """Up to ``b_limit`` of the oldest pending tasks to processing under ``b_owner``'s lease, one
    more attempt each, in one statement; on PostgreSQL skipping rows another claim holds."""
    pending = sa.select(tasks.c.seq).where(tasks.c.status == PENDING).order_by(tasks.c.seq)
    pending = skip_locked(pending.limit(sa.bindparam("b_limit", type_=sa.Integer)), dialect)
    # A materialized CTE: the pick (and its row locks) happens once. PostgreSQL runs a plain
    # ``IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`` in a way that updates more than n rows.
    picked = pending.cte("picked")
    if dialect == "postgresql":
        picked = picked.prefix_with("MATERIALIZED")
    return (
        tasks.update()
        .where(tasks.c.seq.in_(sa.select(picked.c.seq)), tasks.c.status == PENDING)
        .values(
            status=PROCESSING,
            lease_owner=sa.bindparam("b_owner"),
            lease_expires_at=sa.bindparam("b_until", type_=UTCDateTime),
            attempt=tasks.c.attempt + 1,
            started_at=sa.func.coalesce(
                tasks.c.started_at, sa.bindparam("b_now", type_=UTCDateTime)
            ),
        )
        .returning(*tasks.c)
    )


_CLAIM = Statement(_claim)  # the worker's, on the driver
_START_ATTEMPT = Statement(
    task_attempts.insert(), keys=("task_id", "attempt", "worker", "started_at")
)


async def claim_many(
    tx: Tx, owner: str, now: datetime, lease_until: datetime, limit: int
) -> list[Task]:
    """Claim up to ``limit`` of the oldest pending tasks, each with its attempt row; oldest
    first."""
    if limit < 1:
        return []
    claiming = {"b_limit": limit, "b_owner": owner, "b_until": lease_until, "b_now": now}
    rows = sorted(await tx.all(_CLAIM, claiming), key=lambda row: int(row["seq"]))
    claimed = [to_task(row) for row in rows]
    for task in claimed:
        attempt = {"task_id": task.id, "attempt": task.attempt, "worker": owner}
        await tx.execute(_START_ATTEMPT, {**attempt, "started_at": now})
    return claimed


# The transitions of a held task, on the driver. Each names the state it expects (the lease:
# task, owner, attempt) and, for the reaper, that the lease has lapsed before ``lapsed_before``
# (None: whether or not it has).
def _guard() -> list[sa.ColumnElement[bool]]:
    lapsed_before = sa.bindparam("lapsed_before", type_=UTCDateTime)
    return [
        tasks.c.id == sa.bindparam("b_task"),
        tasks.c.status == PROCESSING,
        tasks.c.lease_owner == sa.bindparam("b_owner"),
        tasks.c.attempt == sa.bindparam("b_attempt"),
        sa.or_(lapsed_before.is_(None), tasks.c.lease_expires_at < lapsed_before),
    ]


_LET_GO = {"lease_owner": None, "lease_expires_at": None}


def _finish(**values: Any) -> Statement:
    """A held task to a terminal state, at ``b_at``, with its ``b_usage``; the task returned."""
    ended: dict[str, Any] = {"completed_at": sa.bindparam("b_at"), "usage": sa.bindparam("b_usage")}
    query = tasks.update().where(*_guard()).values(**ended, **_LET_GO, **values)
    return Statement(query.returning(*tasks.c))


_COMPLETE = _finish(
    status=TaskStatus.COMPLETED.value,
    output=sa.bindparam("b_output"),
    cost_micros=tasks.c.price_micros,
)
_FAIL = _finish(status=TaskStatus.FAILED.value, error=sa.bindparam("b_error"), cost_micros=0)
_RELEASE = Statement(tasks.update().where(*_guard()).values(status=PENDING, **_LET_GO))
_SAVE_UPSTREAM = Statement(
    tasks.update().where(*_guard()).values(upstream=sa.bindparam("b_upstream"))
)
_CANCEL = Statement(
    tasks.update()
    .where(
        tasks.c.id == sa.bindparam("b_task"),
        tasks.c.account_id == sa.bindparam("b_account"),
        sa.or_(tasks.c.status == PENDING, tasks.c.status == PROCESSING),
    )
    .values(status=CANCELLED, cost_micros=0, completed_at=sa.bindparam("b_at"), **_LET_GO)
    .returning(*tasks.c)
)
_END_ATTEMPT = Statement(
    task_attempts.update()
    .where(
        task_attempts.c.task_id == sa.bindparam("b_task"),
        task_attempts.c.attempt == sa.bindparam("b_attempt"),
        task_attempts.c.ended_at.is_(None),
    )
    .values(ended_at=sa.bindparam("b_at"), outcome=sa.bindparam("b_outcome"))
)


def _held(lease: Lease, lapsed_before: datetime | None = None) -> dict[str, Any]:
    return {
        "b_task": lease.task_id,
        "b_owner": lease.owner,
        "b_attempt": lease.attempt,
        "lapsed_before": lapsed_before,
    }


async def _end_attempt(tx: Tx, task_id: str, attempt: int, outcome: str) -> None:
    ended = {"b_task": task_id, "b_attempt": attempt, "b_at": utcnow(), "b_outcome": outcome}
    await tx.execute(_END_ATTEMPT, ended)


async def renew_many(
    conn: AsyncConnection, owner: str, leases: list[Lease], until: datetime
) -> set[Lease]:
    """Renew every lease of ``owner`` among ``leases`` in one statement; the ones still held."""
    result = await conn.execute(
        tasks.update()
        .where(
            tasks.c.id.in_([lease.task_id for lease in leases]),
            tasks.c.status == PROCESSING,
            tasks.c.lease_owner == owner,
        )
        .values(lease_expires_at=until)
        .returning(tasks.c.id, tasks.c.attempt)
    )
    return {Lease(row.id, owner, row.attempt) for row in result}


async def save_upstream(tx: Tx, lease: Lease, upstream: dict[str, Any]) -> bool:
    return await tx.execute(_SAVE_UPSTREAM, {**_held(lease), "b_upstream": upstream}) == 1


async def complete(
    tx: Tx, lease: Lease, output: dict[str, Any], usage: dict[str, Any], at: datetime
) -> Task | None:
    """Completed, its cost its price; None if the lease was lost meanwhile."""
    values = {**_held(lease), "b_output": output, "b_usage": usage, "b_at": at}
    return await _ended(tx, lease, await tx.one(_COMPLETE, values), lapsed=False)


async def fail(
    tx: Tx,
    lease: Lease,
    error: str,
    usage: dict[str, Any] | None,
    at: datetime,
    lapsed_before: datetime | None = None,
) -> Task | None:
    """Failed at no cost; None if the lease was lost meanwhile. With ``lapsed_before`` (the
    reaper), only while the lease is still lapsed."""
    values = {**_held(lease, lapsed_before), "b_error": error, "b_usage": usage, "b_at": at}
    return await _ended(tx, lease, await tx.one(_FAIL, values), lapsed=lapsed_before is not None)


async def _ended(tx: Tx, lease: Lease, row: Row | None, *, lapsed: bool) -> Task | None:
    if row is None:
        return None
    task = to_task(row)
    await _end_attempt(tx, lease.task_id, lease.attempt, LAPSED if lapsed else task.status.value)
    return task


async def release(tx: Tx, lease: Lease, lapsed_before: datetime | None = None) -> bool:
    """Give a held task back to the queue (graceful shutdown, or the reaper on a lapsed lease)."""
    if await tx.execute(_RELEASE, _held(lease, lapsed_before)) != 1:
        return False
    outcome = LAPSED if lapsed_before else RELEASED
    await _end_attempt(tx, lease.task_id, lease.attempt, outcome)
    return True


async def cancel(tx: Tx, task_id: str, account_id: str, now: datetime) -> Task | None:
    """Cancel the account's task if it is pending or processing (whoever holds its lease loses
    it); None if it is not the account's or has already ended."""
    row = await tx.one(_CANCEL, {"b_task": task_id, "b_account": account_id, "b_at": now})
    if row is None:
        return None
    task = to_task(row)
    if task.attempt:  # the attempt running when it was cancelled, if one was
        await _end_attempt(tx, task.id, task.attempt, CANCELLED)
    return task


async def lapsed(conn: AsyncConnection, now: datetime, limit: int = 100) -> list[Lease]:
    rows = await conn.execute(
        sa.select(tasks.c.id, tasks.c.lease_owner, tasks.c.attempt)
        .where(tasks.c.status == PROCESSING, tasks.c.lease_expires_at < now)
        .order_by(tasks.c.lease_expires_at)
        .limit(limit)
    )
    return [Lease(r.id, r.lease_owner, r.attempt) for r in rows]


# ------------------------------------------------------------------- the dashboard's reads


@dataclass(frozen=True)
class AttemptRecord:
    """One claim of a task (``task_attempts``): the worker that ran it and how it ended (None
    while it runs)."""

    attempt: int
    worker: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None


async def attempts(conn: AsyncConnection, task_id: str) -> list[AttemptRecord]:
    """Every attempt of the task, first first."""
    a = task_attempts.c
    rows = await conn.execute(
        sa.select(a.attempt, a.worker, a.started_at, a.ended_at, a.outcome)
        .where(a.task_id == task_id)
        .order_by(a.attempt)
    )
    return [AttemptRecord(r.attempt, r.worker, r.started_at, r.ended_at, r.outcome) for r in rows]


@dataclass(frozen=True)
class Window:
    """A page of a list that can go both ways: its tasks, newest first, and the positions to
    pass as ``after`` (the newer page) and ``before`` (the older page); None where there is no
    such page."""

    tasks: list[Task]
    newer: int | None
    older: int | None


async def _any(conn: AsyncConnection, where: list[sa.ColumnElement[bool]]) -> bool:
    found = await conn.execute(sa.select(tasks.c.seq).where(*where).limit(1))
    return found.first() is not None


async def window(
    conn: AsyncConnection,
    account_id: str,
    filters: TaskFilter,
    *,
    limit: int,
    before: int | None = None,
    after: int | None = None,
) -> Window:
    """Up to ``limit`` of the account's matching tasks, newest first: those just newer than the
    position ``after``, or else just older than ``before``, or else the newest (also when no
    newer page is left after ``after``: it is the first page). Keyset pages both ways, each as
    cheap however deep it is."""
    where = _matching(account_id, filters)
    if after is not None:
        newer = sa.select(tasks).where(*where, tasks.c.seq > after).order_by(tasks.c.seq)
        rows = (await conn.execute(newer.limit(limit + 1))).all()
        if len(rows) > limit:
            rows = rows[:limit][::-1]
            more = await _any(conn, [*where, tasks.c.seq < rows[-1].seq])
            return Window([to_task(r) for r in rows], rows[0].seq, rows[-1].seq if more else None)
        before = None  # no newer page beyond it: the first page
    found, last = await page(conn, account_id, filters, limit=limit, before=before)
    if before is None or not found:
        return Window(found, None, last)
    # the tasks newer than this page are those from ``before`` on: ``after`` = before - 1
    newer_left = await _any(conn, [*where, tasks.c.seq >= before])
    return Window(found, before - 1 if newer_left else None, last)
