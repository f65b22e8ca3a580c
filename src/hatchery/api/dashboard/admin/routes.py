"""The operator's model route pages: every model's and tool's route, and one route with its
providers in order and the forms that change it.

    GET  /dashboard/admin/routes                                 models and tools
    GET  /dashboard/admin/routes/{kind}/{name}                   a route (kind: model or tool)
    POST /dashboard/admin/routes/{kind}/{name}/providers         move one up or down, enable or
                                                                 disable it (provider, action)
    POST /dashboard/admin/routes/{kind}/{name}/price             the unit price, in dollars
    POST /dashboard/admin/routes/{kind}/{name}/rules             the price rules, in order
    POST /dashboard/admin/routes/{kind}/{name}/synchronous       models only (on or off)
    POST /dashboard/admin/routes/{kind}/{name}/reset             back to the catalog file

A change is made by the route book (``services.routes``) as the admin API makes it, so it is
checked the same way, applies on every server within seconds and is audited with the admin's
session. Each form carries the revision of the route it was shown: a change to a route that
has changed since is refused (409), so that a move is never made on an order nobody saw. A
refused change shows the route's page again with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery.api.admin import present
from hatchery.api.admin.routes import route_kind
from hatchery.api.dashboard.admin.common import (
    actor,
    admin_form,
    admin_page,
    dollars,
    page,
    reason,
)
from hatchery.api.dashboard.pages import choice, redirect
from hatchery.api.session import SignedIn
from hatchery.domain.catalog import PRICED_BY, PriceRule
from hatchery.domain.money import MICROS_PER_DOLLAR
from hatchery.domain.routes import MAX_RULES, MAX_VALUE, Kind, ProviderRoute, Route, RouteChange
from hatchery.errors import BadRequest, Conflict, ValidationFailed
from hatchery.services import Services
from hatchery.store.routes import ADMIN

router = APIRouter()

ACTIONS = ("up", "down", "enable", "disable")
SPARE_RULES = 2  # empty rows under a route's rules, to add one
MAX_CONDITION = MAX_VALUE
Refused = (BadRequest, ValidationFailed, Conflict)
Make = Callable[[Route, Mapping[str, str]], tuple[RouteChange, str]]


def exact_dollars(micros: int) -> str:
    """A price as a form's field holds it: every digit kept, at least four decimals
    (``0.0320``, ``0.000125``), so that saving the form unchanged changes nothing."""
    text = f"{Decimal(micros) / MICROS_PER_DOLLAR:.6f}"
    return text[:-2] if text.endswith("00") else text


def _path(kind: Kind, name: str) -> str:
    return f"/admin/routes/{kind}/{quote(name, safe='')}"


def conditions(rule: PriceRule) -> str:
    """A price rule's conditions as the form writes them: ``resolution=4k, provider=fal``."""
    return ", ".join(f"{name}={value}" for name, value in rule.when)


@router.get("/admin/routes")
async def routes_page(request: Request) -> Response:
    services, signed = await admin_page(request)
    views = [present.route(stored, services.catalog) for stored in await services.routes.listing()]
    return page(
        request,
        "admin/routes.html",
        signed,
        models=[v for v in views if v.kind == "model"],
        tools=[v for v in views if v.kind == "tool"],
        configured=sorted(services.providers),
    )


async def _route_page(
    request: Request,
    services: Services,
    signed: SignedIn,
    kind: Kind,
    name: str,
    status: int = 200,
    **context: Any,
) -> Response:
    stored = await services.routes.get(kind, name)
    rules = [(conditions(r), exact_dollars(r.unit_price_micros)) for r in stored.route.price_rules]
    return page(
        request,
        "admin/route.html",
        signed,
        status,
        view=present.route(stored, services.catalog),
        price=exact_dollars(stored.route.unit_price_micros),
        rules=rules + [("", "")] * min(SPARE_RULES, MAX_RULES - len(rules)),
        priced_by=PRICED_BY,
        resettable=stored.source == ADMIN and (kind, name) in services.routes.seed,
        configured=sorted(services.providers),
        **context,
    )


@router.get("/admin/routes/{kind}/{name}")
async def route_page(request: Request, kind: str, name: str) -> Response:
    services, signed = await admin_page(request)
    return await _route_page(request, services, signed, route_kind(kind), name)


def _revision(fields: Mapping[str, str]) -> int:
    """The revision of the route the form was made from."""
    given = fields.get("revision", "")
    if not (given.isascii() and given.isdigit() and len(given) <= 18):
        raise BadRequest("This form lacks the route's revision: load the route's page again")
    return int(given)


async def _change(request: Request, kind: str, name: str, make: Make) -> Response:
    """Make the change ``make`` answers for the route as it is when it is changed (with the
    notice to show), or show the route's page again saying why it was refused."""
    services, signed, fields = await admin_form(request)
    checked = route_kind(kind)
    done: list[str] = []

    def edit(route: Route) -> RouteChange:  # on the route as it is, under the book's lock
        change, notice = make(route, fields)
        done.append(notice)
        return change

    try:
        await services.routes.change(
            checked, name, edit, actor(signed), reason(fields), revision=_revision(fields)
        )
    except Refused as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        return await _route_page(
            request, services, signed, checked, name, status, problem=exc.message, form=fields
        )
    return redirect(_path(checked, name), notice=done[-1])


# -- the providers


def _index(route: Route, provider: str) -> int:
    names = [p.name for p in route.providers]
    if provider not in names:
        raise BadRequest(f"{route.where} has no provider {provider[:40]!r}")
    return names.index(provider)


def _moved(providers: list[ProviderRoute], at: int, action: str) -> list[ProviderRoute]:
    to = at - 1 if action == "up" else at + 1
    if not 0 <= to < len(providers):
        raise BadRequest(f"{providers[at].name} is already {'first' if to < 0 else 'last'}")
    providers[at], providers[to] = providers[to], providers[at]
    return providers


def provider_change(route: Route, fields: Mapping[str, str]) -> tuple[RouteChange, str]:
    """Move a provider up or down the order, or enable or disable it."""
    action = choice(fields, "action", ACTIONS, "")
    provider = fields.get("provider", "")
    at = _index(route, provider)
    providers = list(route.providers)
    if action in ("up", "down"):
        providers = _moved(providers, at, action)
    else:
        providers[at] = ProviderRoute(provider, action == "enable", providers[at].upstream)
    order = ", ".join(p.name + ("" if p.enabled else " (disabled)") for p in providers)
    verb = {"up": "moved up", "down": "moved down"}.get(action, action + "d")
    return RouteChange(providers=tuple(providers)), f"{provider} is {verb}: {order}"


@router.post("/admin/routes/{kind}/{name}/providers")
async def change_provider(request: Request, kind: str, name: str) -> Response:
    return await _change(request, kind, name, provider_change)


# -- prices and the synchronous flag


def price_change(route: Route, fields: Mapping[str, str]) -> tuple[RouteChange, str]:
    price = dollars(fields, "unit_price", "the unit price")
    return RouteChange(unit_price_micros=price), f"The price is now ${exact_dollars(price)}"


@router.post("/admin/routes/{kind}/{name}/price")
async def change_price(request: Request, kind: str, name: str) -> Response:
    return await _change(request, kind, name, price_change)


def _condition(part: str, number: int) -> tuple[str, str | int]:
    param, equals, value = (text.strip() for text in part.partition("="))
    if not equals or not param or not value:
        raise BadRequest(
            f"Price rule {number}: write its conditions as name=value separated by commas, "
            f"e.g. resolution=4k, provider=fal (names: {', '.join(PRICED_BY)})"
        )
    if len(value) > MAX_CONDITION:
        raise BadRequest(f"Price rule {number}: {param} is at most {MAX_CONDITION} characters")
    if param != "duration":  # the others are words (4k, 16:9, fal), as requests carry them
        return param, value
    if not (value.isascii() and value.isdigit()):
        raise BadRequest(f"Price rule {number}: duration is a whole number of seconds, e.g. 8")
    return param, int(value)


def _row(field: str) -> int:
    """The row of a rule's field (``rule-3-when``: 3); -1 for other fields."""
    parts = field.split("-")
    if len(parts) == 3 and parts[0] == "rule" and parts[1].isascii() and parts[1].isdigit():
        return int(parts[1][:6])
    return -1


def _rule(when: str, price: str, number: int) -> PriceRule:
    if not when or not price:
        raise BadRequest(f"Price rule {number}: give both its conditions and its price")
    pairs = [_condition(part, number) for part in when.split(",") if part.strip()]
    amount = dollars({"price": price}, "price", f"the price of rule {number}")
    return PriceRule(tuple(pairs), amount)


def rules_change(route: Route, fields: Mapping[str, str]) -> tuple[RouteChange, str]:
    """The rules of the form's rows, in order (a row left empty is none)."""
    beyond = [name for name in fields if _row(name) >= MAX_RULES]
    if beyond:
        raise BadRequest(f"A route has at most {MAX_RULES} price rules")
    rules = []
    for i in range(MAX_RULES):
        when = fields.get(f"rule-{i}-when", "").strip()
        price = fields.get(f"rule-{i}-price", "").strip()
        if when or price:
            rules.append(_rule(when, price, i + 1))
    count = f"{len(rules)} price rule{'' if len(rules) == 1 else 's'}" if rules else "no rules"
    return RouteChange(price_rules=tuple(rules)), f"The route has {count} now"


@router.post("/admin/routes/{kind}/{name}/rules")
async def change_rules(request: Request, kind: str, name: str) -> Response:
    return await _change(request, kind, name, rules_change)


def synchronous_change(route: Route, fields: Mapping[str, str]) -> tuple[RouteChange, str]:
    on = choice(fields, "synchronous", ("on", "off"), "") == "on"
    done = "Submits now wait for the result" if on else "Submits are answered at once now"
    return RouteChange(synchronous=on), done


@router.post("/admin/routes/{kind}/{name}/synchronous")
async def change_synchronous(request: Request, kind: str, name: str) -> Response:
    return await _change(request, kind, name, synchronous_change)


@router.post("/admin/routes/{kind}/{name}/reset")
async def reset_route(request: Request, kind: str, name: str) -> Response:
    """Back to what the catalog file says, following the file from then on."""
    services, signed, fields = await admin_form(request)
    checked = route_kind(kind)
    try:
        await services.routes.reset(
            checked, name, actor(signed), reason(fields), revision=_revision(fields)
        )
    except Refused as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        return await _route_page(
            request, services, signed, checked, name, status, problem=exc.message, form=fields
        )
    notice = "The route is as the catalog file has it again"
    return redirect(_path(checked, name), notice=notice)
