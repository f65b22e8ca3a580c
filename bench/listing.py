"""List: ``GET /v1/tasks`` with a million tasks in one account.

Seeds the tasks straight into the database (completed, one image each, one per second of
history), then measures, one request at a time, page 1, a page half-way down by ``page=``
(an offset), and the same page by ``cursor`` (a keyset), after checking both give the same tasks.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bench.common import Stack, one_at_a_time
from hatchery.api import cursor
from hatchery.store.tables import accounts, task_counts, tasks

PER_PAGE = 20
CHUNK = 10_000
PARAMS = {"prompt": "seeded", "num_outputs": 1, "aspect_ratio": "1:1", "resolution": "1k"}


def row(account_id: str, n: int, start: datetime) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    at = start + timedelta(seconds=n)
    return {
        "id": f"gen_{n:016d}",
        "account_id": account_id,
        "model": "nanobanana",
        "type": "image_generate",
        "status": "completed",
        "params": PARAMS,
        "price_micros": 10_000,
        "cost_micros": 10_000,
        "file_token": token,
        "output": {"files": [f"{token}/0.png"]},
        "usage": {"provider": "local"},
        "attempt": 1,
        "created_at": at,
        "started_at": at,
        "completed_at": at,
    }


async def seed(database_url: str, count: int) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            query = sa.select(accounts.c.id).where(accounts.c.email == "bench@example.com")
            account_id = (await conn.execute(query)).scalar_one()
            await insert_tasks(conn, account_id, count)
            await conn.execute(
                task_counts.insert().values(
                    account_id=account_id,
                    model="nanobanana",
                    type="image_generate",
                    total=count,
                    completed=count,
                )
            )
        async with engine.begin() as conn:
            await conn.execute(sa.text("ANALYZE"))
    finally:
        await engine.dispose()


async def insert_tasks(conn: AsyncConnection, account_id: str, count: int) -> None:
    start = datetime.now(UTC) - timedelta(seconds=count)
    for first in range(0, count, CHUNK):
        rows = [row(account_id, n, start) for n in range(first, min(count, first + CHUNK))]
        await conn.execute(tasks.insert(), rows)


def run(
    stack: Stack, count: int, duration: float, load: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    began = time.monotonic()
    asyncio.run(seed(stack.database_url, count))
    seeded = time.monotonic() - began
    page = count // 2 // PER_PAGE  # half-way down
    # seq runs 1..count in a fresh database; page N starts after the newest (N-1)*PER_PAGE.
    position = cursor.encode(count - (page - 1) * PER_PAGE + 1)
    paths = {
        "page_1": f"/v1/tasks?per_page={PER_PAGE}",
        "deep_page": f"/v1/tasks?per_page={PER_PAGE}&page={page}",
        "deep_cursor": f"/v1/tasks?per_page={PER_PAGE}&cursor={position}",
    }
    result: dict[str, Any] = {"tasks": count, "seeded_in_s": round(seeded, 1), "page": page}
    with stack.server(HATCHERY_WORKERS="0") as proc:
        result["same_tasks"] = same_tasks(stack, paths["deep_page"], paths["deep_cursor"])
        for name, path in paths.items():
            result[name] = load(one_at_a_time(stack.port, proc.pid, path, stack.key, duration))
    return result


def same_tasks(stack: Stack, by_page: str, by_cursor: str) -> bool:
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.key}"}) as c:
        pages = [c.get(path, timeout=60).json()["data"]["items"] for path in (by_page, by_cursor)]
    return len(pages[0]) == PER_PAGE and pages[0] == pages[1]
