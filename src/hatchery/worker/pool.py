"""The worker: claims tasks up to its concurrency, keeps each lease renewed while the task runs,
and on shutdown stops claiming, lets running tasks finish within a grace period and gives the
rest back to the queue. It schedules work; the queue does the SQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid

from hatchery.domain.tasks import Task
from hatchery.store.notify import TASKS, Notifier
from hatchery.store.queue import TaskQueue, lease_of
from hatchery.store.tasks import Lease
from hatchery.worker.runner import TaskRunner

log = logging.getLogger("hatchery.worker")


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
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)

    def stop(self) -> None:
        self._stopping.set()
        self.notifier.notify(TASKS)

    async def run(self) -> None:
        while await self._free_slot():
            task = await self._claim()
            if task is None:
                self._slots.release()
                await self.notifier.wait(TASKS, self.poll_interval)
                continue
            job = asyncio.create_task(self._execute(task), name=f"task {task.id}")
            self._running[job] = lease_of(task)
            job.add_done_callback(self._done)
        await self._drain()

    def _done(self, job: asyncio.Task[None]) -> None:
        self._running.pop(job, None)
        self._slots.release()

    async def _free_slot(self) -> bool:
        """Wait for a free slot; False (holding none) once stopping, even while all are busy."""
        if self._stopping.is_set():
            return False
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not self._stopping.is_set():
            return True
        if acquire.done() and not acquire.cancelled():
            self._slots.release()
        acquire.cancel()
        return False

    async def _claim(self) -> Task | None:
        if self._stopping.is_set():
            return None
        try:
            return await self.queue.claim(self.owner)
        except Exception:
            log.exception("claiming a task failed; retrying after the poll interval")
            return None

    async def _execute(self, task: Task) -> None:
        work = asyncio.create_task(self.runner.run(task))
        heartbeat = asyncio.create_task(self._heartbeat(lease_of(task), work))
        try:
            await work
        except asyncio.CancelledError:
            if not work.cancelled():
                raise
        except Exception as exc:
            log.exception("task %s failed with an unexpected error", task.id)
            message = f"generation failed: internal error ({type(exc).__name__}: {exc})"[:500]
            with contextlib.suppress(Exception):  # if this fails too, the lease lapses: retried
                await self.queue.fail(lease_of(task), message)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self, lease: Lease, work: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                held = await self.queue.renew(lease)
            except Exception:
                log.exception("renewing the lease of %s failed", lease.task_id)
                continue
            if not held:
                log.warning("lost the lease of %s; abandoning it", lease.task_id)
                work.cancel()
                return

    async def _drain(self) -> None:
        if not self._running:
            return
        log.info("waiting up to %.0fs for %d running task(s)", self.grace, len(self._running))
        _, unfinished = await asyncio.wait(list(self._running), timeout=self.grace)
        leases = [self._running[j] for j in unfinished if j in self._running]
        for job in unfinished:
            job.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        for lease in leases:
            with contextlib.suppress(Exception):
                await self.queue.release(lease)
