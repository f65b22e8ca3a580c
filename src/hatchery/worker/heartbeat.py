"""A worker process's heartbeat: every ``HATCHERY_HEARTBEAT_INTERVAL`` it writes its row in
``workers`` (the tasks it runs, each provider's breaker and recent figures), which the admin API's
queue and provider views read; on a clean stop it removes the row."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping

from hatchery.store import workers
from hatchery.store.db import Database, utcnow
from hatchery.worker.gate import ProviderGate
from hatchery.worker.pool import Worker

log = logging.getLogger("hatchery.worker")


class Heartbeat:
    def __init__(
        self, db: Database, worker: Worker, gates: Mapping[str, ProviderGate], every: float
    ) -> None:
        self.db = db
        self.worker = worker
        self.gates = gates
        self.every = every
        self.started_at = utcnow()

    def row(self) -> workers.Beat:
        running, waiting = self.worker.load()
        return workers.Beat(
            id=self.worker.owner,
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            started_at=self.started_at,
            heartbeat_at=utcnow(),
            concurrency=self.worker.concurrency,
            running=running,
            waiting=waiting,
            providers={name: gate.state() for name, gate in sorted(self.gates.items())},
        )

    async def run(self) -> None:
        try:
            while True:
                await self.beat()
                await asyncio.sleep(self.every)
        finally:
            with contextlib.suppress(Exception):
                async with self.db.write() as conn:
                    await workers.remove(conn, self.worker.owner)

    async def beat(self) -> None:
        try:
            async with self.db.write() as conn:
                await workers.beat(conn, self.row())
        except Exception as exc:  # the database away: the next beat tries again
            log.warning("worker %s: heartbeat not written (%s)", self.worker.owner, exc)
