"""The operator's audit log page: every admin action, newest first, with who did it, when, what
it was done to and why, and what changed (before and after).

    GET  /dashboard/admin/audit     ?target= (``account:acct_...``, ``model:NAME``, or a prefix
                                    ending in ``:``) &actor= (an email, ``cli:user@host``)
                                    &action= (``account.credit``, or a prefix ending in ``.``)
                                    &before= (the next page's position)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery.api.dashboard.admin.common import admin_page, pack, page, position
from hatchery.api.dashboard.pages import link
from hatchery.api.dashboard.tasks import pretty
from hatchery.domain.money import format_balance
from hatchery.errors import BadRequest
from hatchery.store import audit
from hatchery.store.audit import Entry

router = APIRouter()

PAGE = 50
CURSOR = "daa1."
MAX_FILTER = 320
FILTERS = ("target", "actor", "action")
MONEY_SUFFIX = "_micros"


@dataclass(frozen=True)
class Change:
    field: str  # empty when the entry's before and after are not objects
    before: str
    after: str


@dataclass(frozen=True)
class Row:
    entry: Entry
    target_path: str | None
    changes: list[Change]
    before: str | None  # the whole of it, as JSON
    after: str | None


def _providers(value: Any) -> str | None:
    """A route's providers as the pages list them: ``fal, local (disabled)``."""
    if not isinstance(value, list) or not all(isinstance(p, dict) and "name" in p for p in value):
        return None
    return ", ".join(f"{p['name']}{'' if p.get('enabled', True) else ' (disabled)'}" for p in value)


def shown(field: str, value: Any) -> str:
    """A value as the change list shows it: money in dollars, a route's providers by name, the
    rest as compact JSON."""
    if value is None:
        return "—"
    if field.endswith(MONEY_SUFFIX) and isinstance(value, int) and not isinstance(value, bool):
        return format_balance(value)
    if field == "providers" and (names := _providers(value)) is not None:
        return names
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def changes(before: Any, after: Any) -> list[Change]:
    """What differs between an entry's before and after, field by field (a creation: each
    field of what was made)."""
    if before is None and isinstance(after, dict):
        before = {}
    if after is None and isinstance(before, dict):
        after = {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [] if before == after else [Change("", shown("", before), shown("", after))]
    fields = list(before) + [name for name in after if name not in before]
    return [
        Change(name, shown(name, before.get(name)), shown(name, after.get(name)))
        for name in fields
        if before.get(name) != after.get(name)
    ]


def target_path(target: str) -> str | None:
    """The page of what an entry is about, when it has one."""
    kind, _, name = target.partition(":")
    if kind == "account" and name:
        return f"/admin/accounts/{quote(name, safe='')}"
    if kind in ("model", "tool") and name:
        return f"/admin/routes/{kind}/{quote(name, safe='')}"
    return None


def _row(entry: Entry) -> Row:
    return Row(
        entry,
        target_path(entry.target),
        changes(entry.before, entry.after),
        None if entry.before is None else pretty(entry.before),
        None if entry.after is None else pretty(entry.after),
    )


def _filters(request: Request) -> dict[str, str]:
    found = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    for name, value in found.items():
        if len(value) > MAX_FILTER:
            raise BadRequest(f"The {name} to look for is at most {MAX_FILTER} characters")
    return found


@router.get("/admin/audit")
async def audit_page(request: Request) -> Response:
    services, signed = await admin_page(request)
    filters = _filters(request)
    where = audit.Filter(**{name: value or None for name, value in filters.items()})
    before = position(request, CURSOR)
    async with services.db.read() as conn:
        entries = await audit.listing(conn, where, before_seq=before, limit=PAGE)
    older = pack(CURSOR, entries[-1].seq) if len(entries) == PAGE else None
    return page(
        request,
        "admin/audit.html",
        signed,
        rows=[_row(entry) for entry in entries],
        filters=filters,
        filtered=any(filters.values()),
        paged=before is not None,
        first=link("/admin/audit", **filters),
        next=link("/admin/audit", **filters, before=older) if older else None,
    )
