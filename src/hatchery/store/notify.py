"""Wake-ups between the API and the workers: "a task was queued", "a webhook is due".

In one process (the embedded default, SQLite) an :class:`asyncio.Event` per channel is all it
takes. On PostgreSQL the database itself announces queue changes: triggers (migration 0002) run
``pg_notify`` when a task becomes pending or a webhook delivery is written, in the writer's own
transaction, so a notification is sent exactly when the change commits, whichever process (or
hand-written SQL) made it. :class:`PgListener` holds one ``LISTEN`` connection per worker process
and relays what arrives to the local :class:`Notifier`.

Notifications are only a shortcut: workers also poll every ``poll_interval``, so a notification
missed while the listening connection was down costs at most one poll interval, and the listener
reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

TASKS = "tasks"
WEBHOOKS = "webhooks"
# PostgreSQL channel per wake-up; migration 0002's triggers use the same names.
PG_CHANNELS = {TASKS: "hatchery_tasks", WEBHOOKS: "hatchery_webhooks"}
LISTENER_NAME = "hatchery-listener"  # application_name of the LISTEN connection

log = logging.getLogger("hatchery.notify")


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


class PgListener:
    """Relays PostgreSQL notifications to a :class:`Notifier`, reconnecting when the connection
    drops (a restart, a failover, ``pg_terminate_backend``). A connection that is silently gone
    is found by a ``SELECT 1`` every ``keepalive`` seconds."""

    def __init__(
        self,
        dsn: str,
        notifier: Notifier,
        *,
        keepalive: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.notifier = notifier
        self.keepalive = keepalive
        self.max_backoff = max_backoff
        self.connections = 0  # how many times it has connected, for logs and tests
        self._by_pg_channel = {pg: ours for ours, pg in PG_CHANNELS.items()}

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._listen()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listening for notifications failed (%s); reconnecting", exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _listen(self) -> None:
        import asyncpg  # the PostgreSQL driver, present whenever PostgreSQL is configured

        conn = await asyncpg.connect(
            self.dsn, timeout=10, server_settings={"application_name": LISTENER_NAME}
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            for channel in PG_CHANNELS.values():
                await conn.add_listener(channel, self._relay)
            self.connections += 1
            if self.connections > 1:
                log.info("notification listener reconnected")
            self._wake_all()  # whatever was announced while we were not listening
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.keepalive):
                        await lost.wait()
                if not lost.is_set():
                    await conn.fetchval("SELECT 1", timeout=self.keepalive)
            log.warning("the notification connection was closed; reconnecting")
        finally:
            await _close(conn)

    def _relay(self, _conn: Any, _pid: int, channel: str, _payload: str) -> None:
        ours = self._by_pg_channel.get(channel)
        if ours is not None:
            self.notifier.notify(ours)

    def _wake_all(self) -> None:
        for channel in PG_CHANNELS:
            self.notifier.notify(channel)


async def _close(conn: Any) -> None:
    if conn.is_closed():
        return
    try:
        await conn.close(timeout=2)
    except Exception:
        conn.terminate()
