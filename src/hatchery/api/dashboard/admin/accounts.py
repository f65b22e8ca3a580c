"""The operator's account pages: every account (search, status and role filters), one account
(its balance, ledger and keys), and the changes an admin makes to one.

    GET  /dashboard/admin/accounts                       ?query= &status= &role= &after=
    POST /dashboard/admin/accounts                       create one (email, starting balance)
    GET  /dashboard/admin/accounts/{id}                  ?before= (the ledger's older page)
    POST /dashboard/admin/accounts/{id}/suspend          refuse its keys, sign it out
    POST /dashboard/admin/accounts/{id}/activate
    POST /dashboard/admin/accounts/{id}/balance          credit or debit (signed dollars), reason
    POST /dashboard/admin/accounts/{id}/rate-limit       its own limit, ``off`` or ``default``
    POST /dashboard/admin/accounts/{id}/flags            exactly the flags ticked

Each change is the operator action the admin API makes (``hatchery.admin``), audited with the
admin's session as its actor; a refused one shows the account's page again with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery import admin as actions
from hatchery.admin.audit import Actor
from hatchery.api.admin import present
from hatchery.api.admin.routes import account_id_of
from hatchery.api.dashboard.admin.common import (
    actor,
    admin_form,
    admin_page,
    dollars,
    pack,
    page,
    position,
)
from hatchery.api.dashboard.pages import choice, link, redirect
from hatchery.api.session import SignedIn
from hatchery.domain.money import format_balance
from hatchery.errors import BadRequest, NotFound, ValidationFailed
from hatchery.services import Services
from hatchery.store import accounts, operator
from hatchery.store.keycache import ACCOUNT

router = APIRouter()

PAGE = 50  # accounts a page
LEDGER = 25  # ledger entries a page
KEYS = 200  # keys shown on an account's page
LEDGER_CURSOR = "dal1."
MAX_QUERY = 320
STATUSES = (accounts.ACTIVE, accounts.SUSPENDED)
FLAG_FIELD = "flag:"  # each flag's checkbox: ``flag:no-watermark``
Refused = (BadRequest, ValidationFailed)


# -- the list


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    query = q.get("query", "").strip()
    if len(query) > MAX_QUERY:
        raise BadRequest(f"Search with at most {MAX_QUERY} characters: part of an email or an id")
    return {
        "query": query,
        "status": choice(q, "status", ("", *STATUSES), ""),
        "role": choice(q, "role", ("", *accounts.ROLES), ""),
    }


async def _list_page(
    request: Request, services: Services, signed: SignedIn, status: int = 200, **context: Any
) -> Response:
    filters = _filters(request) if request.method == "GET" else {}
    after = request.query_params.get("after") if request.method == "GET" else None
    async with services.db.read() as conn:
        rows = await operator.find_accounts(
            conn,
            query=filters.get("query", ""),
            status=filters.get("status") or None,
            role=filters.get("role") or None,
            after=after or None,
            limit=PAGE,
        )
    full = len(rows) == PAGE
    return page(
        request,
        "admin/accounts.html",
        signed,
        status,
        rows=rows,
        filters=filters,
        filtered=any(filters.values()),
        paged=bool(after),
        first=link("/admin/accounts", **filters),
        next=link("/admin/accounts", **filters, after=rows[-1].account.email) if full else None,
        statuses=STATUSES,
        roles=accounts.ROLES,
        **context,
    )


@router.get("/admin/accounts")
async def accounts_page(request: Request) -> Response:
    services, signed = await admin_page(request)
    return await _list_page(request, services, signed)


@router.post("/admin/accounts")
async def create_account(request: Request) -> Response:
    services, signed, fields = await admin_form(request)
    try:
        balance = dollars(fields, "balance", "the starting balance") if fields.get("balance") else 0
        created = await actions.create_user(
            services.db, fields.get("email", "").strip(), balance, actor=actor(signed)
        )
    except Refused as exc:
        return await _list_page(request, services, signed, 400, problem=exc.message, form=fields)
    return redirect(f"/admin/accounts/{created.id}", notice=f"Account {created.email} is created")


# -- one account


async def _account_page(
    request: Request,
    services: Services,
    signed: SignedIn,
    account_id: str,
    status: int = 200,
    **context: Any,
) -> Response:
    before = position(request, LEDGER_CURSOR) if request.method == "GET" else None
    async with services.db.read() as conn:
        rows = await operator.find_accounts(conn, account_id=account_id_of(account_id), limit=1)
        if not rows:
            raise NotFound(f"No account {account_id}")
        ledger = await operator.ledger_entries(conn, account_id, before_seq=before, limit=LEDGER)
        total = await operator.ledger_total(conn, account_id)
        keys = await operator.find_keys(conn, account_id=account_id, limit=KEYS)
    older = ledger[-1].seq if len(ledger) == LEDGER else None
    return page(
        request,
        "admin/account.html",
        signed,
        status,
        row=rows[0],
        ledger=ledger,
        ledger_total=total,
        paged=before is not None,
        older=pack(LEDGER_CURSOR, older),
        keys=[present.key(key) for key in keys],
        on_account=True,
        flags=accounts.FLAGS,
        **context,
    )


@router.get("/admin/accounts/{account_id}")
async def account_page(request: Request, account_id: str) -> Response:
    services, signed = await admin_page(request)
    return await _account_page(request, services, signed, account_id)


Change = Callable[[Services, Actor, str, Mapping[str, str]], Awaitable[str]]


async def _change(request: Request, account_id: str, change: Change) -> Response:
    """Make ``change(services, actor, account id, fields)`` to the account: back to its page
    with the notice it answers, or its page again saying why the change was refused."""
    services, signed, fields = await admin_form(request)
    target = account_id_of(account_id)
    try:
        done = await change(services, actor(signed), target, fields)
    except Refused as exc:
        return await _account_page(
            request, services, signed, target, 400, problem=exc.message, form=fields
        )
    services.keys.forget(ACCOUNT + target)  # this process at once (the others: store.keycache)
    return redirect(f"/admin/accounts/{target}", notice=done)


async def _suspend(services: Services, by: Actor, target: str, _: Mapping[str, str]) -> str:
    await actions.set_status(services.db, target, accounts.SUSPENDED, actor=by)
    return "The account is suspended: its keys are refused and its sessions signed out"


async def _activate(services: Services, by: Actor, target: str, _: Mapping[str, str]) -> str:
    await actions.set_status(services.db, target, accounts.ACTIVE, actor=by)
    return "The account is active again"


async def _balance(services: Services, by: Actor, target: str, f: Mapping[str, str]) -> str:
    amount = dollars(f, "amount", "the amount")
    after, _ = await actions.adjust_balance(
        services.db, target, amount, f.get("reason", ""), actor=by
    )
    verb = "Credited" if amount > 0 else "Debited"
    now = format_balance(after.balance_micros)
    return f"{verb} {format_balance(abs(amount))}: the balance is {now}"


async def _rate_limit(services: Services, by: Actor, target: str, f: Mapping[str, str]) -> str:
    text = f.get("rate_limit", "").strip()
    if not text:
        raise BadRequest("Give a rate limit, e.g. 10/second;500/hour, or off, or default")
    applies = await actions.set_rate_limit(services.db, target, text, actor=by)
    return f"Its rate limit is now {applies}"


def flags_of(fields: Mapping[str, str]) -> frozenset[str]:
    """The ticked flags of the form (each a checkbox ``flag:<name>``)."""
    return frozenset(n.removeprefix(FLAG_FIELD) for n in fields if n.startswith(FLAG_FIELD))


async def _flags(services: Services, by: Actor, target: str, f: Mapping[str, str]) -> str:
    after = await actions.set_flags(services.db, target, flags_of(f), actor=by)
    return f"Its flags are now: {', '.join(sorted(after.flags)) or 'none'}"


@router.post("/admin/accounts/{account_id}/suspend")
async def suspend(request: Request, account_id: str) -> Response:
    return await _change(request, account_id, _suspend)


@router.post("/admin/accounts/{account_id}/activate")
async def activate(request: Request, account_id: str) -> Response:
    return await _change(request, account_id, _activate)


@router.post("/admin/accounts/{account_id}/balance")
async def adjust_balance(request: Request, account_id: str) -> Response:
    """A credit (a positive amount) or a debit (a negative one), with its reason."""
    return await _change(request, account_id, _balance)


@router.post("/admin/accounts/{account_id}/rate-limit")
async def set_rate_limit(request: Request, account_id: str) -> Response:
    return await _change(request, account_id, _rate_limit)


@router.post("/admin/accounts/{account_id}/flags")
async def set_flags(request: Request, account_id: str) -> Response:
    return await _change(request, account_id, _flags)
