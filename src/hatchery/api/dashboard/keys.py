"""The API keys page: the account's keys by prefix, a new key shown this once, and revoking one.

    GET  /dashboard/keys                    every key (revoked and expired ones marked): its name,
                                            when it was made, expires and was last used, its spend
    POST /dashboard/keys                    a new key (name; expiry: a period or a date), answered
                                            with the page showing the key this once (200, no-store)
    POST /dashboard/keys/{prefix}/revoke    revoke one of the account's keys (another's: 404)

A revoked key is refused at once by this process, and by the others as their key caches hear of
it (``store.keycache``: at once on PostgreSQL, within ``HATCHERY_KEY_CACHE_SECONDS`` on SQLite).
The key itself is never stored: after this page has shown it, only its prefix is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery.api.dashboard.pages import account_page, change_form, choice, redirect, render
from hatchery.api.query import parse_day
from hatchery.api.session import SignedIn
from hatchery.domain import keys
from hatchery.domain.usage import Totals
from hatchery.errors import BadRequest, NotFound
from hatchery.services import Services
from hatchery.store import accounts, usage
from hatchery.store.db import utcnow
from hatchery.store.keycache import KEY

router = APIRouter()

NAME_LENGTH = 128
NEVER = "never"
PERIODS: dict[str, tuple[str, timedelta | None]] = {  # the choice: (its label, its length)
    NEVER: ("Never", None),
    "7d": ("In 7 days", timedelta(days=7)),
    "30d": ("In 30 days", timedelta(days=30)),
    "90d": ("In 90 days", timedelta(days=90)),
    "1y": ("In 1 year", timedelta(days=365)),
}


@dataclass(frozen=True)
class KeyRow:
    """A key as the list shows it: its state and what it has spent."""

    key: accounts.KeyInfo
    state: str  # active, expired or revoked
    spend: Totals | None


def _state(key: accounts.KeyInfo, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def key_name(fields: Mapping[str, str]) -> str:
    """The new key's name: required, at most NAME_LENGTH characters, printable."""
    name = fields.get("name", "").strip()
    if not name:
        raise BadRequest("Give the key a name, such as the program that will use it")
    if len(name) > NAME_LENGTH:
        raise BadRequest(f"A key's name may be at most {NAME_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise BadRequest("A key's name cannot hold control characters")
    return name


def _on_date(text: str, today: date) -> datetime:
    day = parse_day(text, "The expiry date")
    if day <= today:
        raise BadRequest("The expiry date must be after today (UTC)")
    return datetime.combine(day, time(), tzinfo=UTC)


def expiry(fields: Mapping[str, str], now: datetime) -> datetime | None:
    """When the new key stops working: a period from now, or 00:00 UTC on a date; None: never."""
    period = choice(fields, "expires", tuple(PERIODS), NEVER)
    on = fields.get("expires_on", "").strip()
    if on and period != NEVER:
        raise BadRequest("Choose either a period or a date for the key to expire, not both")
    if on:
        return _on_date(on, now.astimezone(UTC).date())
    after = PERIODS[period][1]
    return now + after if after is not None else None


async def _page(
    request: Request,
    services: Services,
    signed: SignedIn,
    status: int = 200,
    **context: Any,
) -> Response:
    account_id = signed.account.id
    async with services.db.read() as conn:
        found = await accounts.list_keys(conn, account_id)
        spent = await usage.by_key(conn, account_id)
    now = utcnow()
    rows = [KeyRow(key, _state(key, now), spent.get(key.prefix)) for key in found]
    session_spend = spent.get(usage.NO_KEY)  # every day's row counts a request: none is empty
    return render(
        request,
        "keys.html",
        signed,
        status,
        rows=rows,
        session_spend=session_spend,
        periods={value: label for value, (label, _) in PERIODS.items()},
        name_length=NAME_LENGTH,
        **context,
    )


@router.get("/keys")
async def keys_page(request: Request) -> Response:
    services, signed = await account_page(request)
    return await _page(request, services, signed)


@router.post("/keys")
async def create_key(request: Request) -> Response:
    """A new key, shown on the page this once (answered directly: never in a URL)."""
    services, signed, fields = await change_form(request)
    try:
        name = key_name(fields)
        expires_at = expiry(fields, utcnow())
    except BadRequest as exc:
        return await _page(request, services, signed, 400, problem=exc.message, form=fields)
    key = keys.new_api_key()
    async with services.db.write() as conn:
        await accounts.add_key(conn, signed.account.id, key, expires_at, name)
    return await _page(request, services, signed, new_key=key, new_name=name)


@router.post("/keys/{prefix}/revoke")
async def revoke_key(request: Request, prefix: str) -> Response:
    services, signed, _ = await change_form(request)
    found = False
    if len(prefix) == keys.PREFIX_LENGTH and prefix.startswith(keys.KEY_PREFIX):
        async with services.db.write() as conn:
            found = await accounts.revoke_key(conn, signed.account.id, prefix)
    if not found:
        raise NotFound(f"No API key {prefix[:32]} in this account")
    services.keys.forget(KEY + prefix)
    return redirect("/keys", notice=f"Key {prefix}… is revoked: the API refuses it from now on")
