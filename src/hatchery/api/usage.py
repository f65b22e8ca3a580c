"""The usage routes: ``GET /v1/usage`` (the records, paginated like every list) and
``GET /v1/usage/summary`` (sums per model). Both read what ``store.usage`` keeps."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from hatchery.api import query
from hatchery.api.auth import authenticate
from hatchery.api.envelope import ok
from hatchery.domain import keys
from hatchery.domain.present import totals_json, usage_json
from hatchery.errors import NotFound
from hatchery.services import Services
from hatchery.store import accounts, usage
from hatchery.store.accounts import Account

router = APIRouter()


async def api_key_filter(conn: AsyncConnection, account: Account, request: Request) -> str | None:
    """The prefix of the account's key named by ``?api_key=`` (a prefix or a whole key), checked
    on the read the route makes anyway (no lookup for the key the request came with);
    NotFound for one that is not the account's."""
    given = request.query_params.get("api_key") or None
    if given is None:
        return None
    prefix = keys.key_prefix(given)
    if prefix != account.api_key and not await accounts.has_key(conn, account.id, prefix):
        raise NotFound(f"API key not found: {given[:32]!r} is not one of this account's keys")
    return prefix


@router.get("/v1/usage")
async def list_usage(request: Request) -> Response:
    services: Services = request.app.state.services
    account = await authenticate(services, request)
    page, per_page = query.page_and_size(request)
    (start, end), kind = query.days(request), query.task_type(request)
    model = request.query_params.get("model") or None
    async with services.db.read() as conn:
        key = await api_key_filter(conn, account, request)
        where = usage.UsageFilter(model=model, type=kind, api_key=key, start=start, end=end)
        found = await usage.page(
            conn, account.id, where, limit=per_page, offset=(page - 1) * per_page
        )
        total = (await usage.totals(conn, account.id, where)).requests
    pagination = query.pagination(page, per_page, total)
    return ok({"items": [usage_json(r) for r in found], "pagination": pagination})


@router.get("/v1/usage/summary")
async def usage_summary(request: Request) -> Response:
    services: Services = request.app.state.services
    account = await authenticate(services, request)
    start, end = query.days(request)
    async with services.db.read() as conn:
        key = await api_key_filter(conn, account, request)
        where = usage.UsageFilter(api_key=key, start=start, end=end)
        sums = await usage.summary(conn, account.id, where)
    return ok([totals_json(s) for s in sums])
