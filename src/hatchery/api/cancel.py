"""Cancelling a task: the queue makes it ``cancelled`` (releasing its reservation and queueing its
webhook, in one transaction), then the upstream job it had running, if any, is cancelled where the
vendor allows it. The worker running it loses its lease: it finds out when it next renews or
writes, stops, and writes nothing more (and cancels an upstream job it had just started)."""

from __future__ import annotations

import asyncio
import logging

from hatchery.domain.tasks import Task
from hatchery.observe import upstream
from hatchery.providers.base import Job
from hatchery.services import Services

log = logging.getLogger("hatchery.api")

UPSTREAM_CANCEL_TIMEOUT = 10.0


async def cancel(services: Services, account_id: str, task_id: str) -> Task:
    task = await services.queue.cancel(task_id, account_id)
    await stop_upstream(services, task)
    return task


async def stop_upstream(services: Services, task: Task) -> None:
    """Best effort: a vendor that cannot be reached is logged, and the task stays cancelled."""
    record = task.upstream or {}
    provider = services.providers.get(str(record.get("provider")))
    handle = record.get("handle")
    if provider is None or not isinstance(handle, dict):
        return
    job = Job.from_params(task.id, task.model, task.type.name.lower(), task.params)
    try:
        async with asyncio.timeout(UPSTREAM_CANCEL_TIMEOUT):
            await upstream.call(provider.name, "cancel", provider.cancel(job, handle))
    except Exception as exc:
        log.warning("task %s: cancelling the %s job failed: %s", task.id, provider.name, exc)
    else:
        log.info("task %s: cancelled its %s job %s", task.id, provider.name, handle)
