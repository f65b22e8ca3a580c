"""Runs one claimed task to its end: moderation, the model's providers in order, storing the
outputs, then completing or failing the task through the queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from hatchery.domain.catalog import Catalog, Model
from hatchery.domain.moderation import MODERATION_ERROR, DenyList
from hatchery.domain.tasks import Task
from hatchery.providers.base import Finished, Job, Provider, ProviderError, Running
from hatchery.storage import FileStore
from hatchery.store.queue import TaskQueue, lease_of
from hatchery.store.tasks import Lease

log = logging.getLogger("hatchery.worker")


class TaskRunner:
    def __init__(
        self,
        queue: TaskQueue,
        catalog: Catalog,
        providers: Mapping[str, Provider],
        files: FileStore,
        denylist: DenyList,
    ) -> None:
        self.queue = queue
        self.catalog = catalog
        self.providers = providers
        self.files = files
        self.denylist = denylist

    async def run(self, task: Task) -> None:
        lease = lease_of(task)
        model = self.catalog.get(task.model)
        if model is None:
            await self.queue.fail(
                lease, f"generation failed: model {task.model!r} is not in the catalog"
            )
            return
        if self.denylist.matches(task.params.get("prompt")):
            await self.queue.fail(lease, MODERATION_ERROR)
            return
        job = Job.from_params(task.id, model.name, model.type.name.lower(), task.params)
        started = time.monotonic()
        try:
            provider, result = await self._generate(task, lease, model, job)
        except ProviderError as exc:
            await self.queue.fail(lease, f"generation failed: {exc}")
            return
        output, usage = await asyncio.to_thread(self._store, task, job, result)
        usage.update(provider=provider, elapsed_ms=int((time.monotonic() - started) * 1000))
        if await self.queue.complete(lease, output=output, usage=usage) is None:
            log.warning(
                "task %s: attempt %d lost its lease; result discarded", task.id, lease.attempt
            )
            return
        log.info(
            "task %s completed (attempt %d, worker %s, %d ms)",
            task.id,
            lease.attempt,
            lease.owner,
            usage["elapsed_ms"],
        )

    async def _generate(
        self, task: Task, lease: Lease, model: Model, job: Job
    ) -> tuple[str, Finished]:
        """The model's providers in order (checked at start-up); a retryable failure moves on."""
        last: ProviderError | None = None
        for name in model.providers:
            try:
                return name, await self._drive(self.providers[name], task, lease, job)
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                log.warning("task %s: provider %s failed: %s", task.id, name, exc)
                last = exc
        raise last or ProviderError(f"model {model.name!r} has no providers")

    async def _drive(self, provider: Provider, task: Task, lease: Lease, job: Job) -> Finished:
        """Submit, or resume polling the upstream handle a previous attempt stored."""
        stored = task.upstream or {}
        handle = stored.get("handle") if stored.get("provider") == provider.name else None
        step = await (provider.poll(job, handle) if handle else provider.submit(job))
        while isinstance(step, Running):
            if step.upstream != handle:
                handle = step.upstream
                await self.queue.save_upstream(lease, {"provider": provider.name, "handle": handle})
            await asyncio.sleep(step.poll_after)
            step = await provider.poll(job, handle)
        return step

    def _store(
        self, task: Task, job: Job, result: Finished
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        paths = [
            self.files.save(task.file_token, i, a.extension, a.data)
            for i, a in enumerate(result.artifacts)
        ]
        output: dict[str, Any] = {"files": paths}
        if job.kind == "video":
            output["duration_seconds"] = job.duration
        usage: dict[str, Any] = {
            **result.usage,
            "outputs": len(result.artifacts),
            "pixels": sum(a.width * a.height for a in result.artifacts),
            "seconds": sum(a.seconds or 0 for a in result.artifacts)
            if job.kind == "video"
            else None,
            "bytes": sum(len(a.data) for a in result.artifacts),
        }
        return output, usage
