"""A browser signed in to the dashboard: its session cookie, its CSRF token, and what the
session may do on the APIs.

- **Cookie.** ``hatchery_session`` holds a 256-bit token (the database keeps its SHA-256),
  ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, and ``Secure`` when the server is reached over
  HTTPS (the request's scheme, or ``HATCHERY_PUBLIC_URL``'s). A session ends when signed out,
  when its account's password changes, or ``HATCHERY_DASHBOARD_SESSION_HOURS`` after its last
  use (each use renews it, up to 30 days after the sign-in).
- **CSRF.** Every change a session makes carries the session's CSRF token: a form's hidden
  ``csrf_token`` field, or an API call's ``X-CSRF-Token`` header. Before a session exists (the
  sign-in and invite forms) the token is a random cookie of its own that the form repeats.
- **The APIs.** A request to the Egg or VideoGen API without ``Authorization`` but with the
  cookie is the session's account, as the Egg API's dashboard playground is (its tasks have no
  API key); a change needs the CSRF header too. Its rate limit is the account's, counted per
  session account.

Errors: ``Unauthorized`` (no session, or expired), ``Forbidden`` (the CSRF token is missing or
wrong).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from hatchery.api import ratelimit
from hatchery.errors import Forbidden, Unauthorized
from hatchery.services import Services
from hatchery.store import accounts, sessions
from hatchery.store.accounts import Account, KeyRecord
from hatchery.store.db import utcnow

COOKIE = "hatchery_session"
FORM_COOKIE = "hatchery_form"  # the CSRF token of the forms shown before a session exists
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RATE_LIMIT_ID = "session:"  # a session's requests count against ``session:<account id>``


@dataclass(frozen=True)
class SignedIn:
    account: Account
    session: sessions.Session

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token


def idle_time(services: Services) -> timedelta:
    return timedelta(hours=services.settings.dashboard_session_hours)


def secure(services: Services, request: Request) -> bool:
    """Whether cookies get ``Secure``: the browser reached us over HTTPS."""
    return request.url.scheme == "https" or services.settings.public_url.startswith("https://")


def set_cookie(
    response: Response, services: Services, request: Request, name: str, value: str, age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure(services, request),
    )


async def signed_in(services: Services, request: Request) -> SignedIn | None:
    """The request's session and its account (read again: the balance is as it is now), renewed
    if it is past half its idle time; None without a live one or with a suspended account."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 128:
        return None
    async with services.db.read() as conn:
        session = await sessions.read(conn, token)
        account = await accounts.by_id(conn, session.account_id) if session else None
    if session is None or account is None or account.status != accounts.ACTIVE:
        return None
    renewed = session.renewal(idle_time(services), utcnow())
    if renewed is not None:
        async with services.db.write() as conn:
            await sessions.extend(conn, session.id, renewed)
        session = replace(session, expires_at=renewed)
    return SignedIn(account, session)


def check_csrf(expected: str, given: str | None) -> None:
    """Forbidden unless ``given`` is ``expected`` (compared in constant time); always when
    there is nothing to expect."""
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden(
            "Missing or wrong CSRF token: reload the page and try again (an API call from the "
            "dashboard sends it as X-CSRF-Token)"
        )


def has_cookie(request: Request) -> bool:
    return bool(request.cookies.get(COOKIE))


async def session_key(services: Services, request: Request) -> KeyRecord:
    """The API's authentication of a request that has no ``Authorization`` but the session
    cookie: the session's account as a key record without a key (its ``api_key`` is None), once
    a change has shown its CSRF header and the request is counted against the account's limit."""
    found = await signed_in(services, request)
    if found is None:
        raise Unauthorized("The dashboard session has expired: sign in again")
    if request.method not in SAFE_METHODS:
        check_csrf(found.csrf_token, request.headers.get(CSRF_HEADER))
    limit_id = RATE_LIMIT_ID + found.account.id
    await ratelimit.check_key(request.scope, limit_id, found.account.rate_limit)
    expires = found.session.expires_at
    return KeyRecord(found.account, limit_id, "", expires, None)
