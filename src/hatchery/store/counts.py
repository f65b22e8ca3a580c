"""Task counts per account, model and type, kept beside the tasks so that a list's ``total`` is a
read of a few rows, never a count of an account's tasks.

``task_counts`` holds, per (account, model, type), how many tasks were submitted and how many ended
completed, failed or cancelled. The submit and the terminal transition change it in their own
transaction, after they have updated the account's balance row; that row lock orders two
transactions of one account, so the update-then-insert in ``added`` cannot race itself.

Pending and processing are not stored: processing tasks are counted (there are only as many as
the workers run), and pending is what is neither processing nor ended.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.tasks import Task, TaskStatus
from hatchery.store.db import equal_to
from hatchery.store.driver import Statement, Tx
from hatchery.store.tables import task_counts, tasks
from hatchery.store.tasks import TaskFilter

ENDED = {
    TaskStatus.COMPLETED.value: "completed",
    TaskStatus.FAILED.value: "failed",
    TaskStatus.CANCELLED.value: "cancelled",
}


# Every submit runs these, on the driver.
_ADDED = Statement(
    task_counts.update()
    .where(
        task_counts.c.account_id == sa.bindparam("b_account"),
        task_counts.c.model == sa.bindparam("b_model"),
        task_counts.c.type == sa.bindparam("b_type"),
    )
    .values(total=task_counts.c.total + 1)
)
_FIRST = Statement(
    task_counts.insert().values(
        account_id=sa.bindparam("b_account"),
        model=sa.bindparam("b_model"),
        type=sa.bindparam("b_type"),
        total=1,
        completed=0,
        failed=0,
        cancelled=0,
    )
)


async def added(tx: Tx, task: Task) -> None:
    kind = {"b_account": task.account_id, "b_model": task.model, "b_type": task.type.value}
    if await tx.execute(_ADDED, kind) == 0:
        await tx.execute(_FIRST, kind)


def _ended(column: sa.Column[int]) -> Statement:
    c = task_counts.c
    return Statement(
        task_counts.update()
        .where(
            c.account_id == sa.bindparam("b_account"),
            c.model == sa.bindparam("b_model"),
            c.type == sa.bindparam("b_type"),
        )
        .values({column: column + 1})
    )


_ENDED = {status: _ended(task_counts.c[name]) for status, name in ENDED.items()}


async def ended(tx: Tx, task: Task) -> None:
    kind = {"b_account": task.account_id, "b_model": task.model, "b_type": task.type.value}
    await tx.execute(_ENDED[task.status.value], kind)


async def total(conn: AsyncConnection, account_id: str, where: TaskFilter) -> int:
    """How many of the account's tasks match the list's filters."""
    c = task_counts.c
    status = where.status
    found = equal_to(task_counts, account_id=account_id) + where.conditions(task_counts)
    columns = [c.total, *(c[name] for name in ENDED.values())]
    sums = (
        await conn.execute(
            sa.select(*(sa.func.coalesce(sa.func.sum(col), 0) for col in columns)).where(*found)
        )
    ).one()
    everything, *ends = (int(n) for n in sums)
    if status is None:
        return everything
    ended_counts = dict(zip(ENDED, ends, strict=True))
    if status in ended_counts:
        return ended_counts[status]
    running = await _processing(conn, account_id, where)
    if status == TaskStatus.PROCESSING.value:
        return running
    return max(everything - sum(ends) - running, 0)


async def _processing(conn: AsyncConnection, account_id: str, where: TaskFilter) -> int:
    found = equal_to(
        tasks, status=TaskStatus.PROCESSING.value, account_id=account_id
    ) + where.conditions(tasks)
    query = sa.select(sa.func.count()).select_from(tasks).where(*found)
    return int((await conn.execute(query)).scalar_one())
