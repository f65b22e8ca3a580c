"""Bearer-key authentication, with the reference API's messages (seed 003). Keys are looked up
through the process's key cache (``store.keycache``); the account this returns carries no
balance to trust (read the account again where money is shown)."""

from __future__ import annotations

from starlette.requests import Request

from hatchery.api import ratelimit, session
from hatchery.domain import keys
from hatchery.errors import Forbidden, Unauthorized
from hatchery.observe import logs
from hatchery.services import Services
from hatchery.store import accounts
from hatchery.store.accounts import KeyRecord
from hatchery.store.db import utcnow

INVALID_KEY = "Invalid API key: the key is unknown, revoked or expired"


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("Missing Authorization header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        raise Unauthorized("Invalid Authorization format, expected 'Bearer <token>'")
    return token.strip()


async def authenticate(services: Services, request: Request) -> accounts.Account:
    return (await authenticate_key(services, request)).account


async def authenticate_key(services: Services, request: Request) -> KeyRecord:
    """The request's key (with its account), counted against the key's rate limit; without
    ``Authorization`` but with a dashboard session's cookie, the session's (``api.session``)."""
    header = request.headers.get("authorization")
    if not header and session.has_cookie(request):
        return await session.session_key(services, request)
    token = bearer_token(header)
    if not keys.looks_like_key(token):
        raise Unauthorized(INVALID_KEY)
    record = await services.keys.lookup(token)
    if record is None or not keys.key_matches(token, record.key_hash):
        raise Unauthorized(INVALID_KEY)
    if record.revoked_at is not None or (
        record.expires_at is not None and record.expires_at <= utcnow()
    ):
        raise Unauthorized(INVALID_KEY)
    if record.account.status != accounts.ACTIVE:
        raise Forbidden("Account is suspended: contact the operator of this server")
    await ratelimit.check_key(request.scope, record.prefix, record.account.rate_limit)
    services.keys.used(record.prefix)
    logs.ACCOUNT_ID.set(record.account.id)  # the request's lines name its account from here
    return record
