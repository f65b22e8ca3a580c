"""What a scrape of a process's metrics reads: the exposition (``Exposition.render``), and the
whole system's gauges it adds (``SystemGauges``). ``observe.server`` serves it on a worker's port.

The system gauges (queue depth, oldest pending task, outbox backlog, workers alive) come from one
read transaction whose cost does not grow with the queue (``store.operator.system_state``), made
at a scrape only when the last one is older than the refresh interval, and by one scrape at a
time: a dozen Prometheus servers scraping every second still cost the database one read per
interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hatchery.observe.metrics import REGISTRY, SYSTEM
from hatchery.store import operator
from hatchery.store.db import Database, utcnow
from hatchery.store.workers import alive_since

if TYPE_CHECKING:
    from hatchery.settings import Settings

log = logging.getLogger("hatchery.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STALE_AFTER = 60.0  # seconds (or three refresh intervals) after which the system gauges go
RENDERED_FOR = 1.0  # seconds a rendered page answers every scrape


class SystemGauges(Collector):
    """The whole system's gauges, as of the last refresh (none before the first)."""

    def __init__(self, db: Database, *, refresh: float, heartbeat: float) -> None:
        self.db = db
        self.refresh_every = refresh
        self.heartbeat = heartbeat
        self.state: operator.SystemState | None = None
        self.read_at: datetime | None = None
        self._refreshed = -float("inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read the state again if it is older than the interval; a failed read keeps the last
        (the scrape still answers, with the process's own metrics)."""
        async with self._lock:
            if time.monotonic() - self._refreshed < self.refresh_every:
                return
            now = utcnow()
            try:
                async with self.db.read() as conn:
                    since = alive_since(now, self.heartbeat)
                    self.state = await operator.system_state(conn, now, since)
            except Exception as exc:
                log.warning("reading the queue's state for the metrics failed: %s", exc)
                return
            self.read_at, self._refreshed = now, time.monotonic()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges as last read; none once that read is stale (the database unreadable for
        a while): an alert on their absence fires, rather than one on their values never."""
        state, now = self.state, self.read_at
        if state is None or now is None or self._stale():
            return
        values: dict[str, list[tuple[list[str], float]]] = {
            "hatchery_queue_tasks": [
                (["pending"], state.pending),
                (["processing"], state.processing),
            ],
            "hatchery_queue_oldest_pending_age_seconds": [([], _age(now, state.oldest_pending_at))],
            "hatchery_webhook_backlog_messages": [([], state.outbox_pending)],
            "hatchery_webhook_oldest_due_age_seconds": [([], _age(now, state.oldest_due_at))],
            "hatchery_workers_alive": [([], state.workers_alive)],
        }
        for name, samples in values.items():
            documentation, label = SYSTEM[name]
            family = GaugeMetricFamily(name, documentation, labels=[label] if label else [])
            for labels, value in samples:
                family.add_metric(labels, value)
            yield family

    def _stale(self) -> bool:
        return time.monotonic() - self._refreshed > _stale_after(self.refresh_every)


def _stale_after(refresh: float) -> float:
    return max(3 * refresh, STALE_AFTER)


def _age(now: datetime, since: datetime | None) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


class Exposition:
    """This process's metrics and the system's, in Prometheus's text format."""

    def __init__(self, system: SystemGauges, rendered_for: float = RENDERED_FOR) -> None:
        self.system = system
        self.rendered_for = rendered_for
        self._system_registry = CollectorRegistry(auto_describe=False)
        self._system_registry.register(system)
        self._rendering = asyncio.Lock()
        self._rendered_at = -float("inf")
        self._page = b""

    @classmethod
    def of(cls, db: Database, settings: Settings) -> Exposition:
        """A process's exposition, its system gauges read from ``db`` as the settings say."""
        refresh = settings.metrics_refresh
        gauges = SystemGauges(db, refresh=refresh, heartbeat=settings.heartbeat_interval)
        return cls(gauges, min(RENDERED_FOR, refresh))

    async def render(self) -> bytes:
        """The page: rendered in a thread (a few milliseconds per thousand lines that would
        otherwise hold up the event loop), and kept ``rendered_for`` seconds for other scrapes
        (one second, or the refresh interval if shorter)."""
        async with self._rendering:
            if time.monotonic() - self._rendered_at >= self.rendered_for:
                await self.system.refresh()
                self._page = await asyncio.to_thread(self._generate)
                self._rendered_at = time.monotonic()
            return self._page

    def _generate(self) -> bytes:
        return generate_latest(REGISTRY) + generate_latest(self._system_registry)
