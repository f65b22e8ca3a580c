"""Operator actions on accounts, keys and balances: the ``hatchery`` admin commands and the admin
API (``api.admin``) both call these.

Each is one transaction on the database the server uses (so they work while it runs), and each
writes its audit entry (``admin.audit``) in that transaction: who did it, when, and the account
before and after. An account is named by its email or its id (``acct_...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.admin import audit
from hatchery.admin.audit import Actor
from hatchery.domain import keys, passwords, rates
from hatchery.domain.money import MAX_BALANCE_MICROS, format_balance
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
MAX_REASON = 255  # the ledger's note


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w``."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise BadRequest(f"invalid duration {text!r}: use a number and a unit, e.g. 30d, 12h, 90m")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def snapshot(account: accounts.Account) -> dict[str, Any]:
    """What the audit log keeps of an account (never its secrets)."""
    return {
        "email": account.email,
        "status": account.status,
        "role": account.role,
        "balance_micros": account.balance_micros,
        "rate_limit": account.rate_limit,
        "flags": sorted(account.flags),
    }


async def _find(conn: AsyncConnection, email_or_id: str) -> accounts.Account:
    by_id = email_or_id.startswith("acct_")
    if by_id:
        account = await accounts.by_id(conn, email_or_id)
    else:
        account = await accounts.by_email(conn, email_or_id)
    if account is None:
        raise NotFound(f"no account {'' if by_id else 'with email '}{email_or_id}")
    return account


async def _account(db: Database, email_or_id: str) -> accounts.Account:
    async with db.read() as conn:
        return await _find(conn, email_or_id)


async def _changed(
    conn: AsyncConnection,
    actor: Actor | None,
    action: str,
    before: accounts.Account,
    reason: str | None = None,
) -> accounts.Account:
    """The account after a change made on ``conn``, with the change's audit entry."""
    after = await accounts.by_id(conn, before.id)
    assert after is not None
    await audit.record(
        conn,
        actor or Actor.cli(),
        action,
        f"account:{before.id}",
        snapshot(before),
        snapshot(after),
        reason,
    )
    return after


async def create_user(
    db: Database, email: str, balance_micros: int, *, actor: Actor | None = None
) -> accounts.Account:
    if not _EMAIL.match(email):
        raise BadRequest(f"{email!r} is not an email address")
    if not 0 <= balance_micros <= MAX_BALANCE_MICROS:
        raise BadRequest(
            f"the starting balance must be from 0 to {format_balance(MAX_BALANCE_MICROS)}"
        )
    exists = BadRequest(f"an account with email {email} already exists")
    try:
        async with db.write() as conn:
            if await accounts.by_email(conn, email) is not None:
                raise exists
            account = await accounts.create(conn, email, balance_micros)
            target = f"account:{account.id}"
            await audit.record(
                conn, actor or Actor.cli(), "account.create", target, None, snapshot(account)
            )
            return account
    except sa.exc.IntegrityError:  # created by someone else meanwhile (PostgreSQL)
        raise exists from None


async def set_status(
    db: Database, email: str, status: str, *, actor: Actor | None = None
) -> accounts.Account:
    """Suspend or activate the account; a suspension also signs its dashboard sessions out."""
    async with db.write() as conn:
        account = await _find(conn, email)
        await accounts.set_status(conn, account.id, status)
        if status == accounts.SUSPENDED:
            await sessions.end_all(conn, account.id)
        verb = "suspend" if status == accounts.SUSPENDED else "activate"
        return await _changed(conn, actor, f"account.{verb}", account)


async def set_role(
    db: Database, email: str, role: str, *, actor: Actor | None = None
) -> accounts.Account:
    """Make the account an admin (``accounts.ADMIN``) or an ordinary user again."""
    if role not in accounts.ROLES:
        raise BadRequest(f"no role {role!r}; the roles are {', '.join(accounts.ROLES)}")
    async with db.write() as conn:
        account = await _find(conn, email)
        await accounts.set_role(conn, account.id, role)
        return await _changed(conn, actor, "account.role", account)


async def set_rate_limit(db: Database, email: str, text: str, *, actor: Actor | None = None) -> str:
    """Give the account its own rate limit per API key (e.g. ``10/second;500/hour``, or ``off``),
    or ``default`` for the server's (HATCHERY_RATE_LIMIT); returns what now applies."""
    stored, described = _rate_limit(text)
    async with db.write() as conn:
        account = await _find(conn, email)
        await accounts.set_rate_limit(conn, account.id, stored)
        await _changed(conn, actor, "account.rate_limit", account)
    return described


def _rate_limit(text: str) -> tuple[str | None, str]:
    """What to store for a rate limit (None: the server's), and how to say what it is."""
    value = text.strip()
    if value.lower() == DEFAULT_RATE_LIMIT:
        return None, "the server default"
    try:
        return value, rates.describe(rates.parse_rates(value))
    except ValueError as exc:
        raise BadRequest(f"{text!r} {exc}; or default for the server's") from None


async def update_account(
    db: Database,
    email: str,
    *,
    rate_limit: str | None = None,
    flags: frozenset[str] | None = None,
    actor: Actor | None = None,
) -> accounts.Account:
    """Set the account's own rate limit (as :func:`set_rate_limit` takes it), its flags, or
    both, in one transaction with one audit entry."""
    if rate_limit is None and flags is None:
        raise BadRequest("nothing to change: give rate_limit or flags")
    limit = None if rate_limit is None else _rate_limit(rate_limit)[0]
    if flags is not None:
        check_flags(flags)
    async with db.write() as conn:
        account = await _find(conn, email)
        if rate_limit is not None:
            await accounts.set_rate_limit(conn, account.id, limit)
        if flags is not None:
            await accounts.set_flags(conn, account.id, flags)
        return await _changed(conn, actor, "account.update", account)


def check_flags(flags: set[str] | frozenset[str]) -> None:
    unknown = sorted(set(flags) - set(accounts.FLAGS))
    if unknown:
        known = "; ".join(f"{name}: {what}" for name, what in accounts.FLAGS.items())
        raise BadRequest(f"no flag {', '.join(unknown)}; the flags are {known}")


async def set_flags(
    db: Database, email: str, flags: frozenset[str], *, actor: Actor | None = None
) -> accounts.Account:
    """Give the account exactly these flags (``accounts.FLAGS``)."""
    check_flags(flags)
    async with db.write() as conn:
        account = await _find(conn, email)
        await accounts.set_flags(conn, account.id, flags)
        return await _changed(conn, actor, "account.flags", account)


async def set_flag(
    db: Database, email: str, flag: str, *, on: bool = True, actor: Actor | None = None
) -> str:
    """Give the account a flag (``accounts.FLAGS``), or take it away; what it now has."""
    check_flags({flag})
    account = await _account(db, email)
    flags = account.flags | {flag} if on else account.flags - {flag}
    updated = await set_flags(db, account.id, flags, actor=actor)
    return f"{updated.email}: flags {', '.join(sorted(updated.flags)) or 'none'}"


async def create_key(
    db: Database,
    email: str,
    expires_in: timedelta | None = None,
    *,
    actor: Actor | None = None,
) -> str:
    key = keys.new_api_key()
    expires_at: datetime | None = utcnow() + expires_in if expires_in else None
    async with db.write() as conn:
        account = await _find(conn, email)
        await accounts.add_key(conn, account.id, key, expires_at)
        after = {"prefix": keys.key_prefix(key), "expires_at": expires_at and str(expires_at)}
        target = f"account:{account.id}"
        await audit.record(conn, actor or Actor.cli(), "key.create", target, None, after)
    return key


async def revoke_key(db: Database, key_or_prefix: str, *, actor: Actor | None = None) -> int:
    if len(key_or_prefix) < keys.PREFIX_LENGTH:
        raise BadRequest(
            f"give the whole key or its first {keys.PREFIX_LENGTH} characters (e.g. hk_AbCdEfGhIj)"
        )
    prefix = keys.key_prefix(key_or_prefix)
    async with db.write() as conn:
        count = await accounts.revoke_keys(conn, key_or_prefix)
        if count:
            before = {"prefix": prefix, "revoked": False}
            after = {"prefix": prefix, "revoked": True}
            target = f"key:{prefix}"
            await audit.record(conn, actor or Actor.cli(), "key.revoke", target, before, after)
    if count == 0:
        raise NotFound("no active key matches")
    return count


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise BadRequest("say why: a reason is recorded with every credit and debit")
    if len(text) > MAX_REASON:
        raise BadRequest(f"the reason is {len(text)} characters; at most {MAX_REASON}")
    return text


async def adjust_balance(
    db: Database,
    email: str,
    amount_micros: int,
    reason: str,
    *,
    actor: Actor | None = None,
) -> tuple[accounts.Account, int]:
    """Credit (a positive amount) or debit (a negative one) the account, with a ledger entry that
    carries the reason: the account after, and the entry's ``seq``. A debit may not take what
    tasks in flight hold, nor go below zero."""
    if amount_micros == 0:
        raise BadRequest("the amount cannot be zero: a credit is positive, a debit negative")
    if abs(amount_micros) > MAX_BALANCE_MICROS:
        raise BadRequest(f"the amount is at most {format_balance(MAX_BALANCE_MICROS)} either way")
    note = _reason(reason)
    async with db.write() as conn:
        account = await _find(conn, email)
        if account.balance_micros + amount_micros > MAX_BALANCE_MICROS:
            raise BadRequest(
                f"a balance is at most {format_balance(MAX_BALANCE_MICROS)}; "
                f"{account.email} has {format_balance(account.balance_micros)}"
            )
        if amount_micros > 0:
            seq: int | None = await accounts.credit(conn, account.id, amount_micros, note=note)
        else:
            seq = await accounts.debit(conn, account.id, -amount_micros, note=note)
        if seq is None:
            raise BadRequest(
                f"cannot debit {format_balance(-amount_micros)}: {account.email} has "
                f"{format_balance(account.available_micros)} available "
                "(its balance less what tasks in flight hold)"
            )
        action = "account.credit" if amount_micros > 0 else "account.debit"
        return await _changed(conn, actor, action, account, note), seq


async def add_balance(
    db: Database, email: str, amount_micros: int, reason: str = "balance add"
) -> str:
    if amount_micros <= 0:
        raise BadRequest("the amount to add must be more than zero, e.g. 5.00")
    updated, _ = await adjust_balance(db, email, amount_micros, reason)
    return format_balance(updated.balance_micros)


async def rotate_webhook_secret(db: Database, email: str, *, actor: Actor | None = None) -> str:
    secret = keys.new_webhook_secret()
    async with db.write() as conn:
        account = await _find(conn, email)
        await accounts.set_webhook_secret(conn, account.id, secret)
        target = f"account:{account.id}"
        await audit.record(conn, actor or Actor.cli(), "account.webhook_secret", target)
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
        await audit.record(conn, Actor.cli(), "account.password", f"account:{account.id}")
    return f"{account.email} can sign in to the dashboard with that password"


async def invite(db: Database, email: str, valid_for: timedelta = INVITE_VALID_FOR) -> str:
    """A one-time invite for the account to set its dashboard password: the path of its link
    (``/dashboard/invite/<token>``), to put after the server's public URL."""
    async with db.write() as conn:
        account = await _find(conn, email)
        token = await sessions.invite(conn, account.id, valid_for)
        await audit.record(conn, Actor.cli(), "account.invite", f"account:{account.id}")
    return INVITE_PATH + token


@dataclass(frozen=True)
class Bootstrap:
    email: str
    key: str
    balance: str
    invite: str  # the path of the dashboard invite (INVITE_PATH + token)


async def bootstrap(db: Database) -> Bootstrap | None:
    """On an empty database: a local account with $10.00 and a key, returned once to print.
    On the embedded database it is the laptop's one user, and so its admin too."""
    async with db.write() as conn:
        if await accounts.count(conn) > 0:
            return None
        account = await accounts.create(conn, LOCAL_EMAIL, STARTING_BALANCE)
        await accounts.set_role(conn, account.id, accounts.ADMIN)
        key = keys.new_api_key()
        await accounts.add_key(conn, account.id, key, None)
        token = await sessions.invite(conn, account.id, INVITE_VALID_FOR)
    return Bootstrap(LOCAL_EMAIL, key, format_balance(STARTING_BALANCE), INVITE_PATH + token)
