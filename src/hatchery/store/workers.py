"""Queries on the worker heartbeats (``workers``): one row per running worker process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.store.tables import workers

FORGOTTEN_AFTER = timedelta(days=1)  # a silent worker's row is removed after this
ALIVE_BEATS = 3  # a worker is alive while its last heartbeat is younger than this many intervals


def alive_since(now: datetime, heartbeat: float) -> datetime:
    """The oldest heartbeat of a live worker, for heartbeats every ``heartbeat`` seconds."""
    return now - timedelta(seconds=ALIVE_BEATS * heartbeat)


@dataclass(frozen=True)
class Beat:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    concurrency: int
    running: int
    waiting: int
    providers: dict[str, Any]  # name: ProviderGate.state()


async def beat(conn: AsyncConnection, row: Beat) -> None:
    """Write the worker's row (the first beat makes it); forget workers long silent."""
    values = asdict(row)
    updated = await conn.execute(workers.update().where(workers.c.id == row.id).values(**values))
    if updated.rowcount == 0:
        await conn.execute(workers.insert().values(**values))
        await conn.execute(
            workers.delete().where(workers.c.heartbeat_at < row.heartbeat_at - FORGOTTEN_AFTER)
        )


async def remove(conn: AsyncConnection, worker_id: str) -> None:
    await conn.execute(workers.delete().where(workers.c.id == worker_id))


async def listing(conn: AsyncConnection) -> list[Beat]:
    query = sa.select(workers).order_by(workers.c.host, workers.c.started_at)
    return [_beat(row._mapping) for row in await conn.execute(query)]


def _beat(m: Mapping[Any, Any]) -> Beat:
    return Beat(**{name: m[name] for name in Beat.__dataclass_fields__})
