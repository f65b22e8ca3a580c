"""The reaper: returns tasks whose lease lapsed (their worker died) to the queue, and fails a task
that has lost its worker too many times rather than retrying it for ever."""

from __future__ import annotations

import asyncio
import logging

from hatchery.store.queue import TaskQueue

log = logging.getLogger("hatchery.reaper")


class Reaper:
    def __init__(self, queue: TaskQueue, *, interval: float, max_attempts: int) -> None:
        self.queue = queue
        self.interval = interval
        self.max_attempts = max_attempts

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

    async def run(self) -> None:
        while True:
            try:
                await self.reap_once()
            except Exception:
                log.exception("reaper pass failed")
            await asyncio.sleep(self.interval)
