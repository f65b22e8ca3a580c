"""Runs one claimed task to its end: moderation, the model's providers with fallback, storing the
outputs, then completing or failing the task through the queue.

Fallback: the model's providers (from the catalog, in order) that can serve the task's values are
tried one after another. A retryable failure moves on to the next at once; when all have failed
that way, the list is tried again after a backoff (honouring the upstream's Retry-After), up to
``rounds`` times. A terminal failure (a refusal, invalid input) fails the task at once with the
upstream's reason. A provider whose circuit breaker is open is skipped.

An upstream job that runs (Veo, fal, Replicate) stores its handle on the task as soon as it is
accepted, then waits without holding a worker slot (``on_wait``). A poll that gets no usable
answer polls again; the job is given up (and cancelled upstream where possible) only when the
upstream says it failed or when it outlives the deadline. A task reclaimed after a crash polls
the stored handle again and never submits it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hatchery.domain.catalog import Catalog, Model
from hatchery.domain.moderation import MODERATION_ERROR, DenyList
from hatchery.domain.tasks import Task, TaskType
from hatchery.observe import logs, metrics, upstream
from hatchery.providers.base import (
    Artifact,
    Finished,
    Job,
    Provider,
    ProviderError,
    RetryableError,
    Running,
    TerminalError,
    UpstreamUnreachable,
)
from hatchery.providers.registry import fitted, servable
from hatchery.storage import CONTENT_TYPES, ObjectStore, StorageUnavailable, output_key
from hatchery.store.queue import TaskQueue, lease_of
from hatchery.store.tasks import Lease
from hatchery.worker.gate import ProviderGate
from hatchery.worker.outputs import OutputPolicy
from hatchery.worker.progress import Progress

log = logging.getLogger("hatchery.worker")

OnWait = Callable[[], None]
POLL_JITTER = 0.2
STORE_RETRIES = (1.0, 2.0, 4.0)  # seconds between attempts to store an output
PARALLEL_PUTS = 8  # outputs of one task stored at once


def _nothing() -> None:
    return None


class LeaseLost(Exception):
    """The task's lease went to someone else while it ran: stop, and write nothing more."""


@dataclass(frozen=True)
class FallbackPolicy:
    rounds: int = 2  # passes over the provider list
    backoff: float = 2.0  # seconds before the second pass, doubling after
    max_backoff: float = 60.0
    poll_max: float = 10.0  # the longest wait between two polls of an upstream job
    deadline: float = 1800.0  # an upstream job still running after this is given up

    def spread(self, delay: float) -> float:
        """The wait before a poll, up to a fifth shorter at random (never longer than asked): jobs
        submitted together do not keep polling together, in bursts."""
        return delay * random.uniform(1.0 - POLL_JITTER, 1.0)

    def pause(self, round_: int, last: ProviderError | None) -> float:
        delay = min(self.max_backoff, self.backoff * 2.0 ** (round_ - 1))
        if last is not None and last.retry_after is not None:
            delay = max(delay, min(last.retry_after, self.max_backoff))
        return delay * random.uniform(0.8, 1.2)


@dataclass
class Attempt:
    """One run of one task: what every step needs to know."""

    task: Task
    lease: Lease
    job: Job
    progress: Progress
    on_wait: OnWait


class TaskRunner:
    def __init__(
        self,
        queue: TaskQueue,
        catalog: Catalog,
        providers: Mapping[str, Provider],
        storage: ObjectStore,
        denylist: DenyList,
        *,
        gates: Mapping[str, ProviderGate] | None = None,
        policy: FallbackPolicy | None = None,
        outputs: OutputPolicy | None = None,
    ) -> None:
        self.queue = queue
        self.catalog = catalog
        self.providers = providers
        self.storage = storage
        self.denylist = denylist
        given = gates or {}
        self.gates = {name: given.get(name) or ProviderGate.open(name) for name in providers}
        self.policy = policy or FallbackPolicy()
        self.outputs = outputs or OutputPolicy()

    async def run(self, task: Task, on_wait: OnWait = _nothing) -> None:
        lease = lease_of(task)
        model = self.catalog.for_task(task.model, task.type)
        if model is None:
            await self.queue.fail(
                lease, f"generation failed: model {task.model!r} is not in the catalog"
            )
            return
        if self.denylist.matches(task.params.get("prompt")):
            await self.queue.fail(lease, MODERATION_ERROR)
            return
        kind = model.type.name.lower()
        job = Job.from_params(task.id, model.name, kind, task.params, model.routes)
        progress = Progress(task.upstream, lambda record: self._save(lease, record))
        try:
            await self._run(Attempt(task, lease, job, progress, on_wait), model)
        except LeaseLost:
            log.warning("task %s: attempt %d lost its lease; stopped", task.id, lease.attempt)

    async def _run(self, attempt: Attempt, model: Model) -> None:
        started = time.monotonic()
        try:
            provider, result = await self._generate(attempt, model)
        except ProviderError as exc:
            tried = {"attempts": attempt.progress.attempts}
            await self.queue.fail(attempt.lease, f"generation failed: {exc}", tried)
            return
        with logs.bound(provider=provider):
            await self._finish(attempt, provider, result, started)

    async def _finish(
        self, attempt: Attempt, provider: str, result: Finished, started: float
    ) -> None:
        """The outputs marked, stored and recorded; the task completed and charged."""
        job = fitted(self.providers[provider], attempt.job)  # the size it made
        try:
            result = await self.outputs.finish(attempt.task, result)
        except ValueError as exc:  # an output the watermark cannot be drawn on
            await self.queue.fail(attempt.lease, f"generation failed: {exc}")
            return
        try:
            keys = await self._put_outputs(attempt.task, result)
        except StorageUnavailable as exc:  # not the task's fault: it runs again later, resuming
            log.warning("task %s: outputs not stored (%s); back to the queue", attempt.task.id, exc)
            await self.queue.release(attempt.lease)
            return
        records = self.outputs.files(attempt.task, job, result, keys)
        output, usage = _outcome(job, result, keys)
        output["file_ids"] = [record["id"] for record in records]
        elapsed = int((time.monotonic() - started) * 1000)
        usage.update(provider=provider, attempts=attempt.progress.attempts, elapsed_ms=elapsed)
        done = await self.queue.complete(attempt.lease, output=output, usage=usage, files=records)
        if done is None:
            raise LeaseLost
        log.info(
            "task %s completed by %s (attempt %d, worker %s, %d ms)",
            attempt.task.id,
            provider,
            attempt.lease.attempt,
            attempt.lease.owner,
            elapsed,
        )

    async def _save(self, lease: Lease, record: dict[str, Any]) -> None:
        if not await self.queue.save_upstream(lease, record):
            raise LeaseLost

    def _candidates(self, model: Model, job: Job) -> list[str]:
        """The model's providers that can serve the job's values (checked at submit too)."""
        usable, why = servable(model, self.providers, job)
        if not usable:
            raise TerminalError(f"no provider of {model.name} can make this request: {why}")
        return usable

    async def _generate(self, attempt: Attempt, model: Model) -> tuple[str, Finished]:
        names = self._candidates(model, attempt.job)
        last: ProviderError | None = None
        for round_ in range(self.policy.rounds):
            if round_:
                await asyncio.sleep(self.policy.pause(round_, last))
            for name in _resume_first(names, attempt.progress):
                try:
                    return name, await self._try(attempt, name)
                except RetryableError as exc:
                    log.warning("task %s: provider %s failed: %s", attempt.task.id, name, exc)
                    last = exc
        assert last is not None
        if len(names) > 1:
            raise RetryableError(f"all {len(names)} providers failed; the last: {last}")
        raise last

    async def _try(self, attempt: Attempt, name: str) -> Finished:
        """One provider's attempt at the task, through its gate (breaker and concurrency)."""
        gate = self.gates[name]
        with logs.bound(provider=name):
            if not gate.breaker.allow():
                skipped = f"{name}: skipped, {gate.breaker.describe()}"
                _record(gate, "skipped")
                await attempt.progress.ended(name, "skipped", skipped)
                raise RetryableError(skipped)
            return await self._through(attempt, name, gate)

    async def _through(self, attempt: Attempt, name: str, gate: ProviderGate) -> Finished:
        started = 0.0
        try:
            async with gate.slot():
                started = time.monotonic()  # the provider's time, not the wait for a slot
                result = await self._drive(attempt, self.providers[name], gate)
        except RetryableError as exc:
            gate.breaker.failure()
            _record(gate, "failed")
            await _abandon(self.providers[name], attempt)
            await attempt.progress.ended(name, "failed", str(exc))
            raise
        except TerminalError as exc:
            gate.breaker.release()
            _record(gate, "refused")
            await attempt.progress.ended(name, "refused", str(exc))
            raise
        except BaseException:
            gate.breaker.release()
            raise
        _record(gate, "completed", time.monotonic() - started)
        await attempt.progress.ended(name, "completed")
        return result

    async def _drive(self, attempt: Attempt, provider: Provider, gate: ProviderGate) -> Finished:
        """Submit, or resume polling the handle a previous attempt stored; then poll to the end."""
        job, progress = fitted(provider, attempt.job), attempt.progress
        handle = progress.resumable(provider.name)
        if handle is None:
            step = await upstream.call(provider.name, "submit", provider.submit(job))
        else:
            log.info("task %s: resuming %s job %s", job.task_id, provider.name, handle)
            step = Running(handle, poll_after=0)
        gate.breaker.success()  # the upstream accepted the job (or we resume one it did)
        delay = 0.0
        while isinstance(step, Running):
            if step.upstream != progress.handle:
                await _hold(provider, job, progress, step.upstream)
            attempt.on_wait()
            delay = min(max(delay * 1.5, step.poll_after), self.policy.poll_max)
            await asyncio.sleep(self.policy.spread(delay))
            self._check_deadline(provider.name, progress)
            step = await _poll(provider, job, step.upstream)
        return step

    def _check_deadline(self, provider: str, progress: Progress) -> None:
        if progress.elapsed() <= self.policy.deadline:
            return
        raise RetryableError(  # _try cancels the job (_abandon)
            f"{provider}: the upstream job did not finish within "
            f"{self.policy.deadline:g}s; cancelled"
        )

    async def _put_outputs(self, task: Task, result: Finished) -> list[str]:
        """Each output into the object store (``outputs/<token>/<n>.<ext>``), several at once, a
        store that fails tried again a few times; the keys, in order."""
        slots = asyncio.Semaphore(PARALLEL_PUTS)

        async def put(index: int, artifact: Artifact) -> str:
            key = output_key(
                task.file_token, index, artifact.extension, tool=task.type is TaskType.TOOL
            )
            async with slots:
                await self._put(task, key, artifact)
            return key

        return list(await asyncio.gather(*(put(i, a) for i, a in enumerate(result.artifacts))))

    async def _put(self, task: Task, key: str, artifact: Artifact) -> None:
        content_type = CONTENT_TYPES[artifact.extension]
        for delay in (*STORE_RETRIES, None):
            try:
                await self.storage.put(key, artifact.data, content_type)
                return
            except StorageUnavailable as exc:
                if delay is None:
                    raise
                log.warning("task %s: storing an output failed (%s); again", task.id, exc)
                await asyncio.sleep(delay)


def _record(gate: ProviderGate, outcome: str, seconds: float = 0.0) -> None:
    """One try at a provider: in its gate's window (the admin's view) and in the metrics."""
    gate.stats.record(outcome, seconds)
    metrics.provider_attempt(gate.name, outcome)


def _outcome(job: Job, result: Finished, keys: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's output (its files as ``<token>/<name>``) and its usage."""
    output: dict[str, Any] = {
        "files": [key.removeprefix("outputs/") for key in keys],
        "resolution": job.resolution,
    }
    if job.kind == "video" and job.tool is None:
        output["duration_seconds"] = job.duration
    timed = job.kind in ("video", "audio")
    usage: dict[str, Any] = {
        **result.usage,
        "outputs": len(result.artifacts),
        "pixels": sum((a.width or 0) * (a.height or 0) for a in result.artifacts),
        "seconds": sum(a.seconds or 0 for a in result.artifacts) if timed else None,
        "bytes": sum(len(a.data) for a in result.artifacts),
    }
    return output, usage


def _resume_first(names: list[str], progress: Progress) -> list[str]:
    """The providers in catalog order, except that one with a job in flight comes first."""
    if progress.provider in names and progress.handle:
        return [progress.provider, *(n for n in names if n != progress.provider)]
    return names


async def _abandon(provider: Provider, attempt: Attempt) -> None:
    """Cancel what a provider still runs of a job it failed (the other predictions of a
    four-clip execution, one of which failed): the next provider makes them all again."""
    handle = attempt.progress.resumable(provider.name)
    if handle is None:
        return
    try:
        await upstream.call(
            provider.name, "cancel", provider.cancel(fitted(provider, attempt.job), handle)
        )
    except Exception as exc:  # best effort: the job has failed either way
        log.warning("task %s: cancelling at %s failed: %s", attempt.task.id, provider.name, exc)


async def _hold(provider: Provider, job: Job, progress: Progress, handle: dict[str, Any]) -> None:
    """Store the handle of the job the upstream accepted. If the task is no longer ours (it was
    cancelled, or taken back), nobody will ever poll that job: cancel it upstream."""
    try:
        await progress.running(provider.name, handle)
    except LeaseLost:
        with contextlib.suppress(Exception):
            await upstream.call(provider.name, "cancel", provider.cancel(job, handle))
        raise


async def _poll(provider: Provider, job: Job, handle: dict[str, Any]) -> Finished | Running:
    """One poll; no usable answer means ask again later, not that the upstream job failed."""
    try:
        return await upstream.call(provider.name, "poll", provider.poll(job, handle))
    except UpstreamUnreachable as exc:
        log.warning("task %s: polling %s: %s; polling again", job.task_id, provider.name, exc)
        return Running(handle, poll_after=exc.retry_after or 0)
