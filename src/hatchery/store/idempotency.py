"""Queries on ``idempotency_keys``: one row per (account, Idempotency-Key) of ``POST /v1/generate``.

A request claims its key before it submits (the row, with no task yet, says "in flight"); the
submit's own transaction attaches the task; a submit that fails forgets the key. A key is kept
for ``KEEP``; an in-flight claim older than ``ABANDONED`` belongs to a request that died half-way
(its process stopped), and the next request with the key takes it over.

The claim is an insert that does nothing on a conflict (``insert_ignore``): of concurrent
requests with one key exactly one inserts; on PostgreSQL the others wait for its commit, then see
its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.store.db import insert_ignore
from hatchery.store.driver import Statement, Tx
from hatchery.store.tables import idempotency_keys

KEEP = timedelta(hours=24)
ABANDONED = timedelta(minutes=2)

k = idempotency_keys.c


@dataclass(frozen=True)
class Claimed:
    """The key's row: its body's fingerprint, its task (None while its request is in flight),
    when that request claimed it (which tells one claim from a later one that took it over), and
    whether that request is this one."""

    fingerprint: str
    task_id: str | None
    at: datetime
    mine: bool = False


def _key(account_id: str, key: str) -> list[sa.ColumnElement[bool]]:
    return [k.account_id == account_id, k.key == key]


async def claim(
    conn: AsyncConnection, account_id: str, key: str, fingerprint: str, now: datetime
) -> Claimed:
    """Claim the key for a new request (``mine``), or return the row of the request that has it."""
    mine = Claimed(fingerprint, None, now, mine=True)
    values = {"account_id": account_id, "key": key, "fingerprint": fingerprint, "created_at": now}
    inserted = await conn.execute(insert_ignore(idempotency_keys, conn.dialect.name), values)
    if inserted.rowcount == 1:
        return mine
    stale = sa.or_(
        k.created_at < now - KEEP, sa.and_(k.task_id.is_(None), k.created_at < now - ABANDONED)
    )
    taken = await conn.execute(
        idempotency_keys.update()
        .where(*_key(account_id, key), stale)
        .values(fingerprint=fingerprint, task_id=None, created_at=now)
    )
    if taken.rowcount == 1:
        return mine
    query = sa.select(k.fingerprint, k.task_id, k.created_at).where(*_key(account_id, key))
    row = (await conn.execute(query)).one()
    return Claimed(row.fingerprint, row.task_id, row.created_at)


def _held(account_id: str, key: str, claim: Claimed) -> list[sa.ColumnElement[bool]]:
    return [*_key(account_id, key), k.task_id.is_(None), k.created_at == claim.at]


_ATTACH = Statement(
    idempotency_keys.update()
    .where(
        k.account_id == sa.bindparam("account_id"),
        k.key == sa.bindparam("b_key"),
        k.task_id.is_(None),
        k.created_at == sa.bindparam("claimed_at"),
    )
    .values(task_id=sa.bindparam("b_task_id"))
)  # in the submit's transaction, on the driver


async def attach(tx: Tx, account_id: str, key: str, claim: Claimed, task_id: str) -> bool:
    """Record the task the claim's request created; False if the claim was taken over."""
    held = {"account_id": account_id, "b_key": key, "claimed_at": claim.at, "b_task_id": task_id}
    return await tx.execute(_ATTACH, held) == 1


async def forget(conn: AsyncConnection, account_id: str, key: str, claim: Claimed) -> None:
    """Give up an in-flight claim (its request failed and created nothing)."""
    await conn.execute(idempotency_keys.delete().where(*_held(account_id, key, claim)))


async def purge(conn: AsyncConnection, now: datetime) -> int:
    """Delete the keys older than ``KEEP``; how many."""
    result = await conn.execute(idempotency_keys.delete().where(k.created_at < now - KEEP))
    return result.rowcount
