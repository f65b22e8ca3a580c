"""The worker: claims tasks up to its concurrency, keeps their leases renewed while they run, and
on shutdown stops claiming, lets running tasks finish within a grace period and gives the rest
back to the queue. It schedules work; the queue does the SQL. One claim takes as many tasks as
there are free slots at that moment (up to ``MAX_CLAIM``), in one transaction.

``concurrency`` bounds the tasks doing work here (rendering, calling an upstream, storing files).
A task that is only waiting for an upstream job gives its slot back (the runner's ``on_wait``),
so one process keeps up to ``max_in_flight`` tasks in flight. All of this process's leases are
renewed by one statement per renewal period, however many there are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from datetime import datetime

from hatchery.domain.tasks import Task
from hatchery.errors import StoreUnavailable
from hatchery.observe import logs, tracing
from hatchery.store.db import utcnow
from hatchery.store.notify import TASKS, Notifier
from hatchery.store.queue import TaskQueue, lease_of
from hatchery.store.tasks import Lease
from hatchery.worker.runner import TaskRunner

log = logging.getLogger("hatchery.worker")
MAX_CLAIM = 64  # the most tasks one claim transaction takes


def _claim_span(task: Task, started: datetime) -> None:
    """The claim, in the task's trace: from the claim's start to now."""
    attributes = {"hatchery.task_id": task.id, "hatchery.attempt": task.attempt}
    with tracing.span(
        "queue.claim", parent=task.trace_context, start=started, attributes=attributes
    ):
        pass


def worker_id() -> str:
    return f"{socket.gethostname()[:32]}-{uuid.uuid4().hex[:12]}"


class Worker:
    def __init__(
        self,
        queue: TaskQueue,
        runner: TaskRunner,
        notifier: Notifier,
        *,
        concurrency: int,
        poll_interval: float,
        lease_seconds: float,
        grace: float,
        max_in_flight: int | None = None,
    ) -> None:
        self.queue = queue
        self.runner = runner
        self.notifier = notifier
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.renew_every = lease_seconds / 3
        self.grace = grace
        self.owner = worker_id()
        self._running: dict[asyncio.Task[None], Lease] = {}
        self._waiting: set[asyncio.Task[None]] = set()  # gave their slot back
        self._abandoned: set[asyncio.Task[None]] = set()  # cancelled: their lease was lost
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight = asyncio.Semaphore(max(max_in_flight or concurrency, concurrency))

    def load(self) -> tuple[int, int]:
        """Tasks in flight here, and how many of them only wait on an upstream job."""
        return len(self._running), len(self._waiting)

    def stop(self) -> None:
        self._stopping.set()
        self.notifier.notify(TASKS)

    async def run(self) -> None:
        renewer = asyncio.create_task(self._renew_leases(), name="lease renewal")
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _claim_loop(self) -> None:
        while await self._acquire(self._in_flight):
            if not await self._acquire(self._slots):
                self._in_flight.release()
                return
            wanted = 1 + await self._take_free()
            claimed = await self._claim(wanted)
            for _ in range(wanted - len(claimed)):
                self._slots.release()
                self._in_flight.release()
            if not claimed:
                await self.notifier.wait(TASKS, self.poll_interval)
                continue
            for task in claimed:
                job = asyncio.create_task(self._execute(task), name=f"task {task.id}")
                self._running[job] = lease_of(task)
                job.add_done_callback(self._done)

    async def _take_free(self) -> int:
        """Take every slot (and room in flight) free right now, up to ``MAX_CLAIM - 1``: the
        claim asks for that many more tasks in the same transaction. An unlocked semaphore's
        acquire() returns at once, without waiting."""
        taken = 0
        while taken < MAX_CLAIM - 1 and not (self._slots.locked() or self._in_flight.locked()):
            await self._slots.acquire()
            await self._in_flight.acquire()
            taken += 1
        return taken

    def _done(self, job: asyncio.Task[None]) -> None:
        self._running.pop(job, None)
        self._abandoned.discard(job)
        if job in self._waiting:
            self._waiting.discard(job)
        else:
            self._slots.release()
        self._in_flight.release()

    def _waits(self, job: asyncio.Task[None]) -> None:
        """The task now only waits for an upstream: its slot goes to the next task."""
        if job not in self._waiting and job in self._running:
            self._waiting.add(job)
            self._slots.release()

    async def _acquire(self, semaphore: asyncio.Semaphore) -> bool:
        """Wait for the semaphore; False (holding nothing) once stopping, even if all are taken."""
        if self._stopping.is_set():
            return False
        acquire = asyncio.ensure_future(semaphore.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not self._stopping.is_set():
            return True
        if acquire.done() and not acquire.cancelled():
            semaphore.release()
        acquire.cancel()
        return False

    async def _claim(self, limit: int) -> list[Task]:
        if self._stopping.is_set():
            return []
        started = utcnow()
        try:
            claimed = await self.queue.claim_many(self.owner, limit)
        except Exception:
            log.exception("claiming tasks failed; retrying after the poll interval")
            return []
        if tracing.enabled():
            for task in claimed:
                _claim_span(task, started)
        return claimed

    async def _execute(self, task: Task) -> None:
        """Run the task; every line logged for it carries its ids, and its span (tracing on)
        continues the submit's trace, whatever way it ends."""
        attributes = {"hatchery.task_id": task.id, "hatchery.model": task.model}
        with (
            logs.bound(task_id=task.id, account_id=task.account_id),
            tracing.span(
                "task.run", kind=tracing.CONSUMER, parent=task.trace_context, attributes=attributes
            ),
        ):
            await self._run(task)

    async def _run(self, task: Task) -> None:
        job = asyncio.current_task()
        assert job is not None
        try:
            await self.runner.run(task, lambda: self._waits(job))
        except asyncio.CancelledError:
            if not self._cancelled_by_us(job):
                raise
        except StoreUnavailable as exc:
            # Not the task's fault: it goes back to the queue (or its lease lapses) and runs again,
            # resuming any upstream job it had stored.
            log.warning("task %s: %s; giving it back to the queue", task.id, exc.message)
            with contextlib.suppress(Exception):
                await self.queue.release(lease_of(task))
        except Exception as exc:
            log.exception("task %s failed with an unexpected error", task.id)
            message = f"generation failed: internal error ({type(exc).__name__}: {exc})"[:500]
            with contextlib.suppress(Exception):  # if this fails too, the lease lapses: retried
                await self.queue.fail(lease_of(task), message)

    def _cancelled_by_us(self, job: asyncio.Task[None]) -> bool:
        """A lost lease or the end of the grace period cancelled the task (not our own caller)."""
        return job in self._abandoned

    async def _renew_leases(self) -> None:
        """Every third of a lease: renew all of this process's leases in one go; a task whose
        lease is gone (reclaimed after a stall) is abandoned: someone else runs it now."""
        while True:
            await asyncio.sleep(self.renew_every)
            leases = dict(self._running)
            if not leases:
                continue
            try:
                held = await self.queue.renew_all(self.owner, list(leases.values()))
            except Exception:
                log.exception("renewing %d lease(s) failed", len(leases))
                continue
            for job, lease in leases.items():
                if lease not in held and not job.done():
                    log.warning("lost the lease of %s; abandoning it", lease.task_id)
                    self._abandoned.add(job)
                    job.cancel()

    async def _drain(self) -> None:
        if not self._running:
            return
        log.info("waiting up to %.0fs for %d running task(s)", self.grace, len(self._running))
        _, unfinished = await asyncio.wait(list(self._running), timeout=self.grace)
        leases = [self._running[j] for j in unfinished if j in self._running]
        for job in unfinished:
            self._abandoned.add(job)
            job.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        for lease in leases:
            with contextlib.suppress(Exception):
                await self.queue.release(lease)
