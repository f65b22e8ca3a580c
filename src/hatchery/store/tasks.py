"""Queries on the tasks table. Every state change is a guarded update: it names the state (and,
for a running task, the lease owner and attempt) it expects, and reports whether it won."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.tasks import Task, TaskStatus, TaskType
from hatchery.store.db import equal_to, skip_locked, utcnow
from hatchery.store.tables import task_attempts, tasks

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


def to_task(row: sa.Row[Any]) -> Task:
    m = dict(row._mapping)
    m.pop("seq", None)
    m["type"] = TaskType(m["type"])
    m["status"] = TaskStatus(m["status"])
    return Task(**m)


# Built once (the submit and poll path): a reused statement keeps its cache key.
_INSERT = tasks.insert().returning(*tasks.c)
_GET = sa.select(tasks).where(tasks.c.id == sa.bindparam("task_id"))
_GET_OWN = _GET.where(tasks.c.account_id == sa.bindparam("account_id"))


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> Task:
    row = (await conn.execute(_INSERT, values)).one()
    return to_task(row)


async def get(conn: AsyncConnection, task_id: str, account_id: str | None = None) -> Task | None:
    if account_id is None:
        result = await conn.execute(_GET, {"task_id": task_id})
    else:
        result = await conn.execute(_GET_OWN, {"task_id": task_id, "account_id": account_id})
    row = result.first()
    return to_task(row) if row else None


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
    where = [tasks.c.account_id == account_id]
    if before is not None:
        where.append(tasks.c.seq < before)
    where += equal_to(tasks, status=filters.status, model=filters.model, type=filters.type)
    query = sa.select(tasks).where(*where).order_by(tasks.c.seq.desc())
    rows = (await conn.execute(query.offset(offset).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [to_task(r) for r in rows], rows[-1].seq if more else None


def _next_pending(dialect: str) -> sa.ScalarSelect[Any]:
    query = sa.select(tasks.c.seq).where(tasks.c.status == PENDING).order_by(tasks.c.seq).limit(1)
    return skip_locked(query, dialect).scalar_subquery()


async def claim(
    conn: AsyncConnection, owner: str, now: datetime, lease_until: datetime
) -> Task | None:
    result = await conn.execute(
        tasks.update()
        .where(tasks.c.seq == _next_pending(conn.dialect.name), tasks.c.status == PENDING)
        .values(
            status=PROCESSING,
            lease_owner=owner,
            lease_expires_at=lease_until,
            attempt=tasks.c.attempt + 1,
            started_at=sa.func.coalesce(tasks.c.started_at, now),
        )
        .returning(*tasks.c)
    )
    row = result.first()
    if row is None:
        return None
    task = to_task(row)
    await conn.execute(
        task_attempts.insert().values(
            task_id=task.id, attempt=task.attempt, worker=owner, started_at=now
        )
    )
    return task


async def _end_attempt(conn: AsyncConnection, task_id: str, attempt: int, outcome: str) -> None:
    a = task_attempts.c
    await conn.execute(
        task_attempts.update()
        .where(a.task_id == task_id, a.attempt == attempt, a.ended_at.is_(None))
        .values(ended_at=utcnow(), outcome=outcome)
    )


def _held(lease: Lease, expired_before: datetime | None = None) -> list[sa.ColumnElement[bool]]:
    guard = [
        tasks.c.id == lease.task_id,
        tasks.c.status == PROCESSING,
        tasks.c.lease_owner == lease.owner,
        tasks.c.attempt == lease.attempt,
    ]
    if expired_before is not None:
        guard.append(tasks.c.lease_expires_at < expired_before)
    return guard


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


async def save_upstream(conn: AsyncConnection, lease: Lease, upstream: dict[str, Any]) -> bool:
    result = await conn.execute(tasks.update().where(*_held(lease)).values(upstream=upstream))
    return result.rowcount == 1


async def finish(
    conn: AsyncConnection,
    lease: Lease,
    values: dict[str, Any],
    expired_before: datetime | None = None,
) -> Task | None:
    """Move a held task to a terminal state; None if the lease was lost meanwhile. With
    ``expired_before`` (the reaper), only while the lease is still lapsed."""
    result = await conn.execute(
        tasks.update()
        .where(*_held(lease, expired_before))
        .values(lease_owner=None, lease_expires_at=None, **values)
        .returning(*tasks.c)
    )
    row = result.first()
    if row is None:
        return None
    task = to_task(row)
    await _end_attempt(
        conn, lease.task_id, lease.attempt, LAPSED if expired_before else task.status.value
    )
    return task


async def release(
    conn: AsyncConnection, lease: Lease, expired_before: datetime | None = None
) -> bool:
    """Give a held task back to the queue (graceful shutdown, or the reaper on a lapsed lease)."""
    result = await conn.execute(
        tasks.update()
        .where(*_held(lease, expired_before))
        .values(status=PENDING, lease_owner=None, lease_expires_at=None)
    )
    if result.rowcount != 1:
        return False
    await _end_attempt(conn, lease.task_id, lease.attempt, LAPSED if expired_before else RELEASED)
    return True


async def cancel(
    conn: AsyncConnection, task_id: str, account_id: str, now: datetime
) -> Task | None:
    """Cancel the account's task if it is pending or processing (whoever holds its lease loses
    it); None if it is not the account's or has already ended."""
    result = await conn.execute(
        tasks.update()
        .where(
            tasks.c.id == task_id,
            tasks.c.account_id == account_id,
            tasks.c.status.in_([PENDING, PROCESSING]),
        )
        .values(
            status=CANCELLED,
            cost_micros=0,
            completed_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(*tasks.c)
    )
    row = result.first()
    if row is None:
        return None
    task = to_task(row)
    if task.attempt:  # the attempt running when it was cancelled, if one was
        await _end_attempt(conn, task.id, task.attempt, CANCELLED)
    return task


def price_column() -> sa.Column[Any]:
    return tasks.c.price_micros


async def lapsed(conn: AsyncConnection, now: datetime, limit: int = 100) -> list[Lease]:
    rows = await conn.execute(
        sa.select(tasks.c.id, tasks.c.lease_owner, tasks.c.attempt)
        .where(tasks.c.status == PROCESSING, tasks.c.lease_expires_at < now)
        .order_by(tasks.c.lease_expires_at)
        .limit(limit)
    )
    return [Lease(r.id, r.lease_owner, r.attempt) for r in rows]
