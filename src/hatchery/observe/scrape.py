"""How a process's metrics are read: the exposition (``Exposition.render``), the whole system's
gauges it adds, and the small HTTP server a worker process answers scrapes on.

The system gauges (queue depth, oldest pending task, outbox backlog, workers alive) come from one
read transaction whose cost does not grow with the queue (``store.operator.system_state``), made
at a scrape only when the last one is older than the refresh interval, and by one scrape at a
time: a dozen Prometheus servers scraping every second still cost the database one read per
interval.

Rendering runs on the event loop, but off the request path: the API serves ``GET /metrics`` as a
plain route, and a worker serves it on its own port (``MetricsServer``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
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
        state, now = self.state, self.read_at
        if state is None or now is None:
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


def _age(now: datetime, since: datetime | None) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


class Exposition:
    """This process's metrics and the system's, in Prometheus's text format."""

    def __init__(self, system: SystemGauges) -> None:
        self.system = system
        self._system_registry = CollectorRegistry(auto_describe=False)
        self._system_registry.register(system)

    @classmethod
    def of(cls, db: Database, settings: Settings) -> Exposition:
        """A process's exposition, its system gauges read from ``db`` as the settings say."""
        return cls(
            SystemGauges(
                db, refresh=settings.metrics_refresh, heartbeat=settings.heartbeat_interval
            )
        )

    async def render(self) -> bytes:
        await self.system.refresh()
        return generate_latest(REGISTRY) + generate_latest(self._system_registry)


def authorized(token: str, header: str | None) -> bool:
    """Whether a scrape may read the metrics: always without a token, else with it as a bearer
    token (compared in constant time)."""
    if not token:
        return True
    scheme, _, given = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


Render = Callable[[], Awaitable[bytes]]
MAX_HEAD = 8192  # bytes of a scrape's request line and headers read


class MetricsServer:
    """A worker process's metrics on ``host:port`` (``GET /metrics``): HTTP/1.1, one request per
    connection, no body read; 404 for another path, 401 without the token when one is set."""

    def __init__(self, render: Render, host: str, port: int, token: str = "") -> None:
        self.render, self.host, self.port, self.token = render, host, port, token
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockets = self._server.sockets
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status, body = await self._answer(head[:MAX_HEAD].decode("latin-1"))
            content_type = CONTENT_TYPE if status == "200 OK" else "text/plain; charset=utf-8"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    async def _answer(self, head: str) -> tuple[str, bytes]:
        request, *lines = head.split("\r\n")
        method, _, rest = request.partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if method != "GET" or path != "/metrics":
            return "404 Not Found", b"the metrics are at GET /metrics\n"
        headers = dict(line.partition(":")[::2] for line in lines if ":" in line)
        given = next((v.strip() for k, v in headers.items() if k.lower() == "authorization"), None)
        if not authorized(self.token, given):
            return "401 Unauthorized", b"a bearer token is needed (HATCHERY_METRICS_TOKEN)\n"
        try:
            return "200 OK", await self.render()
        except Exception:
            log.exception("rendering the metrics failed")
            return "500 Internal Server Error", b"the metrics could not be rendered\n"
