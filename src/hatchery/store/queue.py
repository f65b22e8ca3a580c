"""The queue manager: what task and outbox queries mean, each operation one transaction.

The API submits through it, workers claim, renew and finish through it; neither touches SQL.
Finishing a task, settling its money and writing its webhook to the outbox happen in one
transaction guarded by the lease, so a task is charged at most once whoever finishes it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from hatchery.domain.present import webhook_event
from hatchery.domain.tasks import Task, TaskStatus
from hatchery.errors import InsufficientBalance
from hatchery.store import accounts, counts, outbox, tasks
from hatchery.store.db import Database, utcnow
from hatchery.store.notify import TASKS, WEBHOOKS, Notifier
from hatchery.store.tasks import Lease


def lease_of(task: Task) -> Lease:
    assert task.lease_owner is not None
    return Lease(task.id, task.lease_owner, task.attempt)


class TaskQueue:
    def __init__(
        self, db: Database, notifier: Notifier, *, public_url: str, lease_seconds: float
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.public_url = public_url
        self.lease = timedelta(seconds=lease_seconds)

    async def submit(self, values: dict[str, Any]) -> Task:
        """Reserve the task's price and queue it, or raise InsufficientBalance and queue nothing."""
        now = utcnow()
        values = {
            **values,
            "status": TaskStatus.PENDING.value,
            "cost_micros": 0,
            "attempt": 0,
            "file_token": secrets.token_urlsafe(24),
            "created_at": now,
        }
        async with self.db.write() as conn:
            if not await accounts.reserve(conn, values["account_id"], values["price_micros"]):
                raise InsufficientBalance(
                    "Insufficient balance: this task costs more than the account's available "
                    "balance; add funds and try again"
                )
            task = await tasks.insert(conn, values)
            await counts.added(conn, task.account_id, task.model)
        self.notifier.notify(TASKS)
        return task

    async def claim(self, owner: str) -> Task | None:
        now = utcnow()
        async with self.db.write() as conn:
            return await tasks.claim(conn, owner, now, now + self.lease)

    async def renew(self, lease: Lease) -> bool:
        return lease in await self.renew_all(lease.owner, [lease])

    async def renew_all(self, owner: str, leases: list[Lease], chunk: int = 500) -> set[Lease]:
        """Renew many leases of one owner, a few hundred per statement; the ones still held."""
        held: set[Lease] = set()
        until = utcnow() + self.lease
        for start in range(0, len(leases), chunk):
            async with self.db.write(urgent=True) as conn:
                held |= await tasks.renew_many(conn, owner, leases[start : start + chunk], until)
        return held

    async def save_upstream(self, lease: Lease, upstream: dict[str, Any]) -> bool:
        async with self.db.write() as conn:
            return await tasks.save_upstream(conn, lease, upstream)

    async def release(self, lease: Lease, *, lapsed: bool = False) -> bool:
        """Back to pending; with ``lapsed``, only if the lease is still lapsed."""
        now = utcnow()
        async with self.db.write() as conn:
            released = await tasks.release(conn, lease, now if lapsed else None)
        if released:
            self.notifier.notify(TASKS)
        return released

    async def complete(
        self, lease: Lease, *, output: dict[str, Any], usage: dict[str, Any]
    ) -> Task | None:
        """Completed and charged once, webhook queued; None if the lease was lost."""
        values = {
            "status": TaskStatus.COMPLETED.value,
            "output": output,
            "usage": usage,
            "cost_micros": tasks.price_column(),
            "completed_at": utcnow(),
        }
        async with self.db.write() as conn:
            task = await tasks.finish(conn, lease, values)
            if task is None:
                return None
            await accounts.charge(
                conn, task.account_id, task.id, task.price_micros, task.cost_micros
            )
            await counts.ended(conn, task.account_id, task.model, task.status.value)
            await self._queue_webhook(conn, task)
        self._webhook_queued(task)
        return task

    async def fail(
        self,
        lease: Lease,
        error: str,
        usage: dict[str, Any] | None = None,
        *,
        lapsed: bool = False,
    ) -> Task | None:
        """Failed, reservation released (cost $0.00), webhook queued; None if the lease was lost.
        ``lapsed``: only if the lease is still lapsed (the reaper racing a late worker)."""
        now = utcnow()
        values = {
            "status": TaskStatus.FAILED.value,
            "error": error,
            "usage": usage,
            "cost_micros": 0,
            "completed_at": now,
        }
        async with self.db.write() as conn:
            task = await tasks.finish(conn, lease, values, now if lapsed else None)
            if task is None:
                return None
            await accounts.release(conn, task.account_id, task.price_micros)
            await counts.ended(conn, task.account_id, task.model, task.status.value)
            await self._queue_webhook(conn, task)
        self._webhook_queued(task)
        return task

    async def lapsed_leases(self) -> list[Lease]:
        async with self.db.read() as conn:
            return await tasks.lapsed(conn, utcnow())

    async def _queue_webhook(self, conn: Any, task: Task) -> None:
        if not task.webhook_url:
            return
        now = utcnow()
        event, body = webhook_event(task, self.public_url, int(now.timestamp()))
        await outbox.add(
            conn,
            task_id=task.id,
            account_id=task.account_id,
            event=event,
            url=task.webhook_url,
            body=body,
            now=now,
        )

    def _webhook_queued(self, task: Task) -> None:
        if task.webhook_url:
            self.notifier.notify(WEBHOOKS)


class WebhookOutbox:
    """Claiming due webhook deliveries and recording each attempt."""

    def __init__(self, db: Database, *, lease_seconds: float) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)

    async def claim(self, owner: str) -> outbox.Delivery | None:
        now = utcnow()
        async with self.db.write() as conn:
            return await outbox.claim(conn, owner, now, now + self.lease)

    async def secret(self, account_id: str) -> str | None:
        async with self.db.read() as conn:
            account = await accounts.by_id(conn, account_id)
        return account.webhook_secret if account else None

    async def next_due_at(self) -> datetime | None:
        async with self.db.read() as conn:
            return await outbox.next_due_at(conn, utcnow())

    async def record(self, delivery: outbox.Delivery, **attempt: Any) -> bool:
        async with self.db.write() as conn:
            return await outbox.record_attempt(conn, delivery, **attempt)
