"""Wake-ups between the API and the workers: "a task was queued", "a webhook is due", "this
task changed" for the requests that wait on a task or stream its events, and "these keys
changed" for the key cache (``store.keycache``).

In one process (the embedded default, SQLite) an :class:`asyncio.Event` per channel is all it
takes. On PostgreSQL the database itself announces queue changes: triggers (migration 0002) run
``pg_notify`` when a task becomes pending or a webhook delivery is written, in the writer's own
transaction, so a notification is sent exactly when the change commits, whichever process (or
hand-written SQL) made it; migration 0005's trigger announces each task event with the task's id;
migration 0007's announce a change to an API key (``key:<prefix>``) or to an account's status or
rate limit (``account:<id>``); migration 0008's, a file waiting to be processed.
:class:`PgListener` holds one ``LISTEN`` connection per process and relays what arrives to the
local :class:`Notifier`.

Notifications are only a shortcut: workers also poll every ``poll_interval``, so a notification
missed while the listening connection was down costs at most one poll interval, and the listener
reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

TASKS = "tasks"
WEBHOOKS = "webhooks"
TASK_EVENTS = "task_events"  # payload: the id of the task that changed
KEYS = "keys"  # payload: key:<prefix> or account:<id>
FILES = "files"  # a file is waiting to be processed
ROUTES = "routes"  # the model routes changed (store.routes): read them again
# PostgreSQL channel per wake-up; migrations 0002 and 0005's triggers use the same names.
PG_CHANNELS = {
    TASKS: "hatchery_tasks",
    WEBHOOKS: "hatchery_webhooks",
    TASK_EVENTS: "hatchery_task_events",
    KEYS: "hatchery_keys",
    FILES: "hatchery_files",
    ROUTES: "hatchery_routes",
}
LISTENER_NAME = "hatchery-listener"  # application_name of the LISTEN connection

log = logging.getLogger("hatchery.notify")


class Notifier:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._key_listeners: list[Callable[[str], None]] = []

    def on_keys_changed(self, listener: Callable[[str], None]) -> None:
        self._key_listeners.append(listener)

    def keys_changed(self, what: str = "") -> None:
        """Keys changed: ``key:<prefix>``, ``account:<id>``, or "" (anything may have)."""
        for listener in self._key_listeners:
            listener(what)

    @contextlib.contextmanager
    def watch(self, task_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``task_id`` changes, for as long as the block runs. Enter it
        before reading the task, so no change between the read and the wait goes unseen."""
        event = asyncio.Event()
        self._watchers.setdefault(task_id, set()).add(event)
        try:
            yield event
        finally:
            watchers = self._watchers.get(task_id, set())
            watchers.discard(event)
            if not watchers:
                self._watchers.pop(task_id, None)

    def task_changed(self, task_id: str) -> None:
        for event in self._watchers.get(task_id, ()):
            event.set()

    def wake_watchers(self) -> None:
        """Every watcher looks again (what changed while nobody was listening is unknown)."""
        for watchers in self._watchers.values():
            for event in watchers:
                event.set()

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

    def _relay(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        ours = self._by_pg_channel.get(channel)
        if ours == TASK_EVENTS:
            self.notifier.task_changed(payload)
        elif ours == KEYS:
            self.notifier.keys_changed(payload)
        elif ours is not None:
            self.notifier.notify(ours)

    def _wake_all(self) -> None:
        for channel in (TASKS, WEBHOOKS, FILES, ROUTES):
            self.notifier.notify(channel)
        self.notifier.wake_watchers()
        self.notifier.keys_changed()


async def _close(conn: Any) -> None:
    if conn.is_closed():
        return
    try:
        await conn.close(timeout=2)
    except Exception:
        conn.terminate()
