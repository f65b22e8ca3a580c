"""Queries on ``task_events``: each status change of a task after its submit, in order.

Event ids are the table's sequence, so they grow with every change of one task (its changes are
ordered by the task row's lock). The submit itself is event 0, implied by the task's
``created_at``: a task that has not moved since has no row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.tasks import Task, TaskStatus
from hatchery.store.driver import Statement, Tx
from hatchery.store.tables import task_events

SUBMITTED = 0  # the id of a task's first event, its submit


@dataclass(frozen=True)
class TaskEvent:
    id: int
    status: TaskStatus
    at: datetime


_RECORD = Statement(task_events.insert(), keys=("task_id", "status", "at"))  # on the driver
_SINCE = (
    sa.select(task_events.c.seq, task_events.c.status, task_events.c.at)
    .where(task_events.c.task_id == sa.bindparam("task_id"))
    .where(task_events.c.seq > sa.bindparam("after"))
    .order_by(task_events.c.seq)
)


async def record(tx: Tx, task_id: str, status: TaskStatus, at: datetime) -> None:
    await tx.execute(_RECORD, {"task_id": task_id, "status": status.value, "at": at})


async def since(conn: AsyncConnection, task: Task, after: int) -> list[TaskEvent]:
    """The task's events after the id ``after`` (-1: all of them, its submit included)."""
    rows = await conn.execute(_SINCE, {"task_id": task.id, "after": max(after, SUBMITTED)})
    found = [TaskEvent(r.seq, TaskStatus(r.status), r.at) for r in rows]
    if after < SUBMITTED:
        found.insert(0, TaskEvent(SUBMITTED, TaskStatus.PENDING, task.created_at))
    return found


async def latest(conn: AsyncConnection, task: Task) -> TaskEvent:
    """The event that put the task in its current status."""
    row = (
        await conn.execute(
            sa.select(task_events.c.seq, task_events.c.status, task_events.c.at)
            .where(task_events.c.task_id == task.id)
            .order_by(task_events.c.seq.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return TaskEvent(SUBMITTED, TaskStatus.PENDING, task.created_at)
    return TaskEvent(row.seq, TaskStatus(row.status), row.at)
