"""Usage: ``GET /v1/usage/summary`` and ``GET /v1/usage`` with a million usage records in one
account.

Seeds the records straight into the database of a fresh server, in the order they completed:
a year of UTC days up to yesterday, fewer on weekends and growing over the year; the catalog's
three models (image generations and edits of ``nanobanana`` and ``nanobanana-pro``, ``veo3.1``
videos) with their prices; four API keys of the account, the stack's own the busiest, each with
its ``api_keys`` row, and no key on the oldest month (records from before the server kept it).
``usage_daily`` is summed in Python from the same records, as ``store.usage.record`` adds each
one to its day, then checked against a GROUP BY of the records in the database.

Then, one request at a time: the summary over everything, over the last 30 days, over
everything of one key, and page 1 of the records (its ``total`` is read from the daily sums
too), after checking that each answers what the seeded records add up to.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bench.common import Stack, one_at_a_time
from hatchery.domain import keys
from hatchery.domain.money import format_cost
from hatchery.store.accounts import add_key
from hatchery.store.tables import accounts, usage_daily, usage_records

DAYS = 365
RANGE_DAYS = 30
PER_PAGE = 20
CHUNK = 10_000
NO_KEY = ""  # store.usage.NO_KEY: the daily sums' api_key of records without one
ALL_KEYS = "*"  # store.usage.ALL_KEYS: the daily sums over every key
SEED = 20260508

# (model, type, unit, share of the records); image units are outputs, video units seconds.
MIX = [
    ("nanobanana", "image_generate", "image", 0.45),
    ("nanobanana", "image_edit", "image", 0.15),
    ("nanobanana-pro", "image_generate", "image", 0.20),
    ("nanobanana-pro", "image_edit", "image", 0.10),
    ("veo3.1", "video_generate", "second", 0.10),
]
KEY_SHARES = (0.55, 0.25, 0.15, 0.05)  # the stack's key first
OUTPUTS = ((1, 0.70), (2, 0.15), (4, 0.15))
SECONDS = ((4, 0.3), (6, 0.3), (8, 0.4))
RESOLUTIONS = {
    "nanobanana": (("1k", 0.8), ("2k", 0.2)),
    "nanobanana-pro": (("1k", 0.5), ("2k", 0.3), ("4k", 0.2)),
    "veo3.1": (("720p", 0.7), ("1080p", 0.3)),
}


def unit_price(model: str, resolution: str) -> int:
    """The catalog's unit price in micros (``nanobanana-pro`` at 4k has its own rule)."""
    if model == "veo3.1":
        return 80_000
    if model == "nanobanana-pro":
        return 32_000 if resolution == "4k" else 16_000
    return 10_000


# The day of a stored ``created_at``, as migration 0006 sums the records it backfills.
DAY_SQL = {
    "sqlite": "substr(created_at, 1, 10)",
    "postgresql": "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}

Sums = dict[tuple[str, str, str, str], list[int]]  # (day, model, type, api_key) -> units, cost, n


def with_all_keys(daily: Sums) -> Sums:
    """The daily sums per key, and the same summed over all keys (as the server keeps them)."""
    every: Sums = {}
    for (day, model, kind, _), (units, cost, n) in daily.items():
        sums = every.setdefault((day, model, kind, ALL_KEYS), [0, 0, 0])
        sums[0], sums[1], sums[2] = sums[0] + units, sums[1] + cost, sums[2] + n
    return {**daily, **every}


@dataclass
class Seeded:
    """What was written: the keys' prefixes (busiest first), the days, the daily sums."""

    first_day: date
    last_day: date
    key_prefixes: list[str]
    daily: Sums = field(default_factory=dict)

    def expected(self, start: date | None = None, key: str | None = None) -> list[dict[str, Any]]:
        """What ``GET /v1/usage/summary`` should answer, from the sums kept in Python."""
        per_model: dict[str, list[int]] = {}
        for (day, model, _, api_key), (units, cost, n) in self.daily.items():
            if (start and day < start.isoformat()) or (key and api_key != key):
                continue
            found = per_model.setdefault(model, [0, 0, 0])
            found[0], found[1], found[2] = found[0] + units, found[1] + cost, found[2] + n
        return [
            {"model": m, "total_units": u, "total_cost": format_cost(c), "request_count": n}
            for m, (u, c, n) in sorted(per_model.items())
        ]


def day_counts(count: int, first: date) -> list[int]:
    """How many records each day gets: growing from 0.5 to 1.5 over the year, weekends at 0.6;
    summing to ``count`` exactly (largest remainder)."""
    weights = []
    for n in range(DAYS):
        weekend = (first + timedelta(days=n)).weekday() >= 5
        weights.append((0.5 + n / (DAYS - 1)) * (0.6 if weekend else 1.0))
    total = sum(weights)
    exact = [count * w / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(DAYS), key=lambda n: exact[n] - counts[n], reverse=True)
    for n in by_remainder[: count - sum(counts)]:
        counts[n] += 1
    return counts


def records(account_id: str, count: int, seeded: Seeded) -> Iterator[dict[str, Any]]:
    """The usage records, oldest first, each added to its day's sums in ``seeded.daily``."""
    rng = random.Random(SEED)
    mix = [(m, t, u) for m, t, u, _ in MIX]
    mix_weights = [w for *_, w in MIX]
    n = 0
    for offset, on_day in enumerate(day_counts(count, seeded.first_day)):
        day = seeded.first_day + timedelta(days=offset)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        keyless = offset < 30  # before the server kept the submitting key
        for micros in sorted(rng.randrange(86_400_000_000) for _ in range(on_day)):
            model, kind, unit = rng.choices(mix, mix_weights)[0]
            resolution = pick(rng, RESOLUTIONS[model])
            units = pick(rng, SECONDS if unit == "second" else OUTPUTS)
            price = unit_price(model, resolution)
            api_key = None if keyless else rng.choices(seeded.key_prefixes, KEY_SHARES)[0]
            sums = seeded.daily.setdefault(
                (day.isoformat(), model, kind, api_key or NO_KEY), [0, 0, 0]
            )
            sums[0], sums[1], sums[2] = sums[0] + units, sums[1] + units * price, sums[2] + 1
            yield {
                "id": f"usage_{n:016d}",
                "account_id": account_id,
                "task_id": f"gen_{n:016d}",
                "model": model,
                "type": kind,
                "api_key": api_key,
                "units": units,
                "unit": unit,
                "unit_price_micros": price,
                "cost_micros": units * price,
                "resolution": resolution,
                "created_at": midnight + timedelta(microseconds=micros),
            }
            n += 1


def pick(rng: random.Random, weighted: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


async def seed(database_url: str, count: int, stack_key: str) -> tuple[Seeded, dict[str, Any]]:
    """The records, their daily sums and the keys, written; what was written, and timings."""
    engine = create_async_engine(database_url)
    timings: dict[str, Any] = {}
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    seeded = Seeded(yesterday - timedelta(days=DAYS - 1), yesterday, [keys.key_prefix(stack_key)])
    try:
        async with engine.begin() as conn:
            query = sa.select(accounts.c.id).where(accounts.c.email == "bench@example.com")
            account_id = (await conn.execute(query)).scalar_one()
            for _ in KEY_SHARES[1:]:
                key = keys.new_api_key()
                await add_key(conn, account_id, key, None)
                seeded.key_prefixes.append(keys.key_prefix(key))
            began = time.monotonic()
            rows = records(account_id, count, seeded)
            while chunk := list(islice(rows, CHUNK)):
                await conn.execute(usage_records.insert(), chunk)
            await conn.execute(
                usage_daily.insert(),
                [
                    {
                        "account_id": account_id,
                        "day": day,
                        "model": model,
                        "type": kind,
                        "api_key": api_key,
                        "units": units,
                        "cost_micros": cost,
                        "requests": n,
                    }
                    for (day, model, kind, api_key), (units, cost, n) in with_all_keys(
                        seeded.daily
                    ).items()
                ],
            )
            timings["insert_s"] = round(time.monotonic() - began, 1)
        async with engine.begin() as conn:
            await conn.execute(sa.text("ANALYZE"))
        began = time.monotonic()
        async with engine.connect() as conn:
            timings["daily_matches_records"] = await daily_matches(conn, account_id, seeded.daily)
        timings["check_s"] = round(time.monotonic() - began, 1)
    finally:
        await engine.dispose()
    return seeded, timings


async def daily_matches(conn: AsyncConnection, account_id: str, daily: Sums) -> bool:
    """Whether ``usage_daily`` holds exactly the records' sums per UTC day, model, type and key
    as the database itself buckets them (the one full scan of the records, at seed time)."""
    c, d = usage_records.c, usage_daily.c
    day: sa.ColumnElement[str] = sa.literal_column(DAY_SQL[conn.dialect.name])
    key = sa.func.coalesce(c.api_key, NO_KEY)
    by_records = sa.select(
        day, c.model, c.type, key, sa.func.sum(c.units), sa.func.sum(c.cost_micros), sa.func.count()
    )
    by_records = by_records.where(c.account_id == account_id).group_by(day, c.model, c.type, key)
    by_days = sa.select(d.day, d.model, d.type, d.api_key, d.units, d.cost_micros, d.requests)
    by_days = by_days.where(d.account_id == account_id)
    found = [
        {tuple(row[:4]): [int(v) for v in row[4:]] for row in await conn.execute(query)}
        for query in (by_records, by_days)
    ]
    return found[0] == daily and found[1] == with_all_keys(daily)


def run(
    stack: Stack, count: int, duration: float, load: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    began = time.monotonic()
    seeded, timings = asyncio.run(seed(stack.database_url, count, stack.key))
    result: dict[str, Any] = {
        "records": count,
        "daily_rows": len(with_all_keys(seeded.daily)),
        "days": f"{seeded.first_day} to {seeded.last_day}",
        "seeded_in_s": round(time.monotonic() - began, 1),
        **timings,
    }
    if not timings["daily_matches_records"]:
        raise RuntimeError("usage_daily does not hold the seeded records' sums")
    start = seeded.last_day - timedelta(days=RANGE_DAYS - 1)
    key = seeded.key_prefixes[0]
    days = urlencode({"start_date": start.isoformat(), "end_date": seeded.last_day.isoformat()})
    paths = {
        "summary": "/v1/usage/summary",
        "summary_30_days": f"/v1/usage/summary?{days}",
        "summary_one_key": f"/v1/usage/summary?{urlencode({'api_key': key})}",
        "list_page_1": f"/v1/usage?per_page={PER_PAGE}",
    }
    expected = {
        "summary": seeded.expected(),
        "summary_30_days": seeded.expected(start=start),
        "summary_one_key": seeded.expected(key=key),
    }
    with stack.server(HATCHERY_WORKERS="0") as proc:
        result["answers_match"] = answers_match(stack, paths, expected, count)
        if not result["answers_match"]:
            raise RuntimeError(f"the usage routes did not answer the seeded sums: {paths}")
        for name, path in paths.items():
            result[name] = load(one_at_a_time(stack.port, proc.pid, path, stack.key, duration))
    return result


def answers_match(
    stack: Stack, paths: dict[str, str], expected: dict[str, Any], count: int
) -> bool:
    """Each summary is the seeded sums; the list's page 1 has the newest records, and the total
    is every record."""
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.key}"}) as c:
        answers = {name: c.get(path, timeout=60).json()["data"] for name, path in paths.items()}
    newest = [f"usage_{n:016d}" for n in range(count - 1, count - 1 - PER_PAGE, -1)]
    listed = answers.pop("list_page_1")
    return (
        answers == expected
        and [r["id"] for r in listed["items"]] == newest
        and listed["pagination"]["total"] == count
    )
