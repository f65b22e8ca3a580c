"""The reaper: returns tasks whose lease lapsed (their worker died) to the queue, and fails a task
that has lost its worker too many times rather than retrying it for ever. Once an hour it also
deletes the Idempotency-Keys past their 24 hours."""

from __future__ import annotations

import asyncio
import logging
import time

from hatchery.store.queue import TaskQueue

log = logging.getLogger("hatchery.reaper")

PURGE_EVERY = 3600.0


class Reaper:
    def __init__(self, queue: TaskQueue, *, interval: float, max_attempts: int) -> None:
        self.queue = queue
        self.interval = interval
        self.max_attempts = max_attempts
        self._purged_at = float("-inf")

    async def reap_once(self) -> int:
        count = 0
        for lease in await self.queue.lapsed_leases():
            if lease.attempt >= self.max_attempts:
                message = (
                    f"generation failed: the task was interrupted {lease.attempt} times "
                    "(its worker stopped responding)"
                )
                done = await self.queue.fail(lease, message, lapsed=True) is not None
            else:
                done = await self.queue.release(lease, lapsed=True)
            count += done
        if count:
            log.info("reaper returned %d lapsed task(s)", count)
        return count

    async def purge_keys(self) -> None:
        if time.monotonic() - self._purged_at < PURGE_EVERY:
            return
        purged = await self.queue.purge_idempotency_keys()
        self._purged_at = time.monotonic()
        if purged:
            log.info("deleted %d idempotency key(s) older than 24 hours", purged)

    async def run(self) -> None:
        while True:
            try:
                await self.reap_once()
                await self.purge_keys()
            except Exception:
                log.exception("reaper pass failed")
            await asyncio.sleep(self.interval)
