"""The background side of a server or worker process: task workers, the reaper, webhook delivery,
file processing and the file janitor, the worker's heartbeat, the watch on the model routes, the
event loop's watch, and, on PostgreSQL, the listener that turns the database's notifications into
wake-ups. A worker's load and its providers' breakers are read by the metrics at each scrape."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from hatchery.api.videogen import hooks
from hatchery.domain.webhooks import Schedule, parse_schedule
from hatchery.files.ingest import FileProcessor, Limits
from hatchery.files.janitor import FileJanitor
from hatchery.observe import metrics
from hatchery.services import Services
from hatchery.store.notify import PgListener
from hatchery.webhooks.delivery import Schedules, WebhookDispatcher
from hatchery.worker.gate import BreakerState, CircuitBreaker, ProviderGate
from hatchery.worker.heartbeat import Heartbeat
from hatchery.worker.loopwatch import LoopWatch
from hatchery.worker.outputs import OutputPolicy
from hatchery.worker.pool import Worker
from hatchery.worker.reaper import Reaper
from hatchery.worker.runner import FallbackPolicy, TaskRunner

log = logging.getLogger("hatchery")

BREAKER_CODES = {BreakerState.CLOSED: 0.0, BreakerState.HALF_OPEN: 1.0, BreakerState.OPEN: 2.0}


class Background:
    def __init__(self, services: Services) -> None:
        s = services.settings
        runner = TaskRunner(
            services.queue,
            services.catalog,
            services.providers,
            services.storage,
            services.denylist,
            gates={
                name: ProviderGate(
                    name,
                    s.provider_concurrency,
                    CircuitBreaker(s.breaker_failures, s.breaker_cooldown),
                )
                for name in services.providers
                if name != "local"  # the renderer needs neither: it gets an open gate
            },
            policy=FallbackPolicy(
                rounds=s.provider_rounds,
                backoff=s.provider_backoff,
                poll_max=s.upstream_poll_max,
                deadline=s.upstream_deadline,
            ),
            outputs=OutputPolicy(s.watermark_text, s.temporary_file_hours),
        )
        self.worker = Worker(
            services.queue,
            runner,
            services.notifier,
            concurrency=s.workers,
            poll_interval=s.poll_interval,
            lease_seconds=s.lease_seconds,
            grace=s.shutdown_grace,
            max_in_flight=s.max_in_flight,
        )
        self.reaper = Reaper(
            services.queue, interval=s.reaper_interval, max_attempts=s.max_attempts
        )
        self.dispatcher = WebhookDispatcher(
            services.outbox,
            services.http,
            services.notifier,
            owner=self.worker.owner,
            schedules=Schedules(
                url=Schedule.exponential(
                    s.webhook_max_retries,
                    s.webhook_backoff_base,
                    s.webhook_backoff_max,
                    s.webhook_timeout,
                ),
                endpoint=Schedule(
                    parse_schedule(s.webhook_endpoint_schedule), s.webhook_endpoint_timeout
                ),
            ),
            allow_private=s.allow_private_urls,
            poll_interval=s.poll_interval,
            renderers=hooks.renderers(services),  # the payloads with signed URLs, made fresh
        )
        self.files = FileProcessor(
            services.db,
            services.storage,
            services.notifier,
            owner=self.worker.owner,
            limits=Limits(s.max_upload_bytes, poll_interval=s.poll_interval),
        )
        self.janitor = FileJanitor(services.files, s.janitor_interval)
        self.heartbeat = Heartbeat(services.db, self.worker, runner.gates, s.heartbeat_interval)
        self.routes = services.routes
        dsn = services.db.listen_dsn()
        self.listener = PgListener(dsn, services.notifier) if dsn else None
        self.grace = s.shutdown_grace
        self._tasks: list[asyncio.Task[None]] = []
        self._beating: asyncio.Task[None] | None = None
        self._gates = runner.gates
        self._unwatch: list[Callable[[], None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.worker.run(), name="worker"),
            asyncio.create_task(self.reaper.run(), name="reaper"),
            asyncio.create_task(self.dispatcher.run(), name="webhooks"),
            asyncio.create_task(self.files.run(), name="files"),
            asyncio.create_task(self.janitor.run(), name="file janitor"),
            asyncio.create_task(LoopWatch(self.worker.load).run(), name="loop watch"),
            asyncio.create_task(self.routes.run(), name="routes"),
        ]
        self._beating = asyncio.create_task(self.heartbeat.run(), name="heartbeat")
        if self.listener:
            self._tasks.append(asyncio.create_task(self.listener.run(), name="listener"))
        self._unwatch = [
            metrics.IN_FLIGHT.watch(self._in_flight),
            metrics.BREAKER.watch(self._breakers),
        ]

    def _in_flight(self) -> list[tuple[str, float]]:
        in_flight, waiting = self.worker.load()
        return [("running", in_flight - waiting), ("waiting", waiting)]

    def _breakers(self) -> list[tuple[str, float]]:
        gates = self._gates.items()
        return [(name, BREAKER_CODES[gate.breaker.current()]) for name, gate in gates]

    async def stop(self) -> None:
        """Stop claiming tasks and webhooks; running tasks and webhook attempts in flight get the
        shutdown grace to finish (at the same time); then everything else stops."""
        for unwatch in self._unwatch:
            unwatch()
        worker, *others = self._tasks
        self.worker.stop()
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.gather(worker, self.dispatcher.drain(self.grace))
        if self._beating:  # it beat while the worker drained; now its row goes
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)


class Listening:
    """What an API process without workers runs in the background: on PostgreSQL, the listener,
    so that waiting requests and event streams learn at once of changes other processes make
    (elsewhere they read the task again every poll interval); the model routes' watch; and the
    event loop's (for the metrics)."""

    def __init__(self, services: Services) -> None:
        dsn = services.db.listen_dsn()
        self.listener = PgListener(dsn, services.notifier) if dsn else None
        self.routes = services.routes
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.routes.run(), name="routes"),
            asyncio.create_task(LoopWatch().run(), name="loop watch"),
        ]
        if self.listener:
            self._tasks.append(asyncio.create_task(self.listener.run(), name="listener"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
