"""Signing in and out of the dashboard, and accepting an invite.

    GET  /dashboard/sign-in              the form (back to ``next`` after)
    POST /dashboard/sign-in              email and password: a session cookie, or 401 again
    POST /dashboard/sign-out             end the session
    GET  /dashboard/invite/{token}       the form to set a password, for an unused invite
    POST /dashboard/invite/{token}       set it (the invite is used up), and sign in

The sign-in and invite forms come before any session: their CSRF token is a cookie of its own
(``api.session.FORM_COOKIE``) that the form repeats. Attempts are limited per client IP and per
email (``HATCHERY_DASHBOARD_SIGNIN_LIMIT``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery.api import ratelimit, session
from hatchery.api.context import services_of
from hatchery.api.dashboard.pages import PREFIX, read_form, redirect, render
from hatchery.domain import keys, passwords
from hatchery.errors import NotFound
from hatchery.services import Services
from hatchery.store import accounts, sessions

router = APIRouter()
T = TypeVar("T")

FORM_COOKIE_AGE = 3600
WRONG = "The email or the password is wrong"
INVITE_GONE = (
    "This invite link has been used or has expired: ask the operator of this server for a new "
    "one (hatchery users invite EMAIL)"
)


# argon2 costs 64 MiB and tens of milliseconds a hash: at most one per core at once, whatever
# the number of clients signing in (the others wait their turn).
_HASHERS = asyncio.Semaphore(max(1, os.cpu_count() or 1))


async def _hashing(fn: Callable[..., T], *args: str | None) -> T:
    """``fn(*args)`` (a password hash or check) in a thread, once one of the hashers is free."""
    async with _HASHERS:
        return await asyncio.to_thread(fn, *args)


def _next(path: str | None) -> str:
    """Where to go after signing in: a dashboard page, never another site."""
    if path and path.startswith(PREFIX) and not path.startswith("//") and "\\" not in path:
        return path
    return PREFIX


def _form_token(request: Request) -> tuple[str, bool]:
    """The pre-session CSRF token of this browser, and whether it is new (to be set)."""
    given = request.cookies.get(session.FORM_COOKIE)
    if given and len(given) <= 128:
        return given, False
    return keys.new_token(), True


def _check_form_token(request: Request, fields: dict[str, str]) -> None:
    """A form shown before any session repeats the token of this browser's form cookie; a
    request without the cookie (a cross-site post: the cookie is Lax) or from another site's
    page is refused (Forbidden)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        session.check_csrf("", None)
    session.check_csrf(request.cookies.get(session.FORM_COOKIE, ""), fields.get("csrf_token"))


def _form_page(
    request: Request, template: str, status: int = 200, **context: str | None
) -> Response:
    services = services_of(request)
    token, new = _form_token(request)
    response = render(request, template, None, status, form_token=token, **context)
    if new:
        session.set_cookie(response, services, request, session.FORM_COOKIE, token, FORM_COOKIE_AGE)
    return response


async def _signed_in_response(
    services: Services, request: Request, account_id: str, to: str
) -> Response:
    """Start a session of the account and go to ``to`` with its cookie."""
    idle = session.idle_time(services)
    async with services.db.write() as conn:
        await sessions.purge(conn)  # the expired sessions of everyone go at each sign-in
        token, _ = await sessions.create(conn, account_id, idle, request.headers.get("user-agent"))
    response = redirect(to.removeprefix(PREFIX))
    age = int(sessions.MAX_AGE.total_seconds())
    session.set_cookie(response, services, request, session.COOKIE, token, age)
    response.delete_cookie(session.FORM_COOKIE, path="/")
    return response


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    next_path = _next(request.query_params.get("next"))
    if await session.signed_in(services_of(request), request) is not None:
        return redirect(next_path.removeprefix(PREFIX))
    return _form_page(request, "sign_in.html", next_path=next_path, email="")


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    services = services_of(request)
    fields = await read_form(request)
    _check_form_token(request, fields)
    email, password = fields.get("email", "").strip(), fields.get("password", "")
    next_path = _next(fields.get("next"))
    limiter: ratelimit.Limiter = request.app.state.limiter
    await ratelimit.check_signin(limiter, request.scope, email)
    async with services.db.read() as conn:
        account = await accounts.by_email(conn, email) if email else None
        stored = await accounts.password_hash(conn, account.id) if account else None
    # verified whatever the email: an unknown one takes as long as a wrong password
    right = await _hashing(passwords.verify, stored, password)
    if account is None or not right:
        return _form_page(
            request, "sign_in.html", 401, next_path=next_path, email=email, problem=WRONG
        )
    if account.status != accounts.ACTIVE:
        problem = "This account is suspended: contact the operator of this server"
        return _form_page(
            request, "sign_in.html", 403, next_path=next_path, email=email, problem=problem
        )
    if stored and passwords.needs_rehash(stored):
        rehashed = await _hashing(passwords.hash_password, password)
        async with services.db.write() as conn:
            await accounts.set_password_hash(conn, account.id, rehashed)
    return await _signed_in_response(services, request, account.id, next_path)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    services = services_of(request)
    signed = await session.signed_in(services, request)
    if signed is None:  # nothing to end (and no cookie to clear for a post from elsewhere)
        return redirect("/sign-in")
    fields = await read_form(request)
    session.check_csrf(signed.csrf_token, fields.get(session.CSRF_FIELD))
    async with services.db.write() as conn:
        await sessions.end(conn, request.cookies[session.COOKIE])
    response = redirect("/sign-in", signed_out="1")
    response.delete_cookie(session.COOKIE, path="/")
    return response


async def _invited_account(services: Services, token: str) -> accounts.Account:
    async with services.db.read() as conn:
        account_id = await sessions.invited(conn, token) if len(token) <= 128 else None
        account = await accounts.by_id(conn, account_id) if account_id else None
    if account is None:
        raise NotFound(INVITE_GONE)
    return account


@router.get("/invite/{token}")
async def invite_page(request: Request, token: str) -> Response:
    account = await _invited_account(services_of(request), token)
    return _form_page(request, "invite.html", email=account.email)


@router.post("/invite/{token}")
async def accept_invite(request: Request, token: str) -> Response:
    services = services_of(request)
    fields = await read_form(request)
    _check_form_token(request, fields)
    account = await _invited_account(services, token)
    password = fields.get("password", "")
    problem = passwords.problem(password, account.email)
    if problem is None and password != fields.get("confirm", ""):
        problem = "The two passwords differ: type the same one twice"
    if problem is not None:
        return _form_page(request, "invite.html", 400, email=account.email, problem=problem)
    hashed = await _hashing(passwords.hash_password, password)
    async with services.db.write() as conn:
        if await sessions.use_invite(conn, token) != account.id:
            raise NotFound(INVITE_GONE)
        await accounts.set_password_hash(conn, account.id, hashed)
        await sessions.end_all(conn, account.id)
    return await _signed_in_response(services, request, account.id, PREFIX)
