"""The ``routes`` and ``audit`` commands: the model routes kept in the database, changed as the
admin API changes them (``admin.routes``), and the audit log. A route command builds this host's
providers from its settings, so a change is checked against what this host has configured."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import TYPE_CHECKING

from hatchery.admin.audit import Actor
from hatchery.domain.money import format_cost, parse_dollars
from hatchery.domain.routes import Kind, ProviderRoute, Route, RouteChange
from hatchery.errors import BadRequest
from hatchery.store import audit
from hatchery.store.db import Database
from hatchery.store.routes import StoredRoute

if TYPE_CHECKING:
    from hatchery.services import Services


async def routes_command(services: Services, args: argparse.Namespace) -> str:
    book = services.routes
    await book.start()
    if args.action == "list":
        return "\n".join(_line(row) for row in await book.listing())
    kind: Kind = "tool" if args.tool else "model"
    if args.action == "show":
        return _shown(await book.get(kind, args.name))
    if args.action == "reset":
        return _shown(await book.reset(kind, args.name, Actor.cli()))
    current = (await book.get(kind, args.name)).route
    changed = await book.change(kind, args.name, _change(current, args), Actor.cli(), args.reason)
    return _shown(changed)


def _change(route: Route, args: argparse.Namespace) -> RouteChange:
    if args.action == "providers":
        was = {p.name: p for p in route.providers}
        return RouteChange(
            providers=tuple(was.get(name, ProviderRoute(name)) for name in args.providers)
        )
    if args.action in ("enable", "disable"):
        if args.provider not in {p.name for p in route.providers}:
            raise BadRequest(
                f"{route.where} has no provider {args.provider}; "
                f"it has {', '.join(p.name for p in route.providers)}"
            )
        on = args.action == "enable"
        providers = tuple(
            replace(p, enabled=on) if p.name == args.provider else p for p in route.providers
        )
        return RouteChange(providers=providers)
    if args.action == "price":
        try:
            return RouteChange(unit_price_micros=parse_dollars(args.amount))
        except ValueError as exc:
            raise BadRequest(f"price: {exc}") from None
    return RouteChange(synchronous=args.value == "on")


def _line(row: StoredRoute) -> str:
    r = row.route
    providers = " > ".join(p.name if p.enabled else f"({p.name} off)" for p in r.providers)
    return (
        f"{r.kind:5} {r.name:28} {format_cost(r.unit_price_micros):>9}/{r.unit:9} "
        f"{providers}  [{row.source}]"
    )


def _shown(row: StoredRoute) -> str:
    spec = {"kind": row.route.kind, "name": row.route.name, **row.route.to_json()}
    spec |= {"source": row.source, "revision": row.revision, "updated_by": row.updated_by}
    return json.dumps(spec, indent=2)


async def audit_command(db: Database, args: argparse.Namespace) -> str:
    where = audit.Filter(target=args.target, actor=args.actor)
    async with db.read() as conn:
        entries = await audit.listing(conn, where, before_seq=None, limit=args.limit)
    lines = []
    for e in entries:
        change = f"  {json.dumps(e.before)} -> {json.dumps(e.after)}" if e.after else ""
        reason = f"  ({e.reason})" if e.reason else ""
        lines.append(
            f"{e.at:%Y-%m-%d %H:%M:%S} {e.actor} via {e.via}: {e.action} {e.target}{reason}{change}"
        )
    return "\n".join(lines) or "no entries"
