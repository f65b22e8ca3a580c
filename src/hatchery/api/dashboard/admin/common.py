"""What the operator's pages share: the admin check (a signed-in account with the admin role,
403 for anyone else), the audit log's name for the admin (``Actor``), the sections the admin
navigation lists, page positions, and amounts in dollars read from a form."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from hatchery.admin.audit import Actor
from hatchery.api import cursor, session
from hatchery.api.dashboard.pages import account_page, read_form, render
from hatchery.api.session import SignedIn
from hatchery.domain.money import parse_dollars
from hatchery.errors import BadRequest, Forbidden
from hatchery.services import Services

ADMIN = "/admin"
NOT_ADMIN = (
    "These pages are for the server's admins; an operator grants the role with "
    "`hatchery users grant-admin EMAIL`"
)
# The admin section's own navigation: (path under PREFIX, label).
SECTIONS = (
    (ADMIN, "Summary"),
    (ADMIN + "/accounts", "Accounts"),
    (ADMIN + "/keys", "Keys"),
    (ADMIN + "/routes", "Routes"),
    (ADMIN + "/providers", "Providers"),
    (ADMIN + "/queue", "Queue"),
    (ADMIN + "/outbox", "Outbox"),
    (ADMIN + "/audit", "Audit log"),
)
MAX_REASON = 1000  # an audit entry's reason (a ledger note is shorter: admin.accounts)


def _check_admin(signed: SignedIn) -> None:
    if not signed.account.is_admin:
        raise Forbidden(NOT_ADMIN)


async def admin_page(request: Request) -> tuple[Services, SignedIn]:
    """The services and the session of an admin's page; Forbidden for anyone else."""
    services, signed = await account_page(request)
    _check_admin(signed)
    return services, signed


async def admin_form(request: Request) -> tuple[Services, SignedIn, dict[str, str]]:
    """An admin's form that changes something, once its CSRF token is the session's."""
    services, signed = await admin_page(request)
    fields = await read_form(request)
    session.check_csrf(signed.csrf_token, fields.get(session.CSRF_FIELD))
    return services, signed, fields


def actor(signed: SignedIn) -> Actor:
    """The admin as the audit log names a change made from the dashboard."""
    return Actor(signed.account.email, "session", signed.account.id)


def page(
    request: Request, template: str, signed: SignedIn, status: int = 200, **context: Any
) -> HTMLResponse:
    return render(request, template, signed, status, sections=SECTIONS, **context)


def dollars(fields: Mapping[str, str], name: str, what: str) -> int:
    """A form's amount in dollars (``5.00``, ``-2.50``) as micro-dollars; BadRequest saying
    what to write otherwise."""
    text = fields.get(name, "").strip()
    if not text:
        raise BadRequest(f"Give {what} in dollars, e.g. 5.00")
    try:
        return parse_dollars(text)
    except ValueError as exc:
        raise BadRequest(f"{what.capitalize()}: {exc}; write dollars, e.g. 5.00 or -2.50") from None


def reason(fields: Mapping[str, str], limit: int = MAX_REASON) -> str | None:
    """The optional reason kept in the audit log."""
    text = fields.get("reason", "").strip()
    if len(text) > limit:
        raise BadRequest(f"The reason is {len(text)} characters; at most {limit}")
    return text or None


# -- page positions: opaque, as the other lists' (``api.cursor``)


def position(request: Request, kind: str, name: str = "before") -> int | None:
    """The page position ``?before=`` of a list; BadRequest for one no page gave out."""
    given = request.query_params.get(name)
    if not given:
        return None
    numbers = cursor.unpack(kind, given, 1)
    if numbers is None:
        raise BadRequest("That page link is not valid: start again from the first page")
    return numbers[0]


def pack(kind: str, number: int | None) -> str | None:
    return cursor.pack(kind, number) if number is not None else None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros_of(moment: datetime) -> int:
    """A time (timezone-aware, as the store gives them) in microseconds since the epoch: a
    page position."""
    return (moment - EPOCH) // MICROSECOND


def moment_of(micros: int) -> datetime:
    """The time of a page position; BadRequest for one no page could have given out."""
    try:
        return EPOCH + micros * MICROSECOND
    except OverflowError:
        raise BadRequest("That page link is not valid: start again from the first page") from None
