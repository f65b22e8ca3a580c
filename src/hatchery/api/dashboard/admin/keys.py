"""The operator's keys page: every account's API keys, newest first, and revoking any of them.

    GET  /dashboard/admin/keys                     ?status=active &account=acct_... &before=
    POST /dashboard/admin/keys/{prefix}/revoke     revoke it (``account``: back to that
                                                   account's page afterwards)

A key is revoked by the operator action the admin API uses (``hatchery.admin.revoke_key``),
audited with the admin's session; the key is refused at once by this process, and by the
others as their key caches hear of it (``store.keycache``).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery import admin as actions
from hatchery.api.admin import present
from hatchery.api.admin.routes import account_id_of
from hatchery.api.dashboard.admin.common import (
    actor,
    admin_form,
    admin_page,
    micros_of,
    moment_of,
    pack,
    page,
    position,
)
from hatchery.api.dashboard.pages import choice, link, redirect
from hatchery.domain import keys
from hatchery.errors import BadRequest
from hatchery.store import operator
from hatchery.store.keycache import KEY

router = APIRouter()

PAGE = 50
MAX_ACCOUNT_ID = 32
CURSOR = "dak1."  # a page position: the last key's creation time, in microseconds


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    account = q.get("account", "").strip()
    if account and (not account.startswith("acct_") or len(account) > MAX_ACCOUNT_ID):
        raise BadRequest("Filter by an account's id: they start with acct_")
    return {"status": choice(q, "status", ("", "active"), ""), "account": account}


@router.get("/admin/keys")
async def keys_page(request: Request) -> Response:
    services, signed = await admin_page(request)
    filters = _filters(request)
    before = position(request, CURSOR)
    async with services.db.read() as conn:
        rows = await operator.find_keys(
            conn,
            account_id=filters["account"] or None,
            active_only=filters["status"] == "active",
            before=moment_of(before) if before is not None else None,
            limit=PAGE,
        )
    older = pack(CURSOR, micros_of(rows[-1].created_at)) if len(rows) == PAGE else None
    return page(
        request,
        "admin/keys.html",
        signed,
        keys=[present.key(row) for row in rows],
        filters=filters,
        filtered=any(filters.values()),
        paged=before is not None,
        first=link("/admin/keys", **filters),
        next=link("/admin/keys", **filters, before=older) if older else None,
    )


@router.post("/admin/keys/{prefix}/revoke")
async def revoke_key(request: Request, prefix: str) -> Response:
    """Revoke any account's key by its prefix (a key already revoked: 404)."""
    services, signed, fields = await admin_form(request)
    back = fields.get("account", "")
    page_after = f"/admin/accounts/{account_id_of(back)}" if back else "/admin/keys"
    await actions.revoke_key(services.db, prefix, actor=actor(signed))
    services.keys.forget(KEY + keys.key_prefix(prefix))
    return redirect(page_after, notice=f"Key {prefix}… is revoked: the API refuses it from now on")
