"""The model routes of one process: kept in the database, applied to its catalog.

At start the catalog file (or the built-in catalog) seeds the table: a route it has that the
table lacks is added, and a route still as the file made it (``source`` catalog) is brought up to
date with the file; a route an operator changed (``source`` admin) stays as they left it, until
:meth:`RouteBook.reset`. Then, and whenever the routes change (a notification on PostgreSQL;
everywhere, a check of their revisions every ``HATCHERY_ROUTES_REFRESH`` seconds), the process
reads them and runs by them: each route's enabled providers that this process has.

A change (:meth:`RouteBook.change`) is checked twice before it is written: for what no server
could run (``domain.routes``) and for what this one has (a provider that is not configured, or
does not make the model). It is written with its audit entry in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.admin import audit
from hatchery.admin.audit import Actor
from hatchery.domain.catalog import Catalog, CatalogError, Model
from hatchery.domain.routes import Kind, Route, RouteChange
from hatchery.errors import NotFound, ValidationFailed
from hatchery.providers.base import Provider
from hatchery.providers.registry import provider_problem
from hatchery.store import routes as store
from hatchery.store.db import Database
from hatchery.store.notify import ROUTES, Notifier
from hatchery.store.routes import StoredRoute

log = logging.getLogger("hatchery.routes")

Key = tuple[Kind, str]


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
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.providers = providers
        self.notifier = notifier
        self.refresh_every = refresh_every
        # what the catalog file says, kept to seed the table and to reset a route to
        self.seed: dict[Key, Route] = {
            _key(route): route for route in map(Route.of, catalog.everything())
        }
        self._seen: store.Fingerprint | None = None
        self._warned: set[str] = set()

    async def start(self) -> None:
        """Seed the table from the catalog file, then run by what it holds."""
        async with self.db.write() as conn:
            await self.db.lock(conn, store.LOCK)
            rows = {_key(row.route): row for row in await store.load(conn)}
            for key, route in self.seed.items():
                row = rows.get(key)
                if row is None or (row.source == store.CATALOG and row.route != route):
                    await store.put(conn, route, store.CATALOG, None)
            for key, row in rows.items():
                if row.source == store.CATALOG and key not in self.seed:
                    await store.remove(conn, *key)  # no longer in the file
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
        """Read the routes if they changed since the last read, and run by them."""
        async with self.db.read() as conn:
            if await store.fingerprint(conn) == self._seen:
                return False
            rows = await store.load(conn)
        self._seen = len(rows), sum(row.revision for row in rows)
        self._apply(rows)
        return True

    async def listing(self) -> list[StoredRoute]:
        async with self.db.read() as conn:
            return await store.load(conn)

    async def get(self, kind: Kind, name: str) -> StoredRoute:
        async with self.db.read() as conn:
            return await _found(conn, kind, name)

    async def change(
        self,
        kind: Kind,
        name: str,
        change: RouteChange,
        actor: Actor,
        reason: str | None = None,
    ) -> StoredRoute:
        """Make ``change`` to a route, or refuse it (ValidationFailed) saying why."""
        async with self.db.write() as conn:
            await self.db.lock(conn, store.LOCK)
            before = await _found(conn, kind, name)
            try:
                after = before.route.changed(change)
            except CatalogError as exc:
                raise ValidationFailed(str(exc)) from None
            self.check(after)
            await self._write(conn, before.route, after, store.ADMIN, actor, reason)
            stored = await _found(conn, kind, name)
        await self.refresh()
        return stored

    async def reset(self, kind: Kind, name: str, actor: Actor) -> StoredRoute:
        """Put the route back as the catalog file has it (and follow the file from then on)."""
        seeded = self.seed.get((kind, name))
        if seeded is None:
            raise NotFound(f"the catalog file has no {kind} {name!r} to go back to")
        async with self.db.write() as conn:
            await self.db.lock(conn, store.LOCK)
            before = await _found(conn, kind, name)
            await self._write(conn, before.route, seeded, store.CATALOG, actor, "reset")
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

    async def _write(
        self,
        conn: AsyncConnection,
        before: Route,
        after: Route,
        source: str,
        actor: Actor,
        reason: str | None,
    ) -> None:
        await store.put(conn, after, source, actor.name)
        await audit.record(
            conn,
            actor,
            "route.reset" if reason == "reset" else "route.update",
            f"{after.kind}:{after.name}",
            before.to_json(),
            after.to_json(),
            None if reason == "reset" else reason,
        )

    def _apply(self, rows: list[StoredRoute]) -> None:
        models: dict[str, Model] = {}
        tools: dict[str, Model] = {}
        for row in sorted(rows, key=self._order):
            model = self._runnable(row.route)
            if model is not None:
                (tools if row.route.kind == "tool" else models)[model.name] = model
        self.catalog.update(models, tools)

    def _order(self, row: StoredRoute) -> tuple[int, str]:
        """The catalog file's order first (the documents and forms list them so), then names."""
        order = list(self.seed)
        key = _key(row.route)
        return (order.index(key) if key in order else len(order)), row.route.name

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


async def _found(conn: AsyncConnection, kind: Kind, name: str) -> StoredRoute:
    stored = await store.get(conn, kind, name)
    if stored is None:
        raise NotFound(f"no {kind} {name!r}; GET /admin/v1/routes lists them")
    return stored
