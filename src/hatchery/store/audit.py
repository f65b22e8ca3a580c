"""The audit log: one row per operator action, written in the action's own transaction (an
action that fails leaves no entry, one that succeeds always has one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.store.db import utcnow
from hatchery.store.tables import audit_log


@dataclass(frozen=True)
class Entry:
    seq: int
    at: datetime
    actor: str
    actor_id: str | None
    via: str
    action: str
    target: str
    before: Any
    after: Any
    reason: str | None


async def record(conn: AsyncConnection, **values: Any) -> None:
    """Write one entry: the columns of ``audit_log`` but ``seq`` and ``at`` (now)."""
    await conn.execute(audit_log.insert().values(at=utcnow(), **values))


@dataclass(frozen=True)
class Filter:
    target: str | None = None  # "account:acct_..." or a prefix of one ("model:")
    actor: str | None = None
    action: str | None = None  # "account.credit", or a prefix ending in "." ("route.")


async def listing(
    conn: AsyncConnection, where: Filter, *, before_seq: int | None, limit: int
) -> list[Entry]:
    """Newest first, ``limit`` entries older than ``before_seq`` (when given)."""
    query = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if before_seq is not None:
        query = query.where(audit_log.c.seq < before_seq)
    if where.target:
        query = query.where(_matches(audit_log.c.target, where.target, ":"))
    if where.action:
        query = query.where(_matches(audit_log.c.action, where.action, "."))
    if where.actor:
        query = query.where(sa.func.lower(audit_log.c.actor) == where.actor.lower())
    return [_entry(row._mapping) for row in await conn.execute(query)]


def _matches(column: sa.Column[str], value: str, separator: str) -> sa.ColumnElement[bool]:
    """Equal, or for a value that ends with the separator, every value that starts with it."""
    if value.endswith(separator):
        return column.startswith(value, autoescape=True)
    return column == value


def _entry(m: Mapping[Any, Any]) -> Entry:
    return Entry(
        m["seq"],
        m["at"],
        m["actor"],
        m["actor_id"],
        m["via"],
        m["action"],
        m["target"],
        m["before"],
        m["after"],
        m["reason"],
    )
