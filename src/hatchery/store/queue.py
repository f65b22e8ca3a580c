"""The queue manager: what task and outbox queries mean, each operation one transaction.

The API submits through it, workers claim, renew and finish through it; neither touches SQL.
Finishing a task, settling its money, recording its usage (``store.usage``) and writing its webhook
to the outbox happen in one transaction guarded by the lease, so a task is charged at most once
whoever finishes it. A cancel is the same transition guarded by the status instead: of a cancel and
a completion racing, the one that commits first wins and the other changes nothing. Every status
change also records a task event (``store.events``) in its transaction and wakes whoever watches
the task here.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from hatchery.domain.present import webhook_event
from hatchery.domain.tasks import Task, TaskStatus, TaskType
from hatchery.domain.webhooks import new_message_id, outline, task_event
from hatchery.errors import Conflict, InsufficientBalance, NotFound
from hatchery.observe import logs, metrics, tracing
from hatchery.store import accounts, counts, endpoints, events, idempotency, outbox, tasks
from hatchery.store import files as files_store
from hatchery.store import usage as usage_store
from hatchery.store.db import Database, utcnow
from hatchery.store.driver import Tx
from hatchery.store.notify import TASKS, WEBHOOKS, Notifier
from hatchery.store.tasks import Lease

log = logging.getLogger("hatchery.queue")

Ended = tuple[Task, int]  # a task that has just ended, and the webhook messages it queued


def lease_of(task: Task) -> Lease:
    assert task.lease_owner is not None
    return Lease(task.id, task.lease_owner, task.attempt)


def _short() -> InsufficientBalance:
    return InsufficientBalance(
        "Insufficient balance: this task costs more than the account's available balance; "
        "add funds and try again"
    )


async def _queue_task(
    values: dict[str, Any], key: tuple[str, idempotency.Claimed] | None, tx: Tx
) -> Task:
    """The submit's transaction: reservation, task, count, Idempotency-Key (on the driver). On
    PostgreSQL a submit without a key is one statement instead (``tasks.reserve_insert_count``)."""
    if not await accounts.reserve(tx, values["account_id"], values["price_micros"]):
        raise _short()
    task = await tasks.insert(tx, values)
    await counts.added(tx, task)
    if key and not await idempotency.attach(tx, task.account_id, *key, task.id):
        raise Conflict(
            f"Idempotency-Key {key[0]!r} was taken over by another request while this "
            "one ran; nothing was created"
        )
    return task


class TaskQueue:
    def __init__(
        self, db: Database, notifier: Notifier, *, public_url: str, lease_seconds: float
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.public_url = public_url
        self.lease = timedelta(seconds=lease_seconds)

    async def submit(
        self, values: dict[str, Any], key: tuple[str, idempotency.Claimed] | None = None
    ) -> Task:
        """Reserve the task's price and queue it, or raise InsufficientBalance and queue nothing.
        With an Idempotency-Key and its claim, the key gets the task in the same transaction; if
        the claim was taken over meanwhile, nothing is queued (Conflict)."""
        now = utcnow()
        values = {
            **values,
            "status": TaskStatus.PENDING.value,
            "cost_micros": 0,
            "attempt": 0,
            "file_token": secrets.token_urlsafe(24),
            "created_at": now,
            "trace_context": tracing.carrier(),  # the worker's spans continue the submit's trace
        }
        driver = self.db.driver
        if key is None and driver.dialect.name == "postgresql":  # one round trip
            queued = await tasks.reserve_insert_count(driver, values)
            if queued is None:
                raise _short()
            task = queued
        else:
            task = await driver.write(partial(_queue_task, values, key))
        self.notifier.notify(TASKS)
        metrics.task_submitted(task)
        logs.bind_task(task.id, task.account_id)  # the rest of the request's lines name it
        log.debug(
            "task %s queued: %s, %d micro-dollars held", task.id, task.model, task.price_micros
        )
        return task

    async def claim(self, owner: str) -> Task | None:
        claimed = await self.claim_many(owner, 1)
        return claimed[0] if claimed else None

    async def claim_many(self, owner: str, limit: int) -> list[Task]:
        """Claim up to ``limit`` pending tasks, oldest first, in one transaction: each gets its
        lease, its attempt row and its task event."""
        now = utcnow()

        async def claiming(tx: Tx) -> list[Task]:
            claimed = await tasks.claim_many(tx, owner, now, now + self.lease, limit)
            for task in claimed:
                await events.record(tx, task.id, task.status, now)
            return claimed

        claimed = await self.db.driver.write(claiming)
        for task in claimed:
            self.notifier.task_changed(task.id)
            metrics.task_claimed(task)
        return claimed

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
        return await self.db.driver.write(
            partial(tasks.save_upstream, lease=lease, upstream=upstream)
        )

    async def release(self, lease: Lease, *, lapsed: bool = False) -> bool:
        """Back to pending; with ``lapsed``, only if the lease is still lapsed."""
        now = utcnow()

        async def back_to_pending(tx: Tx) -> bool:
            if not await tasks.release(tx, lease, now if lapsed else None):
                return False
            await events.record(tx, lease.task_id, TaskStatus.PENDING, now)
            return True

        released = await self.db.driver.write(back_to_pending)
        if released:
            self.notifier.notify(TASKS)
            self.notifier.task_changed(lease.task_id)
        return released

    async def complete(
        self,
        lease: Lease,
        *,
        output: dict[str, Any],
        usage: dict[str, Any],
        files: Sequence[dict[str, Any]] = (),
    ) -> Task | None:
        """Completed and charged once with its usage record, its outputs' file records written,
        webhooks queued; None if the lease was lost."""

        trace = tracing.carrier()  # here: SQLite's writer runs the transaction in its own task

        async def charged(tx: Tx) -> Ended | None:
            task = await tasks.complete(tx, lease, output, usage, utcnow())
            if task is None:
                return None
            for record in files:
                await files_store.add_output(tx, record)
            usage_record = await usage_store.record(tx, task)
            await accounts.charge(tx, task.account_id, task.id, task.price_micros, task.cost_micros)
            await usage_store.add_to_day(tx, task.account_id, usage_record)
            return task, await self._ended(tx, task, trace)

        return self._announce(await self.db.driver.write(charged))

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

        trace = tracing.carrier()  # here: SQLite's writer runs the transaction in its own task

        async def failed(tx: Tx) -> Ended | None:
            task = await tasks.fail(tx, lease, error, usage, now, now if lapsed else None)
            if task is None:
                return None
            await accounts.release(tx, task.account_id, task.price_micros)
            return task, await self._ended(tx, task, trace)

        return self._announce(await self.db.driver.write(failed))

    async def cancel(self, task_id: str, account_id: str) -> Task:
        """Cancel the account's pending or processing task: reservation released (cost $0.00),
        webhook queued. NotFound if it is not the account's; Conflict if it has already ended."""

        trace = tracing.carrier()  # here: SQLite's writer runs the transaction in its own task

        async def cancelled(tx: Tx) -> Ended:
            task = await tasks.cancel(tx, task_id, account_id, utcnow())
            if task is None:
                current = await tasks.read(tx, task_id, account_id)
                if current is None:
                    raise NotFound(f"Task not found: {task_id}")
                raise Conflict(
                    f"Task {task_id} is already {current.status.value}; only pending or "
                    "processing tasks can be cancelled"
                )
            await accounts.release(tx, task.account_id, task.price_micros)
            return task, await self._ended(tx, task, trace)

        ended = await self.db.driver.write(cancelled)
        self._announce(ended)
        return ended[0]

    async def claim_key(self, account_id: str, key: str, fingerprint: str) -> idempotency.Claimed:
        """Claim an Idempotency-Key for a new submit (``mine``), or the row of the request that
        has it (see ``store.idempotency``)."""
        async with self.db.write() as conn:
            return await idempotency.claim(conn, account_id, key, fingerprint, utcnow())

    async def forget_key(self, account_id: str, key: str, claim: idempotency.Claimed) -> None:
        async with self.db.write() as conn:
            await idempotency.forget(conn, account_id, key, claim)

    async def purge_idempotency_keys(self) -> int:
        async with self.db.write() as conn:
            return await idempotency.purge(conn, utcnow())

    async def lapsed_leases(self) -> list[Lease]:
        async with self.db.read() as conn:
            return await tasks.lapsed(conn, utcnow())

    async def _queue_webhooks(self, tx: Tx, task: Task, trace: str | None) -> int:
        """The task's end, for its ``webhook_url`` (the Egg API's tasks) and the account's
        endpoints that subscribe to it; the messages written. The Egg API's body is made now
        and sent byte for byte; an execution's is made at each attempt (``api.videogen.hooks``),
        with fresh signed URLs, from this outline."""
        assert task.completed_at is not None
        event = task_event(task)
        receivers = await endpoints.subscribed(tx, task.account_id, event)
        url = None if task.type is TaskType.TOOL else task.webhook_url
        if not (url or receivers):
            return 0
        now = utcnow()
        if task.type is TaskType.TOOL:
            body = outline(event, task.id, task.completed_at)
        else:
            body = webhook_event(task, self.public_url, int(now.timestamp()))[1]
        return await outbox.emit(
            tx,
            message_id=new_message_id(),
            account_id=task.account_id,
            event=event,
            subject_id=task.id,
            body=body,
            now=now,
            url=url,
            receivers=receivers,
            trace_context=trace,
        )

    async def _ended(self, tx: Tx, task: Task, trace: str | None) -> int:
        """What every terminal transition writes besides the task and the money; the webhook
        messages it queued."""
        assert task.completed_at is not None
        await counts.ended(tx, task)
        await events.record(tx, task.id, task.status, task.completed_at)
        return await self._queue_webhooks(tx, task, trace)

    def _announce(self, ended: Ended | None) -> Task | None:
        if ended is None:
            return None
        task, messages = ended
        metrics.task_ended(task)
        self.notifier.task_changed(task.id)
        if messages:
            self.notifier.notify(WEBHOOKS)
        return task
