"""Queries on the webhook endpoint registry: an account's receivers, what each subscribes to,
and the run of failures that disables one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.store.driver import Reader, Statement
from hatchery.store.tables import webhook_endpoints

ENABLED = "enabled"
DISABLED = "disabled"

e = webhook_endpoints.c


@dataclass(frozen=True)
class Endpoint:
    id: str
    account_id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    secret: str
    status: str
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Endpoint:
        m = dict(row if isinstance(row, dict) else row._mapping)
        m.pop("seq", None)
        m["events"] = tuple(m["events"])
        return cls(**m)

    @property
    def enabled(self) -> bool:
        return self.status == ENABLED and self.deleted_at is None


_LIVE = sa.select(webhook_endpoints).where(
    e.account_id == sa.bindparam("account_id"), e.deleted_at.is_(None), e.status == ENABLED
)
_SUBSCRIBED = Statement(_LIVE)


async def subscribed(tx: Reader, account_id: str, event: str) -> list[Endpoint]:
    """The account's enabled endpoints that subscribe to ``event``, oldest first."""
    rows = await tx.all(_SUBSCRIBED, {"account_id": account_id})
    found = [Endpoint.from_row(row) for row in rows]
    return sorted((ep for ep in found if event in ep.events), key=lambda ep: ep.created_at)


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> Endpoint:
    row = (
        await conn.execute(
            webhook_endpoints.insert().values(status=ENABLED, **values).returning(*e)
        )
    ).first()
    assert row is not None
    return Endpoint.from_row(row)


async def count(conn: AsyncConnection, account_id: str) -> int:
    query = sa.select(sa.func.count()).where(e.account_id == account_id, e.deleted_at.is_(None))
    return int((await conn.execute(query)).scalar_one())


async def listing(conn: AsyncConnection, account_id: str) -> list[Endpoint]:
    query = (
        sa.select(webhook_endpoints)
        .where(e.account_id == account_id, e.deleted_at.is_(None))
        .order_by(e.seq)
    )
    return [Endpoint.from_row(row) for row in await conn.execute(query)]


async def get(conn: AsyncConnection, endpoint_id: str, account_id: str) -> Endpoint | None:
    """The account's endpoint, unless deleted."""
    query = sa.select(webhook_endpoints).where(
        e.id == endpoint_id, e.account_id == account_id, e.deleted_at.is_(None)
    )
    row = (await conn.execute(query)).first()
    return Endpoint.from_row(row) if row else None


async def by_id(conn: AsyncConnection, endpoint_id: str) -> Endpoint | None:
    """The endpoint, deleted or not (what a delivery needs to know before it is sent)."""
    row = (await conn.execute(sa.select(webhook_endpoints).where(e.id == endpoint_id))).first()
    return Endpoint.from_row(row) if row else None


async def delete(conn: AsyncConnection, endpoint_id: str, account_id: str, now: datetime) -> bool:
    result = await conn.execute(
        webhook_endpoints.update()
        .where(e.id == endpoint_id, e.account_id == account_id, e.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    return result.rowcount == 1


async def enable(conn: AsyncConnection, endpoint_id: str, account_id: str) -> Endpoint | None:
    """Enabled again, its run of failures forgotten; None if the account has no such one."""
    row = (
        await conn.execute(
            webhook_endpoints.update()
            .where(e.id == endpoint_id, e.account_id == account_id, e.deleted_at.is_(None))
            .values(status=ENABLED, failing_since=None, disabled_at=None, disabled_reason=None)
            .returning(*e)
        )
    ).first()
    return Endpoint.from_row(row) if row else None


async def succeeded(conn: AsyncConnection, endpoint_id: str) -> None:
    await conn.execute(
        webhook_endpoints.update()
        .where(e.id == endpoint_id, e.failing_since.is_not(None))
        .values(failing_since=None)
    )


async def failed(
    conn: AsyncConnection, endpoint_id: str, at: datetime, disable_before: datetime, why: str
) -> Endpoint | None:
    """Note a failed attempt at ``at``; if the endpoint's failures began before
    ``disable_before`` (and it has had no success since), disable it and return it."""
    await conn.execute(
        webhook_endpoints.update()
        .where(e.id == endpoint_id, e.failing_since.is_(None))
        .values(failing_since=at)
    )
    row = (
        await conn.execute(
            webhook_endpoints.update()
            .where(
                e.id == endpoint_id,
                e.status == ENABLED,
                e.deleted_at.is_(None),
                e.failing_since <= disable_before,
            )
            .values(status=DISABLED, disabled_at=at, disabled_reason=why)
            .returning(*e)
        )
    ).first()
    return Endpoint.from_row(row) if row else None
