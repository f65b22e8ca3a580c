"""Queries on usage: the record of each charge, and its sums per day.

A usage record is written by :func:`record` in the transaction that charges its task (before the
charge: the record is a row of its own, so it waits on nobody), and added to its day's sums by
:func:`add_to_day` after the charge has updated the account's balance row, which orders two
transactions of one account (so the same sums are never updated in two orders). No record
without its charge, no charge without its record: they commit together or not at all.

``usage_daily`` holds the records summed per account, UTC day, model, type and API key, and
again over all keys (``api_key`` = ``ALL_KEYS``); the summary, a list's total and an account's
usage read it, never the records themselves, so they cost the same at a million records as at
ten, and what they read without a key filter does not grow with the number of keys. The list
itself reads the records, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.tasks import Task, TaskType
from hatchery.domain.usage import Totals, UsageRecord, usage_id
from hatchery.store.db import equal_to, insert_adding
from hatchery.store.driver import Statement, Tx
from hatchery.store.tables import usage_daily, usage_records

NO_KEY = ""  # usage_daily's api_key for records without one (tasks older than migration 0006)
ALL_KEYS = "*"  # usage_daily's api_key of the sums over every key (no key is named "*")


@dataclass(frozen=True)
class UsageFilter:
    """Which of an account's usage to read; days are UTC and both ends are included."""

    model: str | None = None
    type: str | None = None
    api_key: str | None = None
    start: date | None = None
    end: date | None = None


async def record(tx: Tx, task: Task) -> UsageRecord:
    """The usage record of ``task``'s charge: its ``cost_micros`` for its ``units``, at the
    resolution its output says was made."""
    assert task.completed_at is not None
    usage = UsageRecord(
        id=usage_id(task.id),
        task_id=task.id,
        model=task.model,
        type=task.type,
        api_key=task.api_key,
        units=task.units,
        unit=task.unit,
        unit_price_micros=task.price_micros // max(task.units, 1),
        cost_micros=task.cost_micros,
        resolution=(task.output or {}).get("resolution"),
        created_at=task.completed_at,
    )
    await tx.execute(_INSERT, {"account_id": task.account_id, **_columns(usage)})
    return usage


def _columns(usage: UsageRecord) -> dict[str, Any]:
    return {**usage.__dict__, "type": usage.type.value}


# Every completion runs these, on the driver.
_INSERT = Statement(usage_records.insert(), keys=("account_id", *UsageRecord.__dataclass_fields__))
_ADD_TO_DAY = Statement(
    lambda dialect: insert_adding(usage_daily, dialect, ("units", "cost_micros", "requests")),
    keys=("account_id", "day", "model", "type", "api_key", "units", "cost_micros", "requests"),
)


async def add_to_day(tx: Tx, account_id: str, usage: UsageRecord) -> None:
    """Add the record to its UTC day's sums: its key's, and all keys'."""
    day = {
        "account_id": account_id,
        "day": usage.created_at.astimezone(UTC).date().isoformat(),
        "model": usage.model,
        "type": usage.type.value,
        "units": usage.units,
        "cost_micros": usage.cost_micros,
        "requests": 1,
    }
    for key in (usage.api_key or NO_KEY, ALL_KEYS):
        await tx.execute(_ADD_TO_DAY, {**day, "api_key": key})


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _in_days(table: sa.Table, where: UsageFilter) -> list[sa.ColumnElement[bool]]:
    """The date range on a table of records (their time) or of sums (their day)."""
    if table is usage_daily:
        return [
            *([table.c.day >= where.start.isoformat()] if where.start else []),
            *([table.c.day <= where.end.isoformat()] if where.end else []),
        ]
    # the last day a date can name (9999-12-31) bounds nothing, and has no day after it
    end = where.end if where.end is not None and where.end < date.max else None
    return [
        *([table.c.created_at >= _start_of(where.start)] if where.start else []),
        *([table.c.created_at < _start_of(end + timedelta(days=1))] if end else []),
    ]


def _matching(table: sa.Table, account_id: str, where: UsageFilter) -> list[sa.ColumnElement[bool]]:
    """The conditions of ``where`` on ``usage_records`` or ``usage_daily`` (same columns)."""
    every_key = ALL_KEYS if table is usage_daily else None  # the sums over all keys
    found = equal_to(
        table,
        account_id=account_id,
        model=where.model,
        type=where.type,
        api_key=where.api_key or every_key,
    )
    return found + _in_days(table, where)


async def page(
    conn: AsyncConnection, account_id: str, where: UsageFilter, *, limit: int, offset: int
) -> list[UsageRecord]:
    """Up to ``limit`` of the account's usage records that match, newest first."""
    query = (
        sa.select(*(usage_records.c[name] for name in UsageRecord.__dataclass_fields__))
        .where(*_matching(usage_records, account_id, where))
        .order_by(usage_records.c.seq.desc())
        .offset(offset)
        .limit(limit)
    )
    return [_usage(row) for row in await conn.execute(query)]


def _usage(row: sa.Row[Any]) -> UsageRecord:
    """A record from a row holding its columns (and maybe others: ``seq``)."""
    m = {name: row._mapping[name] for name in UsageRecord.__dataclass_fields__}
    return UsageRecord(**{**m, "type": TaskType(m["type"])})


def _sums() -> tuple[sa.ColumnElement[Any], ...]:
    c = usage_daily.c
    return tuple(
        sa.func.coalesce(sa.func.sum(col), 0) for col in (c.units, c.cost_micros, c.requests)
    )


async def summary(conn: AsyncConnection, account_id: str, where: UsageFilter) -> list[Totals]:
    """The matching usage summed per model, by model name."""
    c = usage_daily.c
    query = (
        sa.select(c.model, *_sums())
        .where(*_matching(usage_daily, account_id, where))
        .group_by(c.model)
        .order_by(c.model)
    )
    return [
        Totals(row[0], int(row[1]), int(row[2]), int(row[3])) for row in await conn.execute(query)
    ]


async def totals(conn: AsyncConnection, account_id: str, where: UsageFilter) -> Totals:
    """All the matching usage summed (how many records a list of it holds)."""
    row = (
        await conn.execute(sa.select(*_sums()).where(*_matching(usage_daily, account_id, where)))
    ).one()
    return Totals(None, int(row[0]), int(row[1]), int(row[2]))


async def by_key(conn: AsyncConnection, account_id: str) -> dict[str, Totals]:
    """The account's usage summed per API key (by prefix; ``NO_KEY`` for the dashboard's and
    older tasks), all time."""
    c = usage_daily.c
    query = (
        sa.select(c.api_key, *_sums())
        .where(c.account_id == account_id, c.api_key != ALL_KEYS)
        .group_by(c.api_key)
    )
    return {
        row[0]: Totals(None, int(row[1]), int(row[2]), int(row[3]))
        for row in await conn.execute(query)
    }


async def used(conn: AsyncConnection, account_id: str) -> tuple[list[str], list[str]]:
    """The models the account has been charged for, and the keys (prefixes) it was charged
    through, each sorted: what a usage filter may choose from (no sums read)."""
    c = usage_daily.c
    mine = c.account_id == account_id
    models = sa.select(c.model).where(mine, c.api_key == ALL_KEYS).distinct().order_by(c.model)
    prefixes = (
        sa.select(c.api_key)
        .where(mine, c.api_key.not_in((ALL_KEYS, NO_KEY)))
        .distinct()
        .order_by(c.api_key)
    )
    return list((await conn.execute(models)).scalars()), list(
        (await conn.execute(prefixes)).scalars()
    )


async def by_day(
    conn: AsyncConnection, account_id: str, where: UsageFilter
) -> list[tuple[str, str, int]]:
    """The matching usage's cost per UTC day and model: ``(day, model, cost_micros)`` by day."""
    c = usage_daily.c
    query = (
        sa.select(c.day, c.model, sa.func.sum(c.cost_micros))
        .where(*_matching(usage_daily, account_id, where))
        .group_by(c.day, c.model)
        .order_by(c.day, c.model)
    )
    return [(row[0], row[1], int(row[2])) for row in await conn.execute(query)]


async def batch(
    conn: AsyncConnection, account_id: str, where: UsageFilter, *, before: int | None, limit: int
) -> list[tuple[int, UsageRecord]]:
    """Up to ``limit`` of the account's usage records that match, newest first, older than the
    position ``before`` (all of them for None), each with its position: reading every record
    in batches this way costs the same per batch however deep, and a record written meanwhile
    (newer than the first) neither shows nor shifts the others."""
    c = usage_records.c
    conditions = _matching(usage_records, account_id, where)
    if before is not None:
        conditions.append(c.seq < before)
    query = (
        sa.select(c.seq, *(c[name] for name in UsageRecord.__dataclass_fields__))
        .where(*conditions)
        .order_by(c.seq.desc())
        .limit(limit)
    )
    rows = await conn.execute(query)
    return [(row.seq, _usage(row)) for row in rows]
