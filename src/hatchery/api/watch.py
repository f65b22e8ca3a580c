"""Holding a request on a task: ``Prefer: wait=N`` and the task's Server-Sent Events stream.

Both watch the task (``Notifier.watch``) before they read it, and read it again whenever it
changes here, when a change made in another process is announced (PostgreSQL's NOTIFY, relayed by
the listener), and every ``poll_interval`` in any case (SQLite shared by several processes has no
announcements), so no change is missed and none is waited for longer than that.

A stream sends the task's current status at once (or, with ``Last-Event-ID``, every event after
that one), then each status change, and ends after the terminal event. Event ids are those of
``store.events``; the data of a terminal event is the whole task, of the others
``{"id", "status", "at"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request

from hatchery.domain.present import iso, task_json
from hatchery.domain.tasks import Task
from hatchery.errors import BadRequest, NotFound
from hatchery.services import Services
from hatchery.store import events
from hatchery.store import tasks as task_store

MAX_WAIT = 60
HEARTBEAT = 15.0  # seconds of silence after which a stream sends a comment, so proxies keep it
RETRY_MS = 2000  # how soon a browser's EventSource reconnects


def requested_wait(request: Request) -> int | None:
    """The seconds ``Prefer: wait=N`` asks for (``respond-async``: 0); None if it asks nothing."""
    header = request.headers.get("prefer")
    if not header:
        return None
    wait = None
    for preference in header.split(","):
        name, _, value = preference.split(";")[0].strip().partition("=")
        name, value = name.strip().lower(), value.strip().strip('"')
        if name == "respond-async":
            wait = 0
        elif name == "wait":
            if not (value.isascii() and value.isdigit()) or int(value) > MAX_WAIT:
                raise BadRequest(
                    f"Prefer: wait must be a whole number of seconds from 0 to {MAX_WAIT} "
                    f"(got {value!r})"
                )
            wait = int(value)
    return wait


def last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id")
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise BadRequest(f"Last-Event-ID must be the id of an event this stream sent (got {raw!r})")
    return int(raw)


async def read_task(services: Services, task_id: str, account_id: str) -> Task:
    task = await task_store.read(services.db.driver, task_id, account_id)
    if task is None:
        raise NotFound(f"Task not found: {task_id}")
    return task


async def _changed(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


async def until_terminal(services: Services, task_id: str, account_id: str, seconds: float) -> Task:
    """The account's task once it has ended, or as it is after ``seconds`` (0: as it is now).
    NotFound if it is not the account's."""
    if seconds <= 0:  # a plain poll: nothing to watch for
        return await read_task(services, task_id, account_id)
    deadline = time.monotonic() + seconds
    recheck = services.settings.poll_interval
    with services.notifier.watch(task_id) as changed:
        while True:
            changed.clear()
            task = await read_task(services, task_id, account_id)
            left = deadline - time.monotonic()
            if task.status.terminal or left <= 0:
                return task
            await _changed(changed, min(left, recheck))


# What an event's data is: the whole task for the terminal one, a little for the others.
Present = Callable[[Services, Task, events.TaskEvent], Awaitable[dict[str, Any]]]


async def egg_frame(services: Services, task: Task, event: events.TaskEvent) -> dict[str, Any]:
    """The Egg API's: the task (``task_json``), or ``{"id", "status", "at"}``."""
    if event.status.terminal:
        return task_json(task, services.settings.public_url)
    return {"id": task.id, "status": event.status.value, "at": iso(event.at)}


def _frame(event: events.TaskEvent, data: dict[str, Any]) -> bytes:
    """One event, named by the status its data shows (the dialect's word for it)."""
    body = json.dumps(data, separators=(",", ":"))
    name = data.get("status", event.status.value)
    return f"id: {event.id}\nevent: {name}\ndata: {body}\n\n".encode()


async def _next_events(
    services: Services, task: Task, after: int | None
) -> tuple[Task, list[events.TaskEvent]]:
    async with services.db.read() as conn:
        current = await task_store.get(conn, task.id) or task
        if after is None:
            return current, [await events.latest(conn, current)]
        return current, await events.since(conn, current, after)


async def stream(
    services: Services, task: Task, after: int | None, present: Present = egg_frame
) -> AsyncIterator[bytes]:
    """The task's events as Server-Sent Events: from ``after`` (a Last-Event-ID), or from its
    current status; ends after the terminal event. ``present`` makes each event's data."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    recheck = services.settings.poll_interval
    quiet_since = time.monotonic()
    with services.notifier.watch(task.id) as changed:
        while True:
            changed.clear()
            task, found = await _next_events(services, task, after)
            for event in found:
                yield _frame(event, await present(services, task, event))
                after, quiet_since = event.id, time.monotonic()
                if event.status.terminal:
                    return
            if task.status.terminal:  # the client already had the terminal event
                return
            if time.monotonic() - quiet_since >= HEARTBEAT:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            await _changed(changed, min(recheck, HEARTBEAT))
