"""Model routes kept in the database (``admin.routes``), on both databases: seeded from the
catalog file, followed by it until an operator changes them, read by every process that shares
the database, and left out where a process lacks the provider."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from hatchery.admin.audit import Actor
from hatchery.admin.routes import RouteBook
from hatchery.domain.catalog import Catalog
from hatchery.domain.routes import ProviderRoute, RouteChange
from hatchery.errors import ValidationFailed
from hatchery.providers.base import Job
from hatchery.store import audit, workers
from hatchery.store import routes as store
from hatchery.store.db import Database, utcnow
from hatchery.store.notify import Notifier

ADMIN = Actor("ops@example.com", "key:hk_0123456789", "acct_ops")
FILE = """
[models.flux]
type = "image"
price_per_output = "0.04"
providers = ["fal", "replicate"]

[models.kling]
type = "video"
price_per_second = "0.10"
providers = ["fal"]
"""


class Vendor:
    """A configured provider that makes every model (what the registry asks of one)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def serves(self, model: str) -> bool:
        return True

    def route_problem(self, model: str, route: str | None) -> str | None:
        return None

    def unsupported(self, job: Job) -> str | None:
        return None

    def image_sizes(self, model: str) -> frozenset[str]:
        return frozenset()


def _book(
    db: Database, text: str = FILE, providers: tuple[str, ...] = ("fal", "replicate")
) -> RouteBook:
    vendors: dict[str, Any] = {name: Vendor(name) for name in providers}
    return RouteBook(db, Catalog.parse(text), vendors, Notifier())


async def _sources(db: Database) -> dict[str, str]:
    async with db.read() as conn:
        return {row.route.name: row.source for row in await store.load(conn)}


async def test_the_catalog_file_seeds_the_routes_once_even_from_two_processes(db: Database) -> None:
    first, second = _book(db), _book(db)
    await asyncio.gather(first.start(), second.start())
    assert await _sources(db) == {"flux": "catalog", "kling": "catalog"}
    assert first.catalog.models["flux"].providers == ("fal", "replicate")
    async with db.read() as conn:
        revisions = [row.revision for row in await store.load(conn)]
    assert len(set(revisions)) == len(revisions)  # one at a time: each its own revision


async def test_a_change_reaches_the_other_process_and_a_new_file_does_not_undo_it(
    db: Database,
) -> None:
    here, there = _book(db), _book(db)
    await here.start()
    await there.start()
    version = there.catalog.version
    swapped = (ProviderRoute("replicate"), ProviderRoute("fal"))
    await here.change("model", "flux", RouteChange(providers=swapped), ADMIN, "fal is slow")
    assert here.catalog.models["flux"].providers == ("replicate", "fal")
    assert await there.refresh()
    assert there.catalog.models["flux"].providers == ("replicate", "fal")
    assert there.catalog.version > version
    assert not await there.refresh()  # nothing new: not read again

    # a restart with a new file: kling's price follows it, flux stays as the admin left it, and
    # a model the file no longer has goes unless an admin changed it
    new_file = FILE.replace('"0.10"', '"0.12"').replace("[models.kling]", "[models.hunyuan]")
    restarted = _book(db, new_file)
    await restarted.start()
    assert await _sources(db) == {"flux": "admin", "hunyuan": "catalog", "kling": "removed"}
    assert {row.route.name for row in await restarted.listing()} == {"flux", "hunyuan"}
    assert set(restarted.catalog.models) == {"flux", "hunyuan"}
    assert await there.refresh()  # the other process follows: kling is gone there too
    assert set(there.catalog.models) == {"flux", "hunyuan"}
    async with db.read() as conn:
        seeded = await audit.listing(conn, audit.Filter(actor=None), before_seq=None, limit=10)
    assert {(e.action, e.target) for e in seeded if e.via == "catalog"} == {
        ("route.seed", "model:hunyuan"),
        ("route.remove", "model:kling"),
    }
    assert restarted.catalog.models["flux"].providers == ("replicate", "fal")
    assert restarted.catalog.models["hunyuan"].unit_price_micros == 120_000
    reset = await restarted.reset("model", "flux", ADMIN)
    assert (reset.source, reset.route.enabled) == ("catalog", ("fal", "replicate"))


async def test_a_process_without_a_provider_runs_the_route_by_the_others(db: Database) -> None:
    full = _book(db)
    await full.start()
    partial = _book(db, providers=("fal",))
    await partial.start()  # its catalog names replicate, which it lacks: left out here
    assert partial.catalog.models["flux"].providers == ("fal",)
    only_replicate = (ProviderRoute("fal", enabled=False), ProviderRoute("replicate"))
    await full.change("model", "flux", RouteChange(providers=only_replicate), ADMIN)
    await partial.refresh()
    assert "flux" not in partial.catalog.models  # none of its providers works here
    assert full.catalog.models["flux"].providers == ("replicate",)


async def test_a_change_no_live_worker_could_run_is_refused(db: Database) -> None:
    book = _book(db)
    await book.start()
    now = utcnow()
    beat = workers.Beat("w1", "gpu-1", 1, now, now, 4, 0, 0, {"fal": {}, "local": {}})
    async with db.write() as conn:
        await workers.beat(conn, beat)
    only_replicate = (ProviderRoute("fal", enabled=False), ProviderRoute("replicate"))
    with pytest.raises(ValidationFailed, match="worker w1 on gpu-1 has none of replicate"):
        await book.change("model", "flux", RouteChange(providers=only_replicate), ADMIN)
    assert book.catalog.models["flux"].providers == ("fal", "replicate")  # nothing changed
    async with db.write() as conn:  # the worker is gone (no heartbeat for long): allowed
        await workers.beat(conn, replace(beat, heartbeat_at=now - timedelta(minutes=5)))
    await book.change("model", "flux", RouteChange(providers=only_replicate), ADMIN)
    assert book.catalog.models["flux"].providers == ("replicate",)


async def test_a_reason_is_only_a_reason(db: Database) -> None:
    book = _book(db)
    await book.start()
    await book.change("model", "flux", RouteChange(unit_price_micros=1), ADMIN, "reset")
    async with db.read() as conn:
        (entry,) = await audit.listing(
            conn, audit.Filter(target="model:flux"), before_seq=None, limit=1
        )
    assert (entry.action, entry.reason) == ("route.update", "reset")
