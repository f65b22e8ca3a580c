"""Helpers for tests that drive the store in-process: accounts, submissions, balances."""

from __future__ import annotations

from hatchery import admin
from hatchery.domain.tasks import new_task_id
from hatchery.store import accounts
from hatchery.store.db import Database
from hatchery.store.queue import TaskQueue

PRICE = 10_000


async def new_account(db: Database, balance: int = 1_000_000) -> str:
    return (await admin.create_user(db, f"{new_task_id()}@example.com", balance)).id


async def submit(queue: TaskQueue, account_id: str, webhook: str | None = None) -> str:
    task_id = new_task_id()
    params = {
        "prompt": "p",
        "num_outputs": 1,
        "duration": 5,
        "aspect_ratio": "16:9",
        "resolution": "1k",
    }
    await queue.submit(
        {
            "id": task_id,
            "account_id": account_id,
            "model": "nanobanana",
            "type": "image_generate",
            "params": params,
            "webhook_url": webhook,
            "price_micros": PRICE,
        }
    )
    return task_id


async def account(db: Database, account_id: str) -> accounts.Account:
    async with db.read() as conn:
        found = await accounts.by_id(conn, account_id)
    assert found is not None
    return found
