"""The admin API's routes, under ``/admin/v1``: accounts, keys, model routes, the audit log, and
read-only views of providers, the queue and the webhook outbox. Each is thin: check the caller is
an admin (``api.admin.auth``), read the body through its schema, call the operator action
(``hatchery.admin``) or read the store, answer in the envelope the Egg API uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from hatchery import admin as actions
from hatchery.admin import health
from hatchery.api.admin import present
from hatchery.api.admin import schemas as s
from hatchery.api.admin.auth import admin
from hatchery.api.context import services_of
from hatchery.api.envelope import ok
from hatchery.api.generate import read_body
from hatchery.domain import keys
from hatchery.domain.catalog import PriceRule
from hatchery.domain.routes import KINDS, Kind, ProviderRoute, Route, RouteChange
from hatchery.errors import BadRequest, NotFound
from hatchery.services import Services
from hatchery.store import accounts, audit, operator
from hatchery.store.db import Database
from hatchery.store.keycache import ACCOUNT, KEY

PREFIX = "/admin/v1"
MAX_LIMIT = 200
router = APIRouter(prefix=PREFIX)


def _limit(request: Request, default: int = 50) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return value


def _seq(request: Request, name: str = "before") -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise BadRequest(f"{name} must be the next value a previous page gave")
    return int(text)


def _page(items: list[Any], limit: int, position: Any) -> Response:
    full = len(items) == limit and bool(items)
    return ok({"items": [present.dump(i) for i in items], "next": position if full else None})


# -- accounts


@router.get("/accounts")
async def list_accounts(request: Request) -> Response:
    await admin(request)
    limit, q = _limit(request), request.query_params
    search = q.get("query", "")
    if len(search) > 320:
        raise BadRequest("query is at most 320 characters: part of an email or an id")
    async with services_of(request).db.read() as conn:
        rows = await operator.find_accounts(
            conn,
            query=search,
            status=_choice(request, "status", (accounts.ACTIVE, accounts.SUSPENDED)),
            role=_choice(request, "role", accounts.ROLES),
            after=q.get("after") or None,
            limit=limit,
        )
    last = rows[-1].account.email if rows else None
    return _page([present.account_row(row) for row in rows], limit, last)


@router.post("/accounts", status_code=201)
async def create_account(request: Request) -> Response:
    actor = await admin(request)
    body = s.parse(s.AccountIn, await read_body(request))
    services = services_of(request)
    created = await actions.create_user(services.db, body.email, body.balance_micros, actor=actor)
    return ok(present.dump(await _detail(services.db, created.id)), 201)


async def _detail(db: Database, account_id: str) -> s.AccountDetailOut:
    async with db.read() as conn:
        rows = await operator.find_accounts(conn, account_id=account_id, limit=1)
        if not rows:
            raise NotFound(f"no account {account_id}")
        ledger = await operator.ledger_entries(conn, account_id, limit=20)
        total = await operator.ledger_total(conn, account_id)
        keys = await operator.find_keys(conn, account_id=account_id, limit=MAX_LIMIT)
    row = present.account_row(rows[0])
    return s.AccountDetailOut(
        **row.model_dump(),
        ledger_total_micros=total,
        ledger=[present.ledger_entry(e) for e in ledger],
        keys=[present.key(k) for k in keys],
    )


def account_id_of(account_id: str) -> str:
    """The id in a path, or NotFound for what is not an account id."""
    if not account_id.startswith("acct_") or len(account_id) > 32:
        raise NotFound(f"no account {account_id[:40]!r}: account ids start with acct_")
    return account_id


@router.get("/accounts/{account_id}")
async def get_account(request: Request, account_id: str) -> Response:
    await admin(request)
    return ok(present.dump(await _detail(services_of(request).db, account_id_of(account_id))))


@router.patch("/accounts/{account_id}")
async def update_account(request: Request, account_id: str) -> Response:
    """The account's own rate limit and its flags."""
    actor = await admin(request)
    body = s.parse(s.AccountPatchIn, await read_body(request))
    services, target = services_of(request), account_id_of(account_id)
    flags = None if body.flags is None else frozenset(body.flags)
    await actions.update_account(
        services.db, target, rate_limit=body.rate_limit, flags=flags, actor=actor
    )
    services.keys.forget(ACCOUNT + target)
    return ok(present.dump(await _detail(services.db, target)))


@router.post("/accounts/{account_id}/suspend")
async def suspend_account(request: Request, account_id: str) -> Response:
    """Refuse its keys (403) and sign its dashboard sessions out; its tasks in flight finish."""
    return await _set_status(request, account_id, accounts.SUSPENDED)


@router.post("/accounts/{account_id}/activate")
async def activate_account(request: Request, account_id: str) -> Response:
    return await _set_status(request, account_id, accounts.ACTIVE)


async def _set_status(request: Request, account_id: str, status: str) -> Response:
    actor = await admin(request)
    services = services_of(request)
    await actions.set_status(services.db, account_id_of(account_id), status, actor=actor)
    services.keys.forget(ACCOUNT + account_id)  # this process at once (others: store.keycache)
    return ok(present.dump(await _detail(services.db, account_id)))


@router.post("/accounts/{account_id}/balance")
async def adjust_balance(request: Request, account_id: str) -> Response:
    """Credit (a positive amount) or debit (a negative one), with the reason in the ledger."""
    actor = await admin(request)
    body = s.parse(s.BalanceIn, await read_body(request))
    db = services_of(request).db
    after, seq = await actions.adjust_balance(
        db, account_id_of(account_id), body.amount_micros, body.reason, actor=actor
    )
    async with db.read() as conn:
        (entry,) = await operator.ledger_entries(conn, after.id, seq=seq, limit=1)
    answer = s.BalanceOut(account=present.account(after), entry=present.ledger_entry(entry))
    return ok(present.dump(answer))


@router.get("/accounts/{account_id}/ledger")
async def account_ledger(request: Request, account_id: str) -> Response:
    await admin(request)
    limit, before = _limit(request), _seq(request)
    async with services_of(request).db.read() as conn:
        if await accounts.by_id(conn, account_id_of(account_id)) is None:
            raise NotFound(f"no account {account_id}")
        entries = await operator.ledger_entries(conn, account_id, before_seq=before, limit=limit)
    last = str(entries[-1].seq) if entries else None
    return _page([present.ledger_entry(e) for e in entries], limit, last)


# -- keys


@router.get("/keys")
async def list_keys(request: Request) -> Response:
    await admin(request)
    limit, q = _limit(request), request.query_params
    before = _time(q.get("before"))
    account = q.get("account_id") or None
    async with services_of(request).db.read() as conn:
        rows = await operator.find_keys(
            conn,
            account_id=account and account_id_of(account),
            active_only=_choice(request, "status", ("active",)) == "active",
            before=before,
            limit=limit,
        )
    last = rows[-1].created_at.isoformat() if rows else None
    return _page([present.key(row) for row in rows], limit, last)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest("before must be the next value a previous page gave") from None
    if value.tzinfo is None:
        raise BadRequest("before must carry its UTC offset, as the next value a page gave does")
    return value


@router.post("/keys/{prefix}/revoke")
async def revoke_key(request: Request, prefix: str) -> Response:
    """Revoke any account's key, by its prefix (``hk_`` and 10 more characters)."""
    actor = await admin(request)
    services = services_of(request)
    await actions.revoke_key(services.db, prefix, actor=actor)
    services.keys.forget(KEY + keys.key_prefix(prefix))
    async with services.db.read() as conn:
        rows = await operator.find_keys(conn, prefix=keys.key_prefix(prefix), limit=1)
    return ok(present.dump(present.key(rows[0])))


# -- model routes


def route_kind(kind: str) -> Kind:
    """The kind in a path (model or tool), or NotFound."""
    if kind not in KINDS:
        raise NotFound(f"no route kind {kind[:20]!r}: use model or tool")
    return kind


@router.get("/routes")
async def list_routes(request: Request) -> Response:
    await admin(request)
    services = services_of(request)
    rows = await services.routes.listing()
    items = [present.dump(present.route(row, services.catalog)) for row in rows]
    return ok({"items": items, "next": None})


@router.get("/routes/{kind}/{name}")
async def get_route(request: Request, kind: str, name: str) -> Response:
    await admin(request)
    services = services_of(request)
    stored = await services.routes.get(route_kind(kind), name)
    return ok(present.dump(present.route(stored, services.catalog)))


@router.patch("/routes/{kind}/{name}")
async def update_route(request: Request, kind: str, name: str) -> Response:
    """Change the providers (order, enabled, upstream), prices or synchronous flag; applied on
    every server within seconds (at once on PostgreSQL), refused with the reason when the route
    would name a provider this server lacks or leave none enabled."""
    actor = await admin(request)
    body = s.parse(s.RoutePatchIn, await read_body(request))
    services = services_of(request)
    stored = await services.routes.change(
        route_kind(kind),
        name,
        lambda route: change_of(body, route),
        actor,
        body.reason,
        revision=body.revision,
    )
    return ok(present.dump(present.route(stored, services.catalog)))


def change_of(body: s.RoutePatchIn, route: Route) -> RouteChange:
    """The change the body asks of ``route``: a provider it lists without ``enabled`` or
    ``upstream`` keeps what it had (new ones: enabled, the provider's default upstream)."""
    return RouteChange(
        providers=None if body.providers is None else _providers(body.providers, route),
        unit_price_micros=body.unit_price_micros,
        price_rules=None
        if body.price_rules is None
        else tuple(PriceRule(tuple(r.when.items()), r.unit_price_micros) for r in body.price_rules),
        synchronous=body.synchronous,
    )


def _providers(given: list[s.ProviderRouteIO], route: Route) -> tuple[ProviderRoute, ...]:
    was = {p.name: p for p in route.providers}
    made = []
    for p in given:
        old = was.get(p.name, ProviderRoute(p.name))
        made.append(
            ProviderRoute(
                p.name,
                p.enabled if "enabled" in p.model_fields_set else old.enabled,
                p.upstream if "upstream" in p.model_fields_set else old.upstream,
            )
        )
    return tuple(made)


@router.post("/routes/{kind}/{name}/reset")
async def reset_route(request: Request, kind: str, name: str) -> Response:
    """Back to what the catalog file says (and following the file from then on)."""
    actor = await admin(request)
    services = services_of(request)
    stored = await services.routes.reset(route_kind(kind), name, actor)
    return ok(present.dump(present.route(stored, services.catalog)))


# -- health


@router.get("/providers")
async def list_providers(request: Request) -> Response:
    await admin(request)
    views = await provider_views(services_of(request))
    return ok({"items": [present.dump(s.ProviderOut(**v)) for v in views], "next": None})


async def workers_of(services: Services) -> list[dict[str, Any]]:
    """Every worker with a heartbeat (``admin.health.workers_view``)."""
    return await health.workers_view(services.db, services.settings.heartbeat_interval)


async def provider_views(services: Services) -> list[dict[str, Any]]:
    """Each configured provider across the live workers (``admin.health.providers_view``), with
    the models and tools whose routes list it."""
    live = [w for w in await workers_of(services) if w["alive"]]
    routed: dict[str, list[str]] = {}
    for model in services.catalog.everything():
        for name in model.providers:
            routed.setdefault(name, []).append(model.name)
    return health.providers_view(live, sorted(services.providers), routed)


@router.get("/queue")
async def queue(request: Request) -> Response:
    await admin(request)
    services = services_of(request)
    view = await health.queue_view(services.db)
    workers = [s.WorkerOut(**w) for w in await workers_of(services)]
    return ok(present.dump(s.QueueOut(**view, workers=workers)))


@router.get("/outbox")
async def outbox(request: Request) -> Response:
    await admin(request)
    return ok(present.dump(s.OutboxOut(**await health.outbox_view(services_of(request).db))))


# -- the audit log


@router.get("/audit")
async def list_audit(request: Request) -> Response:
    await admin(request)
    limit, q = _limit(request), request.query_params
    where = audit.Filter(
        target=q.get("target") or None, actor=q.get("actor") or None, action=q.get("action") or None
    )
    async with services_of(request).db.read() as conn:
        entries = await audit.listing(conn, where, before_seq=_seq(request), limit=limit)
    last = str(entries[-1].seq) if entries else None
    return _page([present.audit_entry(e) for e in entries], limit, last)
