"""The queries behind the operator's read-only views: accounts found by email, every account's
keys, an account's ledger, the queue's depth, the webhook outbox's backlog. None is on a hot
path; each reads what an index serves (the queue's by status, the outbox's by status and due
time), so they stay cheap on a large database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.tasks import TaskStatus
from hatchery.store.accounts import ACCOUNT_COLUMNS, Account, account_of
from hatchery.store.db import utcnow
from hatchery.store.tables import (
    accounts,
    api_keys,
    ledger,
    task_counts,
    tasks,
    webhook_deliveries,
    workers,
)
from hatchery.store.tables import webhook_endpoints as endpoints

IN_QUEUE = (TaskStatus.PENDING.value, TaskStatus.PROCESSING.value)
OUTBOX_PENDING = "pending"  # store.outbox.PENDING


@dataclass(frozen=True)
class AccountRow:
    account: Account
    created_at: datetime
    keys: int  # active keys


async def find_accounts(
    conn: AsyncConnection,
    *,
    query: str = "",
    status: str | None = None,
    role: str | None = None,
    account_id: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[AccountRow]:
    """Accounts whose email or id contains ``query``, by email; ``after`` an email to page on."""
    live = sa.and_(api_keys.c.account_id == accounts.c.id, api_keys.c.revoked_at.is_(None))
    active_keys = sa.select(sa.func.count()).where(live).scalar_subquery()
    select = (
        sa.select(*ACCOUNT_COLUMNS, accounts.c.created_at, active_keys.label("keys"))
        .order_by(accounts.c.email)
        .limit(limit)
    )
    if query:  # % and _ are the query's own characters, not wildcards
        escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        select = select.where(
            sa.or_(
                sa.func.lower(accounts.c.email).like(like, escape="\\"),
                accounts.c.id.like(like, escape="\\"),
            )
        )
    if status:
        select = select.where(accounts.c.status == status)
    if role:
        select = select.where(accounts.c.role == role)
    if account_id:
        select = select.where(accounts.c.id == account_id)
    if after:
        select = select.where(accounts.c.email > after)
    rows = await conn.execute(select)
    return [AccountRow(account_of(r._mapping), r.created_at, r.keys) for r in rows]


@dataclass(frozen=True)
class KeyRow:
    prefix: str
    name: str | None
    account_id: str
    email: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


async def find_keys(
    conn: AsyncConnection,
    *,
    account_id: str | None = None,
    prefix: str | None = None,
    active_only: bool = False,
    before: datetime | None = None,
    limit: int = 50,
) -> list[KeyRow]:
    """Keys of every account (or one), newest first; ``before`` a creation time to page on."""
    k = api_keys.c
    select = (
        sa.select(
            k.prefix,
            k.name,
            k.account_id,
            accounts.c.email,
            k.created_at,
            k.expires_at,
            k.revoked_at,
            k.last_used_at,
        )
        .select_from(api_keys.join(accounts, accounts.c.id == k.account_id))
        .order_by(k.created_at.desc(), k.prefix)
        .limit(limit)
    )
    if account_id:
        select = select.where(k.account_id == account_id)
    if prefix:
        select = select.where(k.prefix == prefix)
    if active_only:  # neither revoked nor expired
        select = select.where(
            k.revoked_at.is_(None), sa.or_(k.expires_at.is_(None), k.expires_at > utcnow())
        )
    if before:
        select = select.where(k.created_at < before)
    return [KeyRow(**row._mapping) for row in await conn.execute(select)]


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    kind: str  # credit, debit, charge
    amount_micros: int  # signed: what it added to the balance
    task_id: str | None
    note: str | None
    created_at: datetime


async def ledger_entries(
    conn: AsyncConnection,
    account_id: str,
    *,
    before_seq: int | None = None,
    seq: int | None = None,
    limit: int = 50,
) -> list[LedgerEntry]:
    """The account's entries, newest first (older than ``before_seq``; or the one ``seq``)."""
    c = ledger.c
    select = (
        sa.select(c.seq, c.kind, c.amount_micros, c.task_id, c.note, c.created_at)
        .where(c.account_id == account_id)
        .order_by(c.seq.desc())
        .limit(limit)
    )
    if before_seq is not None:
        select = select.where(c.seq < before_seq)
    if seq is not None:
        select = select.where(c.seq == seq)
    return [LedgerEntry(**row._mapping) for row in await conn.execute(select)]


async def ledger_total(conn: AsyncConnection, account_id: str) -> int:
    """The sum of the account's ledger: its balance, if every change of it was recorded."""
    select = sa.select(sa.func.coalesce(sa.func.sum(ledger.c.amount_micros), 0)).where(
        ledger.c.account_id == account_id
    )
    return int((await conn.execute(select)).scalar_one())


async def queue_depth(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Tasks waiting or running, by status, model and type."""
    c = tasks.c
    select = (
        sa.select(c.status, c.model, c.type, sa.func.count().label("tasks"))
        .where(c.status.in_(IN_QUEUE))
        .group_by(c.status, c.model, c.type)
        .order_by(c.status, c.model)
    )
    return [dict(row._mapping) for row in await conn.execute(select)]


async def oldest_pending(conn: AsyncConnection) -> datetime | None:
    """When the pending task queued first was submitted: the first entry of the status index."""
    pending = tasks.c.status == TaskStatus.PENDING.value
    return await _first(conn, tasks.c.created_at, tasks.c.seq, pending)


async def in_flight_by_owner(conn: AsyncConnection) -> dict[str, int]:
    """Running tasks by the worker that holds their lease."""
    c = tasks.c
    select = (
        sa.select(c.lease_owner, sa.func.count())
        .where(c.status == TaskStatus.PROCESSING.value)
        .group_by(c.lease_owner)
    )
    return {str(owner): int(n) for owner, n in await conn.execute(select)}


async def outbox_backlog(conn: AsyncConnection, now: datetime) -> dict[str, Any]:
    """Messages not yet delivered: how many, how many are due now, the oldest due time, and
    how many are being sent at this moment."""
    d = webhook_deliveries.c
    pending = d.status == OUTBOX_PENDING
    select = sa.select(
        sa.func.count(),
        sa.func.count().filter(d.next_attempt_at <= now),
        sa.func.min(d.next_attempt_at),
        sa.func.count().filter(d.lease_expires_at > now),
    ).where(pending)
    total, due, oldest, sending = (await conn.execute(select)).one()
    return {"pending": total, "due": due, "oldest_due_at": oldest, "sending": sending}


@dataclass(frozen=True)
class FailingEndpoint:
    id: str
    account_id: str
    email: str
    url: str
    status: str
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    pending: int


async def failing_endpoints(conn: AsyncConnection, *, limit: int = 100) -> list[FailingEndpoint]:
    """Registered endpoints failing now (``failing_since`` set) or disabled, longest first."""
    e = endpoints.c
    waiting = (
        sa.select(sa.func.count())
        .where(
            webhook_deliveries.c.endpoint_id == e.id,
            webhook_deliveries.c.status == OUTBOX_PENDING,
        )
        .scalar_subquery()
    )
    select = (
        sa.select(
            e.id,
            e.account_id,
            accounts.c.email,
            e.url,
            e.status,
            e.failing_since,
            e.disabled_at,
            e.disabled_reason,
            waiting.label("pending"),
        )
        .select_from(endpoints.join(accounts, accounts.c.id == e.account_id))
        .where(
            e.deleted_at.is_(None),
            sa.or_(e.failing_since.is_not(None), e.disabled_at.is_not(None)),
        )
        .order_by(sa.func.coalesce(e.failing_since, e.disabled_at))
        .limit(limit)
    )
    return [FailingEndpoint(**row._mapping) for row in await conn.execute(select)]


@dataclass(frozen=True)
class SystemState:
    """What the metrics' system gauges show: the queue, the outbox, the workers alive."""

    pending: int
    processing: int
    oldest_pending_at: datetime | None
    outbox_pending: int
    oldest_due_at: datetime | None
    workers_alive: int


BACKLOG_COUNTED = 100_000  # the outbox's pending messages are counted up to this many


async def system_state(conn: AsyncConnection, now: datetime, alive_since: datetime) -> SystemState:
    """What the system gauges show, each read at a cost that does not grow with the queue:

    - the tasks in the queue from ``task_counts`` (submitted less ended, over its rows: one per
      account and model), of which the processing ones are counted (as many as workers hold);
    - the oldest pending task and the most overdue message: the first entry of an index;
    - the outbox's pending messages, counted up to ``BACKLOG_COUNTED``;
    - the workers that beat since ``alive_since``."""
    processing = await _scalar(
        conn, sa.select(sa.func.count()).where(tasks.c.status == TaskStatus.PROCESSING.value)
    )
    d = webhook_deliveries.c
    waiting = d.status == OUTBOX_PENDING
    pending_messages = sa.select(sa.literal(1)).where(waiting)
    backlog = pending_messages.limit(BACKLOG_COUNTED).subquery()
    return SystemState(
        pending=max(0, await _in_queue(conn) - processing),
        processing=processing,
        oldest_pending_at=await oldest_pending(conn),
        outbox_pending=await _scalar(conn, sa.select(sa.func.count()).select_from(backlog)),
        oldest_due_at=await _first(conn, d.next_attempt_at, d.next_attempt_at, waiting),
        workers_alive=await _scalar(
            conn, sa.select(sa.func.count()).where(workers.c.heartbeat_at >= alive_since)
        ),
    )


async def _scalar(conn: AsyncConnection, query: sa.Select[Any]) -> int:
    return int((await conn.execute(query)).scalar_one() or 0)


async def _in_queue(conn: AsyncConnection) -> int:
    """Tasks neither ended nor cancelled, from the counts kept beside them (``store.counts``)."""
    c = task_counts.c
    left = c.total - c.completed - c.failed - c.cancelled
    return await _scalar(conn, sa.select(sa.func.coalesce(sa.func.sum(left), 0)))


async def _first(
    conn: AsyncConnection,
    column: sa.Column[Any],
    order: sa.Column[Any],
    where: sa.ColumnElement[bool],
) -> datetime | None:
    """``column`` of the first row by ``order`` where ``where`` (an index's first entry)."""
    query = sa.select(column).where(where).order_by(order).limit(1)
    value: datetime | None = (await conn.execute(query)).scalar()
    return value
