"""Task counts per account and model, kept beside the tasks so that a list's ``total`` is a
read of a few rows, never a count of an account's tasks.

``task_counts`` holds, per (account, model), how many tasks were submitted and how many ended
completed, failed or cancelled. The submit and the terminal transition change it in their own
transaction, after they have updated the account's balance row; that row lock orders two
transactions of one account, so the update-then-insert in ``added`` cannot race itself.

Pending and processing are not stored: processing tasks are counted (there are only as many as
the workers run), and pending is what is neither processing nor ended.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.tasks import TaskStatus
from hatchery.store.tables import task_counts, tasks

ENDED = {
    TaskStatus.COMPLETED.value: "completed",
    TaskStatus.FAILED.value: "failed",
    TaskStatus.CANCELLED.value: "cancelled",
}


_ADDED = (
    task_counts.update()
    .where(
        task_counts.c.account_id == sa.bindparam("b_account"),
        task_counts.c.model == sa.bindparam("b_model"),
    )
    .values(total=task_counts.c.total + 1)
)  # built once: it runs on every submit


async def added(conn: AsyncConnection, account_id: str, model: str) -> None:
    if (await conn.execute(_ADDED, {"b_account": account_id, "b_model": model})).rowcount == 0:
        await conn.execute(
            task_counts.insert().values(
                account_id=account_id, model=model, total=1, completed=0, failed=0, cancelled=0
            )
        )


async def ended(conn: AsyncConnection, account_id: str, model: str, status: str) -> None:
    column = task_counts.c[ENDED[status]]
    await conn.execute(
        task_counts.update()
        .where(task_counts.c.account_id == account_id, task_counts.c.model == model)
        .values({column: column + 1})
    )


async def total(
    conn: AsyncConnection, account_id: str, status: str | None = None, model: str | None = None
) -> int:
    """How many of the account's tasks match the list's filters."""
    c = task_counts.c
    where = [c.account_id == account_id] + ([c.model == model] if model else [])
    columns = [c.total, *(c[name] for name in ENDED.values())]
    sums = (
        await conn.execute(
            sa.select(*(sa.func.coalesce(sa.func.sum(col), 0) for col in columns)).where(*where)
        )
    ).one()
    everything, *ends = (int(n) for n in sums)
    if status is None:
        return everything
    ended_counts = dict(zip(ENDED, ends, strict=True))
    if status in ended_counts:
        return ended_counts[status]
    running = await _processing(conn, account_id, model)
    if status == TaskStatus.PROCESSING.value:
        return running
    return max(everything - sum(ends) - running, 0)


async def _processing(conn: AsyncConnection, account_id: str, model: str | None) -> int:
    where = [tasks.c.status == TaskStatus.PROCESSING.value, tasks.c.account_id == account_id]
    if model:
        where.append(tasks.c.model == model)
    query = sa.select(sa.func.count()).select_from(tasks).where(*where)
    return int((await conn.execute(query)).scalar_one())
