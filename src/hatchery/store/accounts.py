"""Queries on accounts, API keys and the ledger. Each function runs on a connection that the
caller holds inside a transaction; balance changes are single conditional updates. The key lookup
(every request) and the reservation, charge and release (every task) run on the driver path
(``store.driver``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain import keys
from hatchery.store.db import utcnow
from hatchery.store.driver import Driver, Statement, Tx
from hatchery.store.tables import accounts, api_keys, ledger

ACTIVE = "active"
SUSPENDED = "suspended"
USER = "user"
ADMIN = "admin"  # may use the admin API and the operator's pages
ROLES = (USER, ADMIN)


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    status: str
    balance_micros: int
    reserved_micros: int
    webhook_secret: str | None
    rate_limit: str | None = None  # None: the server's default
    api_key: str | None = None  # the prefix of the key a request authenticated with
    flags: frozenset[str] = frozenset()  # what the operator allows it (FLAGS)
    role: str = USER

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def available_micros(self) -> int:
        return self.balance_micros - self.reserved_micros


@dataclass(frozen=True)
class KeyRecord:
    account: Account  # as seen through this key: its ``api_key`` is the key's prefix
    prefix: str
    key_hash: str
    expires_at: datetime | None
    revoked_at: datetime | None


ACCOUNT_COLUMNS = (
    accounts.c.id,
    accounts.c.email,
    accounts.c.status,
    accounts.c.balance_micros,
    accounts.c.reserved_micros,
    accounts.c.webhook_secret,
    accounts.c.rate_limit,
    accounts.c.flags,
    accounts.c.role,
)

# The flags an operator may give an account, and what each allows.
FLAGS = {
    "no-watermark": "outputs without a watermark (VideoGen watermarkMode NONE, and AUTO unmarked)",
}


def account_of(m: Mapping[Any, Any]) -> Account:
    return Account(
        m["id"],
        m["email"],
        m["status"],
        m["balance_micros"],
        m["reserved_micros"],
        m["webhook_secret"],
        m["rate_limit"],
        flags=frozenset(filter(None, (m["flags"] or "").split(","))),
        role=m["role"],
    )


async def count(conn: AsyncConnection) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(accounts))).scalar_one())


async def create(conn: AsyncConnection, email: str, balance_micros: int) -> Account:
    account_id = keys.new_id("acct_")
    now = utcnow()
    await conn.execute(
        accounts.insert().values(
            id=account_id,
            email=email,
            status=ACTIVE,
            balance_micros=balance_micros,
            reserved_micros=0,
            created_at=now,
        )
    )
    if balance_micros:
        await _ledger(conn, account_id, "credit", balance_micros, note="initial balance")
    return Account(account_id, email, ACTIVE, balance_micros, 0, None)


async def by_id(conn: AsyncConnection, account_id: str) -> Account | None:
    row = (
        await conn.execute(sa.select(*ACCOUNT_COLUMNS).where(accounts.c.id == account_id))
    ).first()
    return account_of(row._mapping) if row else None


async def by_email(conn: AsyncConnection, email: str) -> Account | None:
    query = sa.select(*ACCOUNT_COLUMNS).where(sa.func.lower(accounts.c.email) == email.lower())
    row = (await conn.execute(query)).first()
    return account_of(row._mapping) if row else None


async def password_hash(conn: AsyncConnection, account_id: str) -> str | None:
    query = sa.select(accounts.c.password_hash).where(accounts.c.id == account_id)
    return (await conn.execute(query)).scalar_one_or_none()


async def set_password_hash(conn: AsyncConnection, account_id: str, hashed: str) -> None:
    await conn.execute(
        accounts.update().where(accounts.c.id == account_id).values(password_hash=hashed)
    )


async def set_status(conn: AsyncConnection, account_id: str, status: str) -> None:
    await conn.execute(accounts.update().where(accounts.c.id == account_id).values(status=status))


async def set_webhook_secret(conn: AsyncConnection, account_id: str, secret: str) -> None:
    await conn.execute(
        accounts.update().where(accounts.c.id == account_id).values(webhook_secret=secret)
    )


async def set_rate_limit(conn: AsyncConnection, account_id: str, rate_limit: str | None) -> None:
    """The account's own rate limit per API key (the ``limits`` notation, or ``off``); None
    returns it to the server's default."""
    await conn.execute(
        accounts.update().where(accounts.c.id == account_id).values(rate_limit=rate_limit)
    )


async def set_flags(conn: AsyncConnection, account_id: str, flags: frozenset[str]) -> None:
    await conn.execute(
        accounts.update().where(accounts.c.id == account_id).values(flags=",".join(sorted(flags)))
    )


async def set_role(conn: AsyncConnection, account_id: str, role: str) -> None:
    await conn.execute(accounts.update().where(accounts.c.id == account_id).values(role=role))


async def credit(conn: AsyncConnection, account_id: str, amount_micros: int, note: str) -> int:
    """Add to the balance, with its ledger entry; the entry's ``seq``."""
    await conn.execute(
        accounts.update()
        .where(accounts.c.id == account_id)
        .values(balance_micros=accounts.c.balance_micros + amount_micros)
    )
    return await _ledger(conn, account_id, "credit", amount_micros, note=note)


async def debit(
    conn: AsyncConnection, account_id: str, amount_micros: int, note: str
) -> int | None:
    """Take ``amount_micros`` from the balance, with its ledger entry (its ``seq``); None (and
    nothing taken) when the balance less what tasks in flight hold is short of it."""
    result = await conn.execute(
        accounts.update()
        .where(
            accounts.c.id == account_id,
            accounts.c.balance_micros - accounts.c.reserved_micros >= amount_micros,
        )
        .values(balance_micros=accounts.c.balance_micros - amount_micros)
    )
    if result.rowcount != 1:
        return None
    return await _ledger(conn, account_id, "debit", -amount_micros, note=note)


async def reserve(tx: Tx, account_id: str, amount_micros: int) -> bool:
    """Hold ``amount_micros`` of the available balance; False (and nothing held) if it is short."""
    return await tx.execute(_RESERVE, {"account_id": account_id, "amount": amount_micros}) == 1


async def release(tx: Tx, account_id: str, amount_micros: int) -> None:
    """Give back a reservation (the task failed or was cancelled: it costs nothing)."""
    await tx.execute(_RELEASE, {"account_id": account_id, "reserved": amount_micros})


async def charge(tx: Tx, account_id: str, task_id: str, reserved: int, amount: int) -> None:
    """Turn a task's reservation into its charge (the ledger refuses a second charge)."""
    await tx.execute(_CHARGE, {"account_id": account_id, "reserved": reserved, "amount": amount})
    entry = {"account_id": account_id, "amount": -amount, "task_id": task_id, "at": utcnow()}
    await tx.execute(_LEDGER_CHARGE, entry)


async def _ledger(
    conn: AsyncConnection,
    account_id: str,
    kind: str,
    amount: int,
    task_id: str | None = None,
    note: str | None = None,
) -> int:
    """Write a ledger entry; its ``seq``."""
    result = await conn.execute(
        ledger.insert().values(
            account_id=account_id,
            kind=kind,
            amount_micros=amount,
            task_id=task_id,
            note=note,
            created_at=utcnow(),
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def add_key(
    conn: AsyncConnection,
    account_id: str,
    key: str,
    expires_at: datetime | None,
    name: str | None = None,
) -> None:
    await conn.execute(
        api_keys.insert().values(
            id=keys.new_id("key_"),
            account_id=account_id,
            prefix=keys.key_prefix(key),
            key_hash=keys.hash_key(key),
            created_at=utcnow(),
            expires_at=expires_at,
            name=name,
        )
    )


@dataclass(frozen=True)
class KeyInfo:
    """An API key as its account sees it listed: never the key, nor its hash."""

    prefix: str
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


async def list_keys(conn: AsyncConnection, account_id: str) -> list[KeyInfo]:
    """Every key of the account, revoked and expired ones too, newest first."""
    c = api_keys.c
    query = (
        sa.select(c.prefix, c.name, c.created_at, c.expires_at, c.revoked_at, c.last_used_at)
        .where(c.account_id == account_id)
        .order_by(c.created_at.desc(), c.prefix)
    )
    return [KeyInfo(**row._mapping) for row in await conn.execute(query)]


async def revoke_key(conn: AsyncConnection, account_id: str, prefix: str) -> bool:
    """Revoke the account's key ``prefix`` (a revoked one stays as it was); False if the
    account has no such key."""
    revoked = await revoke_keys(conn, prefix, account_id=account_id)
    return revoked == 1 or await has_key(conn, account_id, prefix)


async def has_key(conn: AsyncConnection, account_id: str, prefix: str) -> bool:
    """Whether the account has (or had: revoked keys keep their usage) the key ``prefix``."""
    query = sa.select(api_keys.c.id).where(
        api_keys.c.account_id == account_id, api_keys.c.prefix == prefix
    )
    return (await conn.execute(query)).first() is not None


async def revoke_keys(
    conn: AsyncConnection, key_or_prefix: str, *, account_id: str | None = None
) -> int:
    """Revoke the key with this full value or prefix (of the account ``account_id`` only, when
    given); returns how many keys were revoked."""
    prefix = keys.key_prefix(key_or_prefix)
    query = api_keys.update().where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    if len(key_or_prefix) > len(prefix):
        query = query.where(api_keys.c.key_hash == keys.hash_key(key_or_prefix))
    result = await conn.execute(query.values(revoked_at=utcnow()))
    return result.rowcount


# The hot path of every request and every submit, on the driver.
_KEY_RECORD = Statement(
    sa.select(*ACCOUNT_COLUMNS, api_keys.c.key_hash, api_keys.c.expires_at, api_keys.c.revoked_at)
    .select_from(api_keys.join(accounts, accounts.c.id == api_keys.c.account_id))
    .where(api_keys.c.prefix == sa.bindparam("prefix"))
)


def reservation(amount: str) -> sa.Update:
    """Hold the bind parameter ``amount`` of account ``account_id``'s available balance, if it
    covers it (otherwise the update matches no row)."""
    return (
        accounts.update()
        .where(
            accounts.c.id == sa.bindparam("account_id"),
            accounts.c.balance_micros - accounts.c.reserved_micros >= sa.bindparam(amount),
        )
        .values(reserved_micros=accounts.c.reserved_micros + sa.bindparam(amount))
    )


_RESERVE = Statement(reservation("amount"))


_RELEASE = Statement(
    accounts.update()
    .where(accounts.c.id == sa.bindparam("account_id"))
    .values(reserved_micros=accounts.c.reserved_micros - sa.bindparam("reserved"))
)
_CHARGE = Statement(
    accounts.update()
    .where(accounts.c.id == sa.bindparam("account_id"))
    .values(
        reserved_micros=accounts.c.reserved_micros - sa.bindparam("reserved"),
        balance_micros=accounts.c.balance_micros - sa.bindparam("amount"),
    )
)
_LEDGER_CHARGE = Statement(
    ledger.insert().values(
        account_id=sa.bindparam("account_id"),
        kind="charge",
        amount_micros=sa.bindparam("amount"),
        task_id=sa.bindparam("task_id"),
        created_at=sa.bindparam("at"),
    )
)


_KEY_USED = Statement(
    api_keys.update()
    .where(api_keys.c.prefix == sa.bindparam("prefix"))
    .values(last_used_at=sa.bindparam("at"))
)


async def key_used(driver: Driver, prefix: str, at: datetime) -> None:
    """Record that a request authenticated with the key ``prefix`` at ``at``."""

    async def write(tx: Tx) -> None:
        await tx.execute(_KEY_USED, {"prefix": prefix, "at": at})

    await driver.write(write)


async def key_record(reader: Driver, key: str) -> KeyRecord | None:
    """The key ``key`` claims to be (by its prefix) and its account; the caller checks the hash."""
    prefix = keys.key_prefix(key)
    m = await reader.one(_KEY_RECORD, {"prefix": prefix})
    if m is None:
        return None
    account = replace(account_of(m), api_key=prefix)
    return KeyRecord(account, prefix, m["key_hash"], m["expires_at"], m["revoked_at"])
