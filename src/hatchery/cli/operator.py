"""The operator's commands beside the account verbs of ``cli.server``: ``routes`` (the model
routes kept in the database, changed as the admin API changes them: ``admin.routes``), ``audit``
(the audit log), ``users list``, ``keys list`` and ``health`` (what the admin API's read-only
views show). A route command builds this host's providers from its settings, so a change is
checked against what this host has configured."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hatchery.admin import health
from hatchery.admin.audit import Actor
from hatchery.domain.money import format_cost, parse_dollars
from hatchery.domain.routes import Kind, ProviderRoute, Route, RouteChange
from hatchery.errors import BadRequest, NotFound
from hatchery.settings import Settings
from hatchery.store import accounts, audit, operator
from hatchery.store.db import Database
from hatchery.store.routes import StoredRoute

if TYPE_CHECKING:
    from hatchery.services import Services


async def routes_command(services: Services, args: argparse.Namespace) -> str:
    """Reads and changes the routes as they are in the database: it never seeds them from this
    host's catalog file (that is for the servers, at start), except to reset one to it."""
    book = services.routes
    if args.action == "list":
        return "\n".join(_line(row) for row in await book.listing())
    kind: Kind = "tool" if args.tool else "model"
    if args.action == "show":
        return _shown(await book.get(kind, args.name))
    if args.action == "reset":
        return _shown(await book.reset(kind, args.name, Actor.cli(), args.reason))

    def edit(route: Route) -> RouteChange:
        return _change(route, args)

    return _shown(await book.change(kind, args.name, edit, Actor.cli(), args.reason))


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
    where = audit.Filter(target=args.target, actor=args.actor, action=args.action)
    async with db.read() as conn:
        entries = await audit.listing(conn, where, before_seq=None, limit=args.limit)
    lines = []
    for e in entries:
        change = f"  {_changes(e.before, e.after)}" if e.after or e.before else ""
        reason = f"  ({e.reason})" if e.reason else ""
        lines.append(
            f"{e.at:%Y-%m-%d %H:%M:%S} {e.actor} via {e.via}: {e.action} {e.target}{reason}{change}"
        )
    return "\n".join(lines) or "no entries"


def _changes(before: Any, after: Any) -> str:
    """What an entry changed: each field that differs, ``name: before -> after``."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return f"{json.dumps(before)} -> {json.dumps(after)}"
    changed = [k for k in after if before.get(k) != after[k]]
    return "; ".join(f"{k}: {json.dumps(before.get(k))} -> {json.dumps(after[k])}" for k in changed)


async def users_command(db: Database, args: argparse.Namespace) -> str:
    async with db.read() as conn:
        rows = await operator.find_accounts(
            conn, query=args.query, status=args.status, role=args.role, limit=args.limit
        )
    return (
        "\n".join(
            f"{r.account.email:40} {r.account.id:26} {r.account.status:9} {r.account.role:5} "
            f"{format_cost(r.account.balance_micros):>12} {r.keys} key(s)"
            for r in rows
        )
        or "no accounts"
    )


async def keys_command(db: Database, args: argparse.Namespace) -> str:
    async with db.read() as conn:
        account = await accounts.by_email(conn, args.email) if args.email else None
        if args.email and account is None:
            raise NotFound(f"no account {args.email}")
        rows = await operator.find_keys(
            conn,
            account_id=account.id if account else None,
            active_only=args.active,
            limit=args.limit,
        )
    return (
        "\n".join(
            f"{k.prefix}  {k.email:40} made {k.created_at:%Y-%m-%d}"
            + (f"  revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "")
            + (f"  expires {k.expires_at:%Y-%m-%d}" if k.expires_at and not k.revoked_at else "")
            + (f"  used {k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "")
            for k in rows
        )
        or "no keys"
    )


async def health_command(db: Database, settings: Settings) -> str:
    """The workers, each provider across the live ones, the queue and the outbox, as JSON."""
    beats = await health.workers_view(db, settings.heartbeat_interval)
    live = [w for w in beats if w["alive"]]
    configured = sorted({name for w in live for name in w["providers"]})
    report = {
        "workers": [
            {k: w[k] for k in ("id", "host", "alive", "seconds_since_heartbeat", "running")}
            for w in beats
        ],
        "providers": health.providers_view(live, configured, {}),
        "queue": await health.queue_view(db),
        "outbox": await health.outbox_view(db),
    }
    return json.dumps(report, indent=2, default=str)
