"""Queries on the webhook outbox: a message is written in the same transaction as the state
change it tells of, then claimed with a lease, attempted, and rescheduled or closed; every attempt
is recorded (the delivery log).

A message (one row) is one event for one receiver: a per-task ``webhook_url``, or a registered
endpoint (``store.endpoints``). The rows of one event share its message id. A claim takes the due
message that has waited longest among the receivers with fewer than ``per_target`` attempts in
flight, so one slow receiver cannot hold back the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.keys import new_id
from hatchery.domain.webhooks import new_message_id, outline
from hatchery.store import endpoints
from hatchery.store.db import skip_locked
from hatchery.store.driver import Statement, Tx
from hatchery.store.tables import webhook_attempts, webhook_deliveries

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"  # its endpoint was deleted or disabled before it got through

d = webhook_deliveries.c
_FIELDS = (
    d.id,
    d.message_id,
    d.subject_id,
    d.account_id,
    d.endpoint_id,
    d.event,
    d.url,
    d.body,
    d.attempts,
    d.schedule_from,
    d.lease_owner,
    d.created_at,
    d.trace_context,
)


@dataclass(frozen=True)
class Delivery:
    id: str
    message_id: str
    subject_id: str
    account_id: str
    endpoint_id: str | None
    event: str
    url: str
    body: str
    attempts: int
    schedule_from: int
    lease_owner: str | None
    created_at: datetime
    trace_context: str | None = None  # the span that wrote it (tracing on)


@dataclass(frozen=True)
class Attempt:
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response: str | None


@dataclass(frozen=True)
class Logged:
    """A message as the delivery log shows it: where it stands and every attempt made."""

    id: str
    message_id: str
    subject_id: str
    endpoint_id: str | None
    event: str
    url: str
    status: str
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    attempts: list[Attempt]


def target_of(url: str) -> str:
    """What a per-task URL's messages count against: its origin (``https://host:port``)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"


_ADD = Statement(  # in the transaction of the state change
    webhook_deliveries.insert().values(status=PENDING, attempts=0, schedule_from=0),
    keys=(
        "id",
        "message_id",
        "subject_id",
        "account_id",
        "endpoint_id",
        "target",
        "event",
        "url",
        "body",
        "next_attempt_at",
        "created_at",
        "trace_context",
    ),
)


async def emit(
    tx: Tx,
    *,
    message_id: str,
    account_id: str,
    event: str,
    subject_id: str,
    body: str,
    now: datetime,
    url: str | None = None,
    receivers: list[endpoints.Endpoint] | None = None,
    trace_context: str | None = None,
) -> int:
    """Queue ``event`` for each of the account's enabled endpoints that subscribe to it (or the
    ``receivers`` already looked up) and, given a per-task ``url``, for it: one row each, one
    message id. The rows written."""
    if receivers is None:
        receivers = await endpoints.subscribed(tx, account_id, event)
    rows: list[tuple[str | None, str, str]] = [(None, url, target_of(url))] if url else []
    rows += [(ep.id, ep.url, ep.id) for ep in receivers]
    for endpoint_id, to, target in rows:
        await add(
            tx,
            message_id=message_id,
            account_id=account_id,
            event=event,
            subject_id=subject_id,
            body=body,
            now=now,
            url=to,
            endpoint_id=endpoint_id,
            target=target,
            trace_context=trace_context,
        )
    return len(rows)


async def emit_outline(
    tx: Tx,
    *,
    account_id: str,
    event: str,
    subject_id: str,
    now: datetime,
    details: dict[str, str | None] | None = None,
) -> int:
    """:func:`emit` an event whose payload is made when it is sent (``domain.webhooks.outline``):
    a file's, an endpoint's."""
    return await emit(
        tx,
        message_id=new_message_id(),
        account_id=account_id,
        event=event,
        subject_id=subject_id,
        body=outline(event, subject_id, now, details),
        now=now,
    )


async def add(
    tx: Tx,
    *,
    message_id: str,
    account_id: str,
    event: str,
    subject_id: str,
    body: str,
    now: datetime,
    url: str,
    endpoint_id: str | None,
    target: str,
    trace_context: str | None = None,
) -> str:
    delivery_id = new_id("whd_")
    values = {
        "id": delivery_id,
        "message_id": message_id,
        "subject_id": subject_id,
        "account_id": account_id,
        "endpoint_id": endpoint_id,
        "target": target,
        "event": event,
        "url": url,
        "body": body,
        "next_attempt_at": now,
        "created_at": now,
        "trace_context": trace_context,  # the span that ended the task, when tracing is on
    }
    await tx.execute(_ADD, values)
    return delivery_id


def _free(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(d.lease_expires_at.is_(None), d.lease_expires_at < now)


def _next_due(dialect: str, now: datetime, per_target: int) -> sa.ScalarSelect[Any]:
    busy = (
        sa.select(d.target)
        .where(d.status == PENDING, d.lease_expires_at >= now)
        .group_by(d.target)
        .having(sa.func.count() >= per_target)
    )
    query = (
        sa.select(d.seq)
        .where(d.status == PENDING, d.next_attempt_at <= now, _free(now), d.target.not_in(busy))
        .order_by(d.next_attempt_at, d.seq)
        .limit(1)
    )
    return skip_locked(query, dialect).scalar_subquery()


async def claim(
    conn: AsyncConnection, owner: str, now: datetime, lease_until: datetime, per_target: int
) -> Delivery | None:
    result = await conn.execute(
        webhook_deliveries.update()
        .where(d.seq == _next_due(conn.dialect.name, now, per_target))
        .values(lease_owner=owner, lease_expires_at=lease_until)
        .returning(*_FIELDS)
    )
    row = result.first()
    return Delivery(**row._mapping) if row else None


async def next_due_at(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When a delivery can next be claimed; one in flight only once its lease lapses."""
    due = sa.select(sa.func.min(d.next_attempt_at)).where(d.status == PENDING, _free(now))
    leased = sa.select(sa.func.min(d.lease_expires_at)).where(
        d.status == PENDING, sa.not_(_free(now))
    )
    times = [(await conn.execute(q)).scalar_one_or_none() for q in (due, leased)]
    return min((t for t in times if t is not None), default=None)


async def record_attempt(
    conn: AsyncConnection,
    delivery: Delivery,
    *,
    started_at: datetime,
    duration_ms: int,
    status_code: int | None,
    error: str | None,
    response: str | None,
    outcome: str,
    next_attempt_at: datetime | None,
) -> bool:
    """Record one attempt and its outcome; False if another worker took the delivery meanwhile.
    If a redelivery was asked for while it was in flight, the message stays due instead."""
    attempt = delivery.attempts + 1
    held = (
        d.id == delivery.id,
        d.attempts == delivery.attempts,
        d.lease_owner == delivery.lease_owner,
    )
    values: dict[str, Any] = {
        "attempts": attempt,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_status_code": status_code,
        "last_error": error,
    }
    ended: dict[str, Any] = {"status": outcome}
    if next_attempt_at is not None:
        ended["next_attempt_at"] = next_attempt_at
    if outcome == DELIVERED:
        ended["delivered_at"] = started_at
    same_schedule = d.schedule_from == delivery.schedule_from
    result = await conn.execute(
        webhook_deliveries.update().where(*held, same_schedule).values(**values, **ended)
    )
    if result.rowcount != 1:  # redelivery asked for meanwhile: it stays pending and due
        result = await conn.execute(webhook_deliveries.update().where(*held).values(**values))
    if result.rowcount != 1:
        return False
    await conn.execute(
        webhook_attempts.insert().values(
            delivery_id=delivery.id,
            attempt=attempt,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=status_code,
            error=error,
            response=response,
        )
    )
    return True


async def postpone(conn: AsyncConnection, delivery: Delivery, until: datetime) -> bool:
    """Give a claimed message back, unattempted, due again ``until`` (its payload could not be
    made: a fault of ours, which neither uses up a retry nor counts against the receiver)."""
    result = await conn.execute(
        webhook_deliveries.update()
        .where(d.id == delivery.id, d.lease_owner == delivery.lease_owner, d.status == PENDING)
        .values(lease_owner=None, lease_expires_at=None, next_attempt_at=until)
    )
    return result.rowcount == 1


async def drop(conn: AsyncConnection, delivery: Delivery, why: str) -> bool:
    """Close a claimed message without an attempt (its endpoint went away meanwhile)."""
    result = await conn.execute(
        webhook_deliveries.update()
        .where(d.id == delivery.id, d.lease_owner == delivery.lease_owner, d.status == PENDING)
        .values(status=CANCELLED, lease_owner=None, lease_expires_at=None, last_error=why)
    )
    return result.rowcount == 1


async def cancel_pending(conn: AsyncConnection, endpoint_id: str, why: str, now: datetime) -> int:
    """Every message still waiting for ``endpoint_id`` is not sent (it was deleted or
    disabled); one in flight now is recorded when it ends, and tried no more (its endpoint is
    read again before every attempt)."""
    waiting = sa.or_(d.lease_owner.is_(None), d.lease_expires_at < now)  # or its sender died
    result = await conn.execute(
        webhook_deliveries.update()
        .where(d.endpoint_id == endpoint_id, d.status == PENDING, waiting)
        .values(status=CANCELLED, last_error=why)
    )
    return result.rowcount


async def redeliver(
    conn: AsyncConnection, delivery_id: str, account_id: str, now: datetime
) -> bool:
    """Make the message due now with a fresh retry schedule, whatever its state; False if the
    account has no such message. One in flight is sent again once its attempt ends: the new
    schedule starts after that attempt, which :func:`record_attempt` sees."""
    in_flight = sa.and_(d.lease_owner.is_not(None), d.lease_expires_at >= now)
    result = await conn.execute(
        webhook_deliveries.update()
        .where(d.id == delivery_id, d.account_id == account_id)
        .values(
            status=PENDING,
            next_attempt_at=now,
            schedule_from=sa.case((in_flight, d.attempts + 1), else_=d.attempts),
            delivered_at=None,
        )
    )
    return result.rowcount == 1


# --------------------------------------------------------------------------- the delivery log


async def logged(
    conn: AsyncConnection,
    account_id: str,
    *,
    delivery_id: str | None = None,
    subject_id: str | None = None,
    endpoint_id: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[Logged], int | None]:
    """The account's messages, newest first, with their attempts; and the position to pass as
    ``before`` for the next page (None on the last)."""
    where = [d.account_id == account_id]
    for column, value in ((d.id, delivery_id), (d.subject_id, subject_id)):
        if value is not None:
            where.append(column == value)
    if endpoint_id is not None:
        where.append(d.endpoint_id == endpoint_id)
    if before is not None:
        where.append(d.seq < before)
    query = sa.select(webhook_deliveries).where(*where).order_by(d.seq.desc()).limit(limit + 1)
    rows = list((await conn.execute(query)).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    tries = await _attempts(conn, [row["id"] for row in rows])
    found = [_logged(row, tries.get(row["id"], [])) for row in rows]
    return found, (rows[-1]["seq"] if more else None)


def _logged(row: Any, attempts: list[Attempt]) -> Logged:
    waiting = row["status"] == PENDING
    return Logged(
        id=row["id"],
        message_id=row["message_id"],
        subject_id=row["subject_id"],
        endpoint_id=row["endpoint_id"],
        event=row["event"],
        url=row["url"],
        status=row["status"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"] if waiting else None,
        delivered_at=row["delivered_at"],
        attempts=attempts,
    )


async def _attempts(conn: AsyncConnection, ids: list[str]) -> dict[str, list[Attempt]]:
    if not ids:
        return {}
    a = webhook_attempts.c
    query = sa.select(webhook_attempts).where(a.delivery_id.in_(ids)).order_by(a.seq)
    found: dict[str, list[Attempt]] = {}
    for row in (await conn.execute(query)).mappings():
        found.setdefault(row["delivery_id"], []).append(
            Attempt(
                attempt=row["attempt"],
                started_at=row["started_at"],
                duration_ms=row["duration_ms"],
                status_code=row["status_code"],
                error=row["error"],
                response=row["response"],
            )
        )
    return found
