"""Queries on the model routes (``model_routes``): each model's and tool's route as JSON
(``domain.routes.Route``), where it came from, and its revision.

Writers hold :data:`LOCK` (``Database.lock``) so that revisions are taken one at a time; each
change takes the next revision. Rows are never deleted (a route the catalog file no longer has is
marked :data:`REMOVED`), so the sum of all revisions grows with every change: it is what a process
compares (:func:`fingerprint`) to know that it must read the routes again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.routes import Kind, Route
from hatchery.store.db import utcnow
from hatchery.store.tables import model_routes

LOCK = 0x726F75746573  # pg_advisory_xact_lock key: one change of routes at a time
CATALOG = "catalog"  # as the catalog file (or the built-in catalog) has it
ADMIN = "admin"  # changed by an operator: kept as it is when the file changes
REMOVED = "removed"  # the catalog file no longer has it: nothing runs by it


@dataclass(frozen=True)
class StoredRoute:
    route: Route
    source: str
    revision: int
    updated_at: datetime
    updated_by: str | None


Fingerprint = tuple[int, int]  # (how many, the sum of their revisions)


async def fingerprint(conn: AsyncConnection) -> Fingerprint:
    row = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(model_routes.c.revision), 0))
        )
    ).one()
    return int(row[0]), int(row[1])


async def load(conn: AsyncConnection) -> list[StoredRoute]:
    query = sa.select(model_routes).order_by(model_routes.c.kind, model_routes.c.name)
    return [_stored(row._mapping) for row in await conn.execute(query)]


async def get(conn: AsyncConnection, kind: Kind, name: str) -> StoredRoute | None:
    query = sa.select(model_routes).where(model_routes.c.kind == kind, model_routes.c.name == name)
    row = (await conn.execute(query)).first()
    return _stored(row._mapping) if row else None


async def _next_revision(conn: AsyncConnection) -> int:
    top = (await conn.execute(sa.select(sa.func.max(model_routes.c.revision)))).scalar()
    return int(top or 0) + 1


async def put(conn: AsyncConnection, route: Route, source: str, by: str | None) -> None:
    """Insert or replace ``route`` (the caller holds :data:`LOCK`)."""
    values = {
        "spec": route.to_json(),
        "source": source,
        "revision": await _next_revision(conn),
        "updated_at": utcnow(),
        "updated_by": by,
    }
    where = (model_routes.c.kind == route.kind, model_routes.c.name == route.name)
    updated = await conn.execute(model_routes.update().where(*where).values(**values))
    if updated.rowcount == 0:
        await conn.execute(model_routes.insert().values(kind=route.kind, name=route.name, **values))


async def remove(conn: AsyncConnection, route: Route) -> None:
    """Mark the route as no longer in the catalog file (kept, so revisions only grow)."""
    await put(conn, route, REMOVED, None)


def _stored(m: Mapping[Any, Any]) -> StoredRoute:
    return StoredRoute(
        Route.from_json(m["kind"], m["name"], m["spec"]),
        m["source"],
        m["revision"],
        m["updated_at"],
        m["updated_by"],
    )
