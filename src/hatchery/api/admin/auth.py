"""Who may use the admin API: an admin account (``accounts.ADMIN``, granted from the CLI) through
one of its API keys or its dashboard session (changes then carry the session's CSRF header).
Anyone else is refused with 403, after the usual authentication (401 without a valid key)."""

from __future__ import annotations

from starlette.requests import Request

from hatchery.admin.audit import Actor
from hatchery.api.auth import authenticate_key
from hatchery.api.context import services_of
from hatchery.errors import Forbidden

NOT_ADMIN = (
    "This route is for the server's admins; an operator grants the role with "
    "`hatchery users grant-admin EMAIL`"
)


async def admin(request: Request) -> Actor:
    """The admin making the request, as the audit log names them."""
    record = await authenticate_key(services_of(request), request)
    account = record.account
    if not account.is_admin:
        raise Forbidden(NOT_ADMIN)
    via = f"key:{account.api_key}" if account.api_key else "session"
    return Actor(account.email, via, account.id)
