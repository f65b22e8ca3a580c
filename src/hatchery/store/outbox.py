"""Queries on the webhook outbox: a delivery row is written in the same transaction as the task's
final state, then claimed with a lease, attempted, and rescheduled or closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.keys import new_id
from hatchery.store.db import skip_locked
from hatchery.store.driver import Statement, Tx
from hatchery.store.tables import webhook_attempts, webhook_deliveries

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    id: str
    task_id: str
    account_id: str
    event: str
    url: str
    body: str
    attempts: int
    lease_owner: str | None


_ADD = Statement(  # in the transaction that ends the task, on the driver
    webhook_deliveries.insert().values(status=PENDING, attempts=0),
    keys=("id", "task_id", "account_id", "event", "url", "body", "next_attempt_at", "created_at"),
)


async def add(
    tx: Tx,
    *,
    task_id: str,
    account_id: str,
    event: str,
    url: str,
    body: str,
    now: datetime,
) -> None:
    delivery = {"task_id": task_id, "account_id": account_id, "event": event, "url": url}
    times = {"next_attempt_at": now, "created_at": now}
    await tx.execute(_ADD, {"id": new_id("whd_"), **delivery, "body": body, **times})


def _next_due(dialect: str, now: datetime) -> sa.ScalarSelect[Any]:
    d = webhook_deliveries.c
    query = (
        sa.select(d.seq)
        .where(
            d.status == PENDING,
            d.next_attempt_at <= now,
            sa.or_(d.lease_expires_at.is_(None), d.lease_expires_at < now),
        )
        .order_by(d.next_attempt_at)
        .limit(1)
    )
    return skip_locked(query, dialect).scalar_subquery()


async def claim(
    conn: AsyncConnection, owner: str, now: datetime, lease_until: datetime
) -> Delivery | None:
    d = webhook_deliveries.c
    result = await conn.execute(
        webhook_deliveries.update()
        .where(d.seq == _next_due(conn.dialect.name, now))
        .values(lease_owner=owner, lease_expires_at=lease_until)
        .returning(d.id, d.task_id, d.account_id, d.event, d.url, d.body, d.attempts, d.lease_owner)
    )
    row = result.first()
    return Delivery(**row._mapping) if row else None


async def next_due_at(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When a delivery can next be claimed; one in flight only once its lease lapses."""
    d = webhook_deliveries.c
    free = sa.or_(d.lease_expires_at.is_(None), d.lease_expires_at < now)
    due = sa.select(sa.func.min(d.next_attempt_at)).where(d.status == PENDING, free)
    leased = sa.select(sa.func.min(d.lease_expires_at)).where(d.status == PENDING, sa.not_(free))
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
    outcome: str,
    next_attempt_at: datetime | None,
) -> bool:
    """Record one attempt and its outcome; False if another worker took the delivery meanwhile."""
    d = webhook_deliveries.c
    attempt = delivery.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempt,
        "status": outcome,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_status_code": status_code,
        "last_error": error,
    }
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if outcome == DELIVERED:
        values["delivered_at"] = started_at
    result = await conn.execute(
        webhook_deliveries.update()
        .where(
            d.id == delivery.id,
            d.attempts == delivery.attempts,
            d.lease_owner == delivery.lease_owner,
        )
        .values(**values)
    )
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
        )
    )
    return True
