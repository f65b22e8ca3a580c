"""Wake-ups between the API and the workers: "a task was queued", "a webhook is due".

In one process (the embedded default) an :class:`asyncio.Event` per channel is all it takes; the
workers also poll on a timer, so a missed wake-up only costs one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib

TASKS = "tasks"
WEBHOOKS = "webhooks"


class Notifier:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def _event(self, channel: str) -> asyncio.Event:
        return self._events.setdefault(channel, asyncio.Event())

    def notify(self, channel: str) -> None:
        self._event(channel).set()

    async def wait(self, channel: str, timeout: float) -> bool:
        """Wait for a wake-up on ``channel`` or ``timeout`` seconds; True when woken."""
        event = self._event(channel)
        woken = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
                woken = True
        event.clear()
        return woken
