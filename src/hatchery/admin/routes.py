"""The model routes of one process: kept in the database, applied to its catalog.

At start the catalog file (or the built-in catalog) seeds the table: a route it has that the
table lacks is added, and a route still as the file made it (``source`` catalog) is brought up to
date with the file, or marked removed when the file no longer has it; a route an operator changed
(``source`` admin) stays as they left it, until :meth:`RouteBook.reset`. Each write the seeding
makes to a table that had routes is in the audit log, by ``catalog:<host>``. Then, and whenever
the routes change (a notification on PostgreSQL; everywhere, a check of their revisions every
``HATCHERY_ROUTES_REFRESH`` seconds), the process reads them and runs by them: each route's
enabled providers that this process has.

A change (:meth:`RouteBook.change`) is checked before it is written: for what no server could run
(``domain.routes``), for what this one has (a provider that is not configured, or does not make
the model), and against the live workers' heartbeats (a worker that has none of the enabled
providers would fail the model's tasks). It is written with its audit entry in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.admin import audit
from hatchery.admin.audit import Actor
from hatchery.domain.catalog import Catalog, CatalogError, Model
from hatchery.domain.routes import Kind, Route, RouteChange
from hatchery.errors import Conflict, NotFound, ValidationFailed
from hatchery.providers.base import Provider
from hatchery.providers.registry import provider_problem
from hatchery.store import routes as store
from hatchery.store import workers
from hatchery.store.db import Database, utcnow
from hatchery.store.notify import ROUTES, Notifier
from hatchery.store.routes import StoredRoute

log = logging.getLogger("hatchery.routes")

Key = tuple[Kind, str]
Edit = RouteChange | Callable[[Route], RouteChange]  # a change, or one made from the route


def _key(route: Route) -> Key:
    return route.kind, route.name


class RouteBook:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        providers: Mapping[str, Provider],
        notifier: Notifier,
        *,
        refresh_every: float = 5.0,
        heartbeat: float = 10.0,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.providers = providers
        self.notifier = notifier
        self.refresh_every = refresh_every
        self.heartbeat = heartbeat
        # what the catalog file says, kept to seed the table and to reset a route to
        self.seed: dict[Key, Route] = {
            _key(route): route for route in map(Route.of, catalog.everything())
        }
        self._order = {key: i for i, key in enumerate(self.seed)}
        self._seen: store.Fingerprint | None = None
        self._reading = asyncio.Lock()
        self._warned: set[str] = set()

    async def start(self) -> None:
        """Seed the table from the catalog file, then run by what it holds."""
        seeder = Actor(f"catalog:{socket.gethostname()}", "catalog")
        async with self.db.write() as conn:
            await self.db.lock(conn, store.LOCK)
            rows = {_key(row.route): row for row in await store.load(conn)}
            for key, route in self.seed.items():
                row = rows.get(key)
                if row is None or (row.source != store.ADMIN and row.route != route):
                    await store.put(conn, route, store.CATALOG, seeder.name)
                    if rows:  # the first seeding of a new table is not news
                        before = None if row is None else row.route
                        await _audit(conn, seeder, "route.seed", route, before, route)
            for key, row in rows.items():
                if row.source == store.CATALOG and key not in self.seed:
                    await store.remove(conn, row.route)
                    await _audit(conn, seeder, "route.remove", row.route, row.route, None)
        await self.refresh()

    async def run(self) -> None:
        """Read the routes again whenever they change."""
        while True:
            await self.notifier.wait(ROUTES, self.refresh_every)
            try:
                await self.refresh()
            except Exception:  # the database away: the routes stay as they are, try again
                log.warning("cannot read the model routes; keeping the current ones", exc_info=True)

    async def refresh(self) -> bool:
        """Read the routes if they changed since the last read, and run by them (one read at a
        time, so that an older read never lands after a newer one)."""
        async with self._reading:
            async with self.db.read() as conn:
                if await store.fingerprint(conn) == self._seen:
                    return False
                rows = await store.load(conn)
            self._seen = len(rows), sum(row.revision for row in rows)
            self._apply([row for row in rows if row.source != store.REMOVED])
            return True

    async def listing(self) -> list[StoredRoute]:
        async with self.db.read() as conn:
            return [row for row in await store.load(conn) if row.source != store.REMOVED]

    async def get(self, kind: Kind, name: str) -> StoredRoute:
        async with self.db.read() as conn:
            return await _found(conn, kind, name)

    async def change(
        self,
        kind: Kind,
        name: str,
        edit: Edit,
        actor: Actor,
        reason: str | None = None,
        *,
        revision: int | None = None,
    ) -> StoredRoute:
        """Make a change to a route (``edit``: the change, or how to make it from the route as
        it is, read under the lock), or refuse it (ValidationFailed) saying why; Conflict when
        ``revision`` is given and the route is at another one."""
        async with self.db.write() as conn:
            await self.db.lock(conn, store.LOCK)
            before = await _found(conn, kind, name, revision)
            change = edit(before.route) if callable(edit) else edit
            try:
                after = before.route.changed(change)
            except CatalogError as exc:
                raise ValidationFailed(str(exc)) from None
            self.check(after)
            await self._check_workers(conn, after)
            await store.put(conn, after, store.ADMIN, actor.name)
            await _audit(conn, actor, "route.update", after, before.route, after, reason)
            stored = await _found(conn, kind, name)
        await self.refresh()
        return stored

    async def reset(
        self,
        kind: Kind,
        name: str,
        actor: Actor,
        reason: str | None = None,
        *,
        revision: int | None = None,
    ) -> StoredRoute:
        """Put the route back as the catalog file has it (and follow the file from then on);
        nothing is written for a route that already is."""
        seeded = self.seed.get((kind, name))
        if seeded is None:
            raise NotFound(f"the catalog file has no {kind} {name!r} to go back to")
        async with self.db.write() as conn:
            await self.db.lock(conn, store.LOCK)
            before = await _found(conn, kind, name, revision)
            if before.source == store.CATALOG and before.route == seeded:
                return before
            await store.put(conn, seeded, store.CATALOG, actor.name)
            await _audit(conn, actor, "route.reset", seeded, before.route, seeded, reason)
            stored = await _found(conn, kind, name)
        await self.refresh()
        return stored

    def check(self, route: Route) -> None:
        """Refuse a route naming a provider this server lacks or that does not make it."""
        every = replace(route, providers=tuple(replace(p, enabled=True) for p in route.providers))
        model = every.model()
        for name in model.providers:
            problem = provider_problem(model, name, self.providers)
            if problem:
                raise ValidationFailed(problem)

    async def _check_workers(self, conn: AsyncConnection, route: Route) -> None:
        """Refuse a route that a live worker could not run: it has none of its providers."""
        alive = workers.alive_since(utcnow(), self.heartbeat)
        for beat in await workers.listing(conn):
            if beat.heartbeat_at >= alive and not set(route.enabled) & set(beat.providers):
                raise ValidationFailed(
                    f"{route.where}: worker {beat.id} on {beat.host} has none of "
                    f"{', '.join(route.enabled)} configured, so it would fail the tasks it "
                    f"claims; it has {', '.join(sorted(beat.providers))}"
                )

    def _apply(self, rows: list[StoredRoute]) -> None:
        models: dict[str, Model] = {}
        tools: dict[str, Model] = {}
        last = len(self._order)
        for row in sorted(rows, key=lambda r: (self._order.get(_key(r.route), last), r.route.name)):
            model = self._runnable(row.route)
            if model is not None:
                (tools if row.route.kind == "tool" else models)[model.name] = model
        if not models:  # nothing to take submits for: keep what it ran by
            self._warn("no model of the routes can run on this server; keeping its models")
            models = self.catalog.models
        self.catalog.update(models, tools)

    def _runnable(self, route: Route) -> Model | None:
        """The route as this process runs it: its enabled providers that this process has and
        that make it (others are left out, with a warning once); None when none is left."""
        model = route.model()
        usable = tuple(p for p in model.providers if not self._problem(model, p))
        if not usable:
            self._warn(f"{route.where}: no provider of it works on this server; it is left out")
            return None
        return replace(
            model, providers=usable, routes={p: r for p, r in model.routes.items() if p in usable}
        )

    def _problem(self, model: Model, provider: str) -> bool:
        problem = provider_problem(model, provider, self.providers)
        if problem:
            self._warn(f"{problem}: this server leaves it out of the route")
        return problem is not None

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)


async def _audit(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    route: Route,
    before: Route | None,
    after: Route | None,
    reason: str | None = None,
) -> None:
    await audit.record(
        conn,
        actor,
        action,
        f"{route.kind}:{route.name}",
        before and before.to_json(),
        after and after.to_json(),
        reason,
    )


async def _found(
    conn: AsyncConnection, kind: Kind, name: str, revision: int | None = None
) -> StoredRoute:
    """The route; Conflict when ``revision`` is given and it is at another."""
    stored = await store.get(conn, kind, name)
    if stored is None or stored.source == store.REMOVED:
        raise NotFound(f"no {kind} {name!r}; GET /admin/v1/routes lists them")
    if revision is not None and stored.revision != revision:
        raise Conflict(
            f"the route has changed since revision {revision} (it is at {stored.revision}): "
            "look at it as it is now and make your change again"
        )
    return stored
