"""Operator actions behind the ``hatchery`` admin commands (users, keys, balance, secrets).

Each is one transaction on the database the server uses, so they work while it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from hatchery.domain import keys, passwords, rates
from hatchery.domain.money import format_balance
from hatchery.errors import BadRequest, NotFound
from hatchery.store import accounts, sessions
from hatchery.store.db import Database, utcnow

LOCAL_EMAIL = "local@localhost"
STARTING_BALANCE = 10_000_000
INVITE_VALID_FOR = timedelta(days=7)
INVITE_PATH = "/dashboard/invite/"
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DEFAULT_RATE_LIMIT = "default"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w``."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise BadRequest(f"invalid duration {text!r}: use a number and a unit, e.g. 30d, 12h, 90m")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


async def _account(db: Database, email: str) -> accounts.Account:
    async with db.read() as conn:
        account = await accounts.by_email(conn, email)
    if account is None:
        raise NotFound(f"no account with email {email}")
    return account


async def create_user(db: Database, email: str, balance_micros: int) -> accounts.Account:
    if not _EMAIL.match(email):
        raise BadRequest(f"{email!r} is not an email address")
    if balance_micros < 0:
        raise BadRequest("the starting balance cannot be negative")
    exists = BadRequest(f"an account with email {email} already exists")
    try:
        async with db.write() as conn:
            if await accounts.by_email(conn, email) is not None:
                raise exists
            return await accounts.create(conn, email, balance_micros)
    except sa.exc.IntegrityError:  # created by someone else meanwhile (PostgreSQL)
        raise exists from None


async def set_status(db: Database, email: str, status: str) -> None:
    """Suspend or activate the account; a suspension also signs its dashboard sessions out."""
    account = await _account(db, email)
    async with db.write() as conn:
        await accounts.set_status(conn, account.id, status)
        if status == accounts.SUSPENDED:
            await sessions.end_all(conn, account.id)


async def set_rate_limit(db: Database, email: str, text: str) -> str:
    """Give the account its own rate limit per API key (e.g. ``10/second;500/hour``, or ``off``),
    or ``default`` for the server's (HATCHERY_RATE_LIMIT); returns what now applies."""
    value = text.strip()
    stored: str | None = None if value.lower() == DEFAULT_RATE_LIMIT else value
    try:
        described = (
            "the server default" if stored is None else rates.describe(rates.parse_rates(value))
        )
    except ValueError as exc:
        raise BadRequest(f"{text!r} {exc}; or default for the server's") from None
    account = await _account(db, email)
    async with db.write() as conn:
        await accounts.set_rate_limit(conn, account.id, stored)
    return described


async def set_flag(db: Database, email: str, flag: str, *, on: bool = True) -> str:
    """Give the account a flag (``accounts.FLAGS``), or take it away; what it now has."""
    if flag not in accounts.FLAGS:
        known = "; ".join(f"{name}: {what}" for name, what in accounts.FLAGS.items())
        raise BadRequest(f"no flag {flag!r}; the flags are {known}")
    account = await _account(db, email)
    flags = account.flags | {flag} if on else account.flags - {flag}
    async with db.write() as conn:
        await accounts.set_flags(conn, account.id, flags)
    return f"{email}: flags {', '.join(sorted(flags)) or 'none'}"


async def create_key(db: Database, email: str, expires_in: timedelta | None = None) -> str:
    account = await _account(db, email)
    key = keys.new_api_key()
    expires_at: datetime | None = utcnow() + expires_in if expires_in else None
    async with db.write() as conn:
        await accounts.add_key(conn, account.id, key, expires_at)
    return key


async def revoke_key(db: Database, key_or_prefix: str) -> int:
    if len(key_or_prefix) < keys.PREFIX_LENGTH:
        raise BadRequest(
            f"give the whole key or its first {keys.PREFIX_LENGTH} characters (e.g. hk_AbCdEfGhIj)"
        )
    async with db.write() as conn:
        count = await accounts.revoke_keys(conn, key_or_prefix)
    if count == 0:
        raise NotFound("no active key matches")
    return count


async def add_balance(db: Database, email: str, amount_micros: int) -> str:
    if amount_micros <= 0:
        raise BadRequest("the amount to add must be more than zero, e.g. 5.00")
    account = await _account(db, email)
    async with db.write() as conn:
        await accounts.credit(conn, account.id, amount_micros, note="balance add")
        updated = await accounts.by_id(conn, account.id)
    assert updated is not None
    return format_balance(updated.balance_micros)


async def rotate_webhook_secret(db: Database, email: str) -> str:
    account = await _account(db, email)
    secret = keys.new_webhook_secret()
    async with db.write() as conn:
        await accounts.set_webhook_secret(conn, account.id, secret)
    return secret


async def set_password(db: Database, email: str, password: str) -> str:
    """Give the account the dashboard password ``password`` (signing its browsers out)."""
    account = await _account(db, email)
    problem = passwords.problem(password, account.email)
    if problem is not None:
        raise BadRequest(problem)
    hashed = passwords.hash_password(password)
    async with db.write() as conn:
        await accounts.set_password_hash(conn, account.id, hashed)
        await sessions.end_all(conn, account.id)
    return f"{account.email} can sign in to the dashboard with that password"


async def invite(db: Database, email: str, valid_for: timedelta = INVITE_VALID_FOR) -> str:
    """A one-time invite for the account to set its dashboard password: the path of its link
    (``/dashboard/invite/<token>``), to put after the server's public URL."""
    account = await _account(db, email)
    async with db.write() as conn:
        token = await sessions.invite(conn, account.id, valid_for)
    return INVITE_PATH + token


@dataclass(frozen=True)
class Bootstrap:
    email: str
    key: str
    balance: str
    invite: str  # the path of the dashboard invite (INVITE_PATH + token)


async def bootstrap(db: Database) -> Bootstrap | None:
    """On an empty database: a local account with $10.00 and a key, returned once to print."""
    async with db.write() as conn:
        if await accounts.count(conn) > 0:
            return None
        account = await accounts.create(conn, LOCAL_EMAIL, STARTING_BALANCE)
        key = keys.new_api_key()
        await accounts.add_key(conn, account.id, key, None)
        token = await sessions.invite(conn, account.id, INVITE_VALID_FOR)
    return Bootstrap(LOCAL_EMAIL, key, format_balance(STARTING_BALANCE), INVITE_PATH + token)
